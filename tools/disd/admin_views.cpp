// disd's admin views: node_info (adapters, counters), segments and links.
#include "daemon.hpp"

#include "dis/fabric_model.hpp"

#include <unistd.h>

namespace dis::disd {

namespace {

constexpr std::chrono::milliseconds k_probe_timeout{20};

} // namespace

void Daemon::op_node_info(Request& r) {
    r.reply["node"] = node_info();
}

void Daemon::op_segments(Request& r) {
    r.reply["segments"] = segments_json();
}

void Daemon::op_links(Request& r) {
    r.reply["links"] = links_json(wire::get_bool(r.body, "probe", true));
}

nlohmann::json Daemon::node_info() const {
    const fabric::ConfigNode* cn = m_config.node(m_opts.node_id);
    auto peers = wire::list_node_sockets(m_opts.fabric_dir);
    auto links = m_config.links_of(m_opts.node_id, peers);
    std::uint32_t adapters = cn != nullptr ? cn->adapters : 1;
    fabric::NodeInfo info;
    for (std::uint32_t a = 0; a < adapters; ++a) {
        bool any_up = false;
        std::uint32_t width = m_config.default_width;
        std::string speed = m_config.default_speed;
        for (const auto& l : links) {
            any_up = any_up || l.up;
            width = l.width;
            speed = l.speed;
        }
        fabric::AdapterInfo ad;
        ad.adapter_no = a;
        ad.node_id = m_opts.node_id;
        ad.card_type = cn != nullptr ? cn->card_type : "software fabric adapter";
        ad.serial = (cn != nullptr && cn->serial != 0) ? cn->serial
                                                       : 0xD1500000ULL + m_opts.node_id * 16 + a;
        ad.links = static_cast<std::uint32_t>(links.size());
        ad.link_operational = any_up || links.empty();
        ad.link_width = width;
        ad.link_speed = speed;
        ad.dma_alignment = 1;
        info.adapters.push_back(ad);
    }
    std::uint64_t seg_bytes = 0;
    std::uint64_t connections = 0;
    for (const auto& [id, s] : m_segments) {
        seg_bytes += s.size;
        for (const auto& [cid, n] : s.connections) {
            connections += n;
        }
    }
    std::size_t queues;
    {
        std::lock_guard lock(const_cast<std::mutex&>(m_dma_mutex));
        queues = m_queues.size();
    }
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now() - m_started)
                      .count();
    info.node_id = m_opts.node_id;
    info.name =
        cn != nullptr && !cn->name.empty() ? cn->name : "node" + std::to_string(m_opts.node_id);
    info.pid = ::getpid();
    info.uptime_s = static_cast<std::uint64_t>(uptime);
    info.topology = m_config.topology;
    info.counters = {{"clients", m_clients.size()},
                     {"clients_total", m_clients_total},
                     {"segments", m_segments.size()},
                     {"segment_bytes", seg_bytes},
                     {"segment_changes_total", m_segment_changes},
                     {"connections", connections},
                     {"interrupts", m_interrupts.size()},
                     {"interrupts_triggered_total", interrupts_triggered()},
                     {"dma_queues", queues},
                     {"dma_bytes_total", m_dma_bytes.load()},
                     {"dma_transfers_total", m_dma_transfers.load()},
                     {"dma_errors_total", m_dma_errors.load()},
                     {"requests_total", m_requests},
                     {"malformed_requests_total", m_malformed},
                     {"clients_dropped_total", m_clients_dropped},
                     {"connections_refused_total", m_connections_refused},
                     {"accept_errors_total", m_accept_errors},
                     {"devices", m_devices.size()},
                     {"leases", m_lease_links.size()},
                     {"borrows_total", m_borrows.load()},
                     {"returns_total", m_returns.load()},
                     {"resets_total", m_resets.load()},
                     {"reset_failures_total", m_reset_failures.load()},
                     {"faults_total", m_faults.load()},
                     {"reclaims_admin_total", m_reclaims_admin.load()},
                     {"reclaims_lease_expired_total", m_reclaims_expired.load()},
                     {"reclaims_lender_restart_total", m_reclaims_restart.load()},
                     {"reclaims_device_fault_total", m_reclaims_fault.load()}};
    return info;
}

nlohmann::json Daemon::segments_json() const {
    json out = json::array();
    for (const auto& [id, s] : m_segments) {
        std::uint32_t conns = 0;
        std::uint32_t maps = 0;
        for (const auto& [cid, n] : s.connections) {
            conns += n;
        }
        for (const auto& [cid, n] : s.mappings) {
            maps += n;
        }
        std::string state = s.available ? "available" : s.prepared ? "prepared" : "created";
        if (!s.available && s.prepared && !s.connections.empty()) {
            state = "unavailable";
        }
        fabric::SegmentInfo info;
        info.node_id = m_opts.node_id;
        info.segment_id = id;
        info.adapter_no = 0;
        info.size = s.size;
        info.owner_pid = s.owner_pid;
        info.owner_uid = s.owner_uid;
        info.state = state;
        info.connections = conns;
        info.mappings = maps;
        info.broadcast = s.broadcast;
        out.push_back(info);
    }
    return out;
}

nlohmann::json Daemon::links_json(bool probe) const {
    std::vector<std::uint32_t> peers;
    if (!m_config.nodes.empty()) {
        for (const auto& [id, n] : m_config.nodes) {
            peers.push_back(id);
        }
    } else {
        peers = wire::list_node_sockets(m_opts.fabric_dir);
    }
    json out = json::array();
    for (const auto& l : m_config.links_of(m_opts.node_id, peers)) {
        // A live daemon's listening socket accepts at once even while it is busy, so
        // connect() alone tells whether the peer is up; a frozen one with a full backlog
        // refuses a non-blocking connect, so this loop waits k_probe_timeout at most. Without
        // `probe` the asker judges the peers itself (it has asked each of them just now).
        const bool alive = !probe || wire::probe_socket(wire::socket_path(m_opts.fabric_dir, l.b),
                                                        k_probe_timeout);
        out.push_back(fabric::LinkInfo{m_opts.node_id, l.b, (alive && l.up) ? "up" : "down",
                                       l.width, l.speed});
    }
    return out;
}

} // namespace dis::disd
