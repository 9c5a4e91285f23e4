#!/bin/sh
# shellcheck shell=dash disable=SC3043,SC2154 # busybox ash has local; $out, $nvme, $edu: checks.sh
# SmartIO over VFIO in the guest (issue 10 items 4 and 5's failure cases). Sourced by
# checks.sh after its "after" snapshot: uses its ok/bad/check/wait_driver helpers, $out, $nvme
# and $edu. A lender disd (node 4) hosts the NVMe controller and the edu device through
# vfio-pci ("vfio:BDF,name=..." devices); a borrower on node 8 (dis-vm-smartio, a SISCI
# program) drives them. Each step is one VM-CHECK line.
sm="$out/smartio"
mkdir -p "$sm"
fabric=/run/dis
mkdir -p "$fabric"
chmod 0700 "$fabric"
export DIS_FABRIC="$fabric"

# json_field FILE KEY: the first "KEY": "value" of a JSON file (busybox has no jq).
json_field() {
    grep -o "\"$2\": *\"[^\"]*\"" "$1" | head -n1 | sed 's/.*: *"\(.*\)"/\1/'
}
# field FILE KEY: the value of a key=value line the test program printed.
field() {
    grep "^$2=" "$1" | head -n1 | cut -d= -f2- | cut -d' ' -f1
}
# wait_state FDID STATE SECONDS: polls dis-tool device show until the pool says STATE.
wait_state() {
    local i=0 st=""
    while [ $i -lt $(($3 * 5)) ]; do
        dis-tool -o json device show "$1" >"$sm/show.json" 2>/dev/null
        st="$(json_field "$sm/show.json" state)"
        [ "$st" = "$2" ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    echo "device $1 is '$st', not $2"
    return 1
}

if [ -z "$nvme" ] || [ -z "$edu" ]; then
    bad "smartio: NVMe and edu present" "nvme='$nvme' edu='$edu'"
    return 0
fi
check "smartio: module vfio_iommu_type1 loaded" test -d /sys/module/vfio_iommu_type1

# 1. The NVMe controller to vfio-pci: VFs off (checks.sh enabled them), off the nvme driver,
#    its CAP and VS recorded through sysfs resource0 while no driver holds it (the kernel's
#    IO_STRICT_DEVMEM refuses a mapping while nvme has the BAR), then vfio-pci bound.
nd="/sys/bus/pci/devices/$nvme"
echo 0 >"$nd/sriov_numvfs" 2>/dev/null
echo "$nvme" >"$nd/driver/unbind"
check "smartio: NVMe CAP/VS read through sysfs before vfio-pci" \
    sh -c "dis-vm-smartio peek $nvme >$sm/nvme-before.txt"
echo vfio-pci >"$nd/driver_override"
echo "$nvme" >/sys/bus/pci/drivers_probe 2>/dev/null
check "smartio: vfio-pci bound to $nvme" wait_driver "$nvme" vfio-pci
check "smartio: vfio-pci bound to $edu" wait_driver "$edu" vfio-pci

# 2. The lender (node 4) and the borrower's node (8).
disd --node-id 4 --fabric "$fabric" --lending-db /tmp/lender.sqlite -v \
    --device "vfio:$nvme,name=nvme" --device "vfio:$edu,name=edu" 2>"$sm/disd4.log" &
disd4=$!
disd --node-id 8 --fabric "$fabric" 2>"$sm/disd8.log" &
disd8=$!
# Node 8 may answer before node 4 has opened its devices (a list then has node 4 unreachable
# and exits 0): wait for the list that has both, then check that list.
vfio_count() { grep -o '"kind": *"vfio"' "$sm/list.json" 2>/dev/null | wc -l; }
i=0
while [ $i -lt 100 ]; do
    dis-tool -o json device list >"$sm/list.json" 2>/dev/null && [ "$(vfio_count)" = 2 ] && break
    sleep 0.2
    i=$((i + 1))
done
check "smartio: the lender disd hosts both vfio devices" \
    sh -c "[ \$(grep -o '\"kind\": *\"vfio\"' $sm/list.json | wc -l) = 2 ] || { cat $sm/list.json; false; }"
nvme_fdid=0x40000
edu_fdid=0x40001
dis-tool -o json device show $nvme_fdid >"$sm/nvme-show.json" 2>&1
check "smartio: fdid $nvme_fdid is the NVMe (ids read from the device)" \
    sh -c "grep -q '\"vendor_id\": *\"0x1b36\"' $sm/nvme-show.json && grep -q '\"device_id\": *\"0x10\"' $sm/nvme-show.json"
export DIS_NODE_ID=8

# 3. A borrower reads CAP and VS through its BAR0 device segment.
dis-vm-smartio nvme-regs $nvme_fdid >"$sm/nvme-regs.txt" 2>&1
cap_before="$(field "$sm/nvme-before.txt" cap)"
vs_before="$(field "$sm/nvme-before.txt" vs)"
cap_smartio="$(field "$sm/nvme-regs.txt" cap)"
vs_smartio="$(field "$sm/nvme-regs.txt" vs)"
echo "smartio: NVMe before: CAP $cap_before VS $vs_before; through SmartIO: CAP $cap_smartio VS $vs_smartio"
if [ -n "$cap_before" ] && [ "$cap_before" = "$cap_smartio" ] && [ "$vs_before" = "$vs_smartio" ] &&
    [ "$vs_before" != 0x00000000 ] && [ "$vs_before" != 0xffffffff ]; then
    ok "smartio: NVMe CAP and VS through the BAR0 segment = as read before vfio-pci"
else
    bad "smartio: NVMe CAP and VS through the BAR0 segment" "$(head -c 300 "$sm/nvme-regs.txt")"
fi
check "smartio: the NVMe is available again after its return" wait_state $nvme_fdid available 20

# 4. edu's DMA engine: segment -> device -> segment, an MSI after each.
check "smartio: edu DMA copies a segment into device memory and back, MSI each way" \
    sh -c "dis-vm-smartio edu-dma $edu_fdid >$sm/edu-dma.txt 2>&1"
check "smartio: edu available after the DMA test" wait_state $edu_fdid available 20

# 5. A DMA to an IO address outside the mapping: the IOMMU faults it, the memory is intact.
dmesg -c >/dev/null
dis-vm-smartio edu-fault $edu_fdid >"$sm/edu-fault.txt" 2>&1
rc=$?
fault_iova="$(field "$sm/edu-fault.txt" fault_iova)"
sleep 0.5
dmesg >"$sm/dmesg-fault.txt"
if [ $rc -eq 0 ]; then
    ok "smartio: a DMA outside the mapped range left the segment intact"
else
    bad "smartio: a DMA outside the mapped range left the segment intact" \
        "exit $rc: $(head -c 300 "$sm/edu-fault.txt")"
fi
check "smartio: the IOMMU reported the fault at $fault_iova for $edu" \
    sh -c "grep 'DMAR' $sm/dmesg-fault.txt | grep '${edu#0000:}' | grep -q 'fault addr $fault_iova'"
check "smartio: edu available after the fault test" wait_state $edu_fdid available 20

# 6. A borrower killed mid-DMA: the pool reclaims, unmaps, resets; the device comes back.
dis-tool -o json device history $edu_fdid >"$sm/edu-history-before.json" 2>&1
resets_before="$(grep -c '"event": *"reset_ok"' "$sm/edu-history-before.json")"
dis-vm-smartio edu-kill $edu_fdid >"$sm/edu-kill.txt" 2>&1
rc=$?
check "smartio: the borrower died mid-DMA (SIGKILL, exit $rc)" \
    sh -c "[ $rc -eq 137 ] && grep -q dma_started $sm/edu-kill.txt"
kill_iova="$(field "$sm/edu-kill.txt" io_addr)"
# Whether the DMA ran into the IOMMU after the reclaim unmapped it, or finished first, depends
# on timing (edu runs it 100 ms of virtual time after the command): reported, not checked.
if dmesg | grep DMAR | grep -q "fault addr $kill_iova"; then
    echo "smartio: the killed borrower's DMA faulted in the IOMMU at $kill_iova (unmapped first)"
else
    echo "smartio: no IOMMU fault at $kill_iova: the killed borrower's DMA finished before the unmap"
fi
check "smartio: edu reset and available after its borrower was killed" \
    wait_state $edu_fdid available 20
dis-tool -o json device history $edu_fdid >"$sm/edu-history.json" 2>&1
resets_after="$(grep -c '"event": *"reset_ok"' "$sm/edu-history.json")"
last_event="$(grep -o '"event": *"[a-z_]*"' "$sm/edu-history.json" | tail -n1)"
check "smartio: the audit log has one more reset_ok after the kill ($resets_before -> $resets_after), last row reset_ok" \
    sh -c "[ $resets_after -eq $((resets_before + 1)) ] && echo '$last_event' | grep -q reset_ok"
check "smartio: edu works after the reclaim (DMA both ways again)" \
    sh -c "dis-vm-smartio edu-dma $edu_fdid >$sm/edu-dma-again.txt 2>&1"

# 7. A reset that fails: every reset method switched off in sysfs (an empty reset_method),
#    so VFIO_DEVICE_RESET fails in the kernel; the pool quarantines the device as failed.
if echo "" >"/sys/bus/pci/devices/$edu/reset_method" 2>"$sm/reset_method.err"; then
    ok "smartio: reset methods of $edu switched off ($(cat "/sys/bus/pci/devices/$edu/reset_method" 2>&1))"
else
    bad "smartio: reset methods of $edu switched off" "$(cat "$sm/reset_method.err")"
fi
dis-tool -o json device reset $edu_fdid --yes >"$sm/edu-reset.json" 2>&1
check "smartio: the failed reset is reported (outcome failed)" \
    sh -c "grep -q '\"outcome\": *\"failed\"' $sm/edu-reset.json"
check "smartio: edu quarantined as failed" wait_state $edu_fdid failed 10
check "smartio: the lender logged why the reset failed" \
    sh -c "grep -q 'reset failed: VFIO_DEVICE_RESET' $sm/disd4.log"
echo default >"/sys/bus/pci/devices/$edu/reset_method" 2>/dev/null

kill "$disd4" "$disd8" 2>/dev/null
wait "$disd4" "$disd8" 2>/dev/null
for f in "$sm"/*.txt; do
    echo "smartio: $(basename "$f"): $(tr '\n' ' ' <"$f" | head -c 400)"
done
unset DIS_NODE_ID
