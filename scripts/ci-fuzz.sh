#!/usr/bin/env bash
# CI: builds the libFuzzer targets (tests/fuzz) with clang 14 + ASan + UBSan in their own build
# directory and runs each for FUZZ_SECONDS (default 15) on a copy of its seed corpus
# (tests/fuzz/corpus/<name>: the kept corpus is never written). Any crash, leak, sanitizer
# report or timeout fails the run; the reproducer is left in $build/fuzz-artifacts/ and the
# failing input should become a regression seed in tests/fuzz/corpus/<name>/ once fixed.
#   BUILD_DIR     build directory (default: build-fuzz)
#   FUZZ_SECONDS  seconds per target (default 15)
#   FUZZ_TARGETS  space-separated subset of: dump sysfs config wire
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-15}
read -r -a targets <<<"${FUZZ_TARGETS:-dump sysfs config wire}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" "${generator[@]}" "${launcher[@]}" \
  -DDIS_FUZZ=ON -DDIS_WERROR=ON -DCMAKE_UNITY_BUILD=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

artifacts=$(cd "$build" && pwd -P)/fuzz-artifacts
rm -rf "$artifacts" "$build/fuzz-corpus"
mkdir -p "$artifacts"
# fast_unwind_on_malloc=0: full allocation stacks (libc has no frame pointers), so that the
# suppressions below match by the library that allocated, not by a truncated stack.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:fast_unwind_on_malloc=0"
# Leaks that are deliberate (each explained in the file); anything else still fails.
export LSAN_OPTIONS="suppressions=$(pwd -P)/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
status=0
for t in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$t
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  log=$build/fuzz-$t.log
  echo "ci-fuzz: fuzz_$t for ${seconds} s ($(ls "$corpus" | wc -l) seeds)"
  if "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$log" | tail -2 | sed 's/^/  /'
  else
    echo "ci-fuzz: fuzz_$t FAILED (log: $log):" >&2
    tail -60 "$log" >&2
    status=1
  fi
done
if [ -n "$(ls -A "$artifacts")" ]; then
  echo "ci-fuzz: crash inputs in $artifacts:" >&2
  ls -l "$artifacts" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "ci-fuzz: OK (${targets[*]}: ${seconds} s each, no crash)"
exit "$status"
