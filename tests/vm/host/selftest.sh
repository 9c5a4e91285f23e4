#!/usr/bin/env bash
# Proves compare.sh can fail: copies the guest's real captures, plants one wrong value per
# kind of check in dis-tool's output (base snapshot; the VF checks in after), and requires
# compare.sh to report each one. A comparison that passes whatever dis-tool says would be
# worthless.
#
#   tests/vm/host/selftest.sh GUEST_DIR
#
# Prints PASS/FAIL per planted error and "VM-SELFTEST: N passed, M failed".
set -euo pipefail

dir="${1:?usage: selftest.sh GUEST_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
pass=0
fail=0

role() { sed -n "s/^$1=//p" "$dir/roles.txt"; }
nvme="$(role nvme)"
edu="$(role edu)"
nic="$(role nic)"
if [ -z "$nvme" ] || [ -z "$edu" ] || [ -z "$nic" ]; then
    echo "FAIL selftest: roles.txt lacks the nvme, edu or nic device"
    echo "VM-SELFTEST: 0 passed, 1 failed"
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dis-vm-selftest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"

# mutate FILE JQ-FILTER: rewrite one captured file in place.
mutate() {
    jq --arg nvme "$nvme" --arg edu "$edu" --arg nic "$nic" --arg vf "${vf:-}" "$2" \
        "$work/$1" >"$work/$1.new"
    mv "$work/$1.new" "$work/$1"
}
mutate base.pci-list.json '
    map(if .bdf == $nvme then .iommu_group = 99 | .sriov.total_vfs = 3
        elif .bdf == $edu then .reset_methods = ["flr", "bus"] | .bars[0].virtual = true
        elif .bdf == $nic then .link.speed = "8GT/s" | .bars[0].size = 4096
        else . end)
    | map(select(.bdf != "0000:00:1f.3"))'
mutate base.iommu.json '
    (.devices[] | select(.bdf == $edu) | .group) = ((.devices[] | select(.bdf == $nvme) | .group))
    | (.groups[] | .devices) |= map(select(. != $nic))'
mutate "base.device-check.$nic.json" '.driver = null'
mutate "base.device-check.$nvme.json" '.reset_methods = ["bus"]'
# after: the NVMe's first VF (its BDF follows the PF's: function 1 of the same slot).
vf="${nvme%.*}.1"
mutate after.pci-list.json 'map(if .bdf == $vf then .physfn = null else . end)'
mutate "after.device-check.$vf.json" \
    '.isolation.reasons += ["multifunction device without ACS isolation between its functions"]'

"$here/compare.sh" "$work" >"$work/compare.log" 2>&1 || true

expect() { # DESCRIPTION PATTERN [SNAPSHOT]: compare.sh must have printed a matching FAIL line.
    local snap="${3:-base}"
    if grep -q -- "^FAIL $snap: $2" "$work/compare.log"; then
        pass=$((pass + 1))
        echo "PASS selftest: compare catches $1"
    else
        fail=$((fail + 1))
        echo "FAIL selftest: compare missed $1 (no 'FAIL $snap: $2')"
    fi
}
expect "a wrong IOMMU group (vs sysfs)" "$nvme iommu_group (vs sysfs)"
expect "a wrong IOMMU group (vs lspci)" "$nvme iommu_group (vs lspci)"
expect "a wrong SR-IOV total (vs sysfs)" "$nvme sriov total_vfs/num_vfs (vs sysfs)"
expect "a wrong SR-IOV total (vs lspci)" "$nvme sriov init/total/num/vf_id (vs lspci)"
expect "a reset method the kernel does not offer" "$edu reset_methods (vs sysfs reset_method)"
expect "a wrong link speed" "$nic link now (vs lspci)"
expect "a wrong BAR size" "$nic bars (vs lspci)"
expect "a BAR wrongly marked virtual" "$edu bars (vs lspci)"
expect "a device missing from pci list" "devices listed (pci list vs lspci)"
expect "a device missing from pci list (vs sysfs)" "0000:00:1f.3 is in sysfs but not in pci list"
expect "two switch endpoints put in one group" "switch endpoints $nvme and $edu do not share"
expect "a device's wrong group in the iommu report" "$edu group in the iommu report (vs sysfs)"
expect "a group missing a member in the iommu report" "iommu groups and members"
expect "a wrong driver in device check" "device check $nic driver (vs sysfs)"
expect "wrong reset methods in device check" "device check $nvme reset_methods (vs sysfs reset_method)"
expect "a VF's missing physfn" "$vf physfn (vs the sysfs physfn link)" after
expect "a VF called multifunction in device check" "device check $vf gives a VF no multifunction" after

echo "VM-SELFTEST: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
