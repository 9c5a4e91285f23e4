// The devices pane's source: the lending client's view of the pool across the fabric
// (dis/lending_client.hpp); without a fabric, or when the lenders do not answer, an honest
// "no lending data" and why.
#include "dis/monitor.hpp"

#include "dis/fabric_sample.hpp"
#include "dis/lending_client.hpp"

#include <algorithm>
#include <map>

namespace dis::monitor {

namespace {

class NoDevices : public DeviceSource {
public:
    explicit NoDevices(std::string why) : m_why(std::move(why)) {}
    DeviceData fetch() override { return {false, m_why, {}}; }

private:
    std::string m_why;
};

// One lender connection per node kept between refreshes (a monitor asks every second;
// list_pool would ping and connect to every node anew each time).
class LendingDevices : public DeviceSource {
public:
    explicit LendingDevices(std::string dir) : m_dir(std::move(dir)) {}
    DeviceData fetch() override;

private:
    std::vector<lending::DeviceView> list(std::uint32_t node);

    std::string m_dir;
    std::map<std::uint32_t, lending::LenderClient> m_clients;
};

std::vector<lending::DeviceView> LendingDevices::list(std::uint32_t node) {
    if (auto it = m_clients.find(node); it != m_clients.end()) {
        try {
            return it->second.list();
        } catch (const std::exception&) {
            m_clients.erase(it); // a restarted daemon or a late reply: start afresh
        }
    }
    lending::LenderClient client(m_dir, node, 0, lending::ClientMillis(500));
    auto devices = client.list();
    m_clients.insert_or_assign(node, std::move(client));
    return devices;
}

DeviceData LendingDevices::fetch() {
    DeviceData d;
    const auto nodes = fabric::node_socket_ids(m_dir);
    std::erase_if(m_clients, [&](const auto& kv) {
        return !std::binary_search(nodes.begin(), nodes.end(), kv.first);
    });
    std::vector<lending::DeviceView> devices;
    std::string failed;
    for (auto node : nodes) {
        try {
            for (auto& v : list(node))
                devices.push_back(std::move(v));
            d.available = true;
        } catch (const std::exception&) {
            failed += " " + std::to_string(node);
        }
    }
    if (!d.available) {
        d.note = nodes.empty() ? "no lending data: no node daemon in " + m_dir
                               : "no lending data: no lender answered";
        return d;
    }
    if (!failed.empty())
        d.note = "no lending data from node" + failed;
    std::sort(devices.begin(), devices.end(),
              [](const auto& a, const auto& b) { return a.status.info.fdid < b.status.info.fdid; });
    const auto now = lending::SystemClock().now();
    for (const auto& v : devices) {
        DeviceRow r;
        r.fdid = lending::to_string(v.status.info.fdid);
        r.node_id = v.node_id;
        r.kind = v.kind;
        r.name = v.status.info.name;
        r.state = lending::to_string(v.status.state);
        r.reason = v.status.reason;
        r.leases = v.status.leases.size();
        r.waiters = v.status.waiters;
        if (!v.status.leases.empty()) {
            const auto& l = v.status.leases.front();
            r.holder = "node " + std::to_string(l.borrower.node_id) + " pid " +
                       std::to_string(l.borrower.pid) + " uid " + std::to_string(l.borrower.uid);
            r.lease_id = l.id;
            r.lease_left_s = std::chrono::duration<double>(l.expires - now).count();
        }
        d.rows.push_back(std::move(r));
    }
    return d;
}

} // namespace

std::unique_ptr<DeviceSource> make_device_source(const std::string& fabric_dir) {
    if (!fabric_dir.empty())
        return std::make_unique<LendingDevices>(fabric_dir);
    return std::make_unique<NoDevices>("no lending data: no fabric directory");
}

} // namespace dis::monitor
