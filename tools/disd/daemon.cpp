// disd request handling: sockets, clients, segments, interrupts, admin views.
#include "daemon.hpp"

#include "dis/error.hpp"
#include "sisci_error.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace dis::disd {

namespace {

// Segment event reasons as numbered in sisci_types.h (sci_segment_cb_reason_t).
constexpr int k_cb_connect = 1;
constexpr int k_cb_disconnect = 2;

constexpr std::uint64_t k_max_segment_size = 1ULL << 40;
constexpr std::uint32_t k_max_dma_entries = 4096;

[[noreturn]] void refuse(int code, const std::string& why) {
    throw Refused{code, why};
}

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

} // namespace

Daemon::Daemon(Options opts)
    : m_opts(std::move(opts)),
      m_streaming_bytes(m_opts.dma_streaming_bytes != 0 ? m_opts.dma_streaming_bytes
                                                        : default_streaming_bytes()) {}

Daemon::~Daemon() {
    m_engine_stop = true;
    if (m_doorbell != nullptr) {
        m_doorbell->seq.fetch_add(1);
        wire::futex_wake(&m_doorbell->seq);
    }
    if (m_engine.joinable()) {
        m_engine.join();
    }
    if (m_listen.valid()) {
        ::unlink(m_socket_path.c_str());
    }
}

void Daemon::wake_engine() {
    if (m_doorbell != nullptr) {
        m_doorbell->seq.fetch_add(1, std::memory_order_seq_cst);
        wire::futex_wake(&m_doorbell->seq);
    }
}

void Daemon::log(const std::string& msg) const {
    if (m_opts.verbose) {
        std::cerr << "disd[" << m_opts.node_id << "]: " << msg << "\n";
    }
}

void Daemon::start() {
    if (!fabric::valid_node_id(m_opts.node_id)) {
        throw Error(ErrorKind::invalid_input, "node id " + std::to_string(m_opts.node_id) +
                                                  " is not a positive multiple of 4");
    }
    if (m_opts.adapter != 0) {
        throw Error(ErrorKind::invalid_input,
                    "adapter " + std::to_string(m_opts.adapter) +
                        " does not exist (software nodes have adapter 0)");
    }
    if (m_opts.config_path) {
        m_config = fabric::load_fabric_config(*m_opts.config_path);
        if (!m_config.nodes.empty() && m_config.node(m_opts.node_id) == nullptr) {
            throw Error(ErrorKind::invalid_input, "node " + std::to_string(m_opts.node_id) +
                                                      " is not declared in " + *m_opts.config_path);
        }
    }
    std::error_code ec;
    std::filesystem::create_directories(m_opts.fabric_dir, ec);
    if (ec) {
        throw Error(ErrorKind::os,
                    "cannot create fabric directory " + m_opts.fabric_dir + ": " + ec.message());
    }
    m_socket_path = wire::socket_path(m_opts.fabric_dir, m_opts.node_id);

    // Signals become readable events before the socket appears: whoever sees the socket may
    // stop the daemon at once, and must get a clean shutdown, not the default action.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    m_signal = wire::Fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    ::signal(SIGPIPE, SIG_IGN);

    // A socket file that still accepts connections belongs to a live daemon.
    int probe = wire::connect_socket(m_socket_path);
    if (probe >= 0) {
        ::close(probe);
        throw Error(ErrorKind::invalid_input, "node " + std::to_string(m_opts.node_id) +
                                                  " is already running in " + m_opts.fabric_dir);
    }
    ::unlink(m_socket_path.c_str());

    sockaddr_un addr{};
    if (m_socket_path.size() >= sizeof(addr.sun_path)) {
        throw Error(ErrorKind::invalid_input, "socket path too long: " + m_socket_path);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, m_socket_path.c_str(), m_socket_path.size() + 1);
    wire::Fd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock.valid()) {
        throw os_error("socket", errno);
    }
    // Create the socket 0660 from the start (no window with wider permissions).
    mode_t old = ::umask(0117);
    int rc = ::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    int bind_errno = errno;
    ::umask(old);
    if (rc != 0) {
        throw os_error("bind " + m_socket_path, bind_errno);
    }
    ::chmod(m_socket_path.c_str(), 0660);
    if (::listen(sock.get(), 128) != 0) {
        throw os_error("listen", errno);
    }
    m_listen = std::move(sock);

    m_epoll = wire::Fd(::epoll_create1(EPOLL_CLOEXEC));
    for (int fd : {m_listen.get(), m_signal.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev);
    }

    // The DMA doorbell: one shared page every local client maps to wake the engine.
    m_doorbell_fd = wire::Fd(::memfd_create("dis-doorbell", MFD_CLOEXEC));
    if (!m_doorbell_fd.valid() || ::ftruncate(m_doorbell_fd.get(), 4096) != 0) {
        throw os_error("doorbell memfd", errno);
    }
    m_doorbell_map = wire::map_shared(m_doorbell_fd.get(), 4096);
    if (m_doorbell_map.get() == nullptr) {
        throw os_error("doorbell mmap", errno);
    }
    m_doorbell = new (m_doorbell_map.get()) wire::DmaDoorbell{};
    m_started = std::chrono::steady_clock::now();
    m_engine = std::thread([this] { engine_main(); });
    log("listening on " + m_socket_path);
}

