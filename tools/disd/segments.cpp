// disd's segments: create, register memory, state changes, connect, attach, map counts.
#include "daemon.hpp"

#include "sisci_error.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace dis::disd {

namespace {

// Segment event reasons as numbered in sisci_types.h (sci_segment_cb_reason_t).
constexpr int k_cb_connect = 1;
constexpr int k_cb_disconnect = 2;

} // namespace

void Daemon::segment_event(const Segment& s, int target_client, bool to_owner, int reason,
                           std::uint32_t node) {
    json ev{{"event", to_owner ? "local_segment" : "remote_segment"},
            {"node_id", m_opts.node_id},
            {"segment_id", s.id},
            {"reason", reason},
            {"source_node", node}};
    send_to(target_client, ev);
}

void Daemon::remove_segment(std::uint32_t id, bool notify) {
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        return;
    }
    Segment& s = it->second;
    if (notify) {
        // The owner's own connections too (a loopback connect); a dying owner's are gone
        // already (drop_client erases them first).
        for (auto& [cid, n] : s.connections) {
            segment_event(s, cid, false, k_cb_disconnect, m_opts.node_id);
        }
    }
    release(s.owner, Obj::segment, s.size);
    {
        // Regions keep their own reference to the mapping; queued DMA stays memory safe.
        std::lock_guard lock(m_dma_mutex);
        m_segments.erase(it);
    }
}

bool Daemon::may_access(const Client& c, uid_t owner_uid, bool shared_access) const {
    return c.uid == 0 || c.uid == owner_uid || shared_access;
}

Segment& Daemon::owned_segment(Client& c, std::uint32_t id) {
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        refuse(SCI_ERR_NO_SUCH_SEGMENT, "no segment " + std::to_string(id));
    }
    if (it->second.owner != c.id) {
        refuse(SCI_ERR_ACCESS, "segment " + std::to_string(id) + " belongs to another process");
    }
    return it->second;
}

void Daemon::op_seg_create(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    bool auto_id = wire::get_bool(req, "auto_id");
    bool empty = wire::get_bool(req, "empty");
    std::uint64_t size = wire::get_u64(req, "size", k_max_segment_size);
    if (!empty && size == 0) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "segment size 0");
    }
    std::uint32_t id;
    if (auto_id) {
        while (m_segments.count(m_next_auto_segment) != 0) {
            ++m_next_auto_segment;
        }
        id = m_next_auto_segment++;
    } else {
        id = wire::get_u32(req, "segment_id");
        if (m_segments.count(id) != 0) {
            refuse(SCI_ERR_SEGMENTID_USED, "segment id " + std::to_string(id) + " in use");
        }
    }
    Segment s;
    s.id = id;
    s.size = empty ? 0 : size;
    s.owner = c.id;
    s.owner_pid = c.pid;
    s.owner_uid = c.uid;
    s.broadcast = wire::get_bool(req, "broadcast");
    s.shared_access = wire::get_bool(req, "shared_access");
    if (!empty) {
        s.memfd = make_memfd("dis-seg-" + std::to_string(id), size);
        auto map = wire::map_shared(s.memfd.get(), size);
        if (map.get() == nullptr) {
            refuse(SCI_ERR_NOSPC, std::string("mmap: ") + std::strerror(errno));
        }
        s.map = std::make_shared<wire::Mapping>(std::move(map));
        r.reply_fds.push_back(s.memfd.get());
    }
    charge(c, Obj::segment, s.size);
    r.reply["segment_id"] = id;
    std::lock_guard lock(m_dma_mutex);
    m_segments.emplace(id, std::move(s));
}

void Daemon::op_seg_register(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    Segment& s = owned_segment(c, wire::get_u32(req, "segment_id"));
    if (s.memfd.valid()) {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "segment already has memory");
    }
    if (r.fds.size() != 1) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "seg_register needs exactly one descriptor");
    }
    std::uint64_t size = wire::get_u64(req, "size", k_max_segment_size);
    require_sealed_memory(r.fds[0].get(), size);
    auto map = wire::map_shared(r.fds[0].get(), size);
    if (map.get() == nullptr) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, std::string("mmap: ") + std::strerror(errno));
    }
    charge_bytes(c, size);
    std::lock_guard lock(m_dma_mutex);
    s.memfd = std::move(r.fds[0]);
    s.map = std::make_shared<wire::Mapping>(std::move(map));
    s.size = size;
    r.reply["size"] = size;
}

void Daemon::op_seg_state(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    const std::string op = wire::get_str(req, "op", 64);
    Segment& s = owned_segment(c, wire::get_u32(req, "segment_id"));
    if (!s.memfd.valid()) {
        refuse(SCI_ERR_SEGMENT_NOT_PREPARED, "segment has no memory (SCIRegisterSegmentMemory)");
    }
    if (op == "seg_prepare") {
        s.prepared = true;
    } else if (op == "seg_available") {
        if (!s.prepared) {
            refuse(SCI_ERR_SEGMENT_NOT_PREPARED, "segment not prepared");
        }
        s.available = true;
    } else if (op == "seg_unavailable") {
        s.available = false;
        bool notify = wire::get_bool(req, "notify");
        bool force = wire::get_bool(req, "force");
        if (notify || force) {
            for (auto& [cid, n] : s.connections) {
                segment_event(s, cid, false, k_cb_disconnect, m_opts.node_id);
            }
        }
        if (force) {
            s.connections.clear();
        }
    } else if (op == "seg_share") {
        s.shareable = true;
    }
    r.reply["segment_id"] = s.id;
}

