// TEMPORARY: minimal Topology/Bdf definitions so the iommu branch links before branch `pci`
// lands. Deleted when `pci` is merged (its lib/pci sources own these definitions).
#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <algorithm>
#include <cstdio>

namespace dis::pci {

std::string Bdf::to_string() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, device, function);
    return buf;
}

std::optional<Bdf> Bdf::try_parse(std::string_view text) {
    unsigned dom = 0, b = 0, d = 0, f = 0;
    std::string s(text);
    char extra = 0;
    if (std::sscanf(s.c_str(), "%x:%x:%x.%x%c", &dom, &b, &d, &f, &extra) == 4) {
    } else if (std::sscanf(s.c_str(), "%x:%x.%x%c", &b, &d, &f, &extra) == 3) {
        dom = 0;
    } else {
        return std::nullopt;
    }
    if (b > 0xff || d > 0x1f || f > 7)
        return std::nullopt;
    return Bdf{dom, static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(d),
               static_cast<std::uint8_t>(f)};
}

Bdf Bdf::parse(std::string_view text) {
    if (auto b = try_parse(text))
        return *b;
    throw Error(ErrorKind::invalid_input, "invalid PCI address '" + std::string(text) + "'");
}

Topology::Topology(Source source, std::vector<Device> devices)
    : m_source(std::move(source)), m_devices(std::move(devices)) {
    std::sort(m_devices.begin(), m_devices.end(),
              [](const Device& a, const Device& b) { return a.bdf < b.bdf; });
    for (std::size_t i = 0; i < m_devices.size(); ++i)
        m_index[m_devices[i].bdf] = i;
}

const Device* Topology::find(const Bdf& bdf) const {
    auto it = m_index.find(bdf);
    return it == m_index.end() ? nullptr : &m_devices[it->second];
}

const Device& Topology::get(const Bdf& bdf) const {
    if (auto* d = find(bdf))
        return *d;
    throw Error(ErrorKind::not_found, "no device " + bdf.to_string());
}

std::vector<const Device*> Topology::children(const Bdf& bdf) const {
    std::vector<const Device*> out;
    for (const auto& d : m_devices)
        if (d.parent && *d.parent == bdf)
            out.push_back(&d);
    return out;
}

std::vector<const Device*> Topology::roots() const {
    std::vector<const Device*> out;
    for (const auto& d : m_devices)
        if (!d.parent)
            out.push_back(&d);
    return out;
}

std::vector<const Device*> Topology::upstream_path(const Bdf& bdf) const {
    std::vector<const Device*> out;
    const Device* d = find(bdf);
    while (d && d->parent) {
        d = find(*d->parent);
        if (d)
            out.push_back(d);
    }
    return out;
}

const char* to_string(PortType type) noexcept {
    switch (type) {
    case PortType::endpoint: return "endpoint";
    case PortType::legacy_endpoint: return "legacy_endpoint";
    case PortType::root_port: return "root_port";
    case PortType::upstream_port: return "upstream_port";
    case PortType::downstream_port: return "downstream_port";
    case PortType::pcie_to_pci_bridge: return "pcie_to_pci_bridge";
    case PortType::pci_to_pcie_bridge: return "pci_to_pcie_bridge";
    case PortType::rc_integrated_endpoint: return "rc_integrated_endpoint";
    case PortType::rc_event_collector: return "rc_event_collector";
    case PortType::unknown: break;
    }
    return "unknown";
}

const char* describe(PortType type) noexcept {
    switch (type) {
    case PortType::endpoint: return "Endpoint";
    case PortType::legacy_endpoint: return "Legacy Endpoint";
    case PortType::root_port: return "Root Port";
    case PortType::upstream_port: return "Upstream Port";
    case PortType::downstream_port: return "Downstream Port";
    case PortType::pcie_to_pci_bridge: return "PCI-Express to PCI/PCI-X Bridge";
    case PortType::pci_to_pcie_bridge: return "PCI/PCI-X to PCI-Express Bridge";
    case PortType::rc_integrated_endpoint: return "Root Complex Integrated Endpoint";
    case PortType::rc_event_collector: return "Root Complex Event Collector";
    case PortType::unknown: break;
    }
    return "Unknown";
}

std::optional<std::string> Source::sysfs_root() const {
    if (kind == Kind::dump)
        return std::nullopt;
    return path;
}

Topology scan(const Source& source) {
    throw Error(ErrorKind::os, "reading " + source.path + ": pci::scan arrives with branch pci");
}

} // namespace dis::pci
