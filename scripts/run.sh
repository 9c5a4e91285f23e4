#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, and shows this host's PCIe tree
# and lending health report.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DDIS_BUILD_TESTS=OFF >/dev/null
cmake --build build -j2 >/dev/null
tool=build/tools/dis-tool
echo "== PCIe tree (dis-tool pci tree)"
"$tool" pci tree
echo
echo "== IOMMU isolation (dis-tool iommu)"
"$tool" iommu || true
echo
echo "== Lending readiness of each endpoint (dis-tool device check)"
for bdf in $("$tool" pci list -o json | python3 -c 'import json,sys; [print(d["bdf"]) for d in json.load(sys.stdin) if d["class"][:2] not in ("06",)]' 2>/dev/null); do
  "$tool" device check "$bdf" | head -n 1 || true
done
