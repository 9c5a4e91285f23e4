#!/bin/sh
# check_install.sh CMAKE BUILD_DIR CC COMPAT_DIR: installs the "sisci" component to a temporary
# prefix and builds one program there the ways build files written for /opt/DIS do: with
# PKG_CONFIG_PATH alone (pkg-config sisci), with find_package(SISCI), with a CMake project that
# takes -DDIS=prefix, and with a Makefile's -I$(DIS)/include -I$(DIS)/include/dis
# -L$(DIS)/lib64 -lsisci. Each program must build and run.
set -u
cmake=$1 build=$2 cc=$3 dir=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dis-install.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail=0
step() { echo "== $*"; }
bad() { echo "FAIL: $*" >&2; fail=1; }

"$cmake" --install "$build" --component sisci --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; exit 1; }
for f in include/sisci_api.h include/sisci_types.h include/sisci_error.h include/dis_types.h \
    include/dis/dis_types.h lib64/libsisci.so; do
    [ -e "$prefix/$f" ] || bad "not installed: $f"
done
pc=$(find "$prefix" -name sisci.pc | head -n 1)
[ -n "$pc" ] || bad "no sisci.pc installed"
libdir=$(dirname "$(find "$prefix" -name 'libsisci.so' -not -path '*/lib64/*' | head -n 1)")
export LD_LIBRARY_PATH="$libdir"

step "Makefile style (-I\$(DIS)/include -I\$(DIS)/include/dis -L\$(DIS)/lib64)"
"$cc" -Wall -Werror -I"$prefix/include" -I"$prefix/include/dis" "$dir/install_probe.c" \
    -L"$prefix/lib64" -lsisci -o "$tmp/probe_make" && "$tmp/probe_make" || bad "Makefile style"

step "pkg-config, PKG_CONFIG_PATH alone"
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs sisci) || bad "pkg-config"
# shellcheck disable=SC2086
"$cc" -Wall -Werror "$dir/install_probe.c" $flags -o "$tmp/probe_pc" && "$tmp/probe_pc" ||
    bad "pkg-config build"

gen=""
command -v ninja >/dev/null 2>&1 && gen="-GNinja"
step "CMake find_package(SISCI) with CMAKE_PREFIX_PATH"
mkdir -p "$tmp/fp"
cat > "$tmp/fp/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(probe C)
find_package(SISCI 0.1 REQUIRED)
add_executable(probe "$dir/install_probe.c")
target_link_libraries(probe PRIVATE SISCI::sisci)
CM
"$cmake" $gen -S "$tmp/fp" -B "$tmp/fp/b" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/fp.log" 2>&1 &&
    "$cmake" --build "$tmp/fp/b" >>"$tmp/fp.log" 2>&1 && "$tmp/fp/b/probe" ||
    { cat "$tmp/fp.log" >&2; bad "find_package(SISCI)"; }

step "CMake project written for /opt/DIS, given -DDIS=prefix"
mkdir -p "$tmp/od"
cat > "$tmp/od/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(probe C)
set(DIS "/opt/DIS" CACHE PATH "Dolphin software root")
find_path(SISCI_INCLUDE sisci_api.h PATHS "${DIS}/include" NO_DEFAULT_PATH REQUIRED)
find_library(SISCI_LIB sisci PATHS "${DIS}/lib64" "${DIS}/lib" NO_DEFAULT_PATH REQUIRED)
add_executable(probe "${PROBE_SOURCE}")
target_include_directories(probe PRIVATE "${SISCI_INCLUDE}" "${SISCI_INCLUDE}/dis")
target_link_libraries(probe PRIVATE "${SISCI_LIB}")
CM
"$cmake" $gen -S "$tmp/od" -B "$tmp/od/b" -DDIS="$prefix" -DPROBE_SOURCE="$dir/install_probe.c" \
    >"$tmp/od.log" 2>&1 && "$cmake" --build "$tmp/od/b" >>"$tmp/od.log" 2>&1 &&
    "$tmp/od/b/probe" || { cat "$tmp/od.log" >&2; bad "-DDIS=prefix"; }

[ "$fail" -eq 0 ] && echo "install layouts OK"
exit "$fail"