void Daemon::run() {
    std::vector<epoll_event> events(64);
    while (!m_stop) {
        int n = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw os_error("epoll_wait", errno);
        }
        for (int i = 0; i < n && !m_stop; ++i) {
            int fd = events[static_cast<std::size_t>(i)].data.fd;
            if (fd == m_listen.get()) {
                accept_client();
            } else if (fd == m_signal.get()) {
                signalfd_siginfo si{};
                if (::read(fd, &si, sizeof(si)) > 0) {
                    log("signal " + std::to_string(si.ssi_signo) + ", shutting down");
                    m_stop = true;
                }
            } else {
                auto it = m_fd_to_client.find(fd);
                if (it != m_fd_to_client.end()) {
                    serve_client(it->second);
                }
            }
        }
    }
    // Release everything in order so that peers see their disconnects.
    while (!m_clients.empty()) {
        drop_client(m_clients.begin()->first);
    }
    ::unlink(m_socket_path.c_str());
}

void Daemon::accept_client() {
    for (;;) {
        int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            ::close(fd);
            continue;
        }
        Client c;
        c.id = m_next_client++;
        c.sock = wire::Fd(fd);
        c.pid = cred.pid;
        c.uid = cred.uid;
        c.gid = cred.gid;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev);
        m_fd_to_client[fd] = c.id;
        ++m_clients_total;
        m_clients.emplace(c.id, std::move(c));
    }
}

void Daemon::serve_client(int client_id) {
    Client& c = m_clients.at(client_id);
    wire::Message msg;
    auto st = wire::recv_message(c.sock.get(), msg);
    if (st == wire::RecvStatus::eof || st == wire::RecvStatus::error) {
        drop_client(client_id);
        return;
    }
    ++m_requests;
    json reply = json::object();
    std::vector<int> fds;
    if (st == wire::RecvStatus::malformed) {
        ++m_malformed;
        reply["err"] = SCI_ERR_ILLEGAL_PARAMETER;
        reply["message"] = "malformed message";
    } else {
        if (msg.body.contains("seq")) {
            reply["seq"] = msg.body["seq"];
        }
        try {
            handle(c, msg, reply, fds);
            if (!reply.contains("err")) {
                reply["err"] = SCI_ERR_OK;
            }
        } catch (const Refused& r) {
            reply["err"] = r.code;
            reply["message"] = r.why;
            fds.clear();
        } catch (const wire::WireError& e) {
            ++m_malformed;
            reply["err"] = SCI_ERR_ILLEGAL_PARAMETER;
            reply["message"] = e.what();
            fds.clear();
        } catch (const nlohmann::json::exception& e) {
            ++m_malformed;
            reply["err"] = SCI_ERR_ILLEGAL_PARAMETER;
            reply["message"] = e.what();
            fds.clear();
        }
    }
    // The client may have been dropped by the handler (never: handlers only mark), so
    // look it up again by id.
    auto it = m_clients.find(client_id);
    if (it != m_clients.end()) {
        wire::send_message(it->second.sock.get(), reply, fds);
    }
}

void Daemon::send_event(int client_id, const json& ev, const std::vector<int>& fds) {
    auto it = m_clients.find(client_id);
    if (it != m_clients.end()) {
        wire::send_message(it->second.sock.get(), ev, fds);
    }
}

