// Lending readiness: combines class, driver, reset, IOMMU, ACS, P2P, BAR and SR-IOV facts
// of one device into findings and a verdict. Read-only: nothing here touches the device.
#include "dis/readiness.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace dis::pci {

namespace {

std::string size_text(std::uint64_t bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    std::uint64_t v = bytes;
    while (u < 4 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        ++u;
    }
    return std::to_string(v) + " " + units[u];
}

// Reset methods the kernel could use, derived from config space when sysfs has no
// reset_method file: FLR from DevCap, a secondary bus reset when the device is alone on
// its bus (pci_parent_bus_reset refuses otherwise).
std::vector<std::string> derived_reset_methods(const Topology& topology, const Device& d) {
    std::vector<std::string> out;
    if (d.flr_capable)
        out.push_back("flr");
    if (d.parent && topology.children(*d.parent).size() == 1)
        out.push_back("bus");
    return out;
}

void add(ReadinessReport& r, const char* check, Severity s, std::string message) {
    r.findings.push_back({check, s, std::move(message)});
}

} // namespace

const char* to_string(Severity severity) noexcept {
    switch (severity) {
    case Severity::ok:
        return "ok";
    case Severity::warning:
        return "warning";
    case Severity::error:
        break;
    }
    return "error";
}

const char* to_string(Verdict verdict) noexcept {
    switch (verdict) {
    case Verdict::ready:
        return "ready";
    case Verdict::ready_with_warnings:
        return "ready_with_warnings";
    case Verdict::not_ready:
        break;
    }
    return "not_ready";
}

int exit_code_for(Verdict verdict, bool strict) noexcept {
    switch (verdict) {
    case Verdict::ready:
        return k_exit_ok;
    case Verdict::ready_with_warnings:
        return strict ? k_exit_check_failed : k_exit_ok;
    case Verdict::not_ready:
        break;
    }
    return k_exit_check_failed;
}

ReadinessReport check_readiness(const Topology& topology, const Bdf& bdf,
                                const ReadinessOptions& options) {
    const Device& d = topology.get(bdf);
    const bool is_dump = topology.source().kind == Source::Kind::dump;
    ReadinessReport r;
    r.bdf = d.bdf;
    r.class_id = d.class_id;
    r.class_name = d.class_name;
    r.driver = d.driver;
    r.window_size = options.window_size;
    r.sriov = d.sriov;
    r.bars = d.bars;

    // Class: bridges route other devices' traffic and are never lent themselves.
    const std::string cls = to_hex(d.class_id, 4);
    // Names of unknown classes already carry the number ("Unassigned class [ffff]").
    std::string class_text = d.class_name.empty() ? std::string("class [") + cls + "]"
                             : d.class_name.find('[') != std::string::npos
                                 ? d.class_name
                                 : d.class_name + " [" + cls + "]";
    if (d.is_bridge() || (d.class_id >> 8) == 0x06)
        add(r, "class", Severity::error,
            class_text + " is a bridge; lend the endpoints behind it instead");
    else
        add(r, "class", Severity::ok, class_text);

    // Driver.
    if (is_dump)
        add(r, "driver", Severity::warning, "unknown: a dump has no driver information");
    else if (!d.driver)
        add(r, "driver", Severity::ok, "no driver bound");
    else
        add(r, "driver", Severity::warning,
            "bound to " + *d.driver + "; it must be unbound before the device is lent");

    // Reset.
    if (!d.reset_methods.empty()) {
        r.reset_methods = d.reset_methods;
        r.reset_methods_known = true;
    } else {
        r.reset_methods = derived_reset_methods(topology, d);
    }
    std::string origin = r.reset_methods_known ? "" : " (derived from config space)";
    if (r.reset_methods.empty())
        add(r, "reset", Severity::warning,
            "no reset method" + origin + ": the device cannot be reset between borrowers");
    else if (std::find(r.reset_methods.begin(), r.reset_methods.end(), "flr") ==
             r.reset_methods.end())
        add(r, "reset", Severity::warning,
            "no function-level reset; available: " + join(r.reset_methods) + origin);
    else
        add(r, "reset", Severity::ok, join(r.reset_methods) + origin);

    // IOMMU isolation.
    IommuReport iommu = analyze_iommu(topology);
    r.iommu_present = iommu.iommu_present;
    if (const DeviceIsolation* iso = iommu.find(d.bdf))
        r.isolation = *iso;
    std::string group_text =
        r.isolation.group ? "group " + std::to_string(*r.isolation.group) : "no group";
    if (!iommu.iommu_present) {
        std::string predicted = r.isolation.isolated
                                    ? "predicted alone in its group"
                                    : "predicted to share a group: " + join(r.isolation.reasons);
        add(r, "iommu", Severity::warning,
            "isolation unknown: " +
                std::string(is_dump ? "a dump has no IOMMU information"
                                    : "no IOMMU groups in sysfs (IOMMU absent or disabled)") +
                "; " + predicted);
    } else if (r.isolation.isolated) {
        add(r, "iommu", Severity::ok, "alone in IOMMU " + group_text);
    } else {
        add(r, "iommu", Severity::error, "not isolated: " + join(r.isolation.reasons));
    }

    // ACS on the path to the root port.
    std::vector<std::string> gaps;
    for (const Device* up : topology.upstream_path(d.bdf)) {
        AcsHop hop{up->bdf, up->port_type, check_acs(*up)};
        if (!hop.check.enabled)
            gaps.push_back(up->bdf.to_string() + ": " + hop.check.reason);
        r.acs_path.push_back(std::move(hop));
    }
    if (r.acs_path.empty())
        add(r, "acs", Severity::ok, "on a root bus: no bridges above it");
    else if (gaps.empty())
        add(r, "acs", Severity::ok, "ACS isolation enabled on every bridge up to the root port");
    else
        add(r, "acs", Severity::warning, "ACS missing on the path: " + join(gaps));

    // P2P with the other candidates (an NTB adapter must be reachable for lending).
    for (const auto& other : p2p_candidates(topology))
        if (other != d.bdf)
            r.p2p.push_back(p2p_path(topology, d.bdf, other, options.p2p));
    int by_bus = 0, by_host = 0, none = 0;
    for (const auto& p : r.p2p)
        (p.map == P2pMap::bus_address ? by_bus : p.map == P2pMap::host_bridge ? by_host : none)++;
    std::string p2p_text = std::to_string(by_bus) + " by bus address, " + std::to_string(by_host) +
                           " through the host bridge, " + std::to_string(none) + " not supported";
    if (r.p2p.empty())
        add(r, "p2p", Severity::ok, "no other device with memory BARs to compare with");
    else if (by_bus + by_host == 0)
        add(r, "p2p", Severity::warning, "no P2P path to any other device (" + p2p_text + ")");
    else
        add(r, "p2p", Severity::ok, p2p_text);

    // BARs against the NTB window.
    std::uint64_t total = 0;
    bool size_unknown = false;
    bool has_mem = false;
    for (const auto& bar : d.bars) {
        if (bar.io)
            continue;
        has_mem = true;
        if (bar.size == 0) {
            size_unknown = true;
            continue;
        }
        total += bar.size;
        if (bar.size > options.window_size)
            add(r, "bars", Severity::error,
                "BAR " + std::to_string(bar.index) + " (" + size_text(bar.size) +
                    ") is larger than the " + size_text(options.window_size) + " window");
    }
    if (!has_mem)
        add(r, "bars", Severity::warning, "no memory BARs to map through the window");
    else if (size_unknown)
        add(r, "bars", Severity::warning,
            "BAR sizes unknown (the source records no sizes); cannot compare with the " +
                size_text(options.window_size) + " window");
    else if (total > options.window_size)
        add(r, "bars", Severity::warning,
            "memory BARs total " + size_text(total) + ", more than the " +
                size_text(options.window_size) + " window: not all fit at once");
    else if (std::none_of(r.findings.begin(), r.findings.end(),
                          [](const Finding& f) { return f.check == "bars"; }))
        add(r, "bars", Severity::ok,
            "memory BARs total " + size_text(total) + ", within the " +
                size_text(options.window_size) + " window");

    // SR-IOV.
    if (!d.sriov)
        add(r, "sriov", Severity::ok, "not SR-IOV capable");
    else if (d.sriov->num_vfs > 0)
        add(r, "sriov", Severity::warning,
            std::to_string(d.sriov->num_vfs) + " of " + std::to_string(d.sriov->total_vfs) +
                " VFs enabled; disable them before lending the physical function");
    else
        add(r, "sriov", Severity::ok,
            "SR-IOV capable (" + std::to_string(d.sriov->total_vfs) + " VFs), none enabled");

    bool error = false, warning = false;
    for (const auto& f : r.findings) {
        error |= f.severity == Severity::error;
        warning |= f.severity == Severity::warning;
    }
    r.verdict = error     ? Verdict::not_ready
                : warning ? Verdict::ready_with_warnings
                          : Verdict::ready;
    return r;
}

