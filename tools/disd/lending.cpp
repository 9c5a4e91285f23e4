// disd's lending ops: list, show, borrow (at once, waiting, or joining a lease), renew,
// return and history (the admin ops and the device engine's reports: lending_admin.cpp). Leases
// belong to the borrower's connection. Operations that may quiesce or reset a device run on a
// lending worker and reply later; everything else is one short pool transaction on the main loop.
#include "daemon.hpp"

#include "dis/lending_model.hpp"
#include "sisci_error.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace dis::disd {

namespace {

using lending::LendingError;
using lending::Refusal;

// SCI_ERR_NO_SUCH_FDID of the vendor's sisci_error.h (libsisci's header has it from issue 9).
constexpr int k_err_no_such_fdid = 0xB06;

const char* refusal_name(const LendingError& e) {
    switch (e.refusal()) {
    case Refusal::no_such_device:
        return "no_such_device";
    case Refusal::no_such_lease:
        return "no_such_lease";
    case Refusal::illegal_transition:
        return e.kind() == ErrorKind::busy ? "busy" : "illegal_transition";
    case Refusal::guard_failed:
        return "busy";
    case Refusal::policy:
        return "policy";
    case Refusal::invalid_request:
        return "invalid_request";
    case Refusal::wait_ended:
        return "wait_ended";
    }
    return "refused";
}

int code_for(const LendingError& e, bool borrowing) {
    switch (e.refusal()) {
    case Refusal::no_such_device:
        return k_err_no_such_fdid;
    case Refusal::guard_failed:
        return SCI_ERR_NOT_AVAILABLE;
    case Refusal::illegal_transition:
        // A device being returned or reset, or not offered: not available to a borrower.
        return borrowing || e.kind() == ErrorKind::busy ? SCI_ERR_NOT_AVAILABLE
                                                        : SCI_ERR_ILLEGAL_OPERATION;
    case Refusal::policy:
        return SCI_ERR_ACCESS;
    case Refusal::no_such_lease:
    case Refusal::invalid_request:
        return SCI_ERR_ILLEGAL_PARAMETER;
    case Refusal::wait_ended:
        return SCI_ERR_TIMEOUT;
    }
    return SCI_ERR_SYSTEM;
}

} // namespace

Refused refused_for(const LendingError& e, bool borrowing) {
    Refused r{code_for(e, borrowing), e.what()};
    r.extra["refusal"] = refusal_name(e);
    if (e.state()) {
        r.extra["state"] = lending::to_string(*e.state());
    }
    return r;
}

namespace {

// The reply of a worker job: its result, or its error as the request's error.
nlohmann::json run_job(const std::function<nlohmann::json()>& job) {
    nlohmann::json reply;
    auto fail = [&](const Refused& r) {
        reply = r.extra;
        reply["err"] = r.code;
        reply["message"] = r.why;
    };
    try {
        reply = job();
        reply["err"] = SCI_ERR_OK;
    } catch (const LendingError& e) {
        fail(refused_for(e));
    } catch (const Refused& r) {
        fail(r);
    } catch (const std::exception& e) {
        fail(Refused{SCI_ERR_SYSTEM, e.what()});
    }
    return reply;
}

bool is_admin(const Client& c) {
    return c.uid == 0 || c.uid == ::getuid();
}

} // namespace

void require_admin(const Client& c, const std::string& op) {
    if (!is_admin(c)) {
        refuse(SCI_ERR_ACCESS,
               "'" + op + "' is for root or the daemon's user, not uid " + std::to_string(c.uid));
    }
}

// "fdid": "0x80000" (as printed) or a number.
lending::Fdid fdid_arg(const nlohmann::json& body) {
    auto it = body.find("fdid");
    if (it != body.end() && it->is_number_unsigned()) {
        return lending::Fdid{wire::get_u32(body, "fdid")};
    }
    try {
        return lending::parse_fdid(wire::get_str(body, "fdid", 32));
    } catch (const Error& e) {
        throw wire::WireError(e.what());
    }
}

