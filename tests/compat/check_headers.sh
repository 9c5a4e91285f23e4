#!/bin/sh
# check_headers.sh CC CXX INCDIR: each public header compiles alone, as C99 and as C++, plain
# and with -D_REENTRANT -D__DIS_CLUSTER__ (as the vendor's build files compile them).
set -u
cc=$1 cxx=$2 inc=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dis-hdr.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
for h in sisci_types.h sisci_api.h sisci_error.h dis_types.h; do
    [ -f "$inc/$h" ] || { echo "missing header $h" >&2; fail=1; continue; }
    printf '#include <%s>\nint main(void) { return 0; }\n' "$h" > "$tmp/t.c"
    for defs in "" "-D_REENTRANT -D__DIS_CLUSTER__"; do
        # shellcheck disable=SC2086
        if ! "$cc" -std=c99 -Wall -Wextra -Werror -pedantic $defs -I"$inc" -c "$tmp/t.c" \
            -o "$tmp/t.o"; then
            echo "FAIL: $h as C99 $defs" >&2
            fail=1
        fi
        # shellcheck disable=SC2086
        if ! "$cxx" -x c++ -std=c++17 -Wall -Wextra -Werror -pedantic $defs -I"$inc" \
            -c "$tmp/t.c" -o "$tmp/t.o"; then
            echo "FAIL: $h as C++ $defs" >&2
            fail=1
        fi
    done
done
[ "$fail" -eq 0 ] && echo "all headers compile alone"
exit "$fail"
