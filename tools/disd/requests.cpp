// disd's requests: the wire protocol's dispatch table, the per-client and per-uid accounts
// every handler charges, the memory checks, and the connection-level ops (hello, ping,
// shutdown).
#include "daemon.hpp"

#include "sisci_error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dis::disd {

wire::Fd make_memfd(const std::string& name, std::uint64_t size) {
    wire::Fd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        refuse(SCI_ERR_NOSPC, std::string("memfd_create: ") + std::strerror(errno));
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        refuse(SCI_ERR_NOSPC, std::string("ftruncate: ") + std::strerror(errno));
    }
    // The size is part of the contract with every mapper: forbid shrinking and growing.
    ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    return fd;
}

void require_sealed_memory(int fd, std::uint64_t size) {
    int seals = ::fcntl(fd, F_GET_SEALS);
    constexpr int k_size_seals = F_SEAL_SHRINK | F_SEAL_GROW;
    if (seals < 0 || (seals & k_size_seals) != k_size_seals) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER,
               "memory not sealed against resizing (F_SEAL_SHRINK | F_SEAL_GROW)");
    }
    struct stat st {};
    if (size == 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) < size) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "descriptor is not a memory file of that size");
    }
}

// The wire protocol: every op, its handler, whether it needs hello first and how many
// descriptors it takes. Keep tools/disd/README.md's table in step.
const Daemon::Op* Daemon::find_op(std::string_view name) {
    static const Op k_ops[] = {
        {"hello", &Daemon::op_hello, false, 0},
        {"ping", &Daemon::op_ping, true, 0},
        {"seg_create", &Daemon::op_seg_create, true, 0},
        {"seg_register", &Daemon::op_seg_register, true, 1},
        {"seg_prepare", &Daemon::op_seg_state, true, 0},
        {"seg_available", &Daemon::op_seg_state, true, 0},
        {"seg_unavailable", &Daemon::op_seg_state, true, 0},
        {"seg_share", &Daemon::op_seg_state, true, 0},
        {"seg_remove", &Daemon::op_seg_remove, true, 0},
        {"seg_attach", &Daemon::op_seg_attach, true, 0},
        {"seg_connect", &Daemon::op_seg_connect, true, 0},
        {"seg_disconnect", &Daemon::op_seg_disconnect, true, 0},
        {"seg_map", &Daemon::op_seg_map, true, 0},
        {"int_create", &Daemon::op_int_create, true, 0},
        {"int_remove", &Daemon::op_int_remove, true, 0},
        {"int_connect", &Daemon::op_int_connect, true, 0},
        {"int_disconnect", &Daemon::op_int_disconnect, true, 0},
        {"dma_queue_create", &Daemon::op_dma_queue_create, true, 0},
        {"dma_queue_remove", &Daemon::op_dma_queue_remove, true, 0},
        {"dma_region", &Daemon::op_dma_region, true, 1},
        {"dma_region_release", &Daemon::op_dma_region_release, true, 0},
        {"node_info", &Daemon::op_node_info, true, 0},
        {"segments", &Daemon::op_segments, true, 0},
        {"links", &Daemon::op_links, true, 0},
        {"shutdown", &Daemon::op_shutdown, true, 0},
        // Device lending (lending.cpp, device_segments.cpp).
        {"dev_list", &Daemon::op_dev_list, true, 0},
        {"dev_show", &Daemon::op_dev_show, true, 0},
        {"dev_borrow", &Daemon::op_dev_borrow, true, 0},
        {"dev_renew", &Daemon::op_dev_renew, true, 0},
        {"dev_share", &Daemon::op_dev_share, true, 0},
        {"dev_return", &Daemon::op_dev_return, true, 0},
        {"dev_reclaim", &Daemon::op_dev_reclaim, true, 0},
        {"dev_reset", &Daemon::op_dev_reset, true, 0},
        {"dev_available", &Daemon::op_dev_availability, true, 0},
        {"dev_unavailable", &Daemon::op_dev_availability, true, 0},
        {"dev_history", &Daemon::op_dev_history, true, 0},
        {"dev_connect", &Daemon::op_dev_connect, true, 0},
        {"dev_disconnect", &Daemon::op_dev_disconnect, true, 0},
        {"dev_map", &Daemon::op_dev_map, true, 1},
        {"dev_unmap", &Daemon::op_dev_unmap, true, 0},
        // Host devices entering and leaving the pool, audit notes (host_devices.cpp).
        {"dev_add", &Daemon::op_dev_add, true, 0},
        {"dev_remove", &Daemon::op_dev_remove, true, 0},
        {"audit_note", &Daemon::op_audit_note, true, 0},
    };
    for (const auto& op : k_ops) {
        if (op.name == name) {
            return &op;
        }
    }
    return nullptr;
}

