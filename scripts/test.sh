#!/usr/bin/env bash
# Builds dis-tool and runs the whole test suite (the README's second command).
#   BUILD_DIR   build directory (default: build)
#   WERROR      ON/OFF, warnings as errors (default: ON)
#   UNITY       ON/OFF, a unity build of the libraries and tools (default: ON; about half the
#               compile time of a full build; OFF for quick rebuilds of one file)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
build=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DDIS_WERROR="${WERROR:-ON}" \
  -DCMAKE_UNITY_BUILD="${UNITY:-ON}" >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure --no-tests=error -j2
