#!/bin/sh
# shellcheck shell=dash disable=SC3043 # busybox ash has local
# Guest checks of `dis-tool device lend | unlend | vfs` on the real kernel (issue 10 items 3
# and 5), sourced by checks.sh after its snapshots: it uses ok/bad/check/wait_driver and
# $nvme, $edu, $nic from there. A disd node (node 4, fabric /tmp/lend-fabric) holds the pool.
#  - vfs: 2 VFs and back to 0 (the PF is lent without VFs);
#  - in use is refused: swap on the NVMe namespace, the e1000e's interface up;
#  - --dry-run changes nothing;
#  - a failure half-way rolls back (vfio-pci unloaded: nothing binds, nvme comes back);
#  - a spec the pool refuses rolls back (the binding is nvme again, no record);
#  - lend of the NVMe and edu: vfio-pci bound, in the pool (with the vfio kind in disd);
#    unlend: nvme bound again and the namespace reads back what was written before;
#  - DIS_VM_LEND_CYCLES (default 50) lend/unlend cycles of the NVMe controller, with
#    borrow/return and reset in each when the pool took it, ending with nvme bound and the
#    namespace readable.
cycles="${DIS_VM_LEND_CYCLES:-50}"
export DIS_FABRIC=/tmp/lend-fabric # a fabric of its own (other guest scripts may run one)
state=/tmp/hostlend
lend_log=/tmp/out/lend.log
: >"$lend_log"
mkdir -p "$DIS_FABRIC"
chmod 700 "$DIS_FABRIC"

