#!/bin/sh
# shellcheck shell=dash disable=SC3043 # busybox ash has local
# Guest side of the VM test bed (busybox sh, run by /init). Two kinds of work:
#  - checks that need the live guest (modules loaded, IOMMU on, the expected devices and
#    drivers present, dis-tool and lspci run), each printed as "VM-CHECK PASS|FAIL name";
#  - snapshots of dis-tool's and lspci's output and of sysfs, sent to the host over ttyS1
#    as a base64 tar; tests/vm/host/compare.sh compares them after the VM is off. Two
#    snapshots: "base" after boot, "after" with the NVMe's VFs on and edu bound to vfio-pci.
# Ends with "VM-RESULT: N passed, M failed" on the console.
pass=0
fail=0
out=/tmp/out
mkdir -p "$out"

ok() {
    pass=$((pass + 1))
    echo "VM-CHECK PASS $1"
}
bad() {
    fail=$((fail + 1))
    echo "VM-CHECK FAIL $1: $2"
}
# check NAME COMMAND...: PASS when the command succeeds.
# (busybox ash has `local`; without it the helpers would overwrite each other's names.)
check() {
    local what="$1"
    shift
    if "$@" >/tmp/check.out 2>&1; then ok "$what"; else bad "$what" "$(head -c 300 /tmp/check.out)"; fi
}