void Daemon::segment_event(const Segment& s, int target_client, bool to_owner, int reason,
                           std::uint32_t node) {
    json ev{{"event", to_owner ? "local_segment" : "remote_segment"},
            {"node_id", m_opts.node_id},
            {"segment_id", s.id},
            {"reason", reason},
            {"source_node", node}};
    send_event(target_client, ev);
}

void Daemon::drop_client(int client_id) {
    auto it = m_clients.find(client_id);
    if (it == m_clients.end()) {
        return;
    }
    log("client " + std::to_string(client_id) + " (pid " + std::to_string(it->second.pid) +
        ") gone");
    std::uint32_t client_node = it->second.node_id;
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
    std::vector<std::pair<bool, std::uint32_t>> ints;
    for (auto& [key, irq] : m_interrupts) {
        irq.connections.erase(client_id);
        if (irq.owner == client_id) {
            ints.push_back(key);
        }
    }
    for (auto& key : ints) {
        remove_interrupt(key.second, key.first);
    }
    {
        std::lock_guard lock(m_dma_mutex);
        for (auto q = m_queues.begin(); q != m_queues.end();) {
            q = (q->second->client == client_id) ? m_queues.erase(q) : std::next(q);
        }
        for (auto r = m_regions.begin(); r != m_regions.end();) {
            r = (r->second.client == client_id) ? m_regions.erase(r) : std::next(r);
        }
        ++m_queues_version;
    }
    wake_engine();
    m_fd_to_client.erase(it->second.sock.get());
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, it->second.sock.get(), nullptr);
    m_clients.erase(it);
}

void Daemon::remove_segment(std::uint32_t id, bool notify) {
    auto it = m_segments.find(id);
    if (it == m_segments.end()) {
        return;
    }
    Segment& s = it->second;
    if (notify) {
        for (auto& [cid, n] : s.connections) {
            if (cid != s.owner) {
                segment_event(s, cid, false, k_cb_disconnect, m_opts.node_id);
            }
        }
    }
    auto owner = m_clients.find(s.owner);
    if (owner != m_clients.end()) {
        owner->second.bytes -= std::min(owner->second.bytes, s.size);
        if (owner->second.segments > 0) {
            --owner->second.segments;
        }
    }
    {
        // Regions keep their own reference to the mapping; queued DMA stays memory safe.
        std::lock_guard lock(m_dma_mutex);
        m_segments.erase(it);
    }
}

void Daemon::remove_interrupt(std::uint32_t no, bool data) {
    auto it = m_interrupts.find({data, no});
    if (it == m_interrupts.end()) {
        return;
    }
    for (auto& [cid, n] : it->second.connections) {
        send_event(cid, json{{"event", "interrupt_gone"},
                             {"node_id", m_opts.node_id},
                             {"interrupt_no", no},
                             {"data", data}});
    }
    auto owner = m_clients.find(it->second.owner);
    if (owner != m_clients.end() && owner->second.interrupts > 0) {
        --owner->second.interrupts;
    }
    m_interrupts.erase(it);
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

void Daemon::handle(Client& c, const wire::Message& msg, json& reply, std::vector<int>& fds) {
    const json& req = msg.body;
    std::string op = wire::get_str(req, "op", 64);
    if (op != "hello" && !c.hello) {
        refuse(SCI_ERR_NOT_INITIALIZED, "say hello first");
    }
    if (op == "hello") {
        op_hello(c, req, reply, fds);
    } else if (op == "ping") {
        reply["node_id"] = m_opts.node_id;
    } else if (op == "seg_create") {
        op_seg_create(c, req, reply, fds);
    } else if (op == "seg_register") {
        op_seg_register(c, req, msg, reply);
    } else if (op == "seg_prepare" || op == "seg_available" || op == "seg_unavailable" ||
               op == "seg_share") {
        op_seg_state(c, req, op, reply);
    } else if (op == "seg_remove") {
        op_seg_remove(c, req, reply);
    } else if (op == "seg_attach") {
        op_seg_attach(c, req, reply, fds);
    } else if (op == "seg_connect") {
        op_seg_connect(c, req, reply, fds);
    } else if (op == "seg_disconnect") {
        op_seg_disconnect(c, req, reply);
    } else if (op == "seg_map") {
        op_seg_map(c, req, reply);
    } else if (op == "int_create") {
        op_int_create(c, req, reply, fds);
    } else if (op == "int_remove") {
        op_int_remove(c, req, reply);
    } else if (op == "int_connect") {
        op_int_connect(c, req, reply, fds);
    } else if (op == "int_disconnect") {
        op_int_disconnect(c, req, reply);
    } else if (op == "dma_queue_create") {
        op_dma_queue_create(c, req, reply, fds);
    } else if (op == "dma_queue_remove") {
        op_dma_queue_remove(c, req, reply);
    } else if (op == "dma_region") {
        op_dma_region(c, req, msg, reply);
    } else if (op == "dma_region_release") {
        op_dma_region_release(c, req, reply);
    } else if (op == "node_info") {
        reply["node"] = node_info();
    } else if (op == "segments") {
        reply["segments"] = segments_json();
    } else if (op == "links") {
        reply["links"] = links_json();
    } else if (op == "shutdown") {
        if (c.uid != 0 && c.uid != ::getuid()) {
            refuse(SCI_ERR_ACCESS, "only root or the daemon's user may shut it down");
        }
        log("shutdown requested by pid " + std::to_string(c.pid));
        m_stop = true;
    } else {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "unknown op '" + op + "'");
    }
}

