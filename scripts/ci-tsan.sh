#!/usr/bin/env bash
# CI: builds with ThreadSanitizer (-DDIS_TSAN=ON, -O1 -g) in its own build directory and runs
# the fabric tests and the bench CLI tests: the daemon's DMA engine thread, libsisci's reader
# threads and the lock-free rings they share. Every process (a background disd included)
# writes its reports under $build/sanitizer-reports, and the directory must stay empty.
# tests/tsan.supp lists what TSan cannot see (memory and futexes shared with another process),
# each entry with the reason it is not a race.
#   BUILD_DIR  build directory (default: build-tsan)
#   TESTS      ctest -R regex (default: the fabric tier and the "cli: bench" tests)
#   EXCLUDE    ctest -E regex (default: the one test whose assertion is a wall-clock bound
#              that TSan's slowdown breaks on a loaded machine: waiters must wake within 1 s
#              of their daemon's death; the plain and ASan stages still run it)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-tsan}
tests=${TESTS:-'^(fabric: ?|cli: ?bench|cli: ?a killed client takes its responder)'}
exclude=${EXCLUDE:-'waiters on a node whose daemon dies wake up with an error'}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# As under ASan, GCC 12 reports false maybe-uninitialized warnings in instrumented <regex>.
# -g1: line tables are all a report's stacks need; a unity build (see CMakeLists.txt).
cmake -S . -B "$build" "${generator[@]}" -DDIS_TSAN=ON -DDIS_WERROR=ON -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="-Wno-error=maybe-uninitialized" >/dev/null
targets=(dis-tool disd dis_cli_fabric_tests)
cmake --build "$build" --target help | grep -qw dis_fabric_tests && targets+=(dis_fabric_tests)
cmake --build "$build" -j2 --target "${targets[@]}"

reports=$(cd "$build" && pwd -P)/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# die_after_fork=0: the fabric tests fork SISCI client children (spawn_node_process) from a
# test process that already runs libsisci threads; TSan would kill such a child as soon as it
# starts threads of its own. The child only touches its own, freshly initialized runtime.
# atexit_sleep_ms=0: TSan otherwise sleeps a second in every exiting process, which breaks
# the tests that time how fast a client notices its daemon's death.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:history_size=4:die_after_fork=0:atexit_sleep_ms=0:suppressions=$PWD/tests/tsan.supp:log_path=$reports/tsan"
# The lending stress test (tests/fabric/test_lending_stress.cpp) does 1,000 cycles per process in
# the plain run; instrumented, the daemon's SQLite transactions are several times slower.
export DIS_LENDING_STRESS_CYCLES=${DIS_LENDING_STRESS_CYCLES:-250}

status=0
ctest --test-dir "$build" -R "$tests" -E "$exclude" --output-on-failure --no-tests=error -j2 || status=$?
if [ -n "$(ls -A "$reports")" ]; then
  echo "ci-tsan: ThreadSanitizer reports:" >&2
  for f in "$reports"/*; do
    echo "---- $f" >&2
    cat "$f" >&2
  done
  status=1
fi
[ "$status" -eq 0 ] && echo "ci-tsan: OK (fabric and bench CLI tests clean under ThreadSanitizer)"
exit "$status"
