#!/usr/bin/env bash
# ctest "install:": installs the build into a fresh prefix and uses it as a new user would,
# with a clean environment (no LD_LIBRARY_PATH, no build tree on any path):
#   - the installed dis-tool starts (--version) and reads a dump (pci list --dump);
#   - `fabric start` finds the installed disd beside dis-tool with only /usr/bin:/bin on PATH;
#   - a tiny program builds against the installed pkg-config file (dis.pc) and against the
#     CMake package (find_package(dis), dis::dis), and runs;
#   - the systemd units name the installed binaries, pass `systemd-analyze verify` without a
#     word of complaint, and disd@.service's command line starts a node.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR CXX_COMPILER CMAKE_COMMAND
set -euo pipefail
build=$1 src=$2 cxx=$3 cmake=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/dis-install-XXXXXX")
fabric=$work/fabric
cleanup() {
    [ -x "$work/p/bin/dis-tool" ] && env -i PATH=/usr/bin:/bin "$work/p/bin/dis-tool" fabric stop \
        --fabric "$fabric" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
clean_env=(env -i PATH=/usr/bin:/bin HOME="$work")

"$cmake" --install "$build" --prefix "$work/p" >/dev/null
prefix=$work/p
tool=$prefix/bin/dis-tool
[ -x "$tool" ] || fail "no bin/dis-tool"
[ -x "$prefix/bin/disd" ] || fail "disd not installed beside dis-tool in bin/"

version=$("${clean_env[@]}" "$tool" --version) || fail "installed dis-tool does not start"
[ -n "$version" ] || fail "empty --version"
devices=$("${clean_env[@]}" "$tool" pci list --dump "$src/tests/data/pci/tree-asus-p6t6.txt" \
    -o json | jq length) || fail "installed pci list --dump failed"
[ "$devices" = 53 ] || fail "pci list --dump saw $devices devices, not 53"

# disd is found beside dis-tool, not through PATH.
"${clean_env[@]}" "$tool" fabric start --nodes 1 --fabric "$fabric" >/dev/null ||
    fail "installed fabric start did not find or start disd"
"${clean_env[@]}" "$tool" topology --fabric "$fabric" -o json | jq -e '.nodes | length == 1' \
    >/dev/null || fail "the installed fabric's topology has not one node"
"${clean_env[@]}" "$tool" fabric stop --fabric "$fabric" >/dev/null || fail "fabric stop"

# A consumer of libdis.
mkdir -p "$work/consumer"
cat >"$work/consumer/main.cpp" <<'CPP'
#include <dis/error.hpp>
#include <dis/pci.hpp>
#include <iostream>
int main() {
    std::cout << dis::pci::Bdf::parse("3:00.1").to_string() << ' '
              << dis::exit_code_for(dis::ErrorKind::internal) << '\n';
}
CPP
expect="0000:03:00.1 4"
cflags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig:${PKG_CONFIG_PATH:-} pkg-config --cflags --libs dis) ||
    fail "pkg-config does not find dis.pc"
# shellcheck disable=SC2086 # word splitting of the flags is intended
"$cxx" "$work/consumer/main.cpp" -o "$work/consumer/with-pc" $cflags \
    -Wl,-rpath,"$prefix/lib" || fail "cannot build against dis.pc"
[ "$("${clean_env[@]}" "$work/consumer/with-pc")" = "$expect" ] || fail "pkg-config consumer output"

cat >"$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(consumer CXX)
find_package(dis REQUIRED)
add_executable(with-cmake main.cpp)
target_link_libraries(with-cmake PRIVATE dis::dis)
set_target_properties(with-cmake PROPERTIES BUILD_RPATH "${dis_DIR}/../..")
CMAKE
"$cmake" -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null || fail "find_package(dis) failed"
"$cmake" --build "$work/consumer/build" >/dev/null || fail "cannot build against dis::dis"
[ "$("${clean_env[@]}" "$work/consumer/build/with-cmake")" = "$expect" ] ||
    fail "CMake consumer output"
# The systemd units.
units=$prefix/lib/systemd/system
for unit in disd@.service dis-exporter.service; do
    [ -f "$units/$unit" ] || fail "$unit not installed in lib/systemd/system"
done
grep -q "^ExecStart=$prefix/bin/disd " "$units/disd@.service" ||
    fail "disd@.service does not run the installed disd"
grep -q "^ExecStart=$prefix/bin/dis-tool exporter " "$units/dis-exporter.service" ||
    fail "dis-exporter.service does not run the installed dis-tool"
if command -v systemd-analyze >/dev/null; then
    # A template is verified as an instance; any message (an unknown key, say) is a failure.
    mkdir -p "$work/units"
    cp "$units/disd@.service" "$units/dis-exporter.service" "$work/units/"
    verdict=$(cd "$work/units" && systemd-analyze verify --man=no disd@4.service \
        dis-exporter.service 2>&1) || fail "systemd-analyze verify: $verdict"
    [ -z "$verdict" ] || fail "systemd-analyze verify complains: $verdict"
fi
# disd@.service's own command line (its paths moved into the work dir) starts node 4.
exec_start=$(sed -n 's/^ExecStart=//p' "$units/disd@.service")
exec_start=${exec_start//%i/4}
exec_start=${exec_start//\/run\/dis/$work/unit-fabric}
exec_start=${exec_start//\/var\/lib\/dis/$work/unit-state}
exec_start=${exec_start//\$DISD_ARGS/}
exec_start=${exec_start//\$DISD_NODE_ARGS/}
mkdir -p "$work/unit-state"
# shellcheck disable=SC2086 # the unit's command line, split into words as systemd does
"${clean_env[@]}" $exec_start >"$work/unit-disd.log" 2>&1 &
unit_pid=$!
for _ in $(seq 100); do
    [ -S "$work/unit-fabric/node-4.sock" ] && break
    kill -0 "$unit_pid" 2>/dev/null || fail "disd@.service's command exited: $(cat "$work/unit-disd.log")"
    sleep 0.05
done
[ -S "$work/unit-fabric/node-4.sock" ] || fail "disd@.service's command made no socket in 5 s"
kill "$unit_pid"
wait "$unit_pid" || fail "disd@.service's node did not stop cleanly on SIGTERM"

echo "install to $prefix: dis-tool $version, $devices devices, fabric, pkg-config and CMake consumers, systemd units ok"