# dt ARGS...: dis-tool (lend, unlend, vfs with the state dir), output to the log; returns its
# exit code.
dt() {
    echo "+ dis-tool $*" >>"$lend_log"
    if [ "$2" = check ]; then
        dis-tool "$@" >/tmp/dt.out 2>/tmp/dt.err
    else
        dis-tool "$@" --state-dir "$state" >/tmp/dt.out 2>/tmp/dt.err
    fi
    local rc=$?
    cat /tmp/dt.out /tmp/dt.err >>"$lend_log"
    echo "= exit $rc" >>"$lend_log"
    return $rc
}
driver_of() {
    basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null
}
override_of() {
    cat "/sys/bus/pci/devices/$1/driver_override"
}
# expect_rc WANT NAME ARGS...: PASS when dis-tool exits WANT.
expect_rc() {
    local want="$1" what="$2" rc
    shift 2
    dt "$@"
    rc=$?
    if [ "$rc" = "$want" ]; then
        ok "$what"
    else
        bad "$what" "exit $rc, not $want: $(head -c 300 /tmp/dt.err)"
    fi
}
# ns_block: the NVMe namespace's block device (appears asynchronously after nvme binds).
ns_dev() {
    local i=0
    while [ $i -lt 100 ]; do
        for b in /sys/class/block/nvme*n1; do
            [ -e "$b" ] && [ -b "/dev/$(basename "$b")" ] && {
                echo "/dev/$(basename "$b")"
                return 0
            }
        done
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# disd with the tools; a node of its own.
if ! command -v disd >/dev/null; then
    bad "disd in the initramfs" "not found"
    return 0
fi
disd --node-id 4 --fabric "$DIS_FABRIC" >/tmp/out/disd.log 2>&1 &
disd_pid=$!
i=0
while [ $i -lt 100 ] && ! dis-tool fabric status --fabric "$DIS_FABRIC" >/dev/null 2>&1; do
    sleep 0.1
    i=$((i + 1))
done
check "disd node 4 answers" dis-tool probe 4 --fabric "$DIS_FABRIC"

# checks.sh (and the SmartIO checks) may leave devices on vfio-pci and the NVMe with VFs:
# back to the boot state (nvme on its driver, edu without one), by plain sysfs writes.
for b in $nvme $edu; do
    [ -e "/sys/bus/pci/devices/$b/driver_override" ] || continue
    echo >"/sys/bus/pci/devices/$b/driver_override"
    if [ "$(driver_of "$b")" = vfio-pci ]; then
        echo "$b" >"/sys/bus/pci/devices/$b/driver/unbind"
        [ "$b" = "$nvme" ] && echo "$b" >/sys/bus/pci/drivers/nvme/bind
    fi
done
[ -n "$nvme" ] && check "nvme bound before the lend checks" wait_driver "$nvme" nvme

# ---- vfs
if [ -n "$nvme" ]; then
    expect_rc 0 "device vfs $nvme --count 0" device vfs "$nvme" --count 0 --yes
    check "sriov_numvfs is 0" sh -c "[ \"\$(cat /sys/bus/pci/devices/$nvme/sriov_numvfs)\" = 0 ]"
    expect_rc 0 "device vfs $nvme --count 2 --dry-run" device vfs "$nvme" --count 2 --dry-run
    check "vfs --dry-run changed nothing" \
        sh -c "[ \"\$(cat /sys/bus/pci/devices/$nvme/sriov_numvfs)\" = 0 ]"
    expect_rc 0 "device vfs $nvme --count 2" device vfs "$nvme" --count 2 --yes
    check "2 VFs made (virtfn1 exists)" test -e "/sys/bus/pci/devices/$nvme/virtfn1"
    expect_rc 0 "device vfs $nvme --count 1 (via 0)" device vfs "$nvme" --count 1 --yes
    check "1 VF left" sh -c "[ \"\$(cat /sys/bus/pci/devices/$nvme/sriov_numvfs)\" = 1 ] && \
        ! [ -e /sys/bus/pci/devices/$nvme/virtfn1 ]"
    expect_rc 2 "device vfs --count 3 is over sriov_totalvfs" device vfs "$nvme" --count 3 --yes
    expect_rc 0 "device vfs $nvme --count 0 again" device vfs "$nvme" --count 0 --yes
fi

# ---- in use is refused (also with --force); nothing changes
if [ -n "$nvme" ] && dev="$(ns_dev)"; then
    ok "NVMe namespace block device $dev"
    if mkswap "$dev" >/dev/null 2>&1 && swapon "$dev" 2>/tmp/swapon.err; then
        expect_rc 2 "lend of $nvme refused while $dev is active swap" \
            device lend "$nvme" --yes --force
        check "the refusal names the swap" grep -q "active swap $dev" /tmp/dt.err
        expect_rc 1 "device check $nvme: not ready while swapped on" device check "$nvme"
        check "device check names the in_use row" grep -q "in use (active swap" /tmp/dt.out
        check "nvme still bound after the refusal" wait_driver "$nvme" nvme
        swapoff "$dev"
    else
        bad "swap on $dev" "$(cat /tmp/swapon.err)"
    fi
    # The data the namespace must still hold after lend and unlend.
    dd if=/dev/urandom of=/tmp/pattern bs=4096 count=4 2>/dev/null
    dd if=/tmp/pattern of="$dev" bs=4096 count=4 conv=fsync 2>/dev/null
    sum_before="$(md5sum </tmp/pattern | cut -d' ' -f1)"
else
    bad "NVMe namespace block device" "no /dev/nvme*n1"
fi
if [ -n "$nic" ]; then
    ifc=""
    for n in "/sys/bus/pci/devices/$nic"/net/*; do
        [ -e "$n" ] && ifc="$(basename "$n")" && break
    done
    if [ -n "$ifc" ] && ip link set "$ifc" up 2>/dev/null; then
        expect_rc 2 "lend of $nic refused while $ifc is up" device lend "$nic" --yes --force
        check "the refusal names $ifc" grep -q "network interface $ifc is up" /tmp/dt.err
        ip link set "$ifc" down
        expect_rc 0 "lend of $nic --dry-run once $ifc is down" device lend "$nic" --dry-run
    else
        bad "bring the e1000e interface up" "no interface under $nic"
    fi
fi

# ---- --dry-run changes nothing
if [ -n "$nvme" ]; then
    before="$(driver_of "$nvme")/$(override_of "$nvme")"
    expect_rc 0 "lend $nvme --dry-run" device lend "$nvme" --dry-run
    check "dry run printed the override, unbind and probe writes in order" sh -c \
        "grep -n driver_override /tmp/dt.out | head -n1 | cut -d: -f1 >/tmp/l1; \
         grep -n driver/unbind /tmp/dt.out | head -n1 | cut -d: -f1 >/tmp/l2; \
         grep -n drivers_probe /tmp/dt.out | head -n1 | cut -d: -f1 >/tmp/l3; \
         [ \$(cat /tmp/l1) -lt \$(cat /tmp/l2) ] && [ \$(cat /tmp/l2) -lt \$(cat /tmp/l3) ]"
    check "dry run changed nothing ($before)" \
        sh -c "[ \"\$(basename \"\$(readlink /sys/bus/pci/devices/$nvme/driver)\")/\$(cat /sys/bus/pci/devices/$nvme/driver_override)\" = \"$before\" ]"
    check "dry run left no record" sh -c "! [ -e $state/$nvme.json ]"
fi

# ---- a failure half-way rolls back: without vfio-pci nothing binds after the unbind
vfio_mod="$(grep '/vfio-pci.ko' /etc/dis-vm/modules.list | head -n1)"
if [ -n "$nvme" ] && [ -n "$vfio_mod" ] && rmmod vfio_pci 2>/tmp/rmmod.err; then
    expect_rc 4 "lend of $nvme fails without vfio-pci" \
        device lend "$nvme" --yes --verify-timeout 1500
    check "the error names the failed step and the rollback" \
        sh -c "grep -q 'failed at step 4 of 5' /tmp/dt.err && grep -q 'rolled back: driver nvme' /tmp/dt.err"
    check "nvme bound again after the rollback" wait_driver "$nvme" nvme
    check "driver_override restored" sh -c "[ \"\$(cat /sys/bus/pci/devices/$nvme/driver_override)\" = '(null)' ]"
    check "no record after the rollback" sh -c "! [ -e $state/$nvme.json ]"
    insmod "/lib/modules/$(cat /etc/dis-vm/kernel-version)/$vfio_mod"
    check "vfio-pci loaded again" test -d /sys/bus/pci/drivers/vfio-pci
else
    bad "rmmod vfio_pci for the rollback test" "$(cat /tmp/rmmod.err 2>/dev/null)"
fi

# ---- the pool refuses the spec: the binding is rolled back
if [ -n "$nvme" ]; then
    expect_rc 2 "lend of $nvme with a spec the pool refuses" \
        device lend "$nvme" --yes --name "x,bogus-key=1"
    check "the error says the pool did not take it and the binding was rolled back" \
        sh -c "grep -q 'did not take' /tmp/dt.err && grep -q 'rolled back: driver nvme' /tmp/dt.err"
    check "nvme bound again after the pool refused" wait_driver "$nvme" nvme
fi

# ---- lend and unlend for real
pool_kind=0 # 1 when this disd hosts vfio devices (task C's kind)
lend_one() { # BDF NAME: lend; PASS when vfio-pci is bound and the pool lists it
    local b="$1" name="$2"
    dt device lend "$b" --yes --name "$name"
    local rc=$?
    if [ $rc = 0 ]; then
        ok "lend $b (exit 0)"
        pool_kind=1
        lent_fdid="$(sed -n 's/.*as fdid \(0x[0-9a-f]*\).*/\1/p' /tmp/dt.out | head -n1)"
        check "$b bound to vfio-pci" sh -c "[ \"\$(basename \"\$(readlink /sys/bus/pci/devices/$b/driver)\")\" = vfio-pci ]"
        check "the pool lists $name" sh -c "dis-tool device list -o json | grep -q '\"$name\"'"
        check "the record of $b exists" test -f "$state/$b.json"
    elif grep -q "did not take" /tmp/dt.err; then
        # disd without the vfio kind: lend must roll back cleanly.
        echo "VM-NOTE: disd refused vfio:$b ($(head -c 200 /tmp/dt.err)); pool steps not run"
        ok "lend $b rolled back when the pool refused vfio:"
        check "$b back on its driver after the refusal" sh -c \
            "[ \"\$(basename \"\$(readlink /sys/bus/pci/devices/$b/driver 2>/dev/null)\")\" = '$3' ]"
        return 1
    else
        bad "lend $b" "exit $rc: $(head -c 300 /tmp/dt.err)"
        return 1
    fi
}
unlend_one() { # BDF DRIVER
    expect_rc 0 "unlend $1" device unlend "$1" --yes
    if [ -n "$2" ]; then
        check "$2 bound to $1 again" wait_driver "$1" "$2"
    else
        check "$1 has no driver again" sh -c "! [ -e /sys/bus/pci/devices/$1/driver ]"
    fi
    check "driver_override of $1 restored" sh -c "[ \"\$(cat /sys/bus/pci/devices/$1/driver_override)\" = '(null)' ]"
    check "no record of $1 left" sh -c "! [ -e $state/$1.json ]"
}

