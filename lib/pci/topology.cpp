// The Topology snapshot: lookups over the sorted device list.
#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <algorithm>

namespace dis::pci {

std::optional<std::string> Source::sysfs_root() const {
    if (kind == Kind::dump)
        return std::nullopt;
    return path;
}

bool Aer::has_errors() const {
    if (!uncorrectable_status.empty() || !correctable_status.empty())
        return true;
    for (const auto& [file, values] : counters)
        for (const auto& [name, value] : values)
            if (value != 0)
                return true;
    return false;
}

Topology::Topology(Source source, std::vector<Device> devices)
    : m_source(std::move(source)), m_devices(std::move(devices)) {
    // A scan hands them over sorted already; stable_sort would still move every device.
    const auto by_bdf = [](const Device& a, const Device& b) { return a.bdf < b.bdf; };
    if (!std::is_sorted(m_devices.begin(), m_devices.end(), by_bdf))
        std::stable_sort(m_devices.begin(), m_devices.end(), by_bdf);
    for (std::size_t i = 0; i < m_devices.size(); ++i)
        m_index.emplace(m_devices[i].bdf, i);
}

const Device* Topology::find(const Bdf& bdf) const {
    auto it = m_index.find(bdf);
    return it == m_index.end() ? nullptr : &m_devices[it->second];
}

const Device& Topology::get(const Bdf& bdf) const {
    if (const Device* d = find(bdf))
        return *d;
    throw Error(ErrorKind::not_found, "no PCI device " + bdf.to_string());
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
        if (!d.parent || !find(*d.parent))
            out.push_back(&d);
    return out;
}

std::vector<const Device*> Topology::upstream_path(const Bdf& bdf) const {
    std::vector<const Device*> out;
    const Device* d = &get(bdf);
    // Bounded by the device count so a malformed snapshot with a parent cycle cannot hang.
    while (d->parent && out.size() < m_devices.size()) {
        const Device* p = find(*d->parent);
        if (!p)
            break;
        out.push_back(p);
        d = p;
    }
    return out;
}

} // namespace dis::pci
