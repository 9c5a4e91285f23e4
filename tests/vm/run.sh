#!/usr/bin/env bash
# The VM test bed: boots Debian's own kernel in QEMU on a q35 machine with an Intel IOMMU and
# a known PCIe topology, runs dis-tool against the guest's live sysfs, and compares what it
# says with lspci and the kernel (tests/vm/README.md).
#
#   tests/vm/run.sh [BUILD_DIR]        (default: build)
#
# Environment: DIS_VM_CACHE (kernel cache, see scripts/vm-install-deps.sh), DIS_VM_ACCEL
# (kvm, tcg or auto; default auto: KVM when /dev/kvm opens and the guest kernel starts under
# it, else TCG), DIS_VM_KVM_PROBE (seconds KVM gets to print the kernel's first line, default
# 10), DIS_VM_TIMEOUT (probe plus boot in seconds, default 290), DIS_VM_OUT (results
# directory, default BUILD_DIR/vm/results).
# Exit 0 only when the guest printed "VM-RESULT: N passed, 0 failed", every host-side
# comparison passed, and the comparison's self-test caught every planted error. A VM that
# cannot start or never reports is a failure, never a pass.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
build_arg="${1:-$repo/build}"
cache="${DIS_VM_CACHE:-$repo/build/vm/cache}"
timeout_s="${DIS_VM_TIMEOUT:-290}"
kvm_probe_s="${DIS_VM_KVM_PROBE:-10}"
accel_wanted="${DIS_VM_ACCEL:-auto}"

fail() {
    echo "vm: FAIL: $*" >&2
    echo "vm: 0 passed, 1 failed"
    exit 1
}

[ -d "$build_arg" ] || fail "build directory $build_arg does not exist"
build="$(cd "$build_arg" && pwd)"
out="${DIS_VM_OUT:-$build/vm/results}"
command -v qemu-system-x86_64 >/dev/null ||
    fail "qemu-system-x86_64 is not installed (run scripts/vm-install-deps.sh)"
command -v jq >/dev/null || fail "jq is not installed (run scripts/vm-install-deps.sh)"
[ -f "$cache/kernel/current" ] ||
    fail "no unpacked kernel in $cache/kernel (run scripts/vm-install-deps.sh)"
kdir="$cache/kernel/$(cat "$cache/kernel/current")"
kernel="$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)"
[ -n "$kernel" ] || fail "no vmlinuz in $kdir/boot (run scripts/vm-install-deps.sh)"

# Only what this script writes is removed: DIS_VM_OUT may name a directory with other files.
mkdir -p "$out"
rm -rf "$out/guest"
rm -f "$out"/{console.log,console-kvm-attempt.log,data.log,qemu.log,compare.log,selftest.log,nvme-ns.img}
initrd="$build/vm/initramfs.cpio.gz"
rm -f "$out/nvme-ns.img"
truncate -s 16M "$out/nvme-ns.img"
t0=$SECONDS
"$repo/tests/vm/build-initramfs.sh" "$build" "$kdir" "$initrd" ||
    fail "could not build the initramfs"
echo "vm: initramfs built in $((SECONDS - t0))s"

