// The JSON form of a device; the schema is documented in dis-tool-pci(1). Key names are
// fixed identifiers; ids are lowercase hex strings, bus numbers and sizes are integers.
#include "dis/pci.hpp"

#include <nlohmann/json.hpp>

namespace dis::pci {

namespace {

nlohmann::json or_null(const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

template <class T> nlohmann::json or_null(const std::optional<T>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json acs_json(const AcsBits& b) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : k_acs_flags)
        j[f.name] = b.*f.bit;
    return j;
}

} // namespace

nlohmann::json to_json(const Device& d) {
    nlohmann::json j;
    j["bdf"] = d.bdf.to_string();
    j["vendor_id"] = to_hex(d.vendor_id, 4);
    j["device_id"] = to_hex(d.device_id, 4);
    j["class"] = to_hex(d.class_id, 4);
    j["prog_if"] = to_hex(d.prog_if, 2);
    j["revision"] = to_hex(d.revision, 2);
    j["subsystem_vendor_id"] = to_hex(d.subsystem_vendor_id, 4);
    j["subsystem_device_id"] = to_hex(d.subsystem_device_id, 4);
    j["vendor_name"] = or_null(d.vendor_name);
    j["device_name"] = or_null(d.device_name);
    j["class_name"] = or_null(d.class_name);
    j["header_type"] = d.header_type;
    j["multifunction"] = d.multifunction;
    j["parent"] = d.parent ? nlohmann::json(d.parent->to_string()) : nlohmann::json(nullptr);
    j["primary_bus"] = or_null(d.primary_bus);
    j["secondary_bus"] = or_null(d.secondary_bus);
    j["subordinate_bus"] = or_null(d.subordinate_bus);
    j["port_type"] =
        d.port_type ? nlohmann::json(to_string(*d.port_type)) : nlohmann::json(nullptr);
    if (d.link)
        j["link"] = {{"max_speed", d.link->max_speed},   {"max_width", d.link->max_width},
                     {"speed", d.link->speed},           {"width", d.link->width},
                     {"downgraded", d.link->downgraded}, {"dl_active", or_null(d.link->dl_active)}};
    else
        j["link"] = nullptr;
    j["flr_capable"] = d.flr_capable;
    if (d.acs)
        j["acs"] = {{"cap", acs_json(d.acs->cap)}, {"ctl", acs_json(d.acs->ctl)}};
    else
        j["acs"] = nullptr;
    if (d.aer && !d.aer->counters_only)
        j["aer"] = {{"uncorrectable_status", d.aer->uncorrectable_status},
                    {"correctable_status", d.aer->correctable_status}};
    else
        j["aer"] = nullptr;
    if (d.aer && !d.aer->counters.empty())
        j["aer_counters"] = d.aer->counters;
    else
        j["aer_counters"] = nullptr;
    if (d.aer && !d.aer->rootport_totals.empty())
        j["aer_rootport_totals"] = d.aer->rootport_totals;
    else
        j["aer_rootport_totals"] = nullptr;
    if (d.sriov)
        j["sriov"] = {{"initial_vfs", d.sriov->initial_vfs},
                      {"total_vfs", d.sriov->total_vfs},
                      {"num_vfs", d.sriov->num_vfs},
                      {"vf_device_id", to_hex(d.sriov->vf_device_id, 4)}};
    else
        j["sriov"] = nullptr;
    nlohmann::json bars = nlohmann::json::array();
    for (const auto& b : d.bars)
        bars.push_back({{"index", b.index},
                        {"type", b.io ? "io" : "memory"},
                        {"base", b.base},
                        {"size", b.size ? nlohmann::json(b.size) : nlohmann::json(nullptr)},
                        {"is_64bit", b.is_64bit},
                        {"prefetchable", b.prefetchable},
                        {"virtual", b.is_virtual}});
    j["bars"] = std::move(bars);
    j["driver"] = or_null(d.driver);
    j["numa_node"] = or_null(d.numa_node);
    j["iommu_group"] = or_null(d.iommu_group);
    j["reset_methods"] = d.reset_methods;
    j["physfn"] = d.physfn ? nlohmann::json(d.physfn->to_string()) : nlohmann::json(nullptr);
    j["config_size"] = d.config_size;
    return j;
}

} // namespace dis::pci
