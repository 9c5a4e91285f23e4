# `lspci -D -nn -vvv -k` -> one tab-separated row per device, in the column order
# compare.sh builds from dis-tool's JSON (see columns() there):
#   bdf vendor device class prog_if revision svendor sdevice driver iommu_group port_type
#   lnkcap lnksta flr sriov acscap acsctl bars buses aer
# (flr is "n/a" where lspci does not print DevCap FLReset: non-endpoints)
# "-" stands for "not present". mawk-compatible (no strtonum, no gensub).
function hexval(s,    i, c, v) {
    v = 0
    s = tolower(s)
    for (i = 1; i <= length(s); i++) {
        c = index("0123456789abcdef", substr(s, i, 1))
        if (c == 0)
            return -1
        v = v * 16 + c - 1
    }
    return v
}
function bytes(s,    n, u) {
    n = s
    sub(/[KMGT]$/, "", n)
    u = substr(s, length(s))
    n = n + 0
    if (u == "K") n *= 1024
    else if (u == "M") n *= 1048576
    else if (u == "G") n *= 1073741824
    else if (u == "T") n *= 1099511627776
    return sprintf("%.0f", n)
}
function acs_bits(line,    out, names, i, n, k) {
    n = split("SrcValid TransBlk ReqRedir CmpltRedir UpstreamFwd EgressCtrl DirectTrans", names, " ")
    out = ""
    for (i = 1; i <= n; i++) {
        k = "-"
        if (index(line, names[i] "+")) k = "+"
        else if (index(line, names[i] "-")) k = "-"
        else k = "?"
        out = out (i > 1 ? "," : "") names[i] k
    }
    return out
}
function set_bits(line,    n, w, i, out, name, k, j, t, list) {
    n = split(line, w, /[ \t]+/)
    k = 0
    for (i = 2; i <= n; i++)
        if (w[i] ~ /\+$/) {
            name = w[i]
            sub(/\+$/, "", name)
            list[++k] = name
        }
    # insertion sort (mawk has no asort)
    for (i = 2; i <= k; i++)
        for (j = i; j > 1 && list[j - 1] > list[j]; j--) {
            t = list[j]; list[j] = list[j - 1]; list[j - 1] = t
        }
    out = ""
    for (i = 1; i <= k; i++) out = out (i > 1 ? "," : "") list[i]
    return out
}
function flush() {
    if (bdf == "")
        return
    # lspci prints DevCap FLReset only for endpoints; for ports compare.sh checks flr_capable
    # against the kernel's reset_method instead.
    if (ptype != "endpoint" && ptype != "legacy_endpoint" && ptype != "rc_integrated_endpoint")
        flr = "n/a"
    if (aer != "-") aer = "UE[" ue "] CE[" ce "]"
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", \
        bdf, vendor, device, class, progif, rev, svendor, sdevice, driver, group, ptype, \
        lnkcap, lnksta, flr, sriov, acscap, acsctl, (bars == "" ? "-" : bars), buses, aer
}
function reset_device() {
    vendor = device = class = "-"
    progif = "00"; rev = "00"; svendor = "0000"; sdevice = "0000"
    driver = group = ptype = lnkcap = lnksta = sriov = acscap = acsctl = "-"
    flr = "no"; bars = ""; section = ""; sr_init = sr_tot = sr_num = sr_dev = ""; buses = "-"
    aer = "-"; ue = ""; ce = ""
}
function link_of(line,    sp, wd) {
    sp = "?"; wd = "?"
    if (match(line, /Speed [^ ,]+/)) sp = substr(line, RSTART + 6, RLENGTH - 6)
    if (match(line, /Width x[0-9]+/)) wd = substr(line, RSTART + 7, RLENGTH - 7)
    return sp " x" wd
}

