// libsisci runtime: daemon connections, event routing, callback dispatch.
#include "client.hpp"

#include "fabric_dir.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace dis::sisci {

namespace {

std::mutex g_runtime_mutex;
Runtime* g_runtime = nullptr;

constexpr auto k_call_timeout = std::chrono::seconds(10);
constexpr int k_connect_timeout = 2000; // ms: a frozen daemon with a full backlog

} // namespace

// ---- EventQueue ----

void EventQueue::push(SegmentEvent ev) {
    {
        std::lock_guard lock(m_mutex);
        m_events.push_back(ev);
    }
    m_cv.notify_all();
}

bool EventQueue::pop(SegmentEvent& out, unsigned int timeout_ms) {
    std::unique_lock lock(m_mutex);
    auto ready = [&] { return !m_events.empty(); };
    if (timeout_ms == SCI_INFINITE_TIMEOUT) {
        m_cv.wait(lock, ready);
    } else if (!m_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
        return false;
    }
    out = m_events.front();
    m_events.pop_front();
    return true;
}

// ---- Conn ----

std::shared_ptr<Conn> Conn::open(const std::string& fabric_dir, std::uint32_t node,
                                 std::uint32_t my_node, sci_error_t& err) {
    std::shared_ptr<Conn> c(new Conn());
    c->m_node = node;
    c->m_sock = wire::Fd(wire::connect_socket(wire::socket_path(fabric_dir, node),
                                              std::chrono::milliseconds(k_connect_timeout)));
    if (!c->m_sock.valid()) {
        err = (errno == ENOENT) ? SCI_ERR_NO_SUCH_NODEID : SCI_ERR_NODE_NOT_RESPONDING;
        return nullptr;
    }
    // Memory goes only to a daemon of root, this user or $DIS_DAEMON_UID: anyone who could
    // bind a socket in the directory could otherwise pose as the node.
    if (!wire::check_daemon_peer(c->m_sock.get(), "node " + std::to_string(node)).empty()) {
        err = SCI_ERR_ACCESS;
        return nullptr;
    }
    c->m_stop_efd = wire::Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!c->m_stop_efd.valid()) {
        err = SCI_ERR_NOSPC;
        return nullptr;
    }
    c->m_reader = std::thread([raw = c.get()] { raw->reader(); });
    Reply r =
        c->call({{"op", "hello"}, {"version", wire::k_protocol_version}, {"node_id", my_node}});
    if (r.err != SCI_ERR_OK) {
        err = r.err;
        return nullptr;
    }
    if (!r.fds.empty()) {
        c->m_doorbell = std::move(r.fds[0]);
    }
    err = SCI_ERR_OK;
    return c;
}

Conn::~Conn() {
    if (m_stop_efd.valid()) {
        wire::signal_efd(m_stop_efd.get());
    }
    if (m_reader.joinable()) {
        m_reader.join();
    }
}

void Conn::mark_lost() {
    m_lost.store(true, std::memory_order_release);
    { std::lock_guard lock(m_mutex); }
    m_cv.notify_all();
}

void Conn::reader() {
    for (;;) {
        pollfd p[2] = {{m_sock.get(), POLLIN, 0}, {m_stop_efd.get(), POLLIN, 0}};
        int r = ::poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if ((p[1].revents & POLLIN) != 0) {
            return; // closing down; not a loss
        }
        wire::Message m;
        auto st = wire::recv_message(m_sock.get(), m);
        if (st == wire::RecvStatus::eof || st == wire::RecvStatus::error) {
            break;
        }
        if (st != wire::RecvStatus::ok) {
            continue;
        }
        auto seq = m.body.find("seq");
        if (seq != m.body.end() && seq->is_number_unsigned()) {
            std::lock_guard lock(m_mutex);
            auto it = m_pending.find(seq->get<std::uint64_t>());
            if (it != m_pending.end()) {
                it->second = std::move(m);
            }
            m_cv.notify_all();
            continue;
        }
        if (m.body.contains("event")) {
            if (Runtime* rt = Runtime::get()) {
                rt->on_event(m_node, m.body);
            }
        }
    }
    mark_lost();
    if (Runtime* rt = Runtime::get()) {
        rt->on_node_lost(m_node);
    }
}

