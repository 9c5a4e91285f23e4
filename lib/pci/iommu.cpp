// IOMMU groups: the kernel's grouping rules applied to a Topology snapshot.
#include "dis/iommu.hpp"
#include "dis/strings.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <system_error>

namespace dis::pci {

namespace {

// The flags the kernel requires for isolation (REQ_ACS_FLAGS in drivers/iommu/iommu.c).
constexpr bool AcsBits::*k_required_flags[] = {
    &AcsBits::src_valid,
    &AcsBits::req_redir,
    &AcsBits::cmplt_redir,
    &AcsBits::upstream_fwd,
};

std::string join_bdfs(const std::vector<Bdf>& bdfs) {
    std::vector<std::string> parts;
    for (const auto& b : bdfs)
        parts.push_back(b.to_string());
    return join(parts);
}

// pci_acs_flags_enabled(): capabilities a port does not implement count as hard-wired
// enabled, so only bits present in the capability register must be set in control.
AcsCheck check_acs_flags(const Device& device) {
    AcsCheck out;
    if (!device.acs) {
        out.missing.reserve(4);
        for (auto bit : k_required_flags)
            out.missing.push_back(acs_name(bit));
        out.reason = "no ACS capability";
        return out;
    }
    out.has_capability = true;
    for (auto bit : k_required_flags)
        if (device.acs->cap.*bit && !(device.acs->ctl.*bit))
            out.missing.push_back(acs_name(bit));
    out.enabled = out.missing.empty();
    if (!out.enabled)
        out.reason = "ACS " + join(out.missing) + " not enabled";
    return out;
}

// The kernel marks every function above 0 that pci_scan_slot finds as multifunction,
// whatever its header type's bit says; function 0 carries the bit. SR-IOV virtual functions
// are not found by pci_scan_slot: pci_iov_add_virtfn sets each up from its header type
// (pci_hdr_type, VF 0's for all VFs), so a VF is multifunction only by that bit.
bool kernel_multifunction(const Device& device) {
    if (device.physfn)
        return device.multifunction;
    return device.multifunction || device.bdf.function > 0;
}

// True for bridges behind which the kernel sees DMA aliased to the bridge's requester ID
// (pci_for_each_dma_alias): conventional PCI bridges and PCIe-to-PCI/PCI-X bridges.
bool aliases_requester_id(const Device& bridge) {
    if (!bridge.port_type)
        return true;
    return *bridge.port_type == PortType::pcie_to_pci_bridge ||
           *bridge.port_type == PortType::pci_to_pcie_bridge;
}

// pci_acs_path_enabled(start, NULL, REQ_ACS_FLAGS): `start` and every bridge above it.
bool acs_path_enabled(const Topology& topology, const Device& start) {
    if (!check_acs(start).enabled)
        return false;
    for (const Device* up : topology.upstream_path(start.bdf))
        if (!check_acs(*up).enabled)
            return false;
    return true;
}

// The device whose group `device` joins (pci_device_group): the topmost requester-ID alias,
// then upstream while the parent bridge's path to the root lacks ACS.
const Device& group_anchor(const Topology& topology, const Device& device) {
    const Device* anchor = &device;
    for (const Device* up : topology.upstream_path(device.bdf))
        if (up->is_bridge() && aliases_requester_id(*up))
            anchor = up;
    for (const Device* up : topology.upstream_path(anchor->bdf)) {
        if (acs_path_enabled(topology, *up))
            break;
        anchor = up;
    }
    return *anchor;
}

std::optional<Bdf> topmost_alias(const Topology& topology, const Device& device) {
    std::optional<Bdf> alias;
    for (const Device* up : topology.upstream_path(device.bdf))
        if (up->is_bridge() && aliases_requester_id(*up))
            alias = up->bdf;
    return alias;
}

bool same_slot(const Bdf& a, const Bdf& b) {
    return a.domain == b.domain && a.bus == b.bus && a.device == b.device;
}

std::vector<IommuGroup> kernel_groups(const Topology& topology) {
    std::map<int, IommuGroup> by_id;
    for (const auto& d : topology.devices())
        if (d.iommu_group) {
            auto& g = by_id[*d.iommu_group];
            g.id = *d.iommu_group;
            g.devices.push_back(d.bdf);
        }
    std::vector<IommuGroup> out;
    for (auto& [id, g] : by_id)
        out.push_back(std::move(g));
    return out;
}

} // namespace

AcsCheck check_acs(const Device& device) {
    // pci_acs_enabled() in drivers/pci/pci.c, without the device-specific quirks.
    if (!device.port_type) {
        AcsCheck out;
        out.applicable = false;
        out.reason = "conventional PCI: any device on the bus can reach any other";
        return out;
    }
    switch (*device.port_type) {
    case PortType::pcie_to_pci_bridge:
    case PortType::pci_to_pcie_bridge:
    case PortType::rc_event_collector: {
        AcsCheck out;
        out.applicable = false;
        out.has_capability = device.acs.has_value();
        out.reason = std::string(describe(*device.port_type)) + ": ACS does not apply";
        return out;
    }
    case PortType::downstream_port:
    case PortType::root_port:
        return check_acs_flags(device);
    case PortType::endpoint:
    case PortType::upstream_port:
    case PortType::legacy_endpoint:
    case PortType::rc_integrated_endpoint:
        // PCIe 3.0 6.12.1.2: ACS matters for these only within a multifunction device.
        if (kernel_multifunction(device))
            return check_acs_flags(device);
        break;
    case PortType::unknown:
        break;
    }
    AcsCheck out;
    out.enabled = true;
    out.has_capability = device.acs.has_value();
    return out;
}

const DeviceIsolation* IommuReport::find(const Bdf& bdf) const {
    for (const auto& d : devices)
        if (d.bdf == bdf)
            return &d;
    return nullptr;
}

bool iommu_groups_present(const Source& source) {
    auto root = source.sysfs_root();
    if (!root)
        return false;
    std::error_code ec;
    std::filesystem::directory_iterator it(std::filesystem::path(*root) / "kernel/iommu_groups",
                                           ec);
    return !ec && it != std::filesystem::directory_iterator();
}

std::vector<IommuGroup> predict_iommu_groups(const Topology& topology) {
    const auto& devices = topology.devices();
    // Union-find over anchors: members of one group share an anchor; multifunction
    // anchors without ACS join their slot siblings (get_pci_function_alias_group).
    std::map<Bdf, Bdf> parent;
    std::function<Bdf(const Bdf&)> root_of = [&](const Bdf& b) {
        auto it = parent.find(b);
        if (it == parent.end() || it->second == b)
            return b;
        Bdf r = root_of(it->second);
        parent[b] = r;
        return r;
    };
    auto unite = [&](const Bdf& a, const Bdf& b) {
        Bdf ra = root_of(a), rb = root_of(b);
        if (ra != rb)
            parent[std::max(ra, rb)] = std::min(ra, rb);
    };

    std::map<Bdf, Bdf> anchor_of;
    for (const auto& d : devices) {
        const Device& anchor = group_anchor(topology, d);
        anchor_of[d.bdf] = anchor.bdf;
        parent.emplace(anchor.bdf, anchor.bdf);
    }
    for (const auto& d : devices) {
        const Bdf& a = anchor_of[d.bdf];
        if (a != d.bdf)
            continue;
        if (!kernel_multifunction(d) || check_acs(d).enabled)
            continue;
        for (const auto& other : devices)
            if (other.bdf != d.bdf && same_slot(other.bdf, d.bdf) && !check_acs(other).enabled)
                unite(d.bdf, anchor_of[other.bdf]);
    }

    std::map<Bdf, std::vector<Bdf>> members; // group root -> members (BDF order)
    for (const auto& d : devices)
        members[root_of(anchor_of[d.bdf])].push_back(d.bdf);
    std::vector<IommuGroup> groups;
    for (auto& [root, list] : members)
        groups.push_back({0, std::move(list)});
    std::sort(groups.begin(), groups.end(), [](const IommuGroup& a, const IommuGroup& b) {
        return a.devices.front() < b.devices.front();
    });
    for (std::size_t i = 0; i < groups.size(); ++i)
        groups[i].id = static_cast<int>(i);
    return groups;
}

IommuReport analyze_iommu(const Topology& topology) {
    IommuReport report;
    const Source& source = topology.source();
    report.iommu_present = iommu_groups_present(source);
    if (report.iommu_present) {
        report.groups = kernel_groups(topology);
        report.note = "IOMMU groups as the kernel formed them";
    } else {
        report.predicted = true;
        report.groups = predict_iommu_groups(topology);
        if (source.kind == Source::Kind::dump)
            report.note = "a dump carries no IOMMU information; groups are predicted from ACS "
                          "as the kernel would form them with an IOMMU enabled";
        else
            report.note = "no IOMMU: " + source.path +
                          "/kernel/iommu_groups has no groups (IOMMU absent or disabled), so "
                          "device DMA is not isolated; groups are predicted from ACS as the "
                          "kernel would form them with an IOMMU enabled";
    }

    std::map<Bdf, int> group_of;
    std::map<int, const IommuGroup*> group_by_id;
    for (const auto& g : report.groups) {
        group_by_id[g.id] = &g;
        for (const auto& b : g.devices)
            group_of[b] = g.id;
    }

    for (const auto& d : topology.devices()) {
        DeviceIsolation iso;
        iso.bdf = d.bdf;
        if (auto it = group_of.find(d.bdf); it != group_of.end())
            iso.group = it->second;

        for (const Device* up : topology.upstream_path(d.bdf)) {
            AcsCheck c = check_acs(*up);
            if (!c.enabled)
                iso.acs_gaps.push_back({up->bdf, c.has_capability, c.missing, c.reason});
        }
        iso.alias_bridge = topmost_alias(topology, d);

        bool shares_endpoint = false;
        bool shares_sibling = false;
        if (iso.group) {
            for (const auto& b : group_by_id[*iso.group]->devices) {
                if (b == d.bdf)
                    continue;
                iso.shares_with.push_back(b);
                const Device* other = topology.find(b);
                if (!other || !other->is_bridge())
                    shares_endpoint = true;
                if (same_slot(b, d.bdf))
                    shares_sibling = true;
            }
        }
        iso.isolated = iso.group && !shares_endpoint;

        if (!iso.group) {
            iso.reasons.push_back("in no IOMMU group (the kernel did not attach it to an "
                                  "IOMMU)");
        } else if (!iso.isolated) {
            iso.reasons.push_back("shares group " + std::to_string(*iso.group) + " with " +
                                  join_bdfs(iso.shares_with));
            if (iso.alias_bridge) {
                const Device* br = topology.find(*iso.alias_bridge);
                iso.reasons.push_back("behind " +
                                      std::string(br && br->port_type ? describe(*br->port_type)
                                                                      : "conventional PCI bridge") +
                                      " " + iso.alias_bridge->to_string() +
                                      ": its requester ID aliases every device behind it");
            }
            for (const auto& gap : iso.acs_gaps) {
                if (!gap.has_capability && gap.missing.size() == std::size(k_required_flags))
                    iso.reasons.push_back("ACS missing at bridge " + gap.bridge.to_string() +
                                          " (no ACS capability; needs " + join(gap.missing) + ")");
                else if (!gap.missing.empty())
                    iso.reasons.push_back("ACS missing at bridge " + gap.bridge.to_string() + " (" +
                                          join(gap.missing) + " not enabled)");
                else
                    iso.reasons.push_back("bridge " + gap.bridge.to_string() + ": " + gap.reason);
            }
            AcsCheck own = check_acs(d);
            if (shares_sibling && !own.enabled)
                iso.reasons.push_back("multifunction device without ACS isolation between its "
                                      "functions (" +
                                      own.reason + ")");
        }
        report.devices.push_back(std::move(iso));
    }
    return report;
}

nlohmann::json to_json(const DeviceIsolation& iso) {
    nlohmann::json gaps = nlohmann::json::array();
    for (const auto& g : iso.acs_gaps)
        gaps.push_back({{"bridge", g.bridge.to_string()},
                        {"acs_capability", g.has_capability},
                        {"missing", g.missing},
                        {"reason", g.reason}});
    nlohmann::json shares = nlohmann::json::array();
    for (const auto& b : iso.shares_with)
        shares.push_back(b.to_string());
    return {
        {"bdf", iso.bdf.to_string()},
        {"group", iso.group ? nlohmann::json(*iso.group) : nlohmann::json(nullptr)},
        {"isolated", iso.isolated},
        {"shares_with", shares},
        {"acs_gaps", gaps},
        {"alias_bridge",
         iso.alias_bridge ? nlohmann::json(iso.alias_bridge->to_string()) : nlohmann::json()},
        {"reasons", iso.reasons},
    };
}

nlohmann::json to_json(const IommuReport& report) {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : report.groups) {
        nlohmann::json members = nlohmann::json::array();
        for (const auto& b : g.devices)
            members.push_back(b.to_string());
        groups.push_back({{"group", g.id}, {"devices", members}});
    }
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& d : report.devices)
        devices.push_back(to_json(d));
    return {{"iommu_present", report.iommu_present},
            {"groups_predicted", report.predicted},
            {"note", report.note},
            {"groups", groups},
            {"devices", devices}};
}

} // namespace dis::pci
