// Hand-built Topology snapshots shared by the iommu, p2p and readiness unit tests.
#pragma once

#include "dis/pci.hpp"

#include <optional>
#include <string>
#include <vector>

namespace dis::test {

inline pci::Bdf bdf_of(const std::string& text) {
    return pci::Bdf::parse(text);
}

inline pci::Acs full_acs() {
    pci::AcsBits all{true, true, true, true, true, false, false};
    return {all, all};
}

inline pci::Device make_device(const std::string& bdf, std::optional<std::string> parent) {
    pci::Device d;
    d.bdf = bdf_of(bdf);
    if (parent)
        d.parent = bdf_of(*parent);
    d.vendor_id = 0x1234;
    d.device_id = 0x0001;
    return d;
}

inline pci::Device endpoint(const std::string& bdf, std::optional<std::string> parent,
                            std::uint64_t bar_size = 16u << 20) {
    pci::Device d = make_device(bdf, std::move(parent));
    d.class_id = 0x0200;
    d.class_name = "Ethernet controller";
    d.port_type = pci::PortType::endpoint;
    pci::Link link;
    link.max_speed = link.speed = "8GT/s";
    link.max_width = link.width = 8;
    d.link = link;
    pci::Bar bar;
    bar.index = 0;
    bar.base = 0xf0000000;
    bar.size = bar_size;
    bar.is_64bit = true;
    bar.prefetchable = true;
    d.bars.push_back(bar);
    return d;
}

inline pci::Device bridge(const std::string& bdf, std::optional<std::string> parent,
                          pci::PortType type, int secondary, std::optional<pci::Acs> acs,
                          int subordinate = -1) {
    pci::Device d = make_device(bdf, std::move(parent));
    d.class_id = 0x0604;
    d.class_name = "PCI bridge";
    d.header_type = 1;
    d.port_type = type;
    d.secondary_bus = static_cast<std::uint8_t>(secondary);
    d.subordinate_bus = static_cast<std::uint8_t>(subordinate < 0 ? secondary : subordinate);
    d.acs = acs;
    return d;
}

inline pci::Device root_port(const std::string& bdf, int secondary, std::optional<pci::Acs> acs,
                             int subordinate = -1) {
    return bridge(bdf, std::nullopt, pci::PortType::root_port, secondary, acs, subordinate);
}

inline pci::Device downstream_port(const std::string& bdf, const std::string& parent, int secondary,
                                   std::optional<pci::Acs> acs) {
    return bridge(bdf, parent, pci::PortType::downstream_port, secondary, acs);
}

inline pci::Device pcie_to_pci_bridge(const std::string& bdf, const std::string& parent,
                                      int secondary) {
    return bridge(bdf, parent, pci::PortType::pcie_to_pci_bridge, secondary, std::nullopt);
}

inline pci::Device host_bridge(const std::string& bdf, std::uint16_t vendor, std::uint16_t device) {
    pci::Device d = make_device(bdf, std::nullopt);
    d.vendor_id = vendor;
    d.device_id = device;
    d.class_id = 0x0600;
    d.class_name = "Host bridge";
    return d;
}

// 00:00.0 host bridge (8086:3405, not on the kernel's P2P allow-list unless overridden)
// 00:01.0 root port, full ACS      -> 01:00.0 endpoint
// 00:02.0 root port, no ACS cap    -> 02:00.0 endpoint
// 00:03.0 root port, full ACS      -> 04:00.0 switch upstream port
//     05:01.0 downstream port, full ACS (redirects on)  -> 09:00.0 endpoint
//     05:02.0 downstream port, ACS without ReqRedir/CmpltRedir -> 06:00.0 + 06:00.1 (multifunction)
// 00:04.0 root port, full ACS      -> 07:00.0 PCIe-to-PCI bridge -> 08:01.0, 08:02.0
inline std::vector<pci::Device> sample_devices(std::uint16_t host_device = 0x3405) {
    using pci::PortType;
    pci::Acs no_rr = full_acs();
    no_rr.ctl.req_redir = false;
    no_rr.ctl.cmplt_redir = false;
    std::vector<pci::Device> d;
    d.push_back(host_bridge("00:00.0", 0x8086, host_device));
    d.push_back(root_port("00:01.0", 1, full_acs()));
    d.push_back(endpoint("01:00.0", "00:01.0"));
    d.push_back(root_port("00:02.0", 2, std::nullopt));
    d.push_back(endpoint("02:00.0", "00:02.0"));
    d.push_back(root_port("00:03.0", 4, full_acs(), 9));
    d.push_back(bridge("04:00.0", "00:03.0", PortType::upstream_port, 5, std::nullopt, 9));
    d.push_back(downstream_port("05:01.0", "04:00.0", 9, full_acs()));
    d.push_back(downstream_port("05:02.0", "04:00.0", 6, no_rr));
    d.push_back(endpoint("09:00.0", "05:01.0"));
    auto f0 = endpoint("06:00.0", "05:02.0");
    auto f1 = endpoint("06:00.1", "05:02.0");
    f0.multifunction = f1.multifunction = true;
    d.push_back(f0);
    d.push_back(f1);
    d.push_back(root_port("00:04.0", 7, full_acs(), 8));
    d.push_back(pcie_to_pci_bridge("07:00.0", "00:04.0", 8));
    auto c1 = endpoint("08:01.0", "07:00.0");
    auto c2 = endpoint("08:02.0", "07:00.0");
    c1.port_type.reset();
    c1.link.reset();
    c2.port_type.reset();
    c2.link.reset();
    d.push_back(c1);
    d.push_back(c2);
    return d;
}

inline pci::Topology sample_topology(pci::Source source, std::uint16_t host_device = 0x3405) {
    return pci::Topology(std::move(source), sample_devices(host_device));
}

} // namespace dis::test