void Daemon::op_hello(Client& c, const json& req, json& reply, std::vector<int>& fds) {
    auto version = wire::get_u32(req, "version");
    if (version != wire::k_protocol_version) {
        refuse(SCI_ERR_INCONSISTENT_VERSIONS, "protocol version " + std::to_string(version) +
                                                  " (daemon speaks " +
                                                  std::to_string(wire::k_protocol_version) + ")");
    }
    c.node_id = wire::get_u32(req, "node_id");
    c.hello = true;
    reply["node_id"] = m_opts.node_id;
    reply["pid"] = ::getpid();
    // Processes of this node get the DMA doorbell.
    if (c.node_id == m_opts.node_id) {
        fds.push_back(m_doorbell_fd.get());
    }
}

void Daemon::op_seg_create(Client& c, const json& req, json& reply, std::vector<int>& fds) {
    bool auto_id = wire::get_bool(req, "auto_id");
    bool empty = wire::get_bool(req, "empty");
    std::uint64_t size = wire::get_u64(req, "size", k_max_segment_size);
    if (!empty && size == 0) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "segment size 0");
    }
    if (c.segments >= m_opts.max_client_objects) {
        refuse(SCI_ERR_NOSPC, "too many segments for one client");
    }
    if (c.bytes + size > m_opts.max_client_bytes) {
        refuse(SCI_ERR_NOSPC, "per-client segment memory limit (" +
                                  std::to_string(m_opts.max_client_bytes) + " bytes) reached");
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
        fds.push_back(s.memfd.get());
    }
    c.bytes += s.size;
    ++c.segments;
    reply["segment_id"] = id;
    std::lock_guard lock(m_dma_mutex);
    m_segments.emplace(id, std::move(s));
}

void Daemon::op_seg_register(Client& c, const json& req, const wire::Message& msg, json& reply) {
    Segment& s = owned_segment(c, wire::get_u32(req, "segment_id"));
    if (s.memfd.valid()) {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "segment already has memory");
    }
    if (msg.fds.size() != 1) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "seg_register needs exactly one descriptor");
    }
    std::uint64_t size = wire::get_u64(req, "size", k_max_segment_size);
    struct stat st {};
    if (size == 0 || ::fstat(msg.fds[0].get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) < size) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "descriptor is not a memory file of that size");
    }
    if (c.bytes + size > m_opts.max_client_bytes) {
        refuse(SCI_ERR_NOSPC, "per-client segment memory limit reached");
    }
    auto map = wire::map_shared(msg.fds[0].get(), size);
    if (map.get() == nullptr) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, std::string("mmap: ") + std::strerror(errno));
    }
    int dup = ::fcntl(msg.fds[0].get(), F_DUPFD_CLOEXEC, 0);
    std::lock_guard lock(m_dma_mutex);
    s.memfd = wire::Fd(dup);
    s.map = std::make_shared<wire::Mapping>(std::move(map));
    s.size = size;
    c.bytes += size;
    reply["size"] = size;
}

