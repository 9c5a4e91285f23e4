#!/usr/bin/env bash
# Benchmark: one Prometheus scrape of `dis-tool exporter` on a generated /sys of 1,000 PCIe
# functions plus a 16-node software fabric holding 1,000 segments (every tenth one connected
# from the next node) and lending 2 epf-test devices per node (-D), one of them borrowed.
# Goals (issue 11): median at most 100 ms, p99 at most 250 ms.
#
# Usage: scripts/bench-exporter.sh [-n SCRAPES] [-d DEVICES] [-N NODES] [-s SEGMENTS]
#        [-D LENT_PER_NODE] [-b BUILD]
# Scrapes one after another with curl, after 3 warm-up scrapes, timing the whole HTTP request:
# SCRAPES plain ones interleaved with SCRAPES asking for gzip as Prometheus does (its scrapes
# send Accept-Encoding: gzip, and prometheus-cpp then compresses the body). Every scrape is
# checked: it must carry one dis_pcie_device_info series per device, the fabric's segment
# total, every node up and one dis_device_info series per lent device with the lending
# collector's success, and a gzip one must have come compressed, or the run fails. Also
# prints the exporter's CPU time per scrape (from /proc/PID/stat, both kinds together).
# Prints the figures; exits 1 when a goal is missed (by either kind) or a scrape is wrong, 2
# on usage errors.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
scrapes=100
devices=1000
nodes=16
segments=1000
lent=2
build=${DIS_BUILD:-$here/build}

while getopts "n:d:N:s:D:b:h" opt; do
    case $opt in
    n) scrapes=$OPTARG ;;
    d) devices=$OPTARG ;;
    N) nodes=$OPTARG ;;
    s) segments=$OPTARG ;;
    D) lent=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
tool=$build/tools/dis-tool
gen=$build/tests/bench/dis_bench_sysfs
filler=$build/tests/bench/dis_bench_filler
for need in "$tool" "$gen" "$filler"; do
    [[ -x $need ]] || { echo "bench-exporter: missing $need (build the tests)" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "bench-exporter: curl not installed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-exporter.XXXXXX")