if [ -n "$nvme" ] && lend_one "$nvme" nvme0 nvme; then
    expect_rc 2 "lend of $nvme again is refused (lent already)" device lend "$nvme" --yes
    # Borrowed: unlend refused without --force.
    dis-tool device borrow "$lent_fdid" --exclusive --hold >/tmp/holder.out 2>&1 &
    holder=$!
    i=0
    while [ $i -lt 100 ] && ! dis-tool device show "$lent_fdid" -o json | grep -q '"borrowed"'; do
        sleep 0.1
        i=$((i + 1))
    done
    expect_rc 2 "unlend of a borrowed $nvme is refused" device unlend "$nvme" --yes
    check "the refusal names the borrower" grep -q "pid $holder" /tmp/dt.err
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    i=0
    while [ $i -lt 100 ] && dis-tool device show "$lent_fdid" -o json | grep -q '"borrowed"'; do
        sleep 0.1
        i=$((i + 1))
    done
    unlend_one "$nvme" nvme
fi
if [ -n "$nvme" ] && [ -n "${sum_before:-}" ] && dev="$(ns_dev)"; then
    check "the namespace reads back what was written before lend" \
        sh -c "[ \"\$(dd if=$dev bs=4096 count=4 2>/dev/null | md5sum | cut -d' ' -f1)\" = $sum_before ]"
