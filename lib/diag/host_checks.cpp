// The host groups of dis::diag, on one scan of the host's PCIe hierarchy (dis/pci.hpp):
// pcie (AER status bits and the kernel's AER counters, new since the baseline; downgraded
// links) and iommu (dis/iommu.hpp groups, dis/readiness.hpp verdicts of the lendable devices).
#include "checks.hpp"

#include "dis/error.hpp"
#include "dis/iommu.hpp"
#include "dis/pci.hpp"
#include "dis/readiness.hpp"
#include "dis/strings.hpp"

namespace dis::diag::detail {

namespace {

pci::Source host_source(const std::string& root) {
    return root == "/sys" ? pci::Source::live() : pci::Source::sysfs(root);
}

// The severity an AER counter file reports: fatal and non-fatal errors fail, correctable
// ones warn.
Verdict severity_of(const std::string& file) {
    return file == "aer_dev_correctable" ? Verdict::warn : Verdict::fail;
}

Verdict worst(Verdict a, Verdict b) {
    return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

} // namespace

void check_pcie(const Options& o, const Baseline& b, nlohmann::json& baseline,
                std::vector<Check>& out) {
    if (!o.sysfs_root)
        return;
    pci::Topology topo;
    try {
        topo = pci::scan(host_source(*o.sysfs_root));
    } catch (const Error& e) {
        out.push_back(make_check("pcie", "scan", Verdict::fail,
                                 "cannot read " + *o.sysfs_root + ": " + e.what()));
        return;
    }
    std::size_t rows = 0;
    for (const auto& d : topo.devices()) {
        if (!d.port_type)
            continue; // conventional PCI: no link, no AER
        ++rows;
        const std::string bdf = d.bdf.to_string();
        const std::string prefix = "pcie/" + bdf + "/";
        Verdict verdict = Verdict::pass;
        std::vector<std::string> problems;
        nlohmann::json counters = nlohmann::json::object();
        if (d.link) {
            counters["link_width"] = d.link->width;
            counters["link_speed"] = d.link->speed;
            counters["link_max_width"] = d.link->max_width;
            counters["link_max_speed"] = d.link->max_speed;
            counters["link_downgraded"] = d.link->downgraded;
            if (d.link->downgraded) {
                verdict = Verdict::warn;
                problems.push_back("link downgraded to " + pci::describe_link(*d.link));
            }
        }
        if (d.aer) {
            nlohmann::json aer = nlohmann::json::object();
            auto status_bits = [&](const std::vector<std::string>& bits, const char* kind,
                                   Verdict sev) {
                std::vector<std::string> fresh;
                for (const auto& bit : bits) {
                    std::string key = prefix + kind + "/" + bit;
                    baseline[key] = 1u;
                    if (b.fresh(key, 1) > 0)
                        fresh.push_back(bit);
                }
                aer[std::string(kind) + "_status"] = bits;
                if (!fresh.empty()) {
                    verdict = worst(verdict, sev);
                    problems.push_back(std::string("AER ") + kind + " status " + join(fresh));
                }
            };
            status_bits(d.aer->uncorrectable_status, "uncorrectable", Verdict::fail);
            status_bits(d.aer->correctable_status, "correctable", Verdict::warn);
            for (const auto& [file, values] : d.aer->counters) {
                std::vector<std::string> fresh;
                for (const auto& [name, value] : values) {
                    std::string key = prefix + file + "/" + name;
                    baseline[key] = value;
                    std::uint64_t n = b.fresh(key, value);
                    aer[file][name] = value;
                    aer[file][name + "_new"] = n;
                    if (n > 0 && name.rfind("TOTAL_", 0) != 0)
                        fresh.push_back(name + " +" + std::to_string(n));
                }
                if (!fresh.empty()) {
                    verdict = worst(verdict, severity_of(file));
                    problems.push_back(file + " " + join(fresh));
                }
            }
            counters["aer"] = aer;
        }
        std::string reason;
        if (problems.empty()) {
            reason = d.link ? "link " + pci::describe_link(*d.link) : "no link";
            reason += d.aer ? ", no new AER errors" : ", no AER capability";
        } else {
            reason = join(problems);
        }
        out.push_back(make_check("pcie", bdf, verdict, reason, counters));
    }
    if (rows == 0)
        out.push_back(
            make_check("pcie", "devices", Verdict::pass, "no PCIe devices in " + *o.sysfs_root));
}

void check_iommu(const Options& o, std::vector<Check>& out) {
    if (!o.sysfs_root)
        return;
    pci::Topology topo;
    try {
        topo = pci::scan(host_source(*o.sysfs_root));
    } catch (const Error& e) {
        out.push_back(make_check("iommu", "scan", Verdict::fail,
                                 "cannot read " + *o.sysfs_root + ": " + e.what()));
        return;
    }
    auto report = pci::analyze_iommu(topo);
    std::size_t shared = 0;
    for (const auto& d : report.devices)
        if (!d.isolated)
            ++shared;
    nlohmann::json summary = {{"iommu_present", report.iommu_present},
                              {"predicted", report.predicted},
                              {"groups", report.groups.size()},
                              {"devices_not_isolated", shared}};
    if (report.iommu_present)
        out.push_back(make_check("iommu", "iommu", Verdict::pass,
                                 std::to_string(report.groups.size()) + " IOMMU groups, " +
                                     std::to_string(shared) + " device(s) not isolated",
                                 summary));
    else
        out.push_back(make_check("iommu", "iommu",
                                 o.lendable.empty() ? Verdict::pass : Verdict::warn,
                                 report.note.empty() ? "no IOMMU groups" : report.note, summary));
    for (const auto& text : o.lendable) {
        auto bdf = pci::Bdf::parse(text); // invalid_input
        std::string what = bdf.to_string();
        if (!topo.find(bdf)) {
            out.push_back(
                make_check("iommu", what, Verdict::fail, "not found in " + *o.sysfs_root));
            continue;
        }
        auto r = pci::check_readiness(topo, bdf);
        Verdict verdict = Verdict::pass;
        std::vector<std::string> found;
        for (const auto& f : r.findings) {
            if (f.check != "iommu" && f.check != "acs")
                continue;
            if (f.severity == pci::Severity::error)
                verdict = Verdict::fail;
            else if (f.severity == pci::Severity::warning)
                verdict = worst(verdict, Verdict::warn);
            else
                continue;
            found.push_back(f.check + ": " + f.message);
        }
        nlohmann::json counters = {{"iommu_group", r.isolation.group
                                                       ? nlohmann::json(*r.isolation.group)
                                                       : nlohmann::json(nullptr)},
                                   {"isolated", r.isolation.isolated},
                                   {"acs_gaps", r.isolation.acs_gaps.size()},
                                   {"readiness", pci::to_string(r.verdict)}};
        std::string reason =
            found.empty()
                ? (r.isolation.isolated ? "isolated" : "not isolated") +
                      (r.isolation.group ? " in IOMMU group " + std::to_string(*r.isolation.group)
                                         : std::string()) +
                      ", ACS on the path"
                : join(found);
        out.push_back(make_check("iommu", what, verdict, reason, counters));
    }
}

} // namespace dis::diag::detail