void Daemon::op_seg_state(Client& c, const json& req, const std::string& op, json& reply) {
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
    reply["segment_id"] = s.id;
}

void Daemon::op_seg_remove(Client& c, const json& req, json& reply) {
    Segment& s = owned_segment(c, wire::get_u32(req, "segment_id"));
    // As on vendor hardware, connections do not hold a segment: its connectors are told
    // (SCI_CB_DISCONNECT, below). Mappings and attachments do.
    std::uint32_t mapped = 0;
    for (auto& [cid, n] : s.mappings) {
        mapped += n;
    }
    if (mapped > 0) {
        refuse(SCI_ERR_BUSY, "segment is mapped " + std::to_string(mapped) + " time(s)");
    }
    if (!s.attached.empty()) {
        refuse(SCI_ERR_BUSY, "segment is attached by another process");
    }
    reply["segment_id"] = s.id;
    remove_segment(s.id, true);
}

void Daemon::op_seg_attach(Client& c, const json& req, json& reply, std::vector<int>& fds) {
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
    reply["size"] = s.size;
    fds.push_back(s.memfd.get());
}

void Daemon::op_seg_connect(Client& c, const json& req, json& reply, std::vector<int>& fds) {
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
    reply["size"] = s.size;
    fds.push_back(s.memfd.get());
    if (s.owner != c.id) {
        segment_event(s, s.owner, true, k_cb_connect, c.node_id);
    }
}

void Daemon::op_seg_disconnect(Client& c, const json& req, json& reply) {
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
    reply["segment_id"] = id;
}

void Daemon::op_seg_map(Client& c, const json& req, json& reply) {
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
    reply["segment_id"] = id;
}

void Daemon::op_int_create(Client& c, const json& req, json& reply, std::vector<int>& fds) {
    bool data = wire::get_bool(req, "data");
    bool fixed = wire::get_bool(req, "fixed");
    if (c.interrupts >= m_opts.max_client_objects) {
        refuse(SCI_ERR_NOSPC, "too many interrupts for one client");
    }
    std::uint32_t no;
    if (fixed) {
        no = wire::get_u32(req, "interrupt_no");
        if (m_interrupts.count({data, no}) != 0) {
            refuse(SCI_ERR_BUSY, "interrupt number " + std::to_string(no) + " in use");
        }
    } else {
        while (m_interrupts.count({data, m_next_auto_intno}) != 0) {
            ++m_next_auto_intno;
        }
        no = m_next_auto_intno++;
    }
    Interrupt irq;
    irq.no = no;
    irq.data = data;
    irq.owner = c.id;
    irq.owner_uid = c.uid;
    irq.shared_access = wire::get_bool(req, "shared_access");
    // Semaphore mode: every trigger is one wake-up, none are merged.
    irq.efd = wire::Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE));
    if (!irq.efd.valid()) {
        refuse(SCI_ERR_NOSPC, std::string("eventfd: ") + std::strerror(errno));
    }
    fds.push_back(irq.efd.get());
    if (data) {
        irq.ring_fd = make_memfd("dis-dataint-" + std::to_string(no), sizeof(wire::DataRing));
        fds.push_back(irq.ring_fd.get());
    }
    ++c.interrupts;
    reply["interrupt_no"] = no;
    m_interrupts.emplace(std::make_pair(data, no), std::move(irq));
}

void Daemon::op_int_remove(Client& c, const json& req, json& reply) {
    bool data = wire::get_bool(req, "data");
    std::uint32_t no = wire::get_u32(req, "interrupt_no");
    auto it = m_interrupts.find({data, no});
    if (it == m_interrupts.end()) {
        refuse(SCI_ERR_NO_SUCH_INTNO, "no interrupt " + std::to_string(no));
    }
    if (it->second.owner != c.id) {
        refuse(SCI_ERR_ACCESS, "interrupt belongs to another process");
    }
    remove_interrupt(no, data);
    reply["interrupt_no"] = no;
}