fi
if [ -n "$edu" ] && lend_one "$edu" edu ""; then
    unlend_one "$edu" ""
fi

# ---- cycles
if [ -n "$nvme" ]; then
    t0="$(cut -d' ' -f1 /proc/uptime)"
    n=0
    failed=""
    while [ $n -lt "$cycles" ]; do
        n=$((n + 1))
        if ! dt device lend "$nvme" --yes --name nvme0; then
            if [ $pool_kind = 1 ] || ! grep -q "did not take" /tmp/dt.err; then
                failed="cycle $n: lend: $(head -c 200 /tmp/dt.err)"
                break
            fi
            # Without the vfio kind every lend rolls back; the binding must survive each.
            wait_driver "$nvme" nvme >/dev/null || {
                failed="cycle $n: nvme not back after the rolled-back lend"
                break
            }
            continue
        fi
        fdid="$(sed -n 's/.*as fdid \(0x[0-9a-f]*\).*/\1/p' /tmp/dt.out | head -n1)"
        if ! dis-tool device borrow "$fdid" --exclusive -- true >/tmp/borrow.out 2>&1; then
            failed="cycle $n: borrow/return of $fdid: $(head -c 200 /tmp/borrow.out)"
            break
        fi
        if ! dis-tool device reset "$fdid" --yes >/tmp/reset.out 2>&1; then
            failed="cycle $n: reset of $fdid: $(head -c 200 /tmp/reset.out)"
            break
        fi
        if ! dt device unlend "$nvme" --yes; then
            failed="cycle $n: unlend: $(head -c 200 /tmp/dt.err)"
            break
        fi
        wait_driver "$nvme" nvme >/dev/null || {
            failed="cycle $n: nvme not bound after unlend"
            break
        }
    done
    t1="$(cut -d' ' -f1 /proc/uptime)"
    echo "VM-NOTE: $n lend/unlend cycles of $nvme in $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s (pool: $pool_kind)"
    if [ -z "$failed" ]; then
        ok "$cycles lend/unlend cycles of $nvme"
    else
        bad "$cycles lend/unlend cycles of $nvme" "$failed"
    fi
    check "nvme bound after the cycles" wait_driver "$nvme" nvme
    if [ -n "${sum_before:-}" ] && dev="$(ns_dev)"; then
        check "the namespace is readable and intact after the cycles" \
            sh -c "[ \"\$(dd if=$dev bs=4096 count=4 2>/dev/null | md5sum | cut -d' ' -f1)\" = $sum_before ]"
    else
        bad "the namespace after the cycles" "no block device"
    fi
