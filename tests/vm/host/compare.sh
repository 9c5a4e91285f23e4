#!/usr/bin/env bash
# Host side of the VM test bed: compares what dis-tool said inside the guest with what lspci
# and the guest kernel's sysfs said at the same moment (the files checks.sh captured).
#
#   tests/vm/host/compare.sh GUEST_DIR
#
# For each snapshot (base: after boot; after: the NVMe's 2 VFs enabled and the edu device
# bound to vfio-pci):
#  1. pci list vs lspci -vvv: the same devices, and per device ids, class, prog-if,
#     revision, subsystem, driver, IOMMU group, port type, link capability and status, FLR,
#     SR-IOV counts, ACS capability and control bits, every BAR (type, base, size, width,
#     prefetch), a bridge's bus numbers, AER capability and the status bits set; class,
#     vendor and device names vs lspci -vmm.
#  2. pci list vs sysfs: ids, driver, IOMMU group, reset_method, sriov_totalvfs and
#     sriov_numvfs, FLR vs the kernel's reset methods, parent (the device path), numa_node,
#     config_size (the size of the sysfs config file).
#  3. iommu vs /sys/kernel/iommu_groups: the same groups with the same members; each device's
#     group, shares_with and isolated verdict; whether the two endpoints below the switch share
#     a group exactly as the kernel grouped them.
#  4. device check vs sysfs: driver, reset methods (read from sysfs), SR-IOV totals, group.
# Prints one PASS/FAIL line per check and "VM-HOST: N passed, M failed"; exits 1 on failure.
set -euo pipefail

dir="${1:?usage: compare.sh GUEST_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
pass=0
fail=0
ok() {
    pass=$((pass + 1))
    echo "PASS $*"
}
bad() {
    fail=$((fail + 1))
    echo "FAIL $*"
}
# same NAME EXPECTED ACTUAL [EXPECTED_FROM] [ACTUAL_FROM]: one check. Rows are read with IFS=tab, which
# collapses empty fields: every column is "-" rather than empty.
same() {
    if [ "$2" = "$3" ]; then
        ok "$1 = $2"
    else
        bad "$1: ${4:-expected} '$2', ${5:-dis-tool} '$3'"
    fi
}

