// PCIe series: link state and AER counters of every device, labelled like node_exporter's
// pcidevice collector (segment, bus, device, function) so the two can be joined.
#include "dis/metrics.hpp"
#include "dis/parallel.hpp"

#include <iterator>
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

Labels with(const Labels& labels, std::string name, std::string value) {
    Labels out;
    out.reserve(labels.size() + 1);
    out = labels;
    out.push_back({std::move(name), std::move(value)});
    return out;
}

// The PCIe families of one scrape. Devices are added to one of these per thread and the
// threads' families concatenated after: a scrape of a large machine builds ten thousand
// samples, each with its own labels.
class PciFamilies {
public:
    // `devices`: how many devices this one will take (room is made for their samples at once:
    // growing a family moves every sample it holds).
    explicit PciFamilies(std::size_t devices);
    void add(const pci::Device& d);
    // Appends `other`'s samples after this one's, family by family.
    void append(PciFamilies&& other);
    std::vector<prometheus::MetricFamily> take();

private:
    prometheus::MetricFamily m_info, m_cur_speed, m_max_speed, m_cur_width, m_max_width,
        m_downgraded;
    std::map<std::string, prometheus::MetricFamily> m_aer; // by sysfs file
    struct RootTotal {
        const char* file;
        prometheus::MetricFamily family;
    };
    std::vector<RootTotal> m_root_totals;

    std::vector<prometheus::MetricFamily*> families();
};

PciFamilies::PciFamilies(std::size_t devices)
    : m_info(gauge_family("dis_pcie_device_info",
                          "Always 1; identity of a PCI device (ids, class, driver, port type).")),
      m_cur_speed(gauge_family("dis_pcie_current_link_transfers_per_second",
                               "Current PCIe link speed in transfers per second.")),
      m_max_speed(
          gauge_family("dis_pcie_max_link_transfers_per_second",
                       "Maximum PCIe link speed the device supports, transfers per second.")),
      m_cur_width(gauge_family("dis_pcie_current_link_width", "Current PCIe link width in lanes.")),
      m_max_width(gauge_family("dis_pcie_max_link_width",
                               "Maximum PCIe link width the device supports, in lanes.")),
      m_downgraded(gauge_family(
          "dis_pcie_link_downgraded",
          "1 when the link trained below what both of its ends support (speed or width).")) {
    m_aer.emplace("aer_dev_correctable",
                  counter_family("dis_pcie_aer_correctable_errors_total",
                                 "Correctable AER errors the kernel counted, by error type."));
    m_aer.emplace(
        "aer_dev_nonfatal",
        counter_family("dis_pcie_aer_nonfatal_errors_total",
                       "Non-fatal uncorrectable AER errors the kernel counted, by type."));
    m_aer.emplace("aer_dev_fatal",
                  counter_family("dis_pcie_aer_fatal_errors_total",
                                 "Fatal uncorrectable AER errors the kernel counted, by type."));
    m_root_totals.push_back({"aer_rootport_total_err_cor",
                             counter_family("dis_pcie_aer_rootport_correctable_errors_total",
                                            "Correctable AER errors reported to this root port.")});
    m_root_totals.push_back({"aer_rootport_total_err_nonfatal",
                             counter_family("dis_pcie_aer_rootport_nonfatal_errors_total",
                                            "Non-fatal AER errors reported to this root port.")});
    m_root_totals.push_back({"aer_rootport_total_err_fatal",
                             counter_family("dis_pcie_aer_rootport_fatal_errors_total",
                                            "Fatal AER errors reported to this root port.")});
    for (auto* f : {&m_info, &m_cur_speed, &m_max_speed, &m_cur_width, &m_max_width, &m_downgraded})
        f->metric.reserve(devices);
}

std::vector<prometheus::MetricFamily*> PciFamilies::families() {
    std::vector<prometheus::MetricFamily*> out = {&m_info,      &m_cur_speed, &m_max_speed,
                                                  &m_cur_width, &m_max_width, &m_downgraded};
    for (auto& [file, f] : m_aer)
        out.push_back(&f);
    for (auto& total : m_root_totals)
        out.push_back(&total.family);
    return out;
}