# The machine: q35 + intel-iommu; root port rp1 -> switch (x3130 upstream, two downstream
# ports) -> NVMe with SR-IOV (2 VFs) and edu; root port rp2 -> e1000e alone.
# NVMe SR-IOV in QEMU 7.2 needs a subsystem and flexible queue/interrupt resources for the
# VFs: sriov_vq_flexible >= 2 per VF, sriov_vi_flexible >= 1 per VF (defaults
# max_ioqpairs=64 and msix_qsize=65 leave room for both).
# shellcheck disable=SC2054 # commas separate QEMU properties, not array elements
devices=(
    -device intel-iommu,intremap=on
    -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x4
    -device x3130-upstream,id=usp,bus=rp1
    -device xio3130-downstream,id=dsp1,bus=usp,chassis=2,slot=0
    -device xio3130-downstream,id=dsp2,bus=usp,chassis=3,slot=1
    -device nvme-subsys,id=nvmesubsys0,nqn=dis-vm-subsys
    -device "nvme,id=nvme0,bus=dsp1,serial=dis-vm-nvme0,subsys=nvmesubsys0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2"
    # A namespace (16 MiB, a fresh file each run): guest/lend.sh writes it before lending the
    # controller and reads it back after unlend.
    -drive "file=$out/nvme-ns.img,if=none,id=nvmns0,format=raw"
    -device nvme-ns,drive=nvmns0,bus=nvme0
    -device edu,bus=dsp2
    -device pcie-root-port,id=rp2,bus=pcie.0,chassis=4,addr=0x5
    -netdev hubport,id=net0,hubid=0
    -device e1000e,bus=rp2,netdev=net0
)
append="console=ttyS0 intel_iommu=on panic=-1 loglevel=4"

qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# boot ACCEL: starts QEMU in the background (qemu_pid), console to $out/console.log, the
# data channel to $out/data.log, QEMU's own messages to $out/qemu.log.
boot() {
    local accel="$1" machine="q35"
    # Interrupt remapping with KVM needs the split irqchip; TCG emulates the APIC itself.
    [ "$accel" = kvm ] && machine="q35,kernel-irqchip=split"
    : >"$out/console.log"
    : >"$out/data.log"
    qemu-system-x86_64 -accel "$accel" -machine "$machine" -m 512 -smp 1 \
        -nodefaults -display none -monitor none -no-reboot \
        -serial "file:$out/console.log" -serial "file:$out/data.log" \
        -kernel "$kernel" -initrd "$initrd" -append "$append" \
        "${devices[@]}" >"$out/qemu.log" 2>&1 &
    qemu_pid=$!
}

# wait_for PATTERN SECONDS: 0 when the console shows PATTERN, 1 when QEMU exited first,
# 2 on the deadline.
wait_for() {
    local pattern="$1" deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        grep -q -- "$pattern" "$out/console.log" 2>/dev/null && return 0
        kill -0 "$qemu_pid" 2>/dev/null || {
            grep -q -- "$pattern" "$out/console.log" 2>/dev/null && return 0
            return 1
        }
        sleep 0.5
    done
    return 2
}

stop_qemu() {
    if [ -n "$qemu_pid" ]; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        qemu_pid=""
    fi
}

start=$SECONDS
accel=""
# DIS_VM_TIMEOUT covers the whole stage from here: the KVM probe and the boot that counts.
if [ "$accel_wanted" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
    (exec 3<>/dev/kvm) 2>/dev/null; then
    boot kvm
    # Under working KVM the kernel's first console line comes in a second or two. Nested
    # KVM can hang in the decompressor or abort on an MSR: then fall back to TCG.
    probe=0
    wait_for "Linux version" "$kvm_probe_s" || probe=$?
    if [ $probe -eq 0 ]; then
        accel=kvm
    else
        if [ $probe -eq 1 ]; then
            why="QEMU exited: $(tail -n1 "$out/qemu.log" 2>/dev/null)"
        else
            why="no kernel output within ${kvm_probe_s}s"
        fi
        echo "vm: KVM did not start the guest kernel ($why); falling back to TCG" >&2
        stop_qemu
        cp "$out/console.log" "$out/console-kvm-attempt.log" 2>/dev/null || true
        [ "$accel_wanted" = kvm ] && fail "DIS_VM_ACCEL=kvm but KVM does not boot the guest"
    fi
elif [ "$accel_wanted" = kvm ]; then
    fail "DIS_VM_ACCEL=kvm but /dev/kvm cannot be opened"
fi
if [ -z "$accel" ]; then
    accel=tcg
    boot tcg
fi
boot_start=$SECONDS
remaining=$((timeout_s - (SECONDS - start)))
[ $remaining -gt 0 ] || remaining=1
rc=0
wait_for "VM-RESULT:" "$remaining" || rc=$?
if [ $rc -eq 0 ]; then
    # The guest powers off right after the result line; give it a few seconds.
    for _ in $(seq 1 20); do
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.5
    done
fi
elapsed=$((SECONDS - boot_start))
stop_qemu

sed -n '/^DIS-VM-BEGIN/,/^DIS-VM-END/p' "$out/console.log" | tr -d '\r'
case $rc in
1) fail "QEMU ($accel) exited without a result line: $(tail -n3 "$out/qemu.log" | tr '\n' ' ')" \
    "console tail: $(tail -n5 "$out/console.log" | tr -d '\r' | tr '\n' '|')" ;;
