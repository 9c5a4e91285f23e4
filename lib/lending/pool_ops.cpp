// The pool's public operations, each a few transactions over the steps in pool.cpp.
#include "pool_impl.hpp"

#include <map>

namespace dis::lending {

using detail::describe;
using detail::holder;

Pool::Pool(PoolOptions options) : m_impl(std::make_unique<Impl>(std::move(options))) {}
Pool::~Pool() = default;

void Pool::set_policy(Policy policy) {
    std::lock_guard lock(m_impl->mu);
    m_impl->opt.policy = std::move(policy);
}

void Pool::add_device(const DeviceInfo& info, const std::string& actor) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto existing = store::load_device(im.db, info.fdid);
    // Check before writing: an fdid in the pool cannot be added again.
    if (existing)
        check_transition(info.fdid, existing->state, Event::add, {},
                         holder(store::load_leases(im.db, info.fdid)));
    store::upsert_device(im.db, info);
    auto row = im.require(info.fdid);
    row.needs_reset = false;
    im.apply(row, Event::add, {}, {actor, "added: " + info.name});
    tx.commit();
}

namespace {

void simple(Pool::Impl& im, Fdid fdid, Event event, const std::string& actor,
            const std::string& reason) {
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto row = im.require(fdid);
    im.apply(row, event, {}, {actor, reason});
    if (event == Event::remove)
        for (const auto& w : store::waiting(im.db, fdid))
            store::set_waiter(im.db, w.id, store::WaitStatus::cancelled, std::nullopt);
    im.hand_over(row);
    tx.commit();
}

} // namespace

void Pool::make_available(Fdid fdid, const std::string& actor) {
    simple(*m_impl, fdid, Event::make_available, actor, "offered for lending");
}

void Pool::make_unavailable(Fdid fdid, const std::string& actor) {
    simple(*m_impl, fdid, Event::make_unavailable, actor, "taken back by the lender");
}

void Pool::remove(Fdid fdid, const std::string& actor) {
    simple(*m_impl, fdid, Event::remove, actor, "removed from the pool");
}

AuditRow Pool::note(Fdid fdid, const std::string& actor, const std::string& reason) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto row = store::load_device(im.db, fdid);
    AuditRow audit;
    audit.time = im.now();
    audit.fdid = fdid;
    audit.event = Event::note;
    audit.from = audit.to = row ? row->state : State::removed;
    audit.actor = actor;
    audit.reason = reason;
    audit.id = store::insert_audit(im.db, audit);
    tx.commit();
    return audit;
}

namespace {

Decision decide_or_throw(const Policy& policy, const store::DeviceRow& row,
                         const BorrowRequest& req) {
    Decision d = policy.decide(row.info, req.borrower, req.mode);
    if (!d.allowed)
        throw LendingError(ErrorKind::permission, Refusal::policy, row.info.fdid, row.state, d.why);
    return d;
}

std::string borrow_reason(const BorrowRequest& req, const Decision& d) {
    return std::string(to_string(req.mode)) + " borrow allowed by " + d.rule;
}

} // namespace

Lease Pool::borrow(const BorrowRequest& req) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto row = im.require(req.fdid);
    Decision d = decide_or_throw(im.opt.policy, row, req);
    // Queued borrowers go first: a shared borrow does not overtake them.
    if (row.state == State::borrowed && store::count_waiting(im.db, req.fdid) > 0)
        throw LendingError(ErrorKind::busy, Refusal::guard_failed, req.fdid, row.state,
                           "busy: " + std::to_string(store::count_waiting(im.db, req.fdid)) +
                               " borrower(s) waiting",
                           holder(store::load_leases(im.db, req.fdid)));
    Lease l = im.grant(row, req, d, describe(req.borrower), borrow_reason(req, d));
    tx.commit();
    return l;
}

WaitTicket Pool::borrow_or_wait(const BorrowRequest& req, Millis timeout) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto row = im.require(req.fdid);
    Decision d = decide_or_throw(im.opt.policy, row, req);
    store::WaiterRow w;
    w.request = req;
    w.decision = d;
    w.enqueued = im.now();
    w.deadline = w.enqueued + timeout;
    bool busy = row.state == State::borrowed || row.state == State::returning ||
                row.state == State::resetting;
    if (row.state == State::borrowed && store::count_waiting(im.db, req.fdid) == 0) {
        // A shared request may join shared borrowers at once.
        auto leases = store::load_leases(im.db, req.fdid);
        bool joinable = req.mode == Mode::shared &&
                        std::all_of(leases.begin(), leases.end(),
                                    [](const Lease& l) { return l.mode == Mode::shared; });
        busy = !joinable;
    }
    if (!busy) {
        // Available (or joinable): granted now; other states are refused by the table.
        Lease l = im.grant(row, req, d, describe(req.borrower), borrow_reason(req, d));
        w.status = store::WaitStatus::granted;
        w.lease_id = l.id;
    }
    WaitTicket ticket = store::insert_waiter(im.db, w);
    tx.commit();
    return ticket;
}

