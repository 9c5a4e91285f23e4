#!/usr/bin/env bash
# Soak test (opt-in, minutes long): a 3-node software fabric under chaos. Worker processes
# (tests/soak/soak_worker.cpp) create, connect, map, DMA and interrupt with checksummed data
# and read each other's segments across nodes, while a chaos loop kill -9s random workers and,
# now and then, a random daemon (restarted at once). Afterwards it checks:
#   - no daemon died that the loop did not kill, and every daemon stops cleanly at the end;
#   - no worker hung (each must end within 60 s) or failed on its own node while its daemon lived;
#   - no data error: every byte a worker got from a successful operation was right;
#   - no leak: once all workers are gone, each daemon's open descriptors are back to its
#     count at start and `dis-tool segment list` is empty.
# Exits 1 on any violation, 0 otherwise, after a one-line summary.
#   scripts/soak.sh [--minutes N] [--workers N] [--build DIR]
#   (default 10 minutes, 6 workers, build directory ./build; builds what it needs there)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
workers=6
build=build
while [ $# -gt 0 ]; do
  case $1 in
  --minutes) minutes=$2; shift 2 ;;
  --workers) workers=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "soak: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "soak: --minutes wants a number" >&2; exit 2; }
[[ $workers =~ ^[0-9]+$ && $workers -ge 3 ]] || { echo "soak: --workers wants 3 or more" >&2; exit 2; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$build" "${generator[@]}" >/dev/null
fi
cmake --build "$build" -j2 --target disd dis-tool soak_worker >/dev/null
disd=$build/tools/disd/disd
tool=$build/tools/dis-tool
worker=$build/tests/soak/soak_worker

exec 3>&2 # diagnostics, also while the chaos loop sends stderr to a log
work=$(mktemp -d "${TMPDIR:-/tmp}/dis-soak.XXXXXX")
fabric=$work/fabric
logs=$work/logs
mkdir -p "$logs"
mkdir -m 0700 "$fabric"
nodes=(4 8 12)
declare -A daemon_pid=() node_of_daemon=() killed=() baseline_fds=()
declare -A worker_slot=() victim=()
cleanup() {
  for pid in "${!node_of_daemon[@]}" "${!worker_slot[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
alive() { # running and not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
reachable() { "$tool" segment list --node "$1" --fabric "$fabric" -o json >/dev/null 2>&1; }

start_daemon() { # node: starts its disd and waits until it answers
  local node=$1 pid
  "$disd" --node-id "$node" --fabric "$fabric" 2>>"$logs/disd-$node.log" &
  pid=$!
  daemon_pid[$node]=$pid
  node_of_daemon[$pid]=$node
  for _ in $(seq 100); do
    reachable "$node" && return 0
    alive "$pid" || break
    sleep 0.05
  done
  echo "soak: disd of node $node did not come up (log: $logs/disd-$node.log)" >&3
  return 1
}

# Descriptor count once it has stopped changing (probes of other daemons come and go).
settled_fds() {
  local pid=$1 last=-1 n same=0
  for _ in $(seq 100); do
    n=$(fd_count "$pid")
    if [ "$n" = "$last" ]; then
      same=$((same + 1))
      [ $same -ge 3 ] && { echo "$n"; return; }
    else
      same=0
    fi
    last=$n
    sleep 0.1
  done
  echo "$n"
}

runs=0 ok=0 data_errors=0 fabric_errors=0 hung=0 daemon_gone=0 client_kills=0 daemon_kills=0
unexpected_deaths=0 other_exits=0

start_worker() { # slot
  local slot=$1 idx=$(($1 % 3)) node peer_idx peer_slot pid
  node=${nodes[$idx]}
  peer_idx=$(((idx + 1) % 3))
  peer_slot=$((peer_idx + 3 * (RANDOM % (workers / 3))))
  DIS_FABRIC=$fabric DIS_NODE_ID=$node "$worker" "$node" "$slot" "${nodes[$peer_idx]}" \
    "$peer_slot" "$((RANDOM * 32768 + RANDOM))" "${daemon_pid[$node]}" "$((RANDOM % 600))" \
    >>"$logs/workers.out" 2>>"$logs/workers.err" &
  pid=$!
  worker_slot[$pid]=$slot
  runs=$((runs + 1))
}

tally_worker() { # pid status
  local pid=$1 st=$2
  unset "worker_slot[$pid]"
  if [ -n "${victim[$pid]:-}" ]; then
    unset "victim[$pid]"
    [ "$st" -eq 137 ] && return # our kill -9 (a worker may also have finished just before it)
  fi
  case $st in
  0) ok=$((ok + 1)) ;;
  1) data_errors=$((data_errors + 1)) ;;
  3) fabric_errors=$((fabric_errors + 1)) ;;
  4) daemon_gone=$((daemon_gone + 1)) ;;
  142) hung=$((hung + 1)); echo "soak: a worker hung (SIGALRM after 60 s)" >>"$logs/workers.err" ;;
  *) other_exits=$((other_exits + 1)); echo "soak: a worker exited $st" >>"$logs/workers.err" ;;
  esac
}

reap_daemon() { # pid status: restarts the node
  local pid=$1 st=$2 node=${node_of_daemon[$1]}
  unset "node_of_daemon[$pid]"
  if [ -n "${killed[$pid]:-}" ]; then
    unset "killed[$pid]"
  else
    unexpected_deaths=$((unexpected_deaths + 1))
    echo "soak: disd of node $node (pid $pid) died unexpectedly, status $st" >&3
    tail -n 5 "$logs/disd-$node.log" >&3 || true
  fi
  start_daemon "$node"
}

