// disd's server loop: the socket, accepting (per-uid connection limit, EMFILE), clients and
// their bounded outbound queues, dropping clients. Requests are dispatched in requests.cpp.
#include "daemon.hpp"

#include "dis/error.hpp"
#include "fabric_dir.hpp"
#include "sisci_error.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace dis::disd {

namespace {

// epoll tags: client ids count up from 1, these count down from the top.
constexpr std::uint64_t k_tag_listen = UINT64_MAX;
constexpr std::uint64_t k_tag_signal = UINT64_MAX - 1;
constexpr std::uint64_t k_tag_accept_timer = UINT64_MAX - 2;
constexpr std::uint64_t k_tag_lending_post = UINT64_MAX - 3; // results of the lending workers
constexpr std::uint64_t k_tag_lending_tick = UINT64_MAX - 4; // the 250 ms lease clock

// After accept() ran out of descriptors with no reserve left: try again this much later.
constexpr long k_accept_retry_ms = 100;

void epoll_set(int epfd, int op, int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    ::epoll_ctl(epfd, op, fd, &ev);
}

} // namespace

Daemon::Daemon(Options opts)
    : m_opts(std::move(opts)),
      m_streaming_bytes(m_opts.dma_streaming_bytes != 0 ? m_opts.dma_streaming_bytes
                                                        : default_streaming_bytes()) {}

Daemon::~Daemon() {
    stop_lending();
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
    // Created 0700, or 0770 shared with the configured group; verified before use.
    wire::FabricDirPolicy policy{m_opts.group.has_value()};
    if (auto why = wire::prepare_fabric_dir(m_opts.fabric_dir, policy, m_opts.group ? 0770 : 0700);
        !why.empty()) {
        throw Error(ErrorKind::permission, why);
    }
    if (m_opts.group) {
        ::chown(m_opts.fabric_dir.c_str(), static_cast<uid_t>(-1), *m_opts.group);
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
    int probe = wire::connect_socket(m_socket_path, std::chrono::milliseconds(200));
    if (probe >= 0 || errno == ETIMEDOUT) {
        if (probe >= 0) {
            ::close(probe);
        }
        throw Error(ErrorKind::invalid_input, "node " + std::to_string(m_opts.node_id) +
                                                  " is already running in " + m_opts.fabric_dir);
    }
    ::unlink(m_socket_path.c_str());
    // The device pool, recovered, before the socket appears (whoever connects finds the
    // daemon whole); after the probe above, so that a second daemon of this node never
    // recovers the first's pool.
    start_lending();

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
    if (m_opts.group) {
        ::chown(m_socket_path.c_str(), static_cast<uid_t>(-1), *m_opts.group);
    }
    if (::listen(sock.get(), 128) != 0) {
        throw os_error("listen", errno);
    }
    m_listen = std::move(sock);

    m_epoll = wire::Fd(::epoll_create1(EPOLL_CLOEXEC));
    m_accept_timer = wire::Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    m_reserve_fd = wire::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!m_epoll.valid() || !m_accept_timer.valid() || !m_reserve_fd.valid()) {
        throw os_error("epoll, timerfd or /dev/null", errno);
    }
    epoll_set(m_epoll.get(), EPOLL_CTL_ADD, m_listen.get(), EPOLLIN, k_tag_listen);
    epoll_set(m_epoll.get(), EPOLL_CTL_ADD, m_signal.get(), EPOLLIN, k_tag_signal);
    epoll_set(m_epoll.get(), EPOLL_CTL_ADD, m_accept_timer.get(), EPOLLIN, k_tag_accept_timer);

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
    epoll_set(m_epoll.get(), EPOLL_CTL_ADD, m_worker->event_fd(), EPOLLIN, k_tag_lending_post);
    epoll_set(m_epoll.get(), EPOLL_CTL_ADD, m_tick_timer.get(), EPOLLIN, k_tag_lending_tick);
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
            const epoll_event& ev = events[static_cast<std::size_t>(i)];
            if (ev.data.u64 == k_tag_listen) {
                accept_clients();
            } else if (ev.data.u64 == k_tag_signal) {
                signalfd_siginfo si{};
                if (::read(m_signal.get(), &si, sizeof(si)) > 0) {
                    log("signal " + std::to_string(si.ssi_signo) + ", shutting down");
                    m_stop = true;
                }
            } else if (ev.data.u64 == k_tag_lending_post) {
                run_posted();
            } else if (ev.data.u64 == k_tag_lending_tick) {
                std::uint64_t expirations = 0;
                [[maybe_unused]] auto r = ::read(m_tick_timer.get(), &expirations, 8);
                lending_tick();
            } else if (ev.data.u64 == k_tag_accept_timer) {
                std::uint64_t expirations = 0;
                [[maybe_unused]] auto r = ::read(m_accept_timer.get(), &expirations, 8);
                resume_accepting();
            } else {
                auto it = m_clients.find(static_cast<int>(ev.data.u64));
                if (it == m_clients.end() || it->second.doomed) {
                    continue;
                }
                if ((ev.events & EPOLLOUT) != 0) {
                    flush(it->second);
                }
                if ((ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !it->second.doomed) {
                    serve_client(it->first);
                }
            }
            reap_doomed();
        }
    }
    // Release everything in order so that peers see their disconnects.
    while (!m_clients.empty()) {
        drop_client(m_clients.begin()->first);
        m_doomed.clear();
    }
    ::unlink(m_socket_path.c_str());
}