namespace {

std::int64_t lease_arg(const nlohmann::json& body) {
    return static_cast<std::int64_t>(wire::get_u64(body, "lease_id", INT64_MAX));
}

std::string new_token() {
    std::uint64_t v = 0;
    if (::getrandom(&v, sizeof v, 0) != sizeof v) {
        v = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

constexpr std::uint64_t k_max_ms = 7ULL * 24 * 3600 * 1000; // a week: longer is a mistake

} // namespace

// ---- deferred replies and the lease clock

void Daemon::defer(Request& r, std::function<json()> job) {
    r.deferred = true;
    int cid = r.client.id;
    json seq = r.body.contains("seq") ? r.body["seq"] : json();
    m_worker->submit([this, cid, seq, job = std::move(job)] {
        json reply = run_job(job);
        m_worker->post([this, cid, seq, reply = std::move(reply)]() mutable {
            send_deferred(cid, seq, std::move(reply));
            check_waits();
        });
    });
}

void Daemon::send_deferred(int client_id, const json& seq, json reply,
                           const std::vector<int>& fds) {
    auto it = m_clients.find(client_id);
    if (it == m_clients.end()) {
        return;
    }
    if (!seq.is_null()) {
        reply["seq"] = seq;
    }
    if (!reply.contains("err")) {
        reply["err"] = SCI_ERR_OK;
    }
    send(it->second, reply, fds); // a client doomed here is reaped by the main loop
}

void Daemon::run_posted() {
    for (auto& fn : m_worker->take_posted()) {
        fn();
    }
}

void Daemon::lending_tick() {
    check_waits();
    if (m_tick_running) {
        return; // the previous tick is still resetting devices
    }
    m_tick_running = true;
    m_worker->submit([this] {
        lost_context().reason = "lease expired";
        try {
            m_reclaims_expired += m_pool_work->tick();
            m_pool_work->checkpoint();
        } catch (const std::exception& e) {
            log(std::string("lease clock: ") + e.what());
        }
        m_worker->post([this] {
            m_tick_running = false;
            check_waits();
        });
    });
}

// Waiting borrows whose ticket was granted (or ran out) get their reply.
void Daemon::check_waits() {
    for (auto it = m_waits.begin(); it != m_waits.end();) {
        PendingWait w = *it;
        std::optional<lending::Lease> lease;
        json reply;
        try {
            lease = m_pool->take_grant(w.ticket);
            if (!lease) {
                ++it;
                continue;
            }
        } catch (const LendingError& e) {
            Refused r = refused_for(e, true);
            reply = r.extra;
            reply["err"] = r.code;
            reply["message"] = r.why;
        }
        it = m_waits.erase(it);
        if (lease) {
            if (m_clients.count(w.client) == 0) {
                // Granted to a borrower who left meanwhile: give it back.
                m_worker->submit([this, id = lease->id] {
                    try {
                        m_pool_work->release(id, "connection closed");
                    } catch (const std::exception&) {
                    }
                });
                continue;
            }
            reply = borrow_reply(*lease, w.client);
        }
        send_deferred(w.client, w.seq, std::move(reply));
    }
}

// ---- reading

void Daemon::op_dev_list(Request& r) {
    json out = json::array();
    for (const auto& s : m_pool->devices()) {
        if (s.state != lending::State::removed) {
            out.push_back(lending::to_json(device_view(s)));
        }
    }
    r.reply["devices"] = std::move(out);
}

void Daemon::op_dev_show(Request& r) {
    try {
        r.reply["device"] = lending::to_json(device_view(m_pool->device(fdid_arg(r.body))));
    } catch (const LendingError& e) {
        throw refused_for(e);
    }
}

void Daemon::op_dev_history(Request& r) {
    std::optional<lending::Fdid> fdid;
    if (r.body.contains("fdid")) {
        fdid = fdid_arg(r.body);
    }
    std::optional<lending::TimePoint> since;
    if (r.body.contains("since_ms")) {
        since = lending::from_unix_ms(
            static_cast<std::int64_t>(wire::get_u64(r.body, "since_ms", INT64_MAX)));
    }
    std::size_t limit = r.body.contains("limit") ? wire::get_u32(r.body, "limit", 100000) : 100;
    defer(r, [this, fdid, since, limit] {
        auto rows = m_pool_work->history(fdid, since);
        // The newest rows, as many as fit one message.
        json out = json::array();
        std::size_t bytes = 0;
        std::size_t first = rows.size() > limit ? rows.size() - limit : 0;
        std::vector<json> picked;
        for (std::size_t i = rows.size(); i > first; --i) {
            json j = lending::to_json(rows[i - 1]);
            bytes += j.dump().size() + 1;
            if (bytes > wire::k_max_message - 1024) {
                break;
            }
            picked.push_back(std::move(j));
        }
        for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
            out.push_back(std::move(*it));
        }
        return json{{"rows", std::move(out)}, {"total", rows.size()}};
    });
}

// ---- borrowing

nlohmann::json Daemon::borrow_reply(const lending::Lease& lease, int client) {
    LeaseLink link;
    link.lease_id = lease.id;
    link.fdid = lease.fdid;
    link.holder = client;
    link.token = new_token();
    m_lease_links[lease.id] = link;
    ++m_borrows;
    update_polled(lease.fdid);
    json lj = lending::to_json(lease);
    lj["token"] = link.token;
    json reply{{"lease", std::move(lj)}};
    try {
        reply["device"] = lending::to_json(device_view(m_pool->device(lease.fdid)));
    } catch (const LendingError&) {
    }
    return reply;
}

void Daemon::op_dev_borrow(Request& r) {
    Client& c = r.client;
    if (r.body.contains("join")) {
        borrow_join(r);
        return;
    }
    lending::BorrowRequest req;
    req.fdid = fdid_arg(r.body);
    req.borrower = {c.node_id, c.pid, c.uid};
    req.mode =
        wire::get_bool(r.body, "exclusive") ? lending::Mode::exclusive : lending::Mode::shared;
    std::uint64_t lease_ms =
        r.body.contains("lease_ms") ? wire::get_u64(r.body, "lease_ms", k_max_ms) : 0;
    req.lease = lease_ms != 0 ? std::chrono::milliseconds(lease_ms) : m_opts.lease_ttl;
    std::uint64_t wait_ms =
        r.body.contains("wait_ms") ? wire::get_u64(r.body, "wait_ms", k_max_ms) : 0;
    try {
        if (wait_ms == 0) {
            r.reply.update(borrow_reply(m_pool->borrow(req), c.id));
            return;
        }
        auto ticket = m_pool->borrow_or_wait(req, std::chrono::milliseconds(wait_ms));
        if (auto lease = m_pool->take_grant(ticket)) {
            r.reply.update(borrow_reply(*lease, c.id));
            return;
        }
        json seq = r.body.contains("seq") ? r.body["seq"] : json();
        m_waits.push_back({c.id, seq, ticket, req.fdid});
        r.deferred = true;
    } catch (const LendingError& e) {
        throw refused_for(e, true);
    }
}

// Another process of the borrower (dis-tool device borrow -- CMD) shares a lease's access.
void Daemon::borrow_join(Request& r) {
    const json& join = r.body["join"];
    if (!join.is_object()) {
        throw wire::WireError("field 'join' is not an object");
    }
    std::int64_t id = lease_arg(join);
    std::string token = wire::get_str(join, "token", 64);
    auto it = m_lease_links.find(id);
    if (it == m_lease_links.end() || it->second.token != token) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER,
               "no lease " + std::to_string(id) + " with that token on this node");
    }
    LeaseLink& link = it->second;
    if (r.body.contains("fdid") && fdid_arg(r.body) != link.fdid) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER,
               "lease " + std::to_string(id) + " is of fdid " + lending::to_string(link.fdid));
    }
    try {
        auto status = m_pool->device(link.fdid);
        for (const auto& l : status.leases) {
            if (l.id == id) {
                link.joined.insert(r.client.id);
                update_polled(link.fdid);
                r.reply["lease"] = lending::to_json(l);
                r.reply["device"] = lending::to_json(device_view(status));
                return;
            }
        }
    } catch (const LendingError& e) {
        throw refused_for(e);
    }
    refuse(SCI_ERR_ILLEGAL_PARAMETER, "lease " + std::to_string(id) + " has ended");
}

