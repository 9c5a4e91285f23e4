#!/usr/bin/env bash
# Benchmark: the CPU that `dis-tool monitor` uses at a one-second refresh, running in tmux
# (120x40, every pane on screen) against a 16-node software fabric holding 1,000 segments.
# Goal (issue 11): at most 2% of one core. CPU time is read from /proc/PID/stat (utime +
# stime) at the start and the end of the measured window, after the monitor shows the load.
#
# Usage: scripts/bench-monitor-cpu.sh [-s SECONDS] [-n NODES] [-c SEGMENTS] [-d TENTHS]
#        [-b BUILD_DIR] [-o SCREEN_FILE] [-- MONITOR_OPTIONS...]
# Defaults: 60 s, 16 nodes, 1000 segments, -d 10, build/. Prints the monitor's CPU share
# of one core and exits 1 when it is above 2%, 2 on usage or setup errors. -o keeps the
# screen captured at the end of the window in SCREEN_FILE.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=60 nodes=16 segments=1000 delay=10 build=$here/build screen_file=
while getopts "s:n:c:d:b:o:h" opt; do
    case $opt in
    s) seconds=$OPTARG ;;
    n) nodes=$OPTARG ;;
    c) segments=$OPTARG ;;
    d) delay=$OPTARG ;;
    b) build=$OPTARG ;;
    o) screen_file=$OPTARG ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
extra=("$@")

tool=$build/tools/dis-tool
for need in "$tool" "$build/lib/sisci/libsisci.so"; do
    [[ -e $need ]] || { echo "bench-monitor-cpu: missing $need (build first)" >&2; exit 2; }
done
command -v tmux >/dev/null || { echo "bench-monitor-cpu: tmux not installed" >&2; exit 2; }
cc=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-monitor.XXXXXX")
fabric=$work/fabric
sock=$work/tmux.sock
load_pid=""
cleanup() {
    tmux -S "$sock" kill-server 2>/dev/null || true
    if [[ -n $load_pid ]]; then
        exec 7>&- || true # the load's stdin: its clients release their segments and exit
        wait "$load_pid" 2>/dev/null || true
    fi
    "$tool" fabric stop --fabric "$fabric" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# A deadline-bounded poll: until CMD succeeds or LIMIT seconds pass.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local end=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < end)) || { echo "bench-monitor-cpu: timed out waiting for $what" >&2; exit 2; }
        sleep 0.2
    done
}

"$cc" -O2 -o "$work/segments" "$here/scripts/bench-monitor-segments.c" \
    -I"$here/lib/sisci/include" -L"$build/lib/sisci" -lsisci -Wl,-rpath,"$build/lib/sisci"

"$tool" fabric start --nodes "$nodes" --fabric "$fabric" >/dev/null
ids=()
for ((i = 1; i <= nodes; i++)); do ids+=($((4 * i))); done

# The load holds its segments until its stdin (fd 7 here) closes.
mkfifo "$work/load.in"
"$work/segments" "$fabric" "$segments" "${ids[@]}" <"$work/load.in" >"$work/load.out" &
load_pid=$!
exec 7>"$work/load.in"
wait_for 60 "the $segments segments" grep -q ready "$work/load.out"

tmux -S "$sock" -f /dev/null new-session -d -x 120 -y 40 \
    "exec '$tool' monitor --fabric '$fabric' -d $delay ${extra[*]:-}"
pid=$(tmux -S "$sock" display-message -p -t 0 '#{pane_pid}')
screen_ready() {
    local s
    s=$(tmux -S "$sock" capture-pane -p -t 0)
    [[ $s == *"$nodes/$nodes nodes up"* && $s == *"$segments segments"* ]]
}
wait_for 30 "the monitor to show the fabric" screen_ready
sleep 2 # past the first refreshes (connections opened, PCIe baseline scanned)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
t0=$(date +%s%N)
c0=$(cpu_ticks "$pid")
sleep "$seconds"
c1=$(cpu_ticks "$pid")
t1=$(date +%s%N)
[[ -d /proc/$pid ]] || { echo "bench-monitor-cpu: the monitor exited" >&2; exit 2; }

tmux -S "$sock" capture-pane -p -t 0 >"$work/screen.txt"
head -3 "$work/screen.txt"
[[ -z $screen_file ]] || cp "$work/screen.txt" "$screen_file"
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v n="$nodes" \
    -v s="$segments" -v d="$delay" 'BEGIN {
    wall = (t1 - t0) / 1e9; cpu = (c1 - c0) / tck; pct = 100 * cpu / wall
    printf "monitor: %d nodes, %d segments, refresh %.1f s: %.2f s CPU in %.1f s = %.2f%% of a core (goal <= 2%%)\n",
           n, s, d / 10, cpu, wall, pct
    exit (pct <= 2.0) ? 0 : 1 }'
