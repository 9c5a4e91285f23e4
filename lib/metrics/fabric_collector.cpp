// Software-fabric series: every node daemon in the fabric directory is asked in parallel
// (dis/fabric_sample.hpp) with the collector's budget as timeout. A node that is dead (stale
// socket) or frozen (a stopped daemon) gets dis_fabric_node_up 0, no other series, and makes
// the scrape's collector_success 0; the links to it are down.
#include "dis/fabric_sample.hpp"
#include "dis/metrics.hpp"

#include <memory>
#include <mutex>

namespace dis::metrics {

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;

// Daemon counters exported per node: key in NodeInfo::counters -> series and meaning.
struct CounterSpec {
    const char* key;
    const char* name;
    const char* help;
    bool counter;
};
constexpr CounterSpec k_counters[] = {
    {"segments", "dis_fabric_segments", "Segments the node's daemon holds.", false},
    {"segment_bytes", "dis_fabric_segment_bytes", "Bytes of all segments on the node.", false},
    {"connections", "dis_fabric_connections", "Connections to the node's segments.", false},
    {"interrupts", "dis_fabric_interrupts", "Interrupt resources created on the node.", false},
    {"interrupts_triggered_total", "dis_fabric_interrupts_triggered_total",
     "Triggers of the node's interrupts, plain and data, counted by the triggering processes.",
     true},
    {"clients", "dis_fabric_clients", "SISCI clients connected to the node's daemon.", false},
    {"dma_queues", "dis_fabric_dma_queues", "DMA queues open on the node.", false},
    {"dma_transfers_total", "dis_fabric_dma_transfers_total",
     "DMA transfers the node's engine completed.", true},
    {"dma_bytes_total", "dis_fabric_dma_bytes_total", "Bytes the node's DMA engine moved.", true},
    {"dma_errors_total", "dis_fabric_dma_errors_total", "DMA transfers that failed.", true},
    {"clients_total", "dis_fabric_clients_connected_total",
     "SISCI clients the daemon accepted since it started.", true},
    {"requests_total", "dis_fabric_requests_total", "Requests the daemon served.", true},
    {"malformed_requests_total", "dis_fabric_malformed_requests_total",
     "Malformed requests the daemon refused.", true},
    {"clients_dropped_total", "dis_fabric_clients_dropped_total",
     "Clients the daemon dropped (protocol errors, limits).", true},
    {"connections_refused_total", "dis_fabric_connections_refused_total",
     "Client connections the daemon refused.", true},
    {"accept_errors_total", "dis_fabric_accept_errors_total",
     "Errors accepting client connections.", true},
};

class FabricCollector : public SourceCollector {
public:
    FabricCollector(std::string dir, std::chrono::milliseconds budget)
        : m_dir(std::move(dir)), m_budget(budget) {}
    const std::string& name() const override { return m_name; }
    std::chrono::milliseconds budget() const override { return m_budget; }
    std::vector<prometheus::MetricFamily> collect(bool& complete) const override;

private:
    std::string m_name = "fabric";
    std::string m_dir;
    std::chrono::milliseconds m_budget;
    // One admin connection per node kept from one scrape to the next (connecting and saying
    // hello cost more than the requests); a scrape that overlaps another connects anew.
    mutable std::mutex m_mutex;
    mutable std::unique_ptr<fabric::FabricSampler> m_sampler;
};

std::vector<prometheus::MetricFamily> FabricCollector::collect(bool& complete) const {
    // The per-node timeout leaves room for the bookkeeping within the collector's budget.
    const auto timeout = m_budget * 8 / 10;
    std::vector<fabric::NodeSample> nodes;
    if (std::unique_lock lock(m_mutex, std::try_to_lock); lock.owns_lock()) {
        if (!m_sampler)
            m_sampler = std::make_unique<fabric::FabricSampler>(m_dir, timeout, true);
        nodes = m_sampler->sample(false);
    } else {
        nodes = fabric::FabricSampler(m_dir, timeout, false).sample(false);
    }

    auto nodes_up = gauge_family("dis_fabric_nodes_up", "Node daemons that answered this scrape.");
    auto node_up = gauge_family("dis_fabric_node_up",
                                "1 when the node's daemon answered, 0 when its socket is there "
                                "but the daemon is dead or did not answer in time.");
    auto info = gauge_family("dis_fabric_node_info", "Always 1; a node's name and topology.");
    auto uptime = gauge_family("dis_fabric_node_uptime_seconds", "Seconds the daemon has run.");
    auto link_up = gauge_family("dis_fabric_link_up", "1 when the link to remote_node is up.");
    auto link_width = gauge_family("dis_fabric_link_width", "Link width in lanes.");
    auto link_speed =
        gauge_family("dis_fabric_link_transfers_per_second", "Link speed in transfers per second.");
    std::vector<prometheus::MetricFamily> counters;
    for (const auto& spec : k_counters)
        counters.push_back(spec.counter ? counter_family(spec.name, spec.help)
                                        : gauge_family(spec.name, spec.help));
    double up_count = 0;
    for (const auto& n : nodes) {
        const Labels node = {{"node", std::to_string(n.id)}};
        add_sample(node_up, node, n.up ? 1 : 0);
        if (!n.up) {
            complete = false;
            continue;
        }
        up_count += 1;
        add_sample(info, {node[0], {"name", n.info.name}, {"topology", n.info.topology}}, 1);
        add_sample(uptime, node, static_cast<double>(n.info.uptime_s));
        for (std::size_t i = 0; i < std::size(k_counters); ++i) {
            auto it = n.info.counters.find(k_counters[i].key);
            if (it != n.info.counters.end())
                add_sample(counters[i], node, static_cast<double>(it->second));
        }
        for (const auto& l : n.links) {
            const Labels link = {node[0], {"remote_node", std::to_string(l.remote_node)}};
            add_sample(link_up, link, l.state == "up" ? 1 : 0);
            add_sample(link_width, link, l.width);
            if (auto s = transfers_per_second(l.speed))
                add_sample(link_speed, link, *s);
        }
    }
    add_sample(nodes_up, {}, up_count);
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&nodes_up, &node_up, &info, &uptime, &link_up, &link_width, &link_speed})
        out.push_back(std::move(*f));
    for (auto& f : counters)
        out.push_back(std::move(f));
    return out;
}

} // namespace

std::shared_ptr<SourceCollector> make_fabric_collector(std::string fabric_dir,
                                                       std::chrono::milliseconds budget) {
    return std::make_shared<FabricCollector>(std::move(fabric_dir), budget);
}

} // namespace dis::metrics