std::optional<Lease> Pool::take_grant(WaitTicket ticket) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto w = store::load_waiter(im.db, ticket);
    auto ended = [&](Fdid fdid, const std::string& why) {
        return LendingError(ErrorKind::timeout, Refusal::wait_ended, fdid, std::nullopt,
                            "wait ticket " + std::to_string(ticket) + " " + why);
    };
    if (!w)
        throw ended(Fdid{}, "is unknown");
    Fdid fdid = w->request.fdid;
    if (w->status == store::WaitStatus::waiting && w->deadline <= im.now())
        w->status = store::WaitStatus::expired;
    switch (w->status) {
    case store::WaitStatus::waiting:
        return std::nullopt;
    case store::WaitStatus::granted: {
        store::delete_waiter(im.db, ticket);
        auto lease = store::load_lease(im.db, w->lease_id.value_or(0));
        tx.commit();
        if (!lease)
            throw ended(fdid, "was granted, but its lease has ended since");
        return lease;
    }
    case store::WaitStatus::expired:
        store::delete_waiter(im.db, ticket);
        tx.commit();
        throw ended(fdid, "expired before the device was free");
    case store::WaitStatus::cancelled:
        store::delete_waiter(im.db, ticket);
        tx.commit();
        throw ended(fdid, "was cancelled (the device left the pool or the lender restarted)");
    }
    return std::nullopt;
}

void Pool::cancel_wait(WaitTicket ticket) {
    std::optional<std::int64_t> lease;
    {
        auto& im = *m_impl;
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        auto w = store::load_waiter(im.db, ticket);
        if (!w)
            return;
        if (w->status == store::WaitStatus::granted)
            lease = w->lease_id;
        store::delete_waiter(im.db, ticket);
        tx.commit();
    }
    if (lease) // granted but never taken: give it back
        release(*lease, "cancelled wait");
}

namespace {

LendingError no_lease(std::int64_t id, const std::string& why) {
    return LendingError(ErrorKind::not_found, Refusal::no_such_lease, Fdid{}, std::nullopt,
                        "lease " + std::to_string(id) + " " + why);
}

} // namespace

Lease Pool::renew(std::int64_t lease_id, Millis ttl) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto lease = store::load_lease(im.db, lease_id);
    if (!lease)
        throw no_lease(lease_id, "is unknown (released, expired or never granted)");
    auto now = im.now();
    if (lease->expires <= now)
        throw no_lease(lease_id, "expired at " + detail::format_time(lease->expires));
    Millis max = store::lease_max(im.db, lease_id);
    Millis want = ttl.count() > 0 ? ttl : lease->ttl;
    lease->ttl = std::min(want, max);
    lease->expires = now + lease->ttl;
    store::update_lease_expiry(im.db, lease_id, lease->expires, lease->ttl);
    tx.commit();
    return *lease;
}

Lease Pool::share(std::int64_t lease_id) {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db);
    auto lease = store::load_lease(im.db, lease_id);
    if (!lease)
        throw no_lease(lease_id, "is unknown (released, expired or never granted)");
    if (lease->mode == Mode::shared)
        return *lease;
    auto row = im.require(lease->fdid);
    BorrowRequest req{lease->fdid, lease->borrower, Mode::shared, lease->ttl};
    decide_or_throw(im.opt.policy, row, req);
    store::update_lease_mode(im.db, lease_id, Mode::shared);
    tx.commit();
    lease->mode = Mode::shared;
    return *lease;
}

void Pool::release(std::int64_t lease_id, const std::string& actor) {
    auto& im = *m_impl;
    Impl::Dropped dropped;
    Lease lease;
    {
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        auto l = store::load_lease(im.db, lease_id);
        if (!l)
            throw no_lease(lease_id, "is unknown (released, expired or never granted)");
        lease = *l;
        dropped = im.drop_lease(lease, Event::release, actor, "returned by the borrower");
        tx.commit();
    }
    if (dropped.last) {
        im.finish_return(dropped.info, {lease}, actor);
    } else {
        try {
            im.opt.device->quiesce(dropped.info, lease);
        } catch (const std::exception& e) {
            im.fault_locked(lease.fdid, std::string("quiesce failed: ") + e.what());
        }
    }
}

std::vector<Lease> Pool::reclaim(Fdid fdid, const std::string& actor, const std::string& reason) {
    auto& im = *m_impl;
    std::vector<Lease> leases;
    DeviceInfo info;
    {
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        auto row = im.require(fdid);
        info = row.info;
        leases = store::load_leases(im.db, fdid);
        check_transition(fdid, row.state, Event::reclaim, {}, holder(leases));
        std::string why = reason + "; the device was " + holder(leases);
        for (const auto& l : leases)
            store::delete_lease(im.db, l.id);
        row.needs_reset = true; // a forced return is always reset
        std::optional<Borrower> who;
        if (leases.size() == 1)
            who = leases[0].borrower;
        im.apply(row, Event::reclaim, {}, {actor, why, who});
        tx.commit();
    }
    im.finish_return(info, leases, actor);
    return leases;
}

