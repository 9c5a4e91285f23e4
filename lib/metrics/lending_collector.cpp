// Device-lending series: every node daemon in the fabric directory is asked in parallel, each
// within a share of the collector's budget, for its pool (dis::lending::LenderClient::list) and
// its lending counters (node_info through dis::fabric::AdminClient). A node that is dead or
// frozen contributes no series and makes the scrape's collector_success 0; the other nodes'
// series are still there.
#include "dis/fabric_admin.hpp"
#include "dis/fabric_sample.hpp"
#include "dis/lending_client.hpp"
#include "dis/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>

namespace dis::metrics {

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;

// Node counters exported per node: key in NodeInfo::counters -> series.
struct DeviceCounterSpec {
    const char* key;
    const char* name;
    const char* help;
};
constexpr DeviceCounterSpec k_device_counters[] = {
    {"borrows_total", "dis_device_borrows_total", "Leases the node's pool granted."},
    {"returns_total", "dis_device_returns_total",
     "Leases returned to the node's pool by their holder (or because its connection closed)."},
    {"resets_total", "dis_device_resets_total", "Device resets that succeeded on the node."},
    {"reset_failures_total", "dis_device_reset_failures_total",
     "Device resets that failed or timed out on the node (the device is quarantined)."},
    {"faults_total", "dis_device_faults_total",
     "Devices of the node that stopped responding and were quarantined."},
};

// Reclaimed leases by reason: key in NodeInfo::counters -> the reason label.
struct ReclaimSpec {
    const char* key;
    const char* reason;
};
constexpr ReclaimSpec k_reclaims[] = {
    {"reclaims_admin_total", "admin"},
    {"reclaims_lease_expired_total", "lease_expired"},
    {"reclaims_lender_restart_total", "lender_restart"},
    {"reclaims_device_fault_total", "device_fault"},
};

struct NodeLending {
    std::uint32_t id = 0;
    bool ok = false;
    fabric::NodeInfo info;
    std::vector<lending::DeviceView> devices;
};

// A node's two connections, kept from one scrape to the next (as the fabric collector keeps
// its own): connecting and saying hello cost more than the requests.
struct NodeClients {
    std::shared_ptr<fabric::AdminClient> admin;
    std::shared_ptr<lending::LenderClient> lender;
};

class LendingCollector : public SourceCollector {
public:
    LendingCollector(std::string dir, std::chrono::milliseconds budget)
        : m_dir(std::move(dir)), m_budget(budget) {}
    const std::string& name() const override { return m_name; }
    std::chrono::milliseconds budget() const override { return m_budget; }
    std::vector<prometheus::MetricFamily> collect(bool& complete) const override;

private:
    std::string m_name = "lending";
    std::string m_dir;
    std::chrono::milliseconds m_budget;
    mutable std::mutex m_scrape_mutex; // held by the scrape that uses m_clients
    mutable std::mutex m_mutex;        // guards m_clients against the per-node tasks
    mutable std::map<std::uint32_t, NodeClients> m_clients;
};

std::vector<prometheus::MetricFamily> LendingCollector::collect(bool& complete) const {
    // Two requests per node, one after the other: each gets 4/10 of the budget, which leaves
    // room for the bookkeeping.
    const auto timeout = m_budget * 4 / 10;
    const auto ids = fabric::node_socket_ids(m_dir);
    // The kept connections serve one scrape at a time; one that overlaps it connects anew.
    std::unique_lock scrape(m_scrape_mutex, std::try_to_lock);
    const bool keep = scrape.owns_lock();
    std::vector<std::future<NodeLending>> pending;
    for (auto id : ids) {
        NodeClients kept;
        if (keep) {
            std::lock_guard lock(m_mutex);
            if (auto it = m_clients.find(id); it != m_clients.end())
                kept = it->second;
        }
        pending.push_back(std::async(std::launch::async, [this, id, timeout, kept, keep] {
            NodeLending n;
            n.id = id;
            auto ask = [&](const NodeClients& c) {
                n.info = c.admin->node_info();
                n.devices = c.lender->list();
                n.ok = true;
            };
            if (kept.admin && kept.lender) {
                try {
                    ask(kept);
                    return n;
                } catch (const std::exception&) {
                    // A restarted daemon or a reply that came too late: start afresh.
                }
            }
            try {
                NodeClients fresh{std::make_shared<fabric::AdminClient>(m_dir, id, timeout),
                                  std::make_shared<lending::LenderClient>(m_dir, id, 0, timeout)};
                ask(fresh);
                if (keep) {
                    std::lock_guard lock(m_mutex);
                    m_clients[id] = fresh;
                }
            } catch (const std::exception&) {
                // Dead, frozen or untrusted: this node's series are left out.
                n = NodeLending{};
                n.id = id;
                if (keep) {
                    std::lock_guard lock(m_mutex);
                    m_clients.erase(id);
                }
            }
            return n;
        }));
    }
    std::vector<NodeLending> nodes;
    for (auto& f : pending)
        nodes.push_back(f.get());
    if (keep) {
        // Nodes whose socket went away keep no connection.
        std::lock_guard lock(m_mutex);
        std::erase_if(m_clients, [&](const auto& kv) {
            return std::find(ids.begin(), ids.end(), kv.first) == ids.end();
        });
    }

    auto info = gauge_family("dis_device_info",
                             "Always 1; identity of a lendable device (name, kind, PCI ids).");
    auto state = gauge_family("dis_device_state",
                              "1 for the state the device is in, 0 for every other state.");
    auto leases = gauge_family("dis_device_leases", "Leases currently held on the device.");
    auto waiters = gauge_family("dis_device_waiters", "Borrow requests waiting for the device.");
    auto remaining = gauge_family("dis_device_lease_remaining_seconds",
                                  "Seconds until the device's first-expiring lease ends unless "
                                  "renewed; only while the device is lent.");
    std::vector<prometheus::MetricFamily> counters;
    for (const auto& spec : k_device_counters)
        counters.push_back(counter_family(spec.name, spec.help));
    auto reclaims = counter_family(
        "dis_device_reclaims_total",
        "Leases the node's pool ended without their holder returning them, by reason.");

    const auto now = lending::SystemClock().now();
    for (const auto& n : nodes) {
        if (!n.ok) {
            complete = false;
            continue;
        }
        const std::string node = std::to_string(n.id);
        for (std::size_t i = 0; i < std::size(k_device_counters); ++i) {
            auto it = n.info.counters.find(k_device_counters[i].key);
            if (it != n.info.counters.end())
                add_sample(counters[i], {{"node", node}}, static_cast<double>(it->second));
        }
        for (const auto& r : k_reclaims) {
            auto it = n.info.counters.find(r.key);
            if (it != n.info.counters.end())
                add_sample(reclaims, {{"node", node}, {"reason", r.reason}},
                           static_cast<double>(it->second));
        }
        for (const auto& d : n.devices) {
            const auto& st = d.status;
            const Labels id = {{"node", std::to_string(d.node_id)},
                               {"fdid", lending::to_string(st.info.fdid)}};
            Labels identity = id;
            identity.push_back({"name", st.info.name});
            identity.push_back({"kind", d.kind});
            identity.push_back({"vendor_id", "0x" + pci::to_hex(st.info.vendor_id, 4)});
            identity.push_back({"device_id", "0x" + pci::to_hex(st.info.device_id, 4)});
            identity.push_back({"class_id", "0x" + pci::to_hex(st.info.class_code, 6)});
            identity.push_back({"physfn", d.physfn ? lending::to_string(*d.physfn) : ""});
            add_sample(info, identity, 1);
            for (auto s : lending::k_all_states) {
                Labels l = id;
                l.push_back({"state", lending::to_string(s)});
                add_sample(state, l, s == st.state ? 1 : 0);
            }
            add_sample(leases, id, static_cast<double>(st.leases.size()));
            add_sample(waiters, id, static_cast<double>(st.waiters));
            if (!st.leases.empty()) {
                auto first = st.leases.front().expires;
                for (const auto& l : st.leases)
                    first = std::min(first, l.expires);
                const double left = std::chrono::duration<double>(first - now).count();
                add_sample(remaining, id, std::max(left, 0.0));
            }
        }
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&info, &state, &leases, &waiters, &remaining})
        out.push_back(std::move(*f));
    for (auto& f : counters)
        out.push_back(std::move(f));
    out.push_back(std::move(reclaims));
    return out;
}

} // namespace

std::shared_ptr<SourceCollector> make_lending_collector(std::string fabric_dir,
                                                        std::chrono::milliseconds budget) {
    return std::make_shared<LendingCollector>(std::move(fabric_dir), budget);
}

} // namespace dis::metrics