void Daemon::op_seg_remove(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    Segment& s = owned_segment(c, wire::get_u32(req, "segment_id"));
    // As on vendor hardware, remote connections do not hold a segment, mapped or not: its
    // connectors are told (SCI_CB_DISCONNECT, below); what they mapped stays memory (the
    // memfd lives on in their mappings) but the segment is gone. Local mappings (the owner's,
    // an attached process's) and attachments do hold it.
    std::uint32_t mapped = 0;
    for (auto& [cid, n] : s.mappings) {
        if (cid == s.owner || s.attached.count(cid) != 0) {
            mapped += n;
        }
    }
    if (mapped > 0) {
        refuse(SCI_ERR_BUSY, "segment is mapped locally " + std::to_string(mapped) + " time(s)");
    }
    if (!s.attached.empty()) {
        refuse(SCI_ERR_BUSY, "segment is attached by another process");
    }
    r.reply["segment_id"] = s.id;
    remove_segment(s.id, true);
}

void Daemon::op_seg_attach(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    std::uint32_t id = wire::get_u32(req, "segment_id");
    bool detach = wire::get_bool(req, "detach");
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        refuse(SCI_ERR_NO_SUCH_SEGMENT, "no segment " + std::to_string(id));
    }
    Segment& s = it->second;
    if (detach) {
        auto a = s.attached.find(c.id);
        if (a == s.attached.end()) {
            refuse(SCI_ERR_ILLEGAL_OPERATION, "not attached");
        }
        if (--a->second == 0) {
            s.attached.erase(a);
        }
        return;
    }
    if (!s.shareable || !s.memfd.valid()) {
        refuse(SCI_ERR_NO_SUCH_SEGMENT, "segment " + std::to_string(id) + " is not shared");
    }
    if (!may_access(c, s.owner_uid, s.shared_access)) {
        refuse(SCI_ERR_ACCESS, "segment belongs to another user");
    }
    ++s.attached[c.id];
    r.reply["size"] = s.size;
    r.reply_fds.push_back(s.memfd.get());
}

void Daemon::op_seg_connect(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    std::uint32_t id = wire::get_u32(req, "segment_id");
    bool broadcast = wire::get_bool(req, "broadcast");
    auto it = m_segments.find(id);
    if (it == m_segments.end() || !it->second.memfd.valid()) {
        refuse(SCI_ERR_NO_SUCH_SEGMENT, "no segment " + std::to_string(id));
    }
    Segment& s = it->second;
    if (broadcast != s.broadcast) {
        refuse(SCI_ERR_NO_SUCH_SEGMENT, broadcast ? "segment is not a broadcast segment"
                                                  : "broadcast segments are connected through "
                                                    "DIS_BROADCAST_NODEID_GROUP_ALL");
    }
    if (!s.available) {
        refuse(SCI_ERR_CONNECTION_REFUSED, "segment " + std::to_string(id) + " not available");
    }
    if (!may_access(c, s.owner_uid, s.shared_access)) {
        refuse(SCI_ERR_ACCESS, "segment " + std::to_string(id) + " belongs to another user");
    }
    ++s.connections[c.id];
    r.reply["size"] = s.size;
    r.reply_fds.push_back(s.memfd.get());
    if (s.owner != c.id) {
        segment_event(s, s.owner, true, k_cb_connect, c.node_id);
    }
}

void Daemon::op_seg_disconnect(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    std::uint32_t id = wire::get_u32(req, "segment_id");
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        // The owner already removed it (after telling us): nothing left to release.
        return;
    }
    Segment& s = it->second;
    auto conn = s.connections.find(c.id);
    if (conn == s.connections.end()) {
        refuse(SCI_ERR_NOT_CONNECTED, "not connected to segment " + std::to_string(id));
    }
    if (--conn->second == 0) {
        s.connections.erase(conn);
    }
    if (s.owner != c.id) {
        segment_event(s, s.owner, true, k_cb_disconnect, c.node_id);
    }
    r.reply["segment_id"] = id;
}

void Daemon::op_seg_map(Request& r) {
    Client& c = r.client;
    const json& req = r.body;
    std::uint32_t id = wire::get_u32(req, "segment_id");
    bool unmap = wire::get_bool(req, "unmap");
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        return; // gone: nothing to count
    }
    Segment& s = it->second;
    bool entitled = s.owner == c.id || s.connections.count(c.id) != 0 || s.attached.count(c.id);
    if (!entitled && !unmap) {
        refuse(SCI_ERR_NOT_CONNECTED, "map of a segment the client is not connected to");
    }
    if (unmap) {
        auto m = s.mappings.find(c.id);
        if (m != s.mappings.end() && --m->second == 0) {
            s.mappings.erase(m);
        }
    } else {
        ++s.mappings[c.id];
    }
    r.reply["segment_id"] = id;
}

void Daemon::release_client_segments(int client_id) {
    ++m_segment_changes;
    auto it = m_clients.find(client_id);
    std::uint32_t client_node = it != m_clients.end() ? it->second.node_id : 0;
    // Connections it held on other clients' segments: tell the owners.
    for (auto& [id, s] : m_segments) {
        auto conn = s.connections.find(client_id);
        if (conn != s.connections.end()) {
            s.connections.erase(conn);
            if (s.owner != client_id) {
                segment_event(s, s.owner, true, k_cb_disconnect, client_node);
            }
        }
        s.mappings.erase(client_id);
        s.attached.erase(client_id);
    }
    std::vector<std::uint32_t> owned;
    for (auto& [id, s] : m_segments) {
        if (s.owner == client_id) {
            owned.push_back(id);
        }
    }
    for (auto id : owned) {
        remove_segment(id, true);
    }
}

} // namespace dis::disd