Reply Conn::call(json req, const std::vector<int>& fds) {
    Reply reply;
    if (lost()) {
        reply.err = SCI_ERR_NODE_NOT_RESPONDING;
        return reply;
    }
    std::uint64_t seq;
    {
        std::lock_guard lock(m_mutex);
        seq = ++m_seq;
        m_pending[seq];
    }
    req["seq"] = seq;
    bool sent;
    {
        std::lock_guard lock(m_send_mutex);
        sent = wire::send_message(m_sock.get(), req, fds);
    }
    std::unique_lock lock(m_mutex);
    if (!sent) {
        m_pending.erase(seq);
        reply.err = (errno == EMSGSIZE) ? SCI_ERR_ILLEGAL_PARAMETER : SCI_ERR_NODE_NOT_RESPONDING;
        return reply;
    }
    bool done =
        m_cv.wait_for(lock, k_call_timeout, [&] { return m_pending[seq].has_value() || lost(); });
    auto it = m_pending.find(seq);
    if (!done || !it->second) {
        m_pending.erase(it);
        reply.err = SCI_ERR_NODE_NOT_RESPONDING;
        return reply;
    }
    wire::Message m = std::move(*it->second);
    m_pending.erase(it);
    lock.unlock();
    reply.body = std::move(m.body);
    reply.fds = std::move(m.fds);
    auto err = reply.body.find("err");
    reply.err = (err != reply.body.end() && err->is_number_unsigned())
                    ? static_cast<sci_error_t>(err->get<unsigned>())
                    : SCI_ERR_SYSTEM;
    return reply;
}

// ---- Runtime ----

Runtime* Runtime::get() {
    std::lock_guard lock(g_runtime_mutex);
    if (g_runtime != nullptr && g_runtime->m_pid != ::getpid()) {
        // A forked child: the parent's threads do not exist here. Forget (leak) its state.
        g_runtime = nullptr;
    }
    return g_runtime;
}

sci_error_t Runtime::initialize() {
    Runtime::get(); // drops a parent's runtime after fork
    std::lock_guard lock(g_runtime_mutex);
    if (g_runtime != nullptr) {
        ++g_runtime->m_refs;
        return SCI_ERR_OK;
    }
    std::unique_ptr<Runtime> rt(new Runtime());
    rt->m_pid = ::getpid();
    auto dir = wire::choose_fabric_dir();
    if (dir.path.empty()) {
        return SCI_ERR_NOT_INITIALIZED;
    }
    rt->m_dir = dir.path;
    if (wire::check_fabric_dir(rt->m_dir, wire::client_fabric_dir_policy()).state ==
        wire::FabricDirState::untrusted) {
        return SCI_ERR_ACCESS;
    }
    if (const char* n = std::getenv("DIS_NODE_ID"); n != nullptr && *n != '\0') {
        char* end = nullptr;
        unsigned long v = std::strtoul(n, &end, 0);
        if (*end != '\0' || v == 0 || v % 4 != 0 || v > 0xFFFFFFF0UL) {
            return SCI_ERR_ILLEGAL_NODEID;
        }
        rt->m_node = static_cast<std::uint32_t>(v);
    } else {
        // The lowest node whose daemon answers.
        for (auto id : wire::list_node_sockets(rt->m_dir)) {
            int fd = wire::connect_socket(wire::socket_path(rt->m_dir, id),
                                          std::chrono::milliseconds(200));
            if (fd >= 0) {
                ::close(fd);
                rt->m_node = id;
                break;
            }
        }
        if (rt->m_node == 0) {
            return SCI_ERR_NOT_INITIALIZED;
        }
    }
    sci_error_t err = SCI_ERR_OK;
    auto home = Conn::open(rt->m_dir, rt->m_node, rt->m_node, err);
    if (!home) {
        return err;
    }
    rt->m_conns[rt->m_node] = home;
    rt->m_refs = 1;
    rt->m_cb_thread = std::thread([raw = rt.get()] { raw->dispatcher(); });
    g_runtime = rt.release();
    return SCI_ERR_OK;
}

void Runtime::terminate() {
    Runtime* rt;
    {
        std::lock_guard lock(g_runtime_mutex);
        if (g_runtime == nullptr || g_runtime->m_pid != ::getpid() || --g_runtime->m_refs > 0) {
            return;
        }
        rt = g_runtime;
        g_runtime = nullptr;
    }
    delete rt;
}