fabric=$work/fabric
exporter_pid=
borrow_pid=
hold=
cleanup() {
    [[ -n $exporter_pid ]] && kill "$exporter_pid" 2>/dev/null
    [[ -n $borrow_pid ]] && kill "$borrow_pid" 2>/dev/null
    [[ -n $hold ]] && exec {hold}>&-
    wait 2>/dev/null || true
    "$tool" fabric stop --fabric "$fabric" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

made=$("$gen" "$work/sys" "$devices")
[[ $made == "$devices" ]] || { echo "bench-exporter: generated $made devices" >&2; exit 1; }
for ((i = 0; i < nodes; i++)); do
    echo "node $((4 * (i + 1)))"
    for ((k = 0; k < lent; k++)); do
        echo "device $((4 * (i + 1))) epf-test name=ep$i-$k"
    done
done >"$work/fabric.conf"
"$tool" fabric start --config "$work/fabric.conf" --fabric "$fabric" >/dev/null
# One lease held for the whole run, so that lease series are in every scrape.
if ((lent > 0)); then
    "$tool" device borrow 0x40000 --fabric "$fabric" --local-node 8 --hold \
        >"$work/borrow.out" 2>&1 &
    borrow_pid=$!
fi

# Fillers read a FIFO this script holds open: closing it ends them all. Each filler closes
# its inherited copy, or none would ever see the end.
mkfifo "$work/hold"
exec {hold}<>"$work/hold"
prev=
for ((i = 0; i < nodes; i++)); do
    node=$((4 * (i + 1)))
    share=$((segments / nodes + (i < segments % nodes ? 1 : 0)))
    DIS_FABRIC=$fabric DIS_NODE_ID=$node DIS_FILLER_PEER=$prev \
        "$filler" "$share" <"$work/hold" >"$work/filler-$node.out" 2>&1 {hold}>&- &
    for _ in $(seq 200); do
        grep -q ready "$work/filler-$node.out" 2>/dev/null && break
        sleep 0.05
    done
    grep -q ready "$work/filler-$node.out" ||
        { echo "bench-exporter: filler of node $node: $(cat "$work/filler-$node.out")" >&2; exit 1; }
    [[ $share -ge 1 ]] && prev=$node
done

"$tool" exporter --listen 127.0.0.1:0 --fabric "$fabric" --sysfs-root "$work/sys" \
    2>"$work/exporter.err" {hold}>&- &
exporter_pid=$!
url=
for _ in $(seq 200); do
    url=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$work/exporter.err")
    [[ -n $url ]] && break
    sleep 0.05
done
[[ -n $url ]] || { echo "bench-exporter: exporter did not start: $(cat "$work/exporter.err")" >&2; exit 1; }

check_scrape() {
    local file=$1 n total up
    n=$(grep -c '^dis_pcie_device_info{' "$file" || true)
    [[ $n == "$devices" ]] || { echo "bench-exporter: a scrape had $n device series, not $devices" >&2; return 1; }
    total=$(awk '/^dis_fabric_segments\{/ {s += $2} END {print s + 0}' "$file")
    [[ $total == "$segments" ]] || { echo "bench-exporter: a scrape counted $total segments, not $segments" >&2; return 1; }
    up=$(awk '/^dis_fabric_nodes_up / {print $2}' "$file")
    [[ $up == "$nodes" ]] || { echo "bench-exporter: a scrape saw $up nodes up, not $nodes" >&2; return 1; }
    n=$(grep -c '^dis_device_info{' "$file" || true)
    [[ $n == "$((nodes * lent))" ]] || { echo "bench-exporter: a scrape had $n lent-device series, not $((nodes * lent))" >&2; return 1; }
    grep -q '^dis_scrape_collector_success{collector="lending"} 1$' "$file" ||
        { echo "bench-exporter: the lending collector did not succeed" >&2; return 1; }
    if ((lent > 0)); then
        grep -q '^dis_device_lease_remaining_seconds{' "$file" ||
            { echo "bench-exporter: no lease in a scrape ($(cat "$work/borrow.out"))" >&2; return 1; }
    fi
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$exporter_pid/stat"; }

for _ in 1 2 3; do
    curl -fsS -o "$work/scrape.txt" "$url"
done
check_scrape "$work/scrape.txt"
plain=()
gzipped=()
ticks0=$(cpu_ticks)
for ((r = 0; r < scrapes; r++)); do
    t=$(curl -fsS -o "$work/scrape.txt" -w '%{time_total}' "$url")
    check_scrape "$work/scrape.txt"
    plain+=("$t")
    out=$(curl -fsS --compressed -o "$work/scrape.txt" -w '%{time_total} %{size_download}' "$url")
    t=${out% *}
    wire=${out#* }
    check_scrape "$work/scrape.txt"
    # The body must have come compressed (curl unpacked it into the file).
    ((wire * 4 < $(wc -c <"$work/scrape.txt"))) ||
        { echo "bench-exporter: a gzip scrape came uncompressed ($wire bytes)" >&2; exit 1; }
    gzipped+=("$t")
done
ticks1=$(cpu_ticks)
cpu_ms=$(awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$((2 * scrapes))" \
    'BEGIN { printf "%.1f", t * 1000 / hz / n }')
series=$(grep -vc '^#' "$work/scrape.txt")
bytes=$(wc -c <"$work/scrape.txt")

echo "exporter scrape: $devices PCIe functions, $nodes nodes, $segments segments, $((nodes * lent)) lent devices: $series series, $bytes bytes ($wire gzipped)"
# One line of figures per kind of scrape; exits 1 when its median or p99 misses the goal.
figures() { # label, samples...
    local label=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v n="$#" -v label="$label" '
        { a[NR] = $1 * 1000 }
        END {
            med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            i99 = int(0.99 * NR + 0.999999); if (i99 < 1) i99 = 1; p99 = a[i99]
            printf "  %d %s scrapes: median %.1f ms (goal <= 100), p99 %.1f ms (goal <= 250), min %.1f, max %.1f\n", n, label, med, p99, a[1], a[NR]
            exit (med > 100) || (p99 > 250)
        }'
}
bad=0
figures "plain" "${plain[@]}" || bad=1
figures "gzip" "${gzipped[@]}" || bad=1
echo "  exporter CPU time per scrape: $cpu_ms ms"
if ((bad)); then
    echo "  FAIL"
    exit 1
fi
echo "  ok"