fi

# dis-tool qualify's rebind step on the real kernel (issue 12): 3 lend/unlend cycles of the
# NVMe controller through the plan file, each checked by reading the namespace back.
if [ -n "$nvme" ] && [ -n "${sum_before:-}" ] && [ "$pool_kind" = 1 ]; then
    # The check: the namespace (its block device comes back asynchronously) holds the
    # pattern written before the lend checks.
    cat >/tmp/ns-check.sh <<CHECK
i=0
while [ \$i -lt 100 ]; do
    for b in /dev/nvme*n1; do
        [ -b "\$b" ] && [ "\$(dd if=\$b bs=4096 count=4 2>/dev/null | md5sum | cut -d' ' -f1)" = $sum_before ] && exit 0
    done
    sleep 0.1
    i=\$((i + 1))
done
exit 1
CHECK
    cat >/tmp/rebind.toml <<PLAN
[plan]
name = "vm-rebind"

[[step]]
name = "rebind"
kind = "rebind"
device = "$nvme"
cycles = 3
node = 4
state_dir = "$state"
check = "sh /tmp/ns-check.sh"
PLAN
    echo "+ dis-tool qualify --plan /tmp/rebind.toml" >>"$lend_log"
    dis-tool qualify --plan /tmp/rebind.toml --junit /tmp/out/rebind.xml >/tmp/q.out 2>&1
    q_rc=$?
    cat /tmp/q.out >>"$lend_log"
    if [ "$q_rc" = 0 ]; then ok "qualify rebind: 3 cycles passed"; else bad "qualify rebind: 3 cycles passed" "exit $q_rc: $(tail -c 300 /tmp/q.out)"; fi
    check "qualify rebind: the JUnit file has 3 cases and no failure" \
        sh -c "[ \$(grep -c '<testcase ' /tmp/out/rebind.xml) = 3 ] && ! grep -q '<failure' /tmp/out/rebind.xml"
    check "nvme bound after qualify rebind" wait_driver "$nvme" nvme
fi

# The audit log has a row per step.
dis-tool device history -o json --limit 1000 >/tmp/out/lend-history.json 2>&1
check "the audit log has lend step rows" grep -q 'lend step 1' /tmp/out/lend-history.json
check "the audit log has unlend or rollback rows" \
    sh -c "grep -q 'unlend step 1' /tmp/out/lend-history.json || grep -q 'lend rollback 1' /tmp/out/lend-history.json"

kill "$disd_pid" 2>/dev/null
wait "$disd_pid" 2>/dev/null