Runtime::~Runtime() {
    {
        std::lock_guard lock(m_renew_mutex);
        m_renew_stop = true;
    }
    m_renew_cv.notify_all();
    if (m_renew_thread.joinable()) {
        m_renew_thread.join();
    }
    {
        std::lock_guard lock(m_cb_mutex);
        m_cb_stop = true;
    }
    m_cb_cv.notify_all();
    if (m_cb_thread.joinable()) {
        m_cb_thread.join();
    }
    std::map<std::uint32_t, std::shared_ptr<Conn>> conns;
    {
        std::lock_guard lock(m_conn_mutex);
        conns.swap(m_conns);
    }
    conns.clear();
}

std::shared_ptr<Conn> Runtime::conn(std::uint32_t node, sci_error_t& err) {
    std::lock_guard lock(m_conn_mutex);
    auto it = m_conns.find(node);
    if (it != m_conns.end() && !it->second->lost()) {
        err = SCI_ERR_OK;
        return it->second;
    }
    auto c = Conn::open(m_dir, node, m_node, err);
    if (!c) {
        return nullptr;
    }
    // The old, lost connection stays alive through the handles that still refer to it.
    m_conns[node] = c;
    return c;
}

void Runtime::dispatcher() {
    for (;;) {
        std::function<void()> fn;
        {
            std::unique_lock lock(m_cb_mutex);
            m_cb_cv.wait(lock, [&] { return m_cb_stop || !m_callbacks.empty(); });
            if (m_callbacks.empty()) {
                return;
            }
            fn = std::move(m_callbacks.front());
            m_callbacks.pop_front();
        }
        fn();
    }
}

void Runtime::post_callback(std::function<void()> fn) {
    {
        std::lock_guard lock(m_cb_mutex);
        m_callbacks.push_back(std::move(fn));
    }
    m_cb_cv.notify_one();
}

void Runtime::deliver_remote(sci_remote_segment_t s, SegmentEvent ev) {
    std::lock_guard cb(s->cb_mutex);
    if (s->callback != nullptr) {
        post_callback([this, s, ev] {
            // The segment may have been disconnected meanwhile; only live handles get calls.
            // No lock is held during the call: callbacks may call the API themselves.
            sci_cb_remote_segment_t cb = nullptr;
            void* arg = nullptr;
            {
                std::lock_guard reg(m_reg_mutex);
                if (m_remote.count(s) == 0) {
                    return;
                }
                std::lock_guard c(s->cb_mutex);
                cb = s->callback;
                arg = s->callback_arg;
            }
            if (cb != nullptr && cb(arg, s, ev.reason, ev.status) == SCI_CALLBACK_CANCEL) {
                std::lock_guard reg(m_reg_mutex);
                if (m_remote.count(s) != 0) {
                    std::lock_guard c(s->cb_mutex);
                    s->callback = nullptr;
                }
            }
        });
    } else {
        s->events.push(ev);
    }
}

