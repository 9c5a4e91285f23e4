#!/usr/bin/env bash
# The project's benchmark suite (issue 4, item 6): starts a 2-node software fabric in a
# temporary directory, runs `dis-tool bench` with enough iterations, checks the software
# fabric's goals as ratios to the host baseline measured in the same run, prints a table
# (measured, goal, pass/fail) with the machine it ran on, and exits 1 if any goal is missed.
# Not part of the unit-test run.
#
#   scripts/bench-suite.sh                 # uses build/tools/dis-tool
#   BUILD_DIR=out scripts/bench-suite.sh
#   SCALE=0.1 scripts/bench-suite.sh       # fewer iterations (a quick look, not for the README)
#   PIN="--cpu 0 --remote-cpu 1" scripts/bench-suite.sh   # pin both sides
#   KEEP=dir scripts/bench-suite.sh        # keep every run's JSON and CSV in dir
#
# Exit status: 0 every goal met, 1 a goal missed, 2 usage/setup error, 3 a run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

tool="${BUILD_DIR:-build}/tools/dis-tool"
command -v jq >/dev/null || { echo "bench-suite: needs jq (apt-get install jq)" >&2; exit 2; }
[ -x "$tool" ] || { echo "bench-suite: $tool not built (cmake --build ${BUILD_DIR:-build})" >&2; exit 2; }
scale="${SCALE:-1}"
pin="${PIN:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/dis-bench-suite.XXXXXX")
fabric="$work/fabric"
cleanup() {
  "$tool" fabric stop --fabric "$fabric" >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.csv "$work"/*.json "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$tool" fabric start --nodes 2 --fabric "$fabric" >/dev/null

iters() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s); print (v < 10 ? 10 : v) }'; }

# run NAME ARGS...: one bench run, its CSV in $work/NAME.csv (and JSON for KEEP).
run() {
  local name=$1; shift
  # shellcheck disable=SC2086
  if ! "$tool" bench "$@" -r 8 --fabric "$fabric" --baseline $pin -o json >"$work/$name.json" \
       2>"$work/$name.err"; then
    echo "bench-suite: '$name' failed: $(cat "$work/$name.err")" >&2
    exit 3
  fi
  # size,method,median_us,baseline median_us,bandwidth_gbps,baseline bandwidth_gbps
  jq -r '.baseline as $b | .results[] | . as $r
         | ([$b[] | select(.size == $r.size)] + $b)[0] as $base
         | [.size, .method, (.median_us // ""), ($base.median_us // ""),
            (.bandwidth_gbps // ""), ($base.bandwidth_gbps // "")] | @csv' \
     "$work/$name.json" | tr -d '"' >"$work/$name.csv"
}

rows=()
failed=0
# goal NAME MEASURED GOAL_TEXT PASS(0/1)
goal() {
  local verdict=pass
  [ "$4" = 1 ] || { verdict=FAIL; failed=1; }
  rows+=("$1|$2|$3|$verdict")
}

# Worst latency ratio (median / baseline median) over the rows of a CSV, with its size.
worst_latency_ratio() {
  awk -F, '$4 > 0 { r = $3 / $4; if (r > w) { w = r; s = $1; m = $3; b = $4 } }
           END { printf "%.2fx (%s us vs %s us at %s B)\n", w, m, b, s; exit !(w > 0) }' "$1"
}
worst_bw_ratio() { # CSV [method]
  awk -F, -v want="${2:-}" '(want == "" || $2 == want) && $6 > 0 {
             r = $5 / $6; if (!seen || r < w) { w = r; s = $1; m = $5; b = $6; seen = 1 } }
           END { printf "%.2fx (%s vs %s GB/s at %s B)\n", w, m, b, s; exit !seen }' "$1"
}
ratio_of() { sed -E 's/^([0-9.]+)x.*/\1/' <<<"$1"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }' && echo 1 || echo 0; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }' && echo 1 || echo 0; }

echo "bench-suite: running (fabric $fabric, scale $scale) ..." >&2

run pio-latency pio-latency --sizes 8 -n "$(iters 20000)" -w "$(iters 2000)"
m=$(worst_latency_ratio "$work/pio-latency.csv")
goal "pio-latency 8 B median / shm store ping-pong" "$m" "<= 1.25x" "$(le "$(ratio_of "$m")" 1.25)"

run pio-bw pio-bw --sizes 64K..4M -n "$(iters 200)" -w "$(iters 20)"
m=$(worst_bw_ratio "$work/pio-bw.csv" scimemcpy)
goal "pio-bw SCIMemCpy >= 64 KiB / memcpy (worst size)" "$m" ">= 0.90x" "$(ge "$(ratio_of "$m")" 0.9)"

run dma-bw dma-bw --sizes 1M..16M -n "$(iters 50)" -w "$(iters 5)"
m=$(worst_bw_ratio "$work/dma-bw.csv")
goal "dma-bw 1-16 MiB push / memcpy (worst size)" "$m" ">= 0.80x" "$(ge "$(ratio_of "$m")" 0.8)"

run intr-latency intr-latency -n "$(iters 20000)" -w "$(iters 2000)"
m=$(worst_latency_ratio "$work/intr-latency.csv")
goal "intr-latency median / eventfd wake-up" "$m" "<= 1.30x" "$(le "$(ratio_of "$m")" 1.3)"

for mode in wait poll; do
  run "dma-latency-$mode" dma-latency --sizes 64 --mode "$mode" -n "$(iters 20000)" -w "$(iters 2000)"
  med=$(awk -F, 'NR == 1 { print $3 }' "$work/dma-latency-$mode.csv")
  limit=$([ "$mode" = wait ] && echo 10 || echo 2)
  goal "dma-latency 64 B median, $mode mode" "$med us" "<= $limit us" "$(le "$med" "$limit")"
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)"
printf '%-50s %-40s %-10s %s\n' GOAL MEASURED TARGET RESULT
for r in "${rows[@]}"; do
  IFS='|' read -r g m t v <<<"$r"
  printf '%-50s %-40s %-10s %s\n' "$g" "$m" "$t" "$v"
done
exit "$failed"