LeaseLink& Daemon::lease_of(const Client& c, const json& body) {
    std::int64_t id = lease_arg(body);
    auto it = m_lease_links.find(id);
    if (it == m_lease_links.end() ||
        (it->second.holder != c.id && it->second.joined.count(c.id) == 0)) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER,
               "lease " + std::to_string(id) + " is not held by this connection");
    }
    return it->second;
}

void Daemon::op_dev_renew(Request& r) {
    LeaseLink& link = lease_of(r.client, r.body);
    std::uint64_t ms =
        r.body.contains("lease_ms") ? wire::get_u64(r.body, "lease_ms", k_max_ms) : 0;
    try {
        auto lease = m_pool->renew(link.lease_id, std::chrono::milliseconds(ms));
        r.reply["lease"] = lending::to_json(lease);
    } catch (const LendingError& e) {
        throw refused_for(e);
    }
}

// SCIReleaseExclusiveBorrow: the holder's exclusive lease becomes shared.
void Daemon::op_dev_share(Request& r) {
    LeaseLink& link = lease_of(r.client, r.body);
    if (link.holder != r.client.id) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "only the lease's holder may share it");
    }
    try {
        r.reply["lease"] = lending::to_json(m_pool->share(link.lease_id));
    } catch (const LendingError& e) {
        throw refused_for(e);
    }
}