void Runtime::on_event(std::uint32_t node, const json& ev) {
    try {
        std::string kind = ev.at("event").get<std::string>();
        if (kind == "local_segment") {
            auto id = ev.at("segment_id").get<unsigned>();
            SegmentEvent e{static_cast<sci_segment_cb_reason_t>(ev.at("reason").get<int>()),
                           ev.at("source_node").get<std::uint32_t>(), SCI_ERR_OK};
            std::lock_guard reg(m_reg_mutex);
            for (auto* s : m_local) {
                if (s->id != id || s->attached || s->conn->node() != node) {
                    continue;
                }
                std::lock_guard cb(s->cb_mutex);
                if (s->callback != nullptr) {
                    post_callback([this, s, e] {
                        sci_cb_local_segment_t cb = nullptr;
                        void* arg = nullptr;
                        {
                            std::lock_guard r(m_reg_mutex);
                            if (m_local.count(s) == 0) {
                                return;
                            }
                            std::lock_guard c(s->cb_mutex);
                            cb = s->callback;
                            arg = s->callback_arg;
                        }
                        if (cb != nullptr &&
                            cb(arg, s, e.reason, e.node, 0, e.status) == SCI_CALLBACK_CANCEL) {
                            std::lock_guard r(m_reg_mutex);
                            if (m_local.count(s) != 0) {
                                std::lock_guard c(s->cb_mutex);
                                s->callback = nullptr;
                            }
                        }
                    });
                } else {
                    s->events.push(e);
                }
            }
        } else if (kind == "remote_segment") {
            auto id = ev.at("segment_id").get<unsigned>();
            auto reason = static_cast<sci_segment_cb_reason_t>(ev.at("reason").get<int>());
            std::lock_guard reg(m_reg_mutex);
            for (auto* s : m_remote) {
                if (s->id == id && s->node == node && s->dev == nullptr &&
                    !s->disconnected.load()) {
                    if (reason == SCI_CB_DISCONNECT) {
                        s->disconnected = true;
                    }
                    deliver_remote(s, {reason, node, SCI_ERR_OK});
                }
            }
        } else if (kind == "dev_lost" || kind == "dev_irq") {
            auto lease = ev.at("lease_id").get<std::int64_t>();
            std::lock_guard reg(m_reg_mutex);
            for (const auto& d : m_devices) {
                if (d->lease_id != lease || d->conn->node() != node) {
                    continue;
                }
                if (kind == "dev_lost") {
                    lose_device_locked(d, ev.value("reason", std::string("device lost")),
                                       SCI_ERR_NOT_AVAILABLE);
                    continue;
                }
                {
                    std::lock_guard lock(d->mutex);
                    d->irqs.emplace_back(ev.at("type").get<unsigned>(),
                                         ev.at("number").get<unsigned>());
                }
                d->cv.notify_all();
            }
        } else if (kind == "interrupt_gone") {
            auto no = ev.at("interrupt_no").get<unsigned>();
            bool data = ev.at("data").get<bool>();
            std::lock_guard reg(m_reg_mutex);
            if (data) {
                for (auto* i : m_rdints) {
                    if (i->no == no && i->node == node) {
                        i->gone = true;
                    }
                }
            } else {
                for (auto* i : m_rints) {
                    if (i->no == no && i->node == node) {
                        i->gone = true;
                    }
                }
            }
        }
    } catch (const json::exception&) {
        // An event we do not understand is ignored, never fatal.
    }
}

void Runtime::on_node_lost(std::uint32_t node) {
    std::lock_guard reg(m_reg_mutex);
    // Waiters on this node's interrupts block in read(): wake them; they see the loss.
    auto wake = [node](const auto& interrupts) {
        for (auto* i : interrupts) {
            if (i->conn->node() == node) {
                wire::signal_efd(i->efd.get());
            }
        }
    };
    wake(m_lints);
    wake(m_ldints);
    for (auto* s : m_remote) {
        if (s->node == node && !s->lost.exchange(true) && !s->disconnected.load()) {
            deliver_remote(s, {SCI_CB_LOST, node, SCI_ERR_NODE_NOT_RESPONDING});
        }
    }
    // The lender's death ends its leases (its EOF, like a dev_lost for each).
    for (const auto& d : m_devices) {
        if (d->conn->node() == node) {
            lose_device_locked(d, "lender node " + std::to_string(node) + " lost",
                               SCI_ERR_NODE_NOT_RESPONDING);
        }
    }
}

void Runtime::add(sci_local_segment_t s) {
    std::lock_guard l(m_reg_mutex);
    m_local.insert(s);
}
void Runtime::remove(sci_local_segment_t s) {
    std::lock_guard l(m_reg_mutex);
    m_local.erase(s);
}
void Runtime::add(sci_remote_segment_t s) {
    std::lock_guard l(m_reg_mutex);
    m_remote.insert(s);
}
void Runtime::remove(sci_remote_segment_t s) {
    std::lock_guard l(m_reg_mutex);
    m_remote.erase(s);
}
void Runtime::add(sci_local_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_lints.insert(i);
}
void Runtime::remove(sci_local_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_lints.erase(i);
}
void Runtime::add(sci_remote_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_rints.insert(i);
}
void Runtime::remove(sci_remote_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_rints.erase(i);
}
void Runtime::add(sci_local_data_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_ldints.insert(i);
}
void Runtime::remove(sci_local_data_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_ldints.erase(i);
}
void Runtime::add(sci_remote_data_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_rdints.insert(i);
}
void Runtime::remove(sci_remote_data_interrupt_t i) {
    std::lock_guard l(m_reg_mutex);
    m_rdints.erase(i);
}

} // namespace dis::sisci
