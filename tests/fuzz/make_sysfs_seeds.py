#!/usr/bin/env python3
"""Writes the sysfs fuzz target's seed corpus (corpus/sysfs/) from the config spaces of
the lspci dumps in corpus/dump/ (record format: see fuzz_sysfs.cpp). Rerun only to
regenerate; the seeds are kept in the repository."""
import pathlib, re, sys

here = pathlib.Path(__file__).resolve().parent

def config(dump):
    out = bytearray()
    for line in dump.read_text().splitlines():
        m = re.match(r"^([0-9a-f]{2,3}): ((?:[0-9a-f]{2} ?){16})$", line)
        if m:
            out += bytes.fromhex(m.group(2))
    return bytes(out)

def record(path, body):
    return b"@" + path.encode() + b"\n" + body

def write(name, records):
    (here / "corpus/sysfs" / name).write_bytes(b"\n".join(records))

bridge = config(here / "corpus/dump/cap-MSI-mapping.txt")   # a PCI bridge
usb = config(here / "corpus/dump/cap-pci-af.txt")          # an endpoint
debug = config(here / "corpus/dump/cap-debug-port.txt")    # an endpoint
rp, ep = "0000:00:01.0", "0000:01:00.0"
write("bridge-endpoint", [
    record(rp + "/config", bridge),
    record(rp + "/numa_node", b"0\n"),
    record(rp + "/" + ep + "/config", usb),
    record(rp + "/" + ep + "/driver", b"uhci_hcd\n"),
    record(rp + "/" + ep + "/iommu_group", b"7\n"),
    record(rp + "/" + ep + "/numa_node", b"-1\n"),
    record(rp + "/" + ep + "/reset_method", b"flr bus\n"),
    record(rp + "/" + ep + "/resource",
           b"0x000000000000e000 0x000000000000e01f 0x0000000000040101\n" * 1 +
           b"0x0000000000000000 0x0000000000000000 0x0000000000000000\n"),
    record(rp + "/" + ep + "/aer_dev_correctable", b"RxErr 0\nBadTLP 3\nTOTAL_ERR_COR 3\n"),
])
write("flat-two", [
    record("0000:00:1d.0/config", usb),
    record("0000:00:02.1/config", debug),
    record("0000:00:02.1/iommu_group", b"3\n"),
])
write("stray-entries", [
    record("0000:00:02.1/config", debug),
    record("~0000:00:03.0", b""),
    record("!new_id", b"junk\n"),
])