for node in "${nodes[@]}"; do start_daemon "$node"; done
for node in "${nodes[@]}"; do baseline_fds[$node]=$(settled_fds "${daemon_pid[$node]}"); done
echo "soak: fabric $fabric, daemons ${daemon_pid[*]}, $workers workers, ${minutes} min (logs: $logs)"

start=$(date +%s)
end=$((start + $(awk "BEGIN{printf \"%d\", $minutes * 60}")))
draining=0
# bash reports a child killed by a signal on its own (and drops it from the job table, so
# `wait -n` would miss it): exits are found by polling, statuses taken with `wait PID`, and
# the shell's "Killed" notices go to a log; the loop's own messages go to fd 3.
exec 2>>"$logs/shell.log"
for slot in $(seq 0 $((workers - 1))); do start_worker "$slot"; done
while :; do
  now=$(date +%s)
  [ "$now" -ge "$end" ] && draining=1
  [ "$draining" -eq 1 ] && [ ${#worker_slot[@]} -eq 0 ] && break
  sleep 0.2
  for pid in "${!worker_slot[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    st=0
    wait "$pid" || st=$?
    slot=${worker_slot[$pid]}
    tally_worker "$pid" "$st"
    [ "$draining" -eq 0 ] && start_worker "$slot"
  done
  for pid in "${!node_of_daemon[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    st=0
    wait "$pid" || st=$?
    reap_daemon "$pid" "$st"
  done
  [ "$draining" -eq 0 ] || continue
  # Chaos: a client about every 2 s, a daemon about every 24 s (5 ticks a second).
  if [ $((RANDOM % ${SOAK_CLIENT_ODDS:-10})) -eq 0 ] && [ ${#worker_slot[@]} -gt 0 ]; then
    pids=("${!worker_slot[@]}")
    pid=${pids[$((RANDOM % ${#pids[@]}))]}
    victim[$pid]=1
    kill -9 "$pid" 2>/dev/null && client_kills=$((client_kills + 1))
  fi
  if [ $((RANDOM % ${SOAK_DAEMON_ODDS:-120})) -eq 0 ]; then
    node=${nodes[$((RANDOM % 3))]}
    pid=${daemon_pid[$node]}
    killed[$pid]=1
    kill -9 "$pid" 2>/dev/null && daemon_kills=$((daemon_kills + 1))
  fi
done
exec 2>&3
elapsed=$(($(date +%s) - start))

# Every daemon alive; descriptors and segments back to where they started.
for node in "${nodes[@]}"; do
  if ! alive "${daemon_pid[$node]}"; then
    unexpected_deaths=$((unexpected_deaths + 1))
    echo "soak: disd of node $node is not running at the end" >&2
  fi
done
leaked_fds=0
for node in "${nodes[@]}"; do
  pid=${daemon_pid[$node]}
  n=$(settled_fds "$pid")
  for _ in $(seq 50); do
    [ "$n" -le "${baseline_fds[$node]}" ] && break
    sleep 0.1
    n=$(fd_count "$pid")
  done
  if [ "$n" -gt "${baseline_fds[$node]}" ]; then
    leaked_fds=$((leaked_fds + n - baseline_fds[$node]))
    echo "soak: disd of node $node holds $n descriptors, ${baseline_fds[$node]} at start:" >&2
    ls -l "/proc/$pid/fd" >&2 || true
  fi
done
leaked_segments=0
for _ in $(seq 50); do
  leaked_segments=$("$tool" segment list --fabric "$fabric" -o json | jq '.segments | length')
  [ "$leaked_segments" -eq 0 ] && break
  sleep 0.1
done
[ "$leaked_segments" -eq 0 ] || "$tool" segment list --fabric "$fabric" >&2
# A clean stop of every daemon ends the run.
unclean_stops=0
for node in "${nodes[@]}"; do
  pid=${daemon_pid[$node]}
  unset "node_of_daemon[$pid]"
  kill -TERM "$pid"
  st=0
  wait "$pid" || st=$?
  [ "$st" -eq 0 ] || { unclean_stops=$((unclean_stops + 1)); echo "soak: disd of node $node exited $st on SIGTERM" >&2; }
done
hits=$(grep -c 'peer=hit' "$logs/workers.out" || true)
if [ -s "$logs/workers.err" ]; then
  echo "soak: worker diagnostics (first 20 lines of $logs/workers.err):" >&2
  head -20 "$logs/workers.err" >&2
fi

echo "soak: $elapsed s, $runs worker runs ($ok clean, $daemon_gone ended by their daemon's kill)," \
  "$client_kills client kills, $daemon_kills daemon kills, $hits cross-node reads verified"
echo "soak: $unexpected_deaths unexpected daemon deaths, $unclean_stops unclean daemon stops," \
  "$leaked_fds leaked fds, $leaked_segments leaked segments, $data_errors data errors," \
  "$fabric_errors own-node failures with a live daemon, $hung hung workers, $other_exits other exits"
violations=$((unexpected_deaths + unclean_stops + leaked_fds + leaked_segments + data_errors +
  fabric_errors + hung + other_exits))
if [ "$violations" -ne 0 ]; then
  echo "soak: FAILED ($violations violations; logs kept in $logs)" >&2
  trap - EXIT
  cleanup
  exit 1
fi
rm -rf "$work"
echo "soak: OK"