void Daemon::pause_accepting() {
    if (m_accept_paused) {
        return;
    }
    // Level-triggered, a listener that cannot accept would wake the loop forever.
    epoll_set(m_epoll.get(), EPOLL_CTL_MOD, m_listen.get(), 0, k_tag_listen);
    itimerspec its{};
    its.it_value.tv_nsec = k_accept_retry_ms * 1000000L;
    ::timerfd_settime(m_accept_timer.get(), 0, &its, nullptr);
    m_accept_paused = true;
    log("out of descriptors: not accepting for " + std::to_string(k_accept_retry_ms) + " ms");
}

void Daemon::resume_accepting() {
    if (!m_reserve_fd.valid()) {
        m_reserve_fd = wire::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    if (!m_accept_paused) {
        return;
    }
    m_accept_paused = false;
    itimerspec off{};
    ::timerfd_settime(m_accept_timer.get(), 0, &off, nullptr);
    epoll_set(m_epoll.get(), EPOLL_CTL_MOD, m_listen.get(), EPOLLIN, k_tag_listen);
}

void Daemon::accept_clients() {
    for (;;) {
        int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            ++m_accept_errors;
            if ((errno == EMFILE || errno == ENFILE) && m_reserve_fd.valid()) {
                // Give up the reserve to take the connection off the backlog and close it:
                // the client sees EOF at once instead of hanging in the backlog.
                m_reserve_fd.reset();
                int excess = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC);
                if (excess >= 0) {
                    ::close(excess);
                }
                m_reserve_fd = wire::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
                if (excess >= 0 && m_reserve_fd.valid()) {
                    continue;
                }
            }
            pause_accepting();
            return;
        }
        wire::Fd sock(fd);
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            continue;
        }
        UidUsage& usage = m_uids[cred.uid];
        if (usage.connections >= m_opts.max_uid_connections) {
            refuse_connection(std::move(sock), cred.uid);
            continue;
        }
        // A connection closed before it said anything is a peer's link probe (links_json:
        // connect() alone was the question). Counted as accepted and dropped here, it spares
        // a client's setup and teardown per probe; a fabric's links view probes every pair.
        char byte = 0;
        if (::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
            ++m_clients_total;
            if (usage.connections == 0 && usage.bytes == 0 && usage.objects == 0) {
                m_uids.erase(cred.uid);
            }
            continue;
        }
        ++usage.connections;
        Client c;
        c.id = m_next_client++;
        c.sock = std::move(sock);
        c.pid = cred.pid;
        c.uid = cred.uid;
        c.gid = cred.gid;
        epoll_set(m_epoll.get(), EPOLL_CTL_ADD, fd, EPOLLIN, static_cast<std::uint64_t>(c.id));
        ++m_clients_total;
        m_clients.emplace(c.id, std::move(c));
    }
}

void Daemon::refuse_connection(wire::Fd sock, uid_t uid) {
    ++m_connections_refused;
    auto& usage = m_uids[uid];
    if (usage.connections == 0 && usage.bytes == 0 && usage.objects == 0) {
        m_uids.erase(uid);
    }
    json why{{"err", SCI_ERR_NOSPC},
             {"message", "uid " + std::to_string(uid) + " has " +
                             std::to_string(m_opts.max_uid_connections) +
                             " connections already (--max-uid-connections)"}};
    wire::send_frame(sock.get(), why.dump());
    log("refused a connection of uid " + std::to_string(uid) + ": too many");
}

