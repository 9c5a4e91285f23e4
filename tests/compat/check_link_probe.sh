#!/bin/sh
# check_link_probe.sh CC INCDIR LIBDIR: the probes build systems run to find the vendor's
# libsisci succeed against ours: autoconf's AC_SEARCH_LIBS([_SISCI_PUBLIC_FUNC_ST_SCIInitialize],
# [sisci]) links this exact program with -lsisci; CMake's check_library_exists does the same.
set -u
cc=$1 inc=$2 lib=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dis-probe.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
for fn in _SISCI_PUBLIC_FUNC_ST_SCIInitialize _SISCI_PUBLIC_FUNC_MT_SCIInitialize \
    _SISCI_PUBLIC_FUNC_ST_SCIOpen SCIInitialize; do
    # What autoconf's AC_LANG_CALL generates.
    cat > "$tmp/conftest.c" <<C
#ifdef __cplusplus
extern "C"
#endif
char $fn ();
int main (void) { return $fn (); }
C
    if ! "$cc" -o "$tmp/conftest" "$tmp/conftest.c" -L"$lib" -lsisci 2>"$tmp/err"; then
        echo "FAIL: a program calling $fn does not link with -lsisci:" >&2
        cat "$tmp/err" >&2
        fail=1
    fi
done
# Not a link that anything would satisfy: a name libsisci does not have fails.
printf 'char SCINoSuchFunction ();\nint main (void) { return SCINoSuchFunction (); }\n' \
    > "$tmp/conftest.c"
if "$cc" -o "$tmp/conftest" "$tmp/conftest.c" -L"$lib" -lsisci 2>/dev/null; then
    echo "FAIL: the probe of a missing name linked too" >&2
    fail=1
fi
[ "$fail" -eq 0 ] && echo "link probes OK"
exit "$fail"
