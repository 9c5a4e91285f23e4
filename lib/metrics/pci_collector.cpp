// PCIe series: link state and AER counters of every device, labelled like node_exporter's
// pcidevice collector (segment, bus, device, function) so the two can be joined.
#include "dis/metrics.hpp"

#include <cstdio>
#include <fstream>
#include <map>

namespace dis::metrics {

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;

Labels address_labels(const pci::Bdf& bdf) {
    return {{"segment", pci::to_hex(bdf.domain, 4)},
            {"bus", pci::to_hex(bdf.bus, 2)},
            {"device", pci::to_hex(bdf.device, 2)},
            {"function", pci::to_hex(bdf.function, 1)}};
}

Labels with(Labels labels, std::string name, std::string value) {
    labels.push_back({std::move(name), std::move(value)});
    return labels;
}

// A sysfs file holding one integer (the root-port AER totals), absent on most devices.
std::optional<double> read_number(const std::string& path) {
    std::ifstream in(path);
    unsigned long long v = 0;
    if (in >> v)
        return static_cast<double>(v);
    return std::nullopt;
}

class PciCollector : public SourceCollector {
public:
    PciCollector(pci::Source source, std::chrono::milliseconds budget)
        : m_source(std::move(source)), m_budget(budget) {}
    const std::string& name() const override { return m_name; }
    std::chrono::milliseconds budget() const override { return m_budget; }
    std::vector<prometheus::MetricFamily> collect(bool& complete) const override;

private:
    std::string m_name = "pci";
    pci::Source m_source;
    std::chrono::milliseconds m_budget;
};

std::vector<prometheus::MetricFamily> PciCollector::collect(bool& complete) const {
    complete = true;
    // Placement (NUMA, IOMMU groups, BARs) is not exported: a scrape does not read it.
    const auto topology = pci::scan(m_source, pci::ScanOptions{.placement = false});
    auto info = gauge_family("dis_pcie_device_info",
                             "Always 1; identity of a PCI device (ids, class, driver, port type).");
    auto cur_speed = gauge_family("dis_pcie_current_link_transfers_per_second",
                                  "Current PCIe link speed in transfers per second.");
    auto max_speed =
        gauge_family("dis_pcie_max_link_transfers_per_second",
                     "Maximum PCIe link speed the device supports, transfers per second.");
    auto cur_width =
        gauge_family("dis_pcie_current_link_width", "Current PCIe link width in lanes.");
    auto max_width = gauge_family("dis_pcie_max_link_width",
                                  "Maximum PCIe link width the device supports, in lanes.");
    auto downgraded = gauge_family(
        "dis_pcie_link_downgraded",
        "1 when the link trained below what both of its ends support (speed or width).");
    std::map<std::string, prometheus::MetricFamily> aer;
    aer.emplace("aer_dev_correctable",
                counter_family("dis_pcie_aer_correctable_errors_total",
                               "Correctable AER errors the kernel counted, by error type."));
    aer.emplace("aer_dev_nonfatal",
                counter_family("dis_pcie_aer_nonfatal_errors_total",
                               "Non-fatal uncorrectable AER errors the kernel counted, by type."));
    aer.emplace("aer_dev_fatal",
                counter_family("dis_pcie_aer_fatal_errors_total",
                               "Fatal uncorrectable AER errors the kernel counted, by type."));
    struct RootTotal {
        const char* file;
        prometheus::MetricFamily family;
    };
    std::vector<RootTotal> root_totals = {
        {"aer_rootport_total_err_cor",
         counter_family("dis_pcie_aer_rootport_correctable_errors_total",
                        "Correctable AER errors reported to this root port.")},
        {"aer_rootport_total_err_nonfatal",
         counter_family("dis_pcie_aer_rootport_nonfatal_errors_total",
                        "Non-fatal AER errors reported to this root port.")},
        {"aer_rootport_total_err_fatal",
         counter_family("dis_pcie_aer_rootport_fatal_errors_total",
                        "Fatal AER errors reported to this root port.")},
    };
    const auto sysfs = m_source.sysfs_root();

    for (const auto& d : topology.devices()) {
        const auto labels = address_labels(d.bdf);
        Labels id = labels;
        id.push_back({"vendor_id", "0x" + pci::to_hex(d.vendor_id, 4)});
        id.push_back({"device_id", "0x" + pci::to_hex(d.device_id, 4)});
        id.push_back({"subsystem_vendor_id", "0x" + pci::to_hex(d.subsystem_vendor_id, 4)});
        id.push_back({"subsystem_device_id", "0x" + pci::to_hex(d.subsystem_device_id, 4)});
        id.push_back({"class_id", "0x" + pci::to_hex(d.class_id, 4)});
        id.push_back({"revision", "0x" + pci::to_hex(d.revision, 2)});
        id.push_back({"driver", d.driver.value_or("")});
        id.push_back({"port_type", d.port_type ? pci::to_string(*d.port_type) : ""});
        add_sample(info, id, 1);
        if (d.link) {
            if (auto s = transfers_per_second(d.link->speed))
                add_sample(cur_speed, labels, *s);
            if (auto s = transfers_per_second(d.link->max_speed))
                add_sample(max_speed, labels, *s);
            if (d.link->width > 0)
                add_sample(cur_width, labels, d.link->width);
            if (d.link->max_width > 0)
                add_sample(max_width, labels, d.link->max_width);
            add_sample(downgraded, labels, d.link->downgraded ? 1 : 0);
        }
        if (d.aer) {
            for (const auto& [file, counts] : d.aer->counters) {
                auto it = aer.find(file);
                if (it == aer.end())
                    continue;
                for (const auto& [error, value] : counts) {
                    // The kernel's TOTAL_ERR_* line is the sum of the others: sum() gives it.
                    if (error.rfind("TOTAL_", 0) == 0)
                        continue;
                    add_sample(it->second, with(labels, "error", error),
                               static_cast<double>(value));
                }
            }
        }
        // The kernel keeps these totals on root ports and event collectors only.
        const bool collects_errors = d.port_type == pci::PortType::root_port ||
                                     d.port_type == pci::PortType::rc_event_collector;
        if (sysfs && collects_errors) {
            const std::string dir = *sysfs + "/bus/pci/devices/" + d.bdf.to_string() + "/";
            for (auto& total : root_totals)
                if (auto v = read_number(dir + total.file))
                    add_sample(total.family, labels, *v);
        }
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&info, &cur_speed, &max_speed, &cur_width, &max_width, &downgraded})
        out.push_back(std::move(*f));
    for (auto& [file, f] : aer)
        out.push_back(std::move(f));
    for (auto& total : root_totals)
        out.push_back(std::move(total.family));
    return out;
}

} // namespace

std::shared_ptr<SourceCollector> make_pci_collector(pci::Source source,
                                                    std::chrono::milliseconds budget) {
    return std::make_shared<PciCollector>(std::move(source), budget);
}

} // namespace dis::metrics