void Daemon::serve_client(int client_id) {
    Client& c = m_clients.at(client_id);
    wire::Message msg;
    auto st = wire::recv_message(c.sock.get(), msg);
    if (st == wire::RecvStatus::again) {
        return;
    }
    if (st == wire::RecvStatus::eof || st == wire::RecvStatus::error) {
        doom(c, "gone");
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
            if (!dispatch(c, msg, reply, fds)) {
                return; // the handler replies later
            }
            if (!reply.contains("err")) {
                reply["err"] = SCI_ERR_OK;
            }
        } catch (const Refused& r) {
            reply["err"] = r.code;
            reply["message"] = r.why;
            reply.update(r.extra);
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
    // Handlers never drop clients (they only doom them), so `c` is still valid.
    send(c, reply, fds);
}

void Daemon::send(Client& c, const json& body, const std::vector<int>& fds_in) {
    if (c.doomed) {
        return;
    }
    std::string text = body.dump();
    std::vector<int> fds = fds_in;
    if (text.size() > wire::k_max_message) {
        // A view too large for one message (thousands of segments): an error reply, not a
        // send failure that would look like a dead client.
        json err{{"err", SCI_ERR_NOSPC}, {"message", "reply larger than one message"}};
        if (body.contains("seq")) {
            err["seq"] = body["seq"];
        }
        text = err.dump();
        fds.clear();
    }
    if (c.out.empty()) {
        switch (wire::send_frame(c.sock.get(), text, fds)) {
        case wire::SendStatus::ok:
            return;
        case wire::SendStatus::gone:
            doom(c, std::string("send: ") + std::strerror(errno));
            return;
        case wire::SendStatus::again:
            break;
        }
    }
    if (c.out.size() >= k_max_out_messages || c.out_bytes + text.size() > k_max_out_bytes) {
        ++m_clients_dropped;
        doom(c, "does not read its socket (outbound queue full)");
        return;
    }
    Outgoing o;
    o.text = std::move(text);
    for (int fd : fds) {
        o.fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
        if (!o.fds.back().valid()) {
            doom(c, std::string("dup: ") + std::strerror(errno));
            return;
        }
    }
    c.out_bytes += o.text.size();
    c.out.push_back(std::move(o));
    update_events(c);
}

void Daemon::send_to(int client_id, const json& body) {
    auto it = m_clients.find(client_id);
    if (it != m_clients.end()) {
        send(it->second, body);
    }
}

void Daemon::flush(Client& c) {
    while (!c.out.empty() && !c.doomed) {
        Outgoing& o = c.out.front();
        std::vector<int> fds;
        for (const auto& fd : o.fds) {
            fds.push_back(fd.get());
        }
        auto st = wire::send_frame(c.sock.get(), o.text, fds);
        if (st == wire::SendStatus::again) {
            break;
        }
        if (st == wire::SendStatus::gone) {
            doom(c, std::string("send: ") + std::strerror(errno));
            return;
        }
        c.out_bytes -= o.text.size();
        c.out.pop_front();
    }
    update_events(c);
}

void Daemon::update_events(Client& c) {
    bool want = !c.out.empty();
    if (want != c.want_out) {
        c.want_out = want;
        epoll_set(m_epoll.get(), EPOLL_CTL_MOD, c.sock.get(), EPOLLIN | (want ? EPOLLOUT : 0u),
                  static_cast<std::uint64_t>(c.id));
    }
}

void Daemon::doom(Client& c, const std::string& why) {
    if (!c.doomed) {
        c.doomed = true;
        log("client " + std::to_string(c.id) + " (pid " + std::to_string(c.pid) + "): " + why);
        m_doomed.push_back(c.id);
    }
}

void Daemon::reap_doomed() {
    // Dropping one client sends events to others, which may doom them in turn.
    while (!m_doomed.empty()) {
        int id = m_doomed.back();
        m_doomed.pop_back();
        drop_client(id);
    }
}

void Daemon::drop_client(int client_id) {
    auto it = m_clients.find(client_id);
    if (it == m_clients.end()) {
        return;
    }
    log("client " + std::to_string(client_id) + " (pid " + std::to_string(it->second.pid) +
        ") gone");
    it->second.doomed = true; // nothing more is sent to it
    release_client_segments(client_id);
    release_client_interrupts(client_id);
    const bool had_dma = release_client_dma(client_id);
    release_client_leases(client_id);
    // Only a client with DMA queues or regions leaves the engine references to drop. Waking
    // it for every other client (an admin request, a peer's link probe) cost the node a spin
    // window of the engine each time.
    if (had_dma) {
        wake_engine();
    }
    // Whatever it still held is released from its uid's account with it.
    Client& c = it->second;
    auto u = m_uids.find(c.uid);
    if (u != m_uids.end()) {
        std::uint32_t objects = 0;
        for (auto n : c.objects) {
            objects += n;
        }
        u->second.bytes -= std::min(u->second.bytes, c.bytes);
        u->second.objects -= std::min(u->second.objects, objects);
        if (u->second.connections > 0) {
            --u->second.connections;
        }
        if (u->second.connections == 0 && u->second.bytes == 0 && u->second.objects == 0) {
            m_uids.erase(u);
        }
    }
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, c.sock.get(), nullptr);
    m_clients.erase(it);
    // A descriptor was freed: a listener paused at EMFILE may accept again.
    resume_accepting();
}

} // namespace dis::disd