nlohmann::json to_json(const ReadinessReport& r) {
    const std::string cls = to_hex(r.class_id, 4);
    nlohmann::json acs = nlohmann::json::array();
    for (const auto& hop : r.acs_path)
        acs.push_back({{"bridge", hop.bridge.to_string()},
                       {"port_type", hop.port_type ? nlohmann::json(to_string(*hop.port_type))
                                                   : nlohmann::json()},
                       {"acs_capability", hop.check.has_capability},
                       {"acs_enabled", hop.check.enabled},
                       {"missing", hop.check.missing},
                       {"reason", hop.check.reason}});
    nlohmann::json p2p = nlohmann::json::array();
    for (const auto& p : r.p2p)
        p2p.push_back(to_json(p));
    nlohmann::json bars = nlohmann::json::array();
    for (const auto& b : r.bars)
        bars.push_back(
            {{"index", b.index},
             {"size", b.size},
             {"io", b.io},
             {"is_64bit", b.is_64bit},
             {"prefetchable", b.prefetchable},
             {"virtual", b.is_virtual},
             {"fits_window",
              !b.io && b.size != 0 ? nlohmann::json(b.size <= r.window_size) : nlohmann::json()}});
    nlohmann::json sriov;
    if (r.sriov)
        sriov = {{"initial_vfs", r.sriov->initial_vfs},
                 {"total_vfs", r.sriov->total_vfs},
                 {"num_vfs", r.sriov->num_vfs}};
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : r.findings)
        findings.push_back(
            {{"check", f.check}, {"severity", to_string(f.severity)}, {"message", f.message}});
    return {
        {"bdf", r.bdf.to_string()},
        {"class_id", cls},
        {"class_name", r.class_name},
        {"driver", r.driver ? nlohmann::json(*r.driver) : nlohmann::json()},
        {"reset_methods", r.reset_methods},
        {"reset_methods_from_sysfs", r.reset_methods_known},
        {"iommu_present", r.iommu_present},
        {"isolation", to_json(r.isolation)},
        {"acs_path", acs},
        {"p2p", p2p},
        {"window_size", r.window_size},
        {"bars", bars},
        {"sriov", sriov},
        {"findings", findings},
        {"verdict", to_string(r.verdict)},
    };
}

} // namespace dis::pci
