// The Prometheus exporter's collectors: one prometheus::Collectable per source (pci, fabric,
// lending) that builds fresh MetricFamily objects on every scrape, and the Exporter
// collectable that runs each source within its own time budget and adds the scrape's own
// series (dis_scrape_duration_seconds, dis_scrape_collector_success, dis_exporter_build_info).
// Every series is listed in dis-tool-exporter(1).
#pragma once

#include "dis/pci.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::metrics {

// A source of series. collect() may throw (the source then counts as failed); it sets
// `complete` to false when it left out part of its series (a node that did not answer).
class SourceCollector : public prometheus::Collectable {
public:
    virtual const std::string& name() const = 0;
    virtual std::chrono::milliseconds budget() const = 0;
    virtual std::vector<prometheus::MetricFamily> collect(bool& complete) const = 0;

    // Collectable: the series alone, without the scrape bookkeeping.
    std::vector<prometheus::MetricFamily> Collect() const override;
};

// PCIe devices read from a pci::Source (live /sys, a copied tree, or an lspci dump).
std::shared_ptr<SourceCollector> make_pci_collector(pci::Source source,
                                                    std::chrono::milliseconds budget);
// The software fabric's node daemons in `fabric_dir`, each asked through
// dis::fabric::AdminClient with `budget` as its timeout (nodes are asked in parallel).
std::shared_ptr<SourceCollector> make_fabric_collector(std::string fabric_dir,
                                                       std::chrono::milliseconds budget);
// The lending pools of the node daemons in `fabric_dir` (dis::lending::LenderClient) and
// their lending counters (node_info), nodes asked in parallel within `budget`.
std::shared_ptr<SourceCollector> make_lending_collector(std::string fabric_dir,
                                                        std::chrono::milliseconds budget);

// Every source of a scrape, each within its budget, plus the scrape's own series: what
// `dis-tool exporter` serves at /metrics (rendered by dis/metrics_exposition.hpp).
class Exporter : public prometheus::Collectable {
public:
    explicit Exporter(std::vector<std::shared_ptr<SourceCollector>> sources);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::vector<std::shared_ptr<SourceCollector>> m_sources;
};

// Link speed in transfers per second from lspci's spelling ("8GT/s" -> 8e9); nullopt when
// unknown.
std::optional<double> transfers_per_second(const std::string& speed);

// Helpers for collectors: a family and one sample of it.
prometheus::MetricFamily gauge_family(std::string name, std::string help);
prometheus::MetricFamily counter_family(std::string name, std::string help);
void add_sample(prometheus::MetricFamily& family,
                std::vector<prometheus::ClientMetric::Label> labels, double value);

} // namespace dis::metrics