2) fail "no result line from the guest within ${timeout_s}s ($accel); console tail:" \
    "$(tail -n5 "$out/console.log" | tr -d '\r' | tr '\n' '|')" ;;
esac
echo "vm: guest ran under $accel; boot to result line and power-off took ${elapsed}s"

result="$(tr -d '\r' <"$out/console.log" |
    grep -E '^VM-RESULT: [0-9]+ passed, [0-9]+ failed$' | tail -n1)"
guest_pass="$(echo "$result" | sed -E 's/^VM-RESULT: ([0-9]+) passed.*/\1/')"
guest_fail="$(echo "$result" | sed -E 's/.* ([0-9]+) failed$/\1/')"
[ -n "$guest_pass" ] || fail "malformed result line: $result"

# The guest's captures: a base64 tar between markers on the data port.
mkdir -p "$out/guest"
if ! sed -n '/^DIS-VM-DATA-BEGIN$/,/^DIS-VM-DATA-END$/p' "$out/data.log" | sed '1d;$d' |
    base64 -d | tar -xzf - -C "$out/guest"; then
    fail "the guest's data (ttyS1, $out/data.log) did not decode"
fi

host_rc=0
"$repo/tests/vm/host/compare.sh" "$out/guest" >"$out/compare.log" 2>&1 || host_rc=$?
# Every comparison is in compare.log; the console gets the failures and the count.
grep -v '^PASS ' "$out/compare.log" || true
host_line="$(grep -E '^VM-HOST: [0-9]+ passed, [0-9]+ failed$' "$out/compare.log" | tail -n1)"
host_pass="$(echo "$host_line" | sed -E 's/^VM-HOST: ([0-9]+) passed.*/\1/')"
host_fail="$(echo "$host_line" | sed -E 's/.* ([0-9]+) failed$/\1/')"
if [ -z "$host_pass" ]; then
    host_pass=0
    host_fail=1
    echo "vm: FAIL: the host comparison printed no result line (exit $host_rc)"
fi
# The comparison must be able to fail: planted errors in a copy of the captures.
self_rc=0
"$repo/tests/vm/host/selftest.sh" "$out/guest" >"$out/selftest.log" 2>&1 || self_rc=$?
grep -v '^PASS ' "$out/selftest.log" || true
self_line="$(grep -E '^VM-SELFTEST: [0-9]+ passed, [0-9]+ failed$' "$out/selftest.log" | tail -n1)"
self_pass="$(echo "$self_line" | sed -E 's/^VM-SELFTEST: ([0-9]+) passed.*/\1/')"
self_fail="$(echo "$self_line" | sed -E 's/.* ([0-9]+) failed$/\1/')"
if [ -z "$self_pass" ]; then
    self_pass=0
    self_fail=1
    echo "vm: FAIL: the comparison's self-test printed no result line (exit $self_rc)"
fi
total_pass=$((guest_pass + host_pass + self_pass))
total_fail=$((guest_fail + host_fail + self_fail))
{ [ $host_rc -eq 0 ] && [ $self_rc -eq 0 ]; } || [ "$total_fail" -gt 0 ] || total_fail=1
echo "vm: results in $out"
echo "vm: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