# bdf_of VENDOR DEVICE [N]: the Nth (1-based) device with those ids, from sysfs.
bdf_of() {
    local n=0 d
    for d in /sys/bus/pci/devices/*; do
        if [ "$(cat "$d/vendor")" = "0x$1" ] && [ "$(cat "$d/device")" = "0x$2" ]; then
            n=$((n + 1))
            if [ "$n" = "${3:-1}" ]; then
                basename "$d"
                return 0
            fi
        fi
    done
    return 1
}

# wait_driver BDF DRIVER: drivers probe asynchronously (nvme); poll with a 20 s deadline.
wait_driver() {
    local i=0
    while [ $i -lt 100 ]; do
        [ "$(basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)")" = "$2" ] &&
            return 0
        sleep 0.2
        i=$((i + 1))
    done
    echo "driver of $1 is '$(basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)")', not $2"
    return 1
}

# run_capture NAME COMMAND...: stdout to $out/NAME, stderr to NAME.err, exit code to NAME.rc.
run_capture() {
    local file="$1" status
    shift
    "$@" >"$out/$file" 2>"$out/$file.err"
    status=$?
    echo "$status" >"$out/$file.rc"
    return $status
}

# sysfs snapshot, tab-separated: one line per device, then one line per group member.
sysfs_snapshot() {
    for d in /sys/bus/pci/devices/*; do
        b="$(basename "$d")"
        drv="$(basename "$(readlink "$d/driver" 2>/dev/null)")"
        grp="$(basename "$(readlink "$d/iommu_group" 2>/dev/null)")"
        rm=""
        [ -f "$d/reset_method" ] && rm="$(cat "$d/reset_method" 2>/dev/null)"
        tot=""
        num=""
        [ -f "$d/sriov_totalvfs" ] && tot="$(cat "$d/sriov_totalvfs")"
        [ -f "$d/sriov_numvfs" ] && num="$(cat "$d/sriov_numvfs")"
        # The parent: the directory holding this device's, when it is a PCI device.
        par="$(basename "$(dirname "$(readlink -f "$d")")")"
        case "$par" in
        [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) ;;
        *) par="" ;;
        esac
        # An SR-IOV VF's physfn link names its PF.
        pf=""
        [ -L "$d/physfn" ] && pf="$(basename "$(readlink "$d/physfn")")"
        printf 'device\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b" \
            "$(cat "$d/vendor")" "$(cat "$d/device")" "$(cat "$d/class")" "${drv:--}" "${grp:--}" \
            "${rm:--}" "${tot:--}" "${num:--}" "${par:--}" \
            "$(cat "$d/numa_node" 2>/dev/null || echo -)" "$(stat -c %s "$d/config")" "${pf:--}"
    done
    for g in /sys/kernel/iommu_groups/*; do
        [ -d "$g/devices" ] || continue
        for m in "$g"/devices/*; do
            printf 'group\t%s\t%s\n' "$(basename "$g")" "$(basename "$m")"
        done
    done
}

# snapshot PREFIX [BDF...]: everything the host compares, for the devices present now;
# device check for the BDFs given, or for every device (each dis-tool run costs ~0.5 s of TCG).
snapshot() {
    local p="$1" d b rc targets=""
    shift
    if [ $# -gt 0 ]; then
        for b in "$@"; do targets="$targets /sys/bus/pci/devices/$b"; done
    else
        targets="$(echo /sys/bus/pci/devices/*)"
    fi
    sysfs_snapshot >"$out/$p.sysfs.tsv"
    check "$p: dis-tool pci list -o json exits 0" run_capture "$p.pci-list.json" dis-tool pci list -o json
    check "$p: dis-tool iommu -o json exits 0" run_capture "$p.iommu.json" dis-tool iommu -o json
    check "$p: lspci -vvv exits 0" run_capture "$p.lspci-vvv.txt" lspci -D -nn -vvv -k
    check "$p: lspci -vmm exits 0" run_capture "$p.lspci-vmm.txt" lspci -D -vmm
    for d in $targets; do
        b="$(basename "$d")"
        run_capture "$p.device-check.$b.json" dis-tool -o json device check "$b"
        rc=$?
        # 0 ready, 1 ready with warnings, 2 not ready: the check ran. Anything else is a fault.
        case $rc in
        0 | 1 | 2) ok "$p: dis-tool device check $b ran (exit $rc)" ;;
        *)
            bad "$p: dis-tool device check $b ran" \
                "exit $rc: $(head -c 300 "$out/$p.device-check.$b.json.err")"
            ;;
        esac
    done
}

echo "kernel: $(uname -r)"

# The modules that matter loaded (dependencies may fail: see /init).
for m in nvme e1000e vfio_pci; do
    check "module $m loaded" test -d "/sys/module/$m"
done
check "intel-iommu active (/sys/class/iommu has a unit)" sh -c 'ls /sys/class/iommu | grep -q .'
check "the kernel made IOMMU groups" sh -c 'ls /sys/kernel/iommu_groups | grep -q .'
check "interrupt remapping enabled" sh -c 'dmesg | grep -q "Enabled IRQ remapping"'
check "DMA goes through IOMMU translation" sh -c 'dmesg | grep -q "Default domain type: Translated"'

# The machine run.sh builds: QEMU's ids.
nvme="$(bdf_of 1b36 0010)"
edu="$(bdf_of 1234 11e8)"
nic="$(bdf_of 8086 10d3)"
usp="$(bdf_of 104c 8232)"
dsp1="$(bdf_of 104c 8233 1)"
dsp2="$(bdf_of 104c 8233 2)"
check "NVMe controller (1b36:0010) present" test -n "$nvme"
check "edu device (1234:11e8) present" test -n "$edu"
check "e1000e (8086:10d3) present" test -n "$nic"
check "switch upstream port (104c:8232) present" test -n "$usp"
check "two switch downstream ports (104c:8233)" test -n "$dsp2"
[ -n "$nvme" ] && check "nvme driver bound to $nvme" wait_driver "$nvme" nvme
[ -n "$nic" ] && check "e1000e driver bound to $nic" wait_driver "$nic" e1000e
[ -n "$usp" ] && check "pcieport bound to $usp" wait_driver "$usp" pcieport
[ -n "$nvme" ] && check "nvme offers SR-IOV (sriov_totalvfs = 2)" \
    sh -c "[ \"\$(cat /sys/bus/pci/devices/$nvme/sriov_totalvfs)\" = 2 ]"
{
    echo "nvme=$nvme"
    echo "edu=$edu"
    echo "nic=$nic"
    echo "usp=$usp"
    echo "dsp1=$dsp1"
    echo "dsp2=$dsp2"
} >"$out/roles.txt"

snapshot base

# Change the live state and look again ("after"): SR-IOV on, and a driver swapped.
# 1. Enable the NVMe's two VFs without binding a driver to them (QEMU's VFs stay offline
#    until the PF hands them queues).
changed=""
if [ -n "$nvme" ]; then
    echo 0 >"/sys/bus/pci/devices/$nvme/sriov_drivers_autoprobe"
    if echo 2 >"/sys/bus/pci/devices/$nvme/sriov_numvfs" 2>/tmp/vf.err; then
        ok "enable 2 VFs on $nvme"
        check "VF virtfn0 and virtfn1 exist" test -e "/sys/bus/pci/devices/$nvme/virtfn1"
        changed="$changed $nvme"
        for v in "/sys/bus/pci/devices/$nvme"/virtfn*; do
            changed="$changed $(basename "$(readlink -f "$v")")"
        done
    else
        bad "enable 2 VFs on $nvme" "$(cat /tmp/vf.err)"
    fi
fi
# 2. Bind the edu device (no driver of its own) to vfio-pci, as one would before lending it.
if [ -n "$edu" ]; then
    echo vfio-pci >"/sys/bus/pci/devices/$edu/driver_override"
    echo "$edu" >/sys/bus/pci/drivers_probe 2>/dev/null
    check "vfio-pci bound to $edu" wait_driver "$edu" vfio-pci
    changed="$changed $edu"
fi
# device check again only where something changed.
# shellcheck disable=SC2086 # one BDF per word
snapshot after $changed
# device lend | unlend | vfs on the real kernel (issue 10): its own script, sharing the
# helpers and the counts above.
# shellcheck source=lend.sh
. /vm/lend.sh
dmesg >"$out/dmesg.txt"

# The captured files, to the host over ttyS1 (raw: no \r inserted).
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{
    echo "DIS-VM-DATA-BEGIN"
    tar -C "$out" -cf - . | gzip -1 | base64
    echo "DIS-VM-DATA-END"
} >/dev/ttyS1
# Closing the port waits for the UART to drain; stty's TCSADRAIN makes sure before poweroff.
stty -F /dev/ttyS1 raw -echo 2>/dev/null

echo "VM-RESULT: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
