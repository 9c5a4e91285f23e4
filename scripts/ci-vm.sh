#!/usr/bin/env bash
# CI: the VM test bed (tests/vm/README.md), independent of ctest. Installs QEMU and downloads
# Debian's kernel package (scripts/vm-install-deps.sh), builds dis-tool in the build
# directory when it is missing or stale, then boots the VM and compares dis-tool's view of
# the guest's PCIe devices with lspci and the guest kernel (tests/vm/run.sh).
#   BUILD_DIR  build directory (default: build; configured here when it has no CMakeCache)
# Exit 0 only when run.sh passed AND its last line reports checks with none failed. QEMU that
# cannot start, a guest that never reports, or missing tools fail (exit 1); there is no skip:
# without KVM the guest runs under TCG (about 40-60 s).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}

fail() {
    echo "ci-vm: FAIL: $*" >&2
    exit 1
}

echo "== VM test bed: dependencies (scripts/vm-install-deps.sh)"
./scripts/vm-install-deps.sh || fail "scripts/vm-install-deps.sh failed"

echo "== VM test bed: dis-tool in $build"
if [ ! -f "$build/CMakeCache.txt" ]; then
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S . -B "$build" "${generator[@]}" -DDIS_WERROR=ON >/dev/null ||
        fail "cannot configure $build"
fi
cmake --build "$build" -j2 --target dis-tool disd || fail "cannot build dis-tool and disd in $build"

echo "== VM test bed (tests/vm/run.sh $build)"
log=$(mktemp "${TMPDIR:-/tmp}/ci-vm.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
tests/vm/run.sh "$build" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
last=$(tail -n1 "$log")
[ "$status" -eq 0 ] || fail "tests/vm/run.sh exited $status (last line: $last)"
# A pass must say what ran: "vm: N passed, 0 failed" with N > 0.
[[ "$last" =~ ^vm:\ [1-9][0-9]*\ passed,\ 0\ failed$ ]] ||
    fail "tests/vm/run.sh exited 0 but its last line is '$last'"
echo "ci-vm: OK ($last)"