# dis-tool's pci list as rows in lspci-table.awk's column order.
columns() {
    jq -r '
      def hexs: if . < 16 then "0123456789abcdef"[.:.+1]
                else ((. / 16 | floor) | hexs) + ((. - 16 * (. / 16 | floor)) | hexs) end;
      def link: if . == null then "-" else "\(.max_speed) x\(.max_width)" end;
      def acs($b): [ "SrcValid","TransBlk","ReqRedir","CmpltRedir","UpstreamFwd","EgressCtrl",
                    "DirectTrans" ] | map(. + (if $b[.] then "+" else "-" end)) | join(",");
      .[] | [ .bdf, .vendor_id, .device_id, .class, .prog_if, .revision,
              .subsystem_vendor_id, .subsystem_device_id, (.driver // "-"),
              (if .iommu_group == null then "-" else (.iommu_group | tostring) end),
              (.port_type // "-"),
              (.link | link),
              (if .link == null then "-" else "\(.link.speed) x\(.link.width)" end),
              (if (.port_type | IN("endpoint", "legacy_endpoint", "rc_integrated_endpoint") | not)
               then "n/a" elif .flr_capable then "yes" else "no" end),
              (if .sriov == null then "-"
               else "\(.sriov.initial_vfs)/\(.sriov.total_vfs)/\(.sriov.num_vfs)/\(.sriov.vf_device_id)" end),
              (if .acs == null then "-" else acs(.acs.cap) end),
              (if .acs == null then "-" else acs(.acs.ctl) end),
              (if (.bars | length) == 0 then "-"
               else [ .bars[] | "\(.index):\(.type):\(.base):\(.size // "?"):" +
                      (if .is_64bit then "64" else "32" end) + ":" +
                      (if .prefetchable then "pf" else "np" end) +
                      (if .virtual then ":virtual" else "" end) ] | join(";") end),
              (if .primary_bus == null then "-"
               else [ .primary_bus, .secondary_bus, .subordinate_bus ]
                    | map(hexs | if length < 2 then "0" + . else . end) | join("/") end),
              (if .aer == null then "-"
               else "UE[\(.aer.uncorrectable_status | sort | join(","))] " +
                    "CE[\(.aer.correctable_status | sort | join(","))]" end)
            ] | @tsv' "$1"
}

names=(bdf vendor_id device_id class prog_if revision subsystem_vendor_id subsystem_device_id
    driver iommu_group port_type "link max" "link now" flr_capable "sriov init/total/num/vf_id"
    "acs cap" "acs ctl" bars "bus numbers" "aer capability and status")

compare_snapshot() {
    local p="$1" f
    for f in pci-list.json iommu.json lspci-vvv.txt sysfs.tsv; do
        if [ ! -s "$dir/$p.$f" ]; then
            bad "$p: $f was not captured"
            return
        fi
    done
    if ! jq -e 'type == "array"' "$dir/$p.pci-list.json" >/dev/null 2>&1; then
        bad "$p: pci list -o json is not a JSON array"
        return
    fi
    local lspci_rows tool_rows
    lspci_rows="$(awk -f "$here/lspci-table.awk" "$dir/$p.lspci-vvv.txt" | sort)"
    tool_rows="$(columns "$dir/$p.pci-list.json" | sort)"

    # 1. The same devices, then every column of every device.
    same "$p: devices listed (pci list vs lspci)" "$(cut -f1 <<<"$lspci_rows" | tr '\n' ' ')" \
        "$(cut -f1 <<<"$tool_rows" | tr '\n' ' ')" "lspci"
    local bdf lrow trow i
    while IFS= read -r lrow; do
        bdf="${lrow%%$'\t'*}"
        trow="$(grep -P "^\Q$bdf\E\t" <<<"$tool_rows" || true)"
        [ -n "$trow" ] || continue
        IFS=$'\t' read -r -a l <<<"$lrow"
        IFS=$'\t' read -r -a t <<<"$trow"
        for i in $(seq 1 $((${#names[@]} - 1))); do
            same "$p: $bdf ${names[$i]} (vs lspci)" "${l[$i]}" "${t[$i]}" "lspci"
        done
    done <<<"$lspci_rows"

    # Names as lspci -vmm spells them ("Device 29c0" where pci.ids has none).
    local -A tool_names=()
    while IFS=$'\t' read -r b rest; do
        tool_names[$b]="$rest"
    done < <(jq -r '.[] | [ .bdf, (.class_name // "-"), (.vendor_name // "-"),
        (.device_name // "-") ] | @tsv' "$dir/$p.pci-list.json")
    local lc lv ld tc tv td
    while IFS=$'\t' read -r b lc lv ld; do
        [ -n "${tool_names[$b]:-}" ] || continue
        IFS=$'\t' read -r tc tv td <<<"${tool_names[$b]}"
        same "$p: $b class_name (vs lspci -vmm)" "$lc" "$tc" "lspci"
        same "$p: $b vendor_name (vs lspci -vmm)" "$lv" "$tv" "lspci"
        same "$p: $b device_name (vs lspci -vmm)" "$ld" "$td" "lspci"
    done < <(awk -F'\t' '
        function out() { if (b != "") print b "\t" c "\t" v "\t" d; b = "" }
        /^Slot:/ { out(); b = $2; c = v = d = "-" }
        /^Class:/ { c = $2 }
        /^Vendor:/ { v = ($2 ~ /^Vendor [0-9a-f]+$/) ? "-" : $2 }
        /^Device:/ { d = ($2 ~ /^Device [0-9a-f]+$/) ? "-" : $2 }
        END { out() }' "$dir/$p.lspci-vmm.txt")

    # 2. pci list vs sysfs: one row per device, in the sysfs snapshot's column order.
    local tag b vendor device class drv grp rm tot num parent numa cfgsize
    local -A tool_sysfs=()
    while IFS=$'\t' read -r b rest; do
        tool_sysfs[$b]="$rest"
    done < <(jq -r '.[] | [ .bdf, "0x\(.vendor_id)", "0x\(.device_id)", (.driver // "-"),
        (if .iommu_group == null then "-" else (.iommu_group | tostring) end),
        (if .reset_methods == [] then "-" else .reset_methods | join(" ") end),
        (if .sriov == null then "-" else (.sriov.total_vfs | tostring) end),
        (if .sriov == null then "-" else (.sriov.num_vfs | tostring) end),
        (if .flr_capable then "yes" else "no" end), (.parent // "-"),
        (if .numa_node == null then "-1" else (.numa_node | tostring) end),
        "\(.class)\(.prog_if)", (.config_size | tostring), (.physfn // "-") ] | @tsv' \
        "$dir/$p.pci-list.json")
    local physfn
    while IFS=$'\t' read -r tag b vendor device class drv grp rm tot num parent numa cfgsize \
        physfn; do
        [ "$tag" = device ] || continue
        if [ -z "${tool_sysfs[$b]:-}" ]; then
            bad "$p: $b is in sysfs but not in pci list"
            continue
        fi
        local tv td tdrv tgrp trm ttot tnum tflr tparent tnuma tclass tcfg tphysfn
        IFS=$'\t' read -r tv td tdrv tgrp trm ttot tnum tflr tparent tnuma tclass tcfg tphysfn \
            <<<"${tool_sysfs[$b]}"
        same "$p: $b physfn (vs the sysfs physfn link)" "$physfn" "$tphysfn" "sysfs"
        same "$p: $b config_size (vs the size of sysfs config)" "$cfgsize" "$tcfg" "sysfs"
        same "$p: $b class and prog-if (vs sysfs class)" "${class#0x}" "$tclass" "sysfs"
        same "$p: $b parent (vs the sysfs device path)" "$parent" "$tparent" "sysfs"
        # numa_node -1 (no node) is null in the JSON.
        same "$p: $b numa_node (vs sysfs)" "$numa" "$tnuma" "sysfs"
        same "$p: $b vendor:device (vs sysfs)" "$vendor:$device" "$tv:$td" "sysfs"
        same "$p: $b driver (vs sysfs)" "$drv" "$tdrv" "sysfs"
        same "$p: $b iommu_group (vs sysfs)" "$grp" "$tgrp" "sysfs"
        same "$p: $b reset_methods (vs sysfs reset_method)" "$rm" "$trm" "sysfs"
        same "$p: $b sriov total_vfs/num_vfs (vs sysfs)" "$tot/$num" "$ttot/$tnum" "sysfs"
        # The kernel offers "flr" exactly when DevCap advertises FLR (no quirks on QEMU's ids).
        same "$p: $b flr_capable (vs flr in sysfs reset_method)" \
            "$(grep -qw flr <<<"$rm" && echo yes || echo no)" "$tflr" "sysfs"
    done <"$dir/$p.sysfs.tsv"

    # 3. iommu vs /sys/kernel/iommu_groups.
    local kernel_groups tool_groups
    kernel_groups="$(awk -F'\t' '$1 == "group" { m[$2] = m[$2] " " $3 }
        END { for (g in m) print g ":" m[g] }' "$dir/$p.sysfs.tsv" | sort -n)"
    tool_groups="$(jq -r '.groups[] | "\(.group):" + (.devices | sort | map(" " + .) | join(""))' \
        "$dir/$p.iommu.json" | sort -n)"
    same "$p: iommu groups and members (vs /sys/kernel/iommu_groups)" \
        "$(tr '\n' '|' <<<"$kernel_groups")" "$(tr '\n' '|' <<<"$tool_groups")" "kernel"
    same "$p: iommu_present" "true" "$(jq -r '.iommu_present' "$dir/$p.iommu.json")"
    same "$p: groups read from the kernel, not predicted" "false" \
        "$(jq -r '.groups_predicted' "$dir/$p.iommu.json")"
    local -A tool_iso=()
    while IFS=$'\t' read -r b rest; do
        tool_iso[$b]="$rest"
    done < <(jq -r '.devices[] | [ .bdf, (if .shares_with == [] then "-" else .shares_with | sort | join(" ") end),
        (.isolated | tostring), (if .group == null then "-" else (.group | tostring) end) ] | @tsv' \
        "$dir/$p.iommu.json")
    while IFS=$'\t' read -r tag b vendor device _ drv grp rm tot num parent numa _; do
        [ "$tag" = device ] || continue
        local others bridges_only=true m tshares tiso
        others="$(awk -F'\t' -v g="$grp" -v b="$b" '$1 == "group" && $2 == g && $3 != b { print $3 }' \
            "$dir/$p.sysfs.tsv" | sort | tr '\n' ' ')"
        others="${others% }"
        for m in $others; do
            awk -F'\t' -v m="$m" '$1 == "device" && $2 == m { exit !($5 ~ /^0x0604/) }' \
                "$dir/$p.sysfs.tsv" || bridges_only=false
        done
        [ "$grp" = - ] && bridges_only=false
        if [ -z "${tool_iso[$b]+x}" ]; then
            bad "$p: $b is in sysfs but not in dis-tool iommu"
            continue
        fi
        IFS=$'\t' read -r tshares tiso tgroup <<<"${tool_iso[$b]}"
        same "$p: $b group in the iommu report (vs sysfs)" "$grp" "$tgroup" "sysfs"
        same "$p: $b iommu shares_with (vs kernel group $grp)" "${others:--}" "$tshares" "kernel"
        same "$p: $b isolated (no non-bridge in its kernel group)" "$bridges_only" "$tiso"
    done <"$dir/$p.sysfs.tsv"
    # The two endpoints below the switch.
    local nvme edu kg_n kg_e
    nvme="$(sed -n 's/^nvme=//p' "$dir/roles.txt")"
    edu="$(sed -n 's/^edu=//p' "$dir/roles.txt")"
    if [ -n "$nvme" ] && [ -n "$edu" ]; then
        kg_n="$(awk -F'\t' -v b="$nvme" '$1 == "device" && $2 == b { print $7 }' "$dir/$p.sysfs.tsv")"
        kg_e="$(awk -F'\t' -v b="$edu" '$1 == "device" && $2 == b { print $7 }' "$dir/$p.sysfs.tsv")"
        local ks ts
        ks=$([ "$kg_n" = "$kg_e" ] && echo share || echo "do not share")
        ts=$(jq -r --arg a "$nvme" --arg b "$edu" '
            [.devices[] | select(.bdf == $a or .bdf == $b) | .group] |
            if length == 2 and .[0] == .[1] then "share" else "do not share" end' \
            "$dir/$p.iommu.json")
        same "$p: switch endpoints $nvme and $edu $ks a group (kernel groups $kg_n, $kg_e)" \
            "$ks" "$ts" "kernel"
    else
        bad "$p: roles.txt lacks the NVMe or the edu device"
    fi

    # 4. device check vs sysfs: every report in one jq pass.
    local -A tool_dc=()
    local files=("$dir/$p".device-check.*.json)
    while IFS=$'\t' read -r b rest; do
        tool_dc[$b]="$rest"
    done < <(jq -r 'select(type == "object" and has("verdict")) | [ .bdf, (.driver // "-"),
        (if .reset_methods == [] then "-" else .reset_methods | join(" ") end),
        (.reset_methods_from_sysfs | tostring),
        (if .sriov == null then "-" else (.sriov.total_vfs | tostring) end),
        (if .sriov == null then "-" else (.sriov.num_vfs | tostring) end),
        (if .isolation.group == null then "-" else (.isolation.group | tostring) end),
        ([ .isolation.reasons[] | select(test("multifunction")) ] | length | tostring),
        .verdict ] | @tsv' "${files[@]}" 2>/dev/null || true)
    while IFS=$'\t' read -r tag b vendor device _ drv grp rm tot num parent numa _ physfn; do
        [ "$tag" = device ] || continue
        # base: every device has a report; after: the NVMe PF, its VFs (same ids) and edu.
        if [ "$p" != base ] && [ "$vendor:$device" != 0x1b36:0x0010 ] &&
            [ "$vendor:$device" != 0x1234:0x11e8 ]; then
            continue
        fi
        if [ -z "${tool_dc[$b]:-}" ]; then
            bad "$p: device check $b printed no report" \
                "($(head -c 200 "$dir/$p.device-check.$b.json.err" 2>/dev/null))"
            continue
        fi
        local tdrv trm tfrom ttot tnum tgrp tmf
        IFS=$'\t' read -r tdrv trm tfrom ttot tnum tgrp tmf _ <<<"${tool_dc[$b]}"
        # A VF is no multifunction device for the kernel (pci_iov_add_virtfn, not pci_scan_slot,
        # sets it up; its header says single-function), so no reason may call it one.
        if [ "$physfn" != - ]; then
            same "$p: device check $b gives a VF no multifunction reason" 0 "$tmf"
        fi
        same "$p: device check $b driver (vs sysfs)" "$drv" "$tdrv" "sysfs"
        same "$p: device check $b reset_methods (vs sysfs reset_method)" "$rm" "$trm" "sysfs"
        same "$p: device check $b reset methods came from sysfs" \
            "$([ "$rm" != - ] && echo true || echo false)" "$tfrom"
        same "$p: device check $b sriov total_vfs/num_vfs (vs sysfs)" "$tot/$num" "$ttot/$tnum" "sysfs"
        same "$p: device check $b iommu group (vs sysfs)" "$grp" "$tgrp" "sysfs"
    done <"$dir/$p.sysfs.tsv"
}

found=0
for p in base after; do
    if [ -f "$dir/$p.sysfs.tsv" ]; then
        found=1
        compare_snapshot "$p"
    fi
done
[ $found -eq 1 ] || bad "no snapshot in $dir"
[ -f "$dir/after.sysfs.tsv" ] ||
    bad "the after snapshot (NVMe VFs on, edu on vfio-pci) is missing"
# The changes the after snapshot exists for, as the kernel saw them.
if [ -f "$dir/after.sysfs.tsv" ]; then
    edu="$(sed -n 's/^edu=//p' "$dir/roles.txt")"
    nvme="$(sed -n 's/^nvme=//p' "$dir/roles.txt")"
    same "after: sysfs shows $edu on vfio-pci (the state dis-tool was compared in)" "vfio-pci" \
        "$(awk -F'\t' -v b="$edu" '$1 == "device" && $2 == b { print $6 }' "$dir/after.sysfs.tsv")" \
        "wanted" "sysfs"
    same "after: sysfs shows 2 VFs on $nvme" "2" \
        "$(awk -F'\t' -v b="$nvme" '$1 == "device" && $2 == b { print $10 }' "$dir/after.sysfs.tsv")" \
        "wanted" "sysfs"
fi

echo "VM-HOST: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