void PciFamilies::add(const pci::Device& d) {
    const auto labels = address_labels(d.bdf);
    Labels id;
    id.reserve(labels.size() + 8);
    id = labels;
    id.push_back({"vendor_id", "0x" + pci::to_hex(d.vendor_id, 4)});
    id.push_back({"device_id", "0x" + pci::to_hex(d.device_id, 4)});
    id.push_back({"subsystem_vendor_id", "0x" + pci::to_hex(d.subsystem_vendor_id, 4)});
    id.push_back({"subsystem_device_id", "0x" + pci::to_hex(d.subsystem_device_id, 4)});
    id.push_back({"class_id", "0x" + pci::to_hex(d.class_id, 4)});
    id.push_back({"revision", "0x" + pci::to_hex(d.revision, 2)});
    id.push_back({"driver", d.driver.value_or("")});
    id.push_back({"port_type", d.port_type ? pci::to_string(*d.port_type) : ""});
    add_sample(m_info, std::move(id), 1);
    if (d.link) {
        if (auto s = transfers_per_second(d.link->speed))
            add_sample(m_cur_speed, labels, *s);
        if (auto s = transfers_per_second(d.link->max_speed))
            add_sample(m_max_speed, labels, *s);
        if (d.link->width > 0)
            add_sample(m_cur_width, labels, d.link->width);
        if (d.link->max_width > 0)
            add_sample(m_max_width, labels, d.link->max_width);
        add_sample(m_downgraded, labels, d.link->downgraded ? 1 : 0);
    }
    if (d.aer) {
        for (const auto& [file, counts] : d.aer->counters) {
            auto it = m_aer.find(file);
            if (it == m_aer.end())
                continue;
            for (const auto& [error, value] : counts) {
                // The kernel's TOTAL_ERR_* line is the sum of the others: sum() gives it.
                if (error.rfind("TOTAL_", 0) == 0)
                    continue;
                add_sample(it->second, with(labels, "error", error), static_cast<double>(value));
            }
        }
    }
    if (d.aer)
        for (auto& total : m_root_totals)
            if (auto it = d.aer->rootport_totals.find(total.file);
                it != d.aer->rootport_totals.end())
                add_sample(total.family, labels, static_cast<double>(it->second));
}

void PciFamilies::append(PciFamilies&& other) {
    const auto mine = families();
    const auto theirs = other.families();
    for (std::size_t i = 0; i < mine.size(); ++i) {
        auto& to = mine[i]->metric;
        auto& from = theirs[i]->metric;
        to.reserve(to.size() + from.size());
        to.insert(to.end(), std::make_move_iterator(from.begin()),
                  std::make_move_iterator(from.end()));
        from.clear();
    }
}

std::vector<prometheus::MetricFamily> PciFamilies::take() {
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : families())
        out.push_back(std::move(*f));
    return out;
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
    // Placement (NUMA, IOMMU groups, BARs) and names are not exported: a scrape neither reads
    // the former nor parses pci.ids for the latter.
    const auto topology = pci::scan(m_source, pci::ScanOptions{.placement = false, .names = false});
    const auto& devices = topology.devices();
    // The samples of a large machine on two threads, as its scan (dis/parallel.hpp).
    const unsigned threads = worker_count(devices.size());
    std::vector<PciFamilies> parts;
    for (unsigned t = 0; t < threads; ++t)
        parts.emplace_back(devices.size() / threads + 1);
    run_on_threads(threads, [&](unsigned t) {
        const std::size_t from = devices.size() * t / threads;
        const std::size_t to = devices.size() * (t + 1) / threads;
        for (std::size_t i = from; i < to; ++i)
            parts[t].add(devices[i]);
    });
    PciFamilies& first = parts.front();
    for (unsigned t = 1; t < threads; ++t)
        first.append(std::move(parts[t]));
    return first.take();
}

} // namespace

std::shared_ptr<SourceCollector> make_pci_collector(pci::Source source,
                                                    std::chrono::milliseconds budget) {
    return std::make_shared<PciCollector>(std::move(source), budget);
}

} // namespace dis::metrics