void Daemon::op_int_connect(Client& c, const json& req, json& reply, std::vector<int>& fds) {
    bool data = wire::get_bool(req, "data");
    std::uint32_t no = wire::get_u32(req, "interrupt_no");
    auto it = m_interrupts.find({data, no});
    if (it == m_interrupts.end()) {
        refuse(SCI_ERR_NO_SUCH_INTNO, "no interrupt " + std::to_string(no));
    }
    Interrupt& irq = it->second;
    if (!may_access(c, irq.owner_uid, irq.shared_access)) {
        refuse(SCI_ERR_ACCESS, "interrupt belongs to another user");
    }
    ++irq.connections[c.id];
    fds.push_back(irq.efd.get());
    if (data) {
        fds.push_back(irq.ring_fd.get());
    }
    reply["interrupt_no"] = no;
}

void Daemon::op_int_disconnect(Client& c, const json& req, json& reply) {
    bool data = wire::get_bool(req, "data");
    std::uint32_t no = wire::get_u32(req, "interrupt_no");
    auto it = m_interrupts.find({data, no});
    if (it != m_interrupts.end()) {
        auto conn = it->second.connections.find(c.id);
        if (conn != it->second.connections.end() && --conn->second == 0) {
            it->second.connections.erase(conn);
        }
    }
    reply["interrupt_no"] = no;
}

void Daemon::op_dma_queue_create(Client& c, const json& req, json& reply, std::vector<int>& fds) {
    if (c.node_id != m_opts.node_id) {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "DMA queues are created on the client's own node");
    }
    std::uint32_t capacity = wire::get_u32(req, "capacity", k_max_dma_entries);
    if (capacity == 0) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "DMA queue capacity 0");
    }
    if (c.queues >= m_opts.max_client_objects) {
        refuse(SCI_ERR_NOSPC, "too many DMA queues for one client");
    }
    auto q = std::make_shared<DmaQueue>();
    std::size_t bytes = wire::dma_queue_bytes(capacity);
    q->fd = make_memfd("dis-dmaq", bytes);
    q->shm = wire::map_shared(q->fd.get(), bytes);
    if (q->shm.get() == nullptr) {
        refuse(SCI_ERR_NOSPC, std::string("mmap: ") + std::strerror(errno));
    }
    q->q = static_cast<wire::DmaQueueShared*>(q->shm.get());
    q->q->capacity = capacity;
    q->capacity = capacity;
    q->client = c.id;
    fds.push_back(q->fd.get());
    ++c.queues;
    std::lock_guard lock(m_dma_mutex);
    q->id = m_next_queue++;
    reply["queue_id"] = q->id;
    reply["capacity"] = capacity;
    m_queues.emplace(q->id, q);
    ++m_queues_version;
}

void Daemon::op_dma_queue_remove(Client& c, const json& req, json& reply) {
    std::uint32_t id = wire::get_u32(req, "queue_id");
    std::lock_guard lock(m_dma_mutex);
    auto it = m_queues.find(id);
    if (it == m_queues.end() || it->second->client != c.id) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "no DMA queue " + std::to_string(id));
    }
    m_queues.erase(it);
    ++m_queues_version;
    wake_engine(); // so it drops its reference (and the queue's memory) now
    if (c.queues > 0) {
        --c.queues;
    }
    reply["queue_id"] = id;
}

void Daemon::op_dma_region(Client& c, const json& req, const wire::Message& msg, json& reply) {
    if (c.regions >= 4 * m_opts.max_client_objects) {
        refuse(SCI_ERR_NOSPC, "too many DMA regions for one client");
    }
    Region r;
    r.client = c.id;
    if (req.contains("segment_id")) {
        // A segment of this node the client owns, attached or is connected to.
        std::uint32_t id = wire::get_u32(req, "segment_id");
        auto it = m_segments.find(id);
        if (it == m_segments.end() || !it->second.map) {
            refuse(SCI_ERR_NO_SUCH_SEGMENT, "no segment " + std::to_string(id));
        }
        Segment& s = it->second;
        if (s.owner != c.id && s.attached.count(c.id) == 0 && s.connections.count(c.id) == 0) {
            refuse(SCI_ERR_ACCESS, "segment not owned, attached or connected by the client");
        }
        r.map = s.map;
    } else {
        // A segment of another node: the client passes the descriptor it was given.
        if (msg.fds.size() != 1) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "dma_region needs a segment_id or a descriptor");
        }
        std::uint64_t size = wire::get_u64(req, "size", k_max_segment_size);
        struct stat st {};
        if (size == 0 || ::fstat(msg.fds[0].get(), &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<std::uint64_t>(st.st_size) < size) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "descriptor is not a memory file of that size");
        }
        auto map = wire::map_shared(msg.fds[0].get(), size);
        if (map.get() == nullptr) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, std::string("mmap: ") + std::strerror(errno));
        }
        r.map = std::make_shared<wire::Mapping>(std::move(map));
    }
    ++c.regions;
    std::lock_guard lock(m_dma_mutex);
    std::uint32_t id = m_next_region++;
    m_regions.emplace(id, std::move(r));
    reply["region_id"] = id;
}