ResetOutcome Pool::reset(Fdid fdid, const std::string& actor) {
    auto& im = *m_impl;
    DeviceInfo info;
    {
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        auto row = im.require(fdid);
        info = row.info;
        im.apply(row, Event::reset, {},
                 {actor, row.state == State::failed ? "reset to clear the quarantine"
                                                    : "reset requested"});
        tx.commit();
    }
    return im.run_reset(info, actor);
}

std::vector<Lease> Pool::fault(Fdid fdid, const std::string& reason) {
    return m_impl->fault_locked(fdid, reason);
}

std::size_t Pool::tick() {
    auto& im = *m_impl;
    std::vector<std::pair<Impl::Dropped, Lease>> done;
    {
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        auto now = im.now();
        store::expire_waiters(im.db, now);
        for (const auto& l : store::expired_leases(im.db, now))
            done.emplace_back(im.drop_lease(l, Event::expire, "lease clock",
                                            "lease " + std::to_string(l.id) + " of " +
                                                describe(l.borrower) + " expired at " +
                                                detail::format_time(l.expires)),
                              l);
        tx.commit();
    }
    for (const auto& [d, l] : done) {
        if (d.last)
            im.finish_return(d.info, {l}, "lease clock");
        else
            try {
                im.opt.device->quiesce(d.info, l);
            } catch (const std::exception& e) {
                im.fault_locked(l.fdid, std::string("quiesce failed: ") + e.what());
            }
    }
    return done.size();
}

RecoveryReport Pool::recover(const std::function<bool(const Lease&)>& confirm) {
    auto& im = *m_impl;
    RecoveryReport report;
    std::map<std::uint32_t, std::vector<Lease>> returning; // fdid -> leases to quiesce
    std::vector<DeviceInfo> resets;
    std::map<std::uint32_t, DeviceInfo> infos;
    {
        std::lock_guard lock(im.mu);
        sql::Transaction tx(im.db);
        report.waiters_dropped = store::drop_waiters(im.db);
        for (const auto& l : store::load_leases(im.db)) {
            if (confirm && confirm(l)) {
                report.confirmed.push_back(l);
                continue;
            }
            auto d = im.drop_lease(l, Event::lease_lost, "recovery",
                                   "lender restarted: lease " + std::to_string(l.id) + " of " +
                                       describe(l.borrower) + " not confirmed; reclaimed");
            report.reclaimed.push_back(l);
            if (d.last)
                returning[l.fdid.value].push_back(l);
        }
        for (auto& row : store::load_devices(im.db)) {
            infos[row.info.fdid.value] = row.info;
            if (row.state == State::returning)
                returning[row.info.fdid.value]; // interrupted return: finish it
            if (row.state == State::resetting) {
                im.apply(row, Event::reset_restart, {},
                         {"recovery", "reset interrupted by a lender restart; starting again"});
                resets.push_back(row.info);
            }
        }
        tx.commit();
    }
    for (const auto& [fdid, leases] : returning) {
        im.finish_return(infos[fdid], leases, "recovery");
        report.reset.push_back(Fdid{fdid});
    }
    for (const auto& info : resets) {
        im.run_reset(info, "recovery");
        report.reset.push_back(info.fdid);
    }
    return report;
}

DeviceStatus Pool::device(Fdid fdid) const {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db, false);
    auto row = im.require(fdid);
    DeviceStatus s{row.info, row.state, row.since, row.reason, {}, 0};
    s.leases = store::load_leases(im.db, fdid);
    s.waiters = store::count_waiting(im.db, fdid);
    return s;
}

std::vector<DeviceStatus> Pool::devices() const {
    auto& im = *m_impl;
    std::lock_guard lock(im.mu);
    sql::Transaction tx(im.db, false);
    std::vector<DeviceStatus> out;
    for (auto& row : store::load_devices(im.db)) {
        DeviceStatus s{row.info, row.state, row.since, row.reason, {}, 0};
        s.leases = store::load_leases(im.db, row.info.fdid);
        s.waiters = store::count_waiting(im.db, row.info.fdid);
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<AuditRow> Pool::history(std::optional<Fdid> fdid,
                                    std::optional<TimePoint> since) const {
    std::lock_guard lock(m_impl->mu);
    return store::load_audit(m_impl->db, fdid, since);
}

void Pool::checkpoint() {
    std::lock_guard lock(m_impl->mu);
    m_impl->db.checkpoint();
}

std::int64_t Pool::audit_count() const {
    std::lock_guard lock(m_impl->mu);
    return store::count_audit(m_impl->db);
}

} // namespace dis::lending