# A device's first line: "0000:03:00.0 Non-Volatile memory controller [0108]: Red Hat, Inc.
# QEMU NVM Express Controller [1b36:0010] (rev 02) (prog-if 02 [NVM Express])"
/^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]\.[0-7] / {
    flush()
    reset_device()
    bdf = $1
    rest = substr($0, length($1) + 2)
    if (match(rest, /\[[0-9a-f][0-9a-f][0-9a-f][0-9a-f]\]:/)) class = substr(rest, RSTART + 1, 4)
    # The ids are the last [vvvv:dddd] before any "(rev"/"(prog-if".
    head = rest
    sub(/ \(rev [0-9a-f]+\).*$/, "", head)
    sub(/ \(prog-if .*$/, "", head)
    if (match(head, /\[[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f][0-9a-f][0-9a-f]\]$/)) {
        vendor = substr(head, RSTART + 1, 4)
        device = substr(head, RSTART + 6, 4)
    }
    if (match(rest, /\(rev [0-9a-f]+\)/)) rev = substr(rest, RSTART + 5, RLENGTH - 6)
    if (match(rest, /\(prog-if [0-9a-f]+/)) progif = substr(rest, RSTART + 9, RLENGTH - 9)
    next
}
/^\tSubsystem: / {
    if (match($0, /\[[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f][0-9a-f][0-9a-f]\]$/)) {
        svendor = substr($0, RSTART + 1, 4)
        sdevice = substr($0, RSTART + 6, 4)
    }
    next
}
/^\tIOMMU group: / { group = $3; next }
# A bridge's "Bus: primary=02, secondary=03, subordinate=03, sec-latency=0".
/^\tBus: primary=/ {
    line = $0
    gsub(/[=,]/, " ", line)
    split(line, w, " ")
    buses = w[3] "/" w[5] "/" w[7]
    next
}
/^\tKernel driver in use: / { driver = $5; next }
# The device's own BARs (one tab); the SR-IOV capability's VF BARs have two.
/^\tRegion [0-9]+: / {
    idx = $2
    sub(/:$/, "", idx)
    type = ($3 == "Memory") ? "memory" : "io"
    base = "?"
    if (match($0, / at [0-9a-f]+/)) base = sprintf("%.0f", hexval(substr($0, RSTART + 4, RLENGTH - 4)))
    else if (index($0, "<unassigned>")) base = "unassigned"
    is64 = index($0, "64-bit") ? "64" : "32"
    if (type == "io") is64 = "32"
    pf = index($0, "non-prefetchable") ? "np" : (index($0, "prefetchable") ? "pf" : "np")
    if (type == "io") pf = "np"
    size = "?"
    if (match($0, /\[size=[0-9]+[KMGT]?\]/)) size = bytes(substr($0, RSTART + 6, RLENGTH - 7))
    # "[virtual]": the kernel has the region, the function's own BAR register reads zero
    # (an SR-IOV VF's BARs live in its PF's SR-IOV capability).
    virt = index($0, "[virtual]") ? ":virtual" : ""
    bars = bars (bars == "" ? "" : ";") idx ":" type ":" base ":" size ":" is64 ":" pf virt
    next
}
/^\tCapabilities: \[[0-9a-f]+\] Express \(v[0-9]\) / {
    t = $0
    sub(/^.*Express \(v[0-9]\) /, "", t)
    sub(/ \(.*$/, "", t)
    sub(/,.*$/, "", t)
    if (t == "PCI-Express to PCI/PCI-X Bridge") ptype = "pcie_to_pci_bridge"
    else if (t == "PCI/PCI-X to PCI-Express Bridge") ptype = "pci_to_pcie_bridge"
    else { gsub(/ /, "_", t); ptype = tolower(t) }
    next
}
/^\tCapabilities: \[[0-9a-f]+ v[0-9]+\] Advanced Error Reporting/ { aer = "yes"; next }
# Sub-sections of a capability: two tabs and a name with a colon; continuations have three.
/^\t\t[A-Za-z0-9]+:/ {
    section = $1
    sub(/:.*$/, "", section)
    if (section == "LnkCap") lnkcap = link_of($0)
    if (section == "LnkSta") lnksta = link_of($0)
    if (section == "ACSCap") acscap = acs_bits($0)
    if (section == "ACSCtl") acsctl = acs_bits($0)
    if (section == "DevCap" && index($0, "FLReset+")) flr = "yes"
    # AER status: the bits set ("Name+"), sorted, as names.
    if (section == "UESta") ue = set_bits($0)
    if (section == "CESta") ce = set_bits($0)
}
/^\t\t\t/ {
    if (section == "DevCap" && index($0, "FLReset+")) flr = "yes"
    # AER status: the bits set ("Name+"), sorted, as names.
    if (section == "UESta") ue = set_bits($0)
    if (section == "CESta") ce = set_bits($0)
}
/^\t\tInitial VFs: / {
    line = $0
    if (match(line, /Initial VFs: [0-9]+/)) sr_init = substr(line, RSTART + 13, RLENGTH - 13)
    if (match(line, /Total VFs: [0-9]+/)) sr_tot = substr(line, RSTART + 11, RLENGTH - 11)
    if (match(line, /Number of VFs: [0-9]+/)) sr_num = substr(line, RSTART + 15, RLENGTH - 15)
}
/^\t\tVF offset: / {
    if (match($0, /Device ID: [0-9a-f]+/)) sr_dev = substr($0, RSTART + 11, RLENGTH - 11)
    sriov = sr_init "/" sr_tot "/" sr_num "/" sr_dev
}
END { flush() }
