#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, shows this host's PCIe tree and
# lending health report, then starts a local 3-node software fabric and shows its topology.
#   BUILD_DIR   build directory (default: build)
#   DIS_FABRIC  fabric directory (default: /run/dis as root, else $XDG_RUNTIME_DIR/dis)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
build=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" >/dev/null
cmake --build "$build" -j2 --target dis-tool disd >/dev/null
tool=$build/tools/dis-tool

echo "== This host's PCIe tree (dis-tool pci tree)"
"$tool" pci tree
echo
echo "== IOMMU isolation (dis-tool iommu)"
"$tool" iommu
echo
echo "== Lending readiness of each endpoint (dis-tool device check)"
for bdf in $("$tool" pci list -o json | jq -r '.[] | select(.class[0:2] != "06") | .bdf'); do
  # Exit 1 means "not ready": a verdict, not a failure of this script.
  verdict=$("$tool" device check "$bdf" | sed -n 's/^Verdict: //p') || true
  printf '%s  %s\n' "$bdf" "${verdict:-unknown}"
done
echo
echo "== A local 3-node software fabric (dis-tool fabric start --nodes 3)"
"$tool" fabric stop >/dev/null 2>&1 || true
"$tool" fabric start --nodes 3
echo
echo "== Its topology (dis-tool topology)"
"$tool" topology
echo
# Both sides of the ping-pong spin: with two CPUs, give each its own.
pin=""
[ "$(nproc)" -ge 2 ] && pin=" --cpu 0 --remote-cpu 1"
echo "The fabric keeps running; try '$tool segment list' or"
echo "'$tool bench pio-latency --remote-node 8$pin', and stop it with '$tool fabric stop'."