bool Daemon::dispatch(Client& c, wire::Message& msg, json& reply, std::vector<int>& fds) {
    std::string name = wire::get_str(msg.body, "op", 64);
    const Op* op = find_op(name);
    if (op == nullptr) {
        ++m_malformed;
        refuse(SCI_ERR_ILLEGAL_OPERATION, "unknown op '" + name + "'");
    }
    if (msg.fds.size() > op->fds_in) {
        ++m_malformed;
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "'" + name + "' takes " + std::to_string(op->fds_in) +
                                              " descriptor(s), got " +
                                              std::to_string(msg.fds.size()));
    }
    if (op->needs_hello && !c.hello) {
        refuse(SCI_ERR_NOT_INITIALIZED, "say hello first");
    }
    if (name.rfind("seg_", 0) == 0)
        ++m_segment_changes; // counted before it runs: one that fails changed nothing, harmless
    Request r{c, msg.body, msg.fds, reply, fds};
    (this->*(op->handler))(r);
    return !r.deferred;
}

void Daemon::charge(Client& c, Obj kind, std::uint64_t bytes) {
    auto k = static_cast<std::size_t>(kind);
    std::uint32_t client_max =
        kind == Obj::region ? 4 * m_opts.max_client_objects : m_opts.max_client_objects;
    static const char* const k_names[] = {"segments", "interrupts", "DMA queues", "DMA regions"};
    if (c.objects[k] >= client_max) {
        refuse(SCI_ERR_NOSPC, std::string("too many ") + k_names[k] + " for one client (" +
                                  std::to_string(client_max) + ")");
    }
    UidUsage& u = m_uids[c.uid];
    if (u.objects >= m_opts.max_uid_objects) {
        refuse(SCI_ERR_NOSPC, "uid " + std::to_string(c.uid) + " holds " +
                                  std::to_string(m_opts.max_uid_objects) +
                                  " objects already (--max-uid-objects)");
    }
    charge_bytes(c, bytes);
    ++c.objects[k];
    ++u.objects;
}

void Daemon::charge_bytes(Client& c, std::uint64_t bytes) {
    if (c.bytes + bytes > m_opts.max_client_bytes) {
        refuse(SCI_ERR_NOSPC, "per-client memory limit (" +
                                  std::to_string(m_opts.max_client_bytes) + " bytes) reached");
    }
    UidUsage& u = m_uids[c.uid];
    if (u.bytes + bytes > m_opts.max_uid_bytes) {
        refuse(SCI_ERR_NOSPC, "per-uid memory limit of uid " + std::to_string(c.uid) + " (" +
                                  std::to_string(m_opts.max_uid_bytes) + " bytes) reached");
    }
    c.bytes += bytes;
    u.bytes += bytes;
}

void Daemon::release(int client_id, Obj kind, std::uint64_t bytes) {
    auto it = m_clients.find(client_id);
    if (it == m_clients.end()) {
        return;
    }
    Client& c = it->second;
    auto k = static_cast<std::size_t>(kind);
    bool had = c.objects[k] > 0;
    if (had) {
        --c.objects[k];
    }
    std::uint64_t b = std::min(c.bytes, bytes);
    c.bytes -= b;
    auto u = m_uids.find(c.uid);
    if (u != m_uids.end()) {
        u->second.bytes -= std::min(u->second.bytes, b);
        if (had && u->second.objects > 0) {
            --u->second.objects;
        }
    }
}

void Daemon::op_hello(Request& r) {
    Client& c = r.client;
    if (c.hello) {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "hello was said already");
    }
    auto version = wire::get_u32(r.body, "version");
    if (version != wire::k_protocol_version) {
        refuse(SCI_ERR_INCONSISTENT_VERSIONS, "protocol version " + std::to_string(version) +
                                                  " (daemon speaks " +
                                                  std::to_string(wire::k_protocol_version) + ")");
    }
    // 0: an admin client of no node. Else a node id; one the config declares when there is
    // a config.
    std::uint32_t node = wire::get_u32(r.body, "node_id");
    if (node != 0 && !fabric::valid_node_id(node)) {
        refuse(SCI_ERR_ILLEGAL_NODEID,
               "node id " + std::to_string(node) + " is not a positive multiple of 4");
    }
    if (node != 0 && node != m_opts.node_id && !m_config.nodes.empty() &&
        m_config.node(node) == nullptr) {
        refuse(SCI_ERR_ILLEGAL_NODEID, "node " + std::to_string(node) + " is not in the config");
    }
    c.node_id = node;
    c.hello = true;
    r.reply["node_id"] = m_opts.node_id;
    r.reply["pid"] = ::getpid();
    // Processes of this node get the DMA doorbell.
    if (c.node_id == m_opts.node_id) {
        r.reply_fds.push_back(m_doorbell_fd.get());
    }
}

void Daemon::op_ping(Request& r) {
    r.reply["node_id"] = m_opts.node_id;
}

void Daemon::op_shutdown(Request& r) {
    if (r.client.uid != 0 && r.client.uid != ::getuid()) {
        refuse(SCI_ERR_ACCESS, "only root or the daemon's user may shut it down");
    }
    log("shutdown requested by pid " + std::to_string(r.client.pid));
    m_stop = true;
}

} // namespace dis::disd
