#!/usr/bin/env bash
# CI proof of item 6 (real hardware): the toolkit builds against an installed SISCI alone.
# 1. Builds the software fabric's libsisci and installs only it and its three headers
#    (install component `sisci`) into a temporary prefix, standing in for /opt/DIS.
# 2. Configures a second build of the toolkit with -DDIS_SISCI_ROOT=<prefix>.
# 3. Fails if any compile command puts a project-internal SISCI header directory on the
#    include path, if disd is still part of the build, or if a SISCI header resolves to
#    anywhere but the prefix; then builds dis-tool and checks it runs and reports the admin
#    views as unavailable.
#   WORK_DIR  where the builds and the prefix go (default: a temporary directory, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd -P)

if [ -n "${WORK_DIR:-}" ]; then
  work=$WORK_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
prefix=$work/sisci-prefix
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

fail() { echo "ci-vendor-build: FAIL: $*" >&2; exit 1; }

echo "== 1. software-fabric libsisci alone into $prefix"
cmake -S . -B "$work/sisci-build" "${generator[@]}" -DDIS_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/sisci-build" -j2 --target sisci
cmake --install "$work/sisci-build" --component sisci --prefix "$prefix" >/dev/null
[ -f "$prefix/include/sisci_api.h" ] || fail "no include/sisci_api.h in $prefix"
ls "$prefix"/lib*/libsisci.so >/dev/null 2>&1 || fail "no lib*/libsisci.so in $prefix"
unexpected=$(find "$prefix" -type f ! -name 'sisci_*.h' ! -name dis_types.h ! -name 'libsisci.so*' \
  ! -name sisci.pc ! -name 'SISCIConfig*.cmake' -print)
[ -z "$unexpected" ] || fail "the sisci component installs more than libsisci: $unexpected"
find "$prefix" -type f -o -type l | sort

echo "== 2. the toolkit against DIS_SISCI_ROOT=$prefix"
vendor=$work/vendor-build
# No optimisation and no debug information (this build proves what compiles and links against
# the prefix, and runs two commands), and no unity build: each source alone must include what
# it uses, which the CI's batched builds would not notice.
cmake -S . -B "$vendor" "${generator[@]}" -DDIS_WERROR=ON -DDIS_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=None -DDIS_SISCI_ROOT="$prefix" >/dev/null

echo "== 3. checks"
db=$vendor/compile_commands.json
[ -f "$db" ] || fail "no $db"
if grep -q -- "$src/lib/sisci/include" "$db"; then
  grep -o -- "-I[^ ]*lib/sisci/include[^ ]*\|-isystem [^ ]*lib/sisci/include[^ ]*" "$db" | sort -u >&2
  fail "a compile command uses the project's own SISCI headers ($src/lib/sisci/include)"
fi
grep -q -- "$prefix/include" "$db" || fail "no compile command uses $prefix/include"
if cmake --build "$vendor" --target help | grep -qw disd; then
  fail "disd is built in a vendor SISCI build"
fi
cmake --build "$vendor" -j2 --target dis-tool
# Which sisci_api.h each object really included (the compiler's own dependency list).
if [ -f "$vendor/build.ninja" ]; then
  headers=$(cd "$vendor" && ninja -t deps | grep -E '/sisci_(api|types|error)\.h$' | sort -u)
  [ -n "$headers" ] || fail "no object depends on sisci_api.h"
  bad=$(echo "$headers" | grep -v -- "$prefix/include" || true)
  [ -z "$bad" ] || fail "SISCI headers resolved outside the prefix: $bad"
  echo "$headers" | sed 's/^/  uses /'
fi
tool=$vendor/tools/dis-tool/dis-tool
[ -x "$tool" ] || tool=$vendor/tools/dis-tool
"$tool" --help >/dev/null || fail "dis-tool --help"
set +e
out=$("$tool" segment list -o json 2>"$work/err")
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "segment list in a vendor build: exit $rc, expected 2 (unavailable)"
grep -q unavailable "$work/err" || fail "segment list did not say unavailable: $(cat "$work/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["error"]["kind"]' ||
  fail "segment list -o json did not print a JSON error"
set +e
"$tool" fabric start --fabric "$work/fabric" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q unavailable "$work/err" ||
  fail "fabric start in a vendor build: exit $rc, $(cat "$work/err"), expected 2 (unavailable)"
echo "ci-vendor-build: OK (toolkit built against $prefix alone)"