void Daemon::op_dev_return(Request& r) {
    Client& c = r.client;
    std::int64_t id = lease_arg(r.body);
    std::string actor = "node " + std::to_string(c.node_id) + " pid " + std::to_string(c.pid) +
                        " uid " + std::to_string(c.uid);
    auto it = m_lease_links.find(id);
    bool own = it != m_lease_links.end() && it->second.holder == c.id;
    if (!own) {
        // `device return FDID`: a lease of another connection of the same uid (or any, for
        // root and the daemon's user), named with its fdid.
        if (!r.body.contains("fdid")) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER,
                   "lease " + std::to_string(id) + " is not held by this connection");
        }
        lending::Fdid fdid = fdid_arg(r.body);
        std::optional<lending::Lease> lease;
        try {
            for (const auto& l : m_pool->device(fdid).leases) {
                if (l.id == id) {
                    lease = l;
                }
            }
        } catch (const LendingError& e) {
            throw refused_for(e);
        }
        if (!lease) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER,
                   "fdid " + lending::to_string(fdid) + " has no lease " + std::to_string(id));
        }
        if (!is_admin(c) && lease->borrower.uid != c.uid) {
            refuse(SCI_ERR_ACCESS, "lease " + std::to_string(id) + " belongs to uid " +
                                       std::to_string(lease->borrower.uid));
        }
        actor = "uid " + std::to_string(c.uid) + " pid " + std::to_string(c.pid);
        if (auto v = r.body.find("via"); v != r.body.end() && v->is_string()) {
            actor += " via " + v->get<std::string>().substr(0, 32);
        }
    }
    int skip = own ? c.id : 0;
    std::string reason = "returned by " + actor;
    defer(r, [this, id, actor, reason, skip] {
        lost_context() = {reason, skip};
        m_pool_work->release(id, actor);
        ++m_returns;
        return json::object();
    });
}

// A closing connection: its own leases are returned (reset per policy), its joins end.
void Daemon::release_client_leases(int client_id) {
    std::set<std::uint32_t> touched;
    for (auto& [id, link] : m_lease_links) {
        if (link.joined.erase(client_id) != 0 || link.holder == client_id) {
            touched.insert(link.fdid.value);
        }
        if (link.holder != client_id) {
            continue;
        }
        link.holder = 0;
        m_worker->submit([this, id = id] {
            lost_context() = {"the holder's connection closed", 0};
            try {
                m_pool_work->release(id, "connection closed");
                ++m_returns;
            } catch (const std::exception& e) {
                log(std::string("release at connection close: ") + e.what());
            }
        });
    }
    drop_device_access(0, client_id);
    for (auto fdid : touched) {
        update_polled(lending::Fdid{fdid}); // no dev_irq to the closed connection
    }
    for (auto it = m_waits.begin(); it != m_waits.end();) {
        if (it->client == client_id) {
            m_worker->submit([this, t = it->ticket] {
                lost_context() = {"the waiter's connection closed", 0};
                try {
                    m_pool_work->cancel_wait(t);
                } catch (const std::exception&) {
                }
            });
            it = m_waits.erase(it);
        } else {
            ++it;
        }
    }
}

void Daemon::lease_gone(std::int64_t lease_id, const std::string& reason, int skip_client) {
    auto it = m_lease_links.find(lease_id);
    if (it == m_lease_links.end()) {
        return;
    }
    LeaseLink link = it->second;
    m_lease_links.erase(it);
    drop_device_access(lease_id, 0);
    drop_device_memory(link.fdid, lease_id);
    json ev{{"event", "dev_lost"},
            {"fdid", lending::to_string(link.fdid)},
            {"lease_id", lease_id},
            {"reason", reason}};
    std::set<int> told = link.joined;
    if (link.holder != 0) {
        told.insert(link.holder);
    }
    for (int cid : told) {
        if (cid != skip_client) {
            send_to(cid, ev);
        }
    }
    update_polled(link.fdid);
}

void Daemon::update_polled(lending::Fdid fdid) {
    LentDevice* d = lent_device(fdid);
    if (d == nullptr) {
        return;
    }
    bool held = std::any_of(m_lease_links.begin(), m_lease_links.end(),
                            [&](const auto& kv) { return kv.second.fdid == fdid; });
    bool poll = held && d->kind == "epf-test" && !d->faulted;
    // The engine's own way to the lease's connections (dev_irq); a vfio device's interrupts
    // come on eventfds (device_vfio.cpp) and go the same way.
    std::vector<LentDevice::IrqTarget> targets;
    if (poll || (held && d->vfio && !d->faulted)) {
        for (const auto& [id, link] : m_lease_links) {
            if (link.fdid != fdid) {
                continue;
            }
            std::set<int> conns = link.joined;
            if (link.holder != 0) {
                conns.insert(link.holder);
            }
            for (int cid : conns) {
                auto c = m_clients.find(cid);
                if (c == m_clients.end() || c->second.doomed) {
                    continue;
                }
                auto sock =
                    std::make_shared<wire::Fd>(::fcntl(c->second.sock.get(), F_DUPFD_CLOEXEC, 0));
                if (sock->valid()) {
                    targets.push_back({id, cid, std::move(sock)});
                }
            }
        }
    }
    {
        std::lock_guard lock(d->irq_mu);
        d->irq_targets = std::move(targets);
    }
    if (d->polled.exchange(poll) != poll && poll) {
        wake_device_engine();
    }
}

} // namespace dis::disd
