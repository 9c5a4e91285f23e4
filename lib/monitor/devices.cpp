// The devices pane's source: the lending client's view of the pool across the fabric
// (dis/lending_client.hpp); without a fabric, or when the lenders do not answer, an honest
// "no lending data" and why.
#include "dis/monitor.hpp"

#include "dis/lending_client.hpp"

namespace dis::monitor {

namespace {

class NoDevices : public DeviceSource {
public:
    explicit NoDevices(std::string why) : m_why(std::move(why)) {}
    DeviceData fetch() override { return {false, m_why, {}}; }

private:
    std::string m_why;
};

class LendingDevices : public DeviceSource {
public:
    explicit LendingDevices(std::string dir) : m_dir(std::move(dir)) {}
    DeviceData fetch() override;

private:
    std::string m_dir;
};

DeviceData LendingDevices::fetch() {
    DeviceData d;
    lending::PoolView pool;
    try {
        pool = lending::list_pool(m_dir, lending::ClientMillis(500));
    } catch (const std::exception& e) {
        d.note = std::string("no lending data: ") + e.what();
        return d;
    }
    d.available = true;
    if (!pool.unreachable.empty()) {
        d.note = "no lending data from node";
        for (const auto& f : pool.unreachable)
            d.note += " " + std::to_string(f.node_id);
    }
    const auto now = lending::SystemClock().now();
    for (const auto& v : pool.devices) {
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
