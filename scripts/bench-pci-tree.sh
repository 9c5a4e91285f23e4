#!/usr/bin/env bash
# Benchmark: `dis-tool pci tree --dump FILE` against `lspci -F FILE -tv` on a dump of 3,000+
# devices (tree-asus-p6t6.txt copied into domains 0001..NNNN). Goal: at most 2x lspci.
#
# Usage: scripts/bench-pci-tree.sh [-n RUNS] [-d DOMAINS] [-t DIS_TOOL]
# Prints the device count, the median wall time of each (ms) and the ratio. Exits 1 when the
# two disagree on the device count or the ratio exceeds 2.0, 2 on usage errors.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
runs=7
domains=60
tool=${DIS_TOOL:-$here/build/tools/dis-tool}
fixture=${DIS_FIXTURE:-$here/tests/data/pci/tree-asus-p6t6.txt}

while getopts "n:d:t:h" opt; do
    case $opt in
    n) runs=$OPTARG ;;
    d) domains=$OPTARG ;;
    t) tool=$OPTARG ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

for need in "$tool" "$fixture"; do
    [[ -e $need ]] || { echo "bench-pci-tree: missing $need" >&2; exit 2; }
done
command -v lspci >/dev/null || { echo "bench-pci-tree: lspci not installed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-pci-tree.XXXXXX")
trap 'rm -rf "$work"' EXIT
dump=$work/dump.txt

# Each copy's device headers ("BB:DD.F ...") get a domain prefix; config lines are unchanged.
for ((i = 1; i <= domains; i++)); do
    sed -E "s/^([0-9a-f]{2}:[0-9a-f]{2}\.[0-7] )/$(printf %04x "$i"):\1/" "$fixture"
done >"$dump"
devices_in_dump=$(grep -cE '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] ' "$dump")

now_ns() { date +%s%N; }

# run_us OUTFILE CMD...: wall time of one run in microseconds.
run_us() {
    local out=$1 t0 t1
    shift
    t0=$(now_ns)
    "$@" >"$out" 2>/dev/null
    t1=$(now_ns)
    echo $(((t1 - t0) / 1000))
}

median_ms() {
    sort -n | awk '{a[NR]=$1} END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f\n", m / 1000 }'
}

# The two commands alternate, so load from other processes hits both alike.
lspci_samples=() ours_samples=()
for ((r = 0; r < runs; r++)); do
    lspci_samples+=("$(run_us "$work/lspci.out" lspci -F "$dump" -tv)")
    ours_samples+=("$(run_us "$work/ours.out" "$tool" pci tree --dump "$dump")")
done
lspci_ms=$(printf '%s\n' "${lspci_samples[@]}" | median_ms)
ours_ms=$(printf '%s\n' "${ours_samples[@]}" | median_ms)

# Devices each printed: lspci -tv writes every device as "-BB.F" after a connector; ours
# writes one device per line after "+-" or "\-".
lspci_devices=$(grep -oE -- '-[0-9a-f]{2}\.[0-9a-f]([- ]|$)' "$work/lspci.out" | wc -l)
ours_devices=$(grep -cE -- '^[| ]*[+\\]-[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]' "$work/ours.out")

ratio=$(awk -v a="$ours_ms" -v b="$lspci_ms" 'BEGIN { printf "%.2f", a / b }')
echo "devices in dump:      $devices_in_dump ($domains domains x $(basename "$fixture"))"
echo "devices lspci -tv:    $lspci_devices"
echo "devices dis-tool:     $ours_devices"
echo "lspci -F FILE -tv:    ${lspci_ms} ms (median of $runs)"
echo "dis-tool pci tree:    ${ours_ms} ms (median of $runs)"
echo "ratio:                ${ratio}x (goal <= 2.00x)"

if [[ $lspci_devices != "$devices_in_dump" || $ours_devices != "$devices_in_dump" ]]; then
    echo "bench-pci-tree: device counts differ" >&2
    exit 1
fi
awk -v r="$ratio" 'BEGIN { exit !(r <= 2.0) }' || { echo "bench-pci-tree: over 2x" >&2; exit 1; }