void Daemon::op_dma_region_release(Client& c, const json& req, json& reply) {
    std::uint32_t id = wire::get_u32(req, "region_id");
    std::lock_guard lock(m_dma_mutex);
    auto it = m_regions.find(id);
    if (it == m_regions.end() || it->second.client != c.id) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "no DMA region " + std::to_string(id));
    }
    m_regions.erase(it);
    if (c.regions > 0) {
        --c.regions;
    }
    reply["region_id"] = id;
}

nlohmann::json Daemon::node_info() const {
    const fabric::ConfigNode* cn = m_config.node(m_opts.node_id);
    auto peers = wire::list_node_sockets(m_opts.fabric_dir);
    auto links = m_config.links_of(m_opts.node_id, peers);
    std::uint32_t adapters = cn != nullptr ? cn->adapters : 1;
    json ad = json::array();
    for (std::uint32_t a = 0; a < adapters; ++a) {
        bool any_up = false;
        std::uint32_t width = m_config.default_width;
        std::string speed = m_config.default_speed;
        for (const auto& l : links) {
            any_up = any_up || l.up;
            width = l.width;
            speed = l.speed;
        }
        ad.push_back({{"adapter_no", a},
                      {"node_id", m_opts.node_id},
                      {"card_type", cn != nullptr ? cn->card_type : "software fabric adapter"},
                      {"serial", (cn != nullptr && cn->serial != 0)
                                     ? cn->serial
                                     : 0xD1500000ULL + m_opts.node_id * 16 + a},
                      {"links", links.size()},
                      {"link_operational", any_up || links.empty()},
                      {"link_width", width},
                      {"link_speed", speed},
                      {"dma_alignment", 1}});
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
    return json{{"node_id", m_opts.node_id},
                {"name", cn != nullptr && !cn->name.empty()
                             ? cn->name
                             : "node" + std::to_string(m_opts.node_id)},
                {"pid", ::getpid()},
                {"uptime_s", uptime},
                {"topology", m_config.topology},
                {"adapters", ad},
                {"counters",
                 {{"clients", m_clients.size()},
                  {"clients_total", m_clients_total},
                  {"segments", m_segments.size()},
                  {"segment_bytes", seg_bytes},
                  {"connections", connections},
                  {"interrupts", m_interrupts.size()},
                  {"dma_queues", queues},
                  {"dma_bytes_total", m_dma_bytes.load()},
                  {"dma_transfers_total", m_dma_transfers.load()},
                  {"dma_errors_total", m_dma_errors.load()},
                  {"requests_total", m_requests},
                  {"malformed_requests_total", m_malformed}}}};
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
        out.push_back({{"node_id", m_opts.node_id},
                       {"segment_id", id},
                       {"adapter_no", 0},
                       {"size", s.size},
                       {"owner_pid", s.owner_pid},
                       {"owner_uid", s.owner_uid},
                       {"state", state},
                       {"connections", conns},
                       {"mappings", maps},
                       {"broadcast", s.broadcast}});
    }
    return out;
}

nlohmann::json Daemon::links_json() const {
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
        // connect() alone tells whether the peer is up without waiting on it.
        int fd = wire::connect_socket(wire::socket_path(m_opts.fabric_dir, l.b));
        bool alive = fd >= 0;
        if (fd >= 0) {
            ::close(fd);
        }
        out.push_back({{"local_node", m_opts.node_id},
                       {"remote_node", l.b},
                       {"state", (alive && l.up) ? "up" : "down"},
                       {"width", l.width},
                       {"speed", l.speed}});
    }
    return out;
}

} // namespace dis::disd
