// The pool's operations. Each state change is check_transition() + write_state() + one audit
// row inside one BEGIN IMMEDIATE transaction; the device hooks (quiesce, reset) run between
// transactions, without the lock, so a slow reset never blocks other devices.
#include "pool_impl.hpp"

#include <algorithm>
#include <ctime>

namespace dis::lending {

TimePoint SystemClock::now() const {
    return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

namespace detail {

std::string format_time(TimePoint t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string describe(const Borrower& b) {
    return "node " + std::to_string(b.node_id) + " pid " + std::to_string(b.pid) + " uid " +
           std::to_string(b.uid);
}

std::string holder(const std::vector<Lease>& leases) {
    if (leases.empty())
        return {};
    if (leases.size() == 1 && leases[0].mode == Mode::exclusive)
        return "held exclusively by " + describe(leases[0].borrower) + " since " +
               format_time(leases[0].granted);
    std::string s = "shared by " + std::to_string(leases.size()) + ": ";
    for (std::size_t i = 0; i < leases.size(); ++i)
        s += (i ? "; " : "") + describe(leases[i].borrower) + " since " +
             format_time(leases[i].granted);
    return s;
}

} // namespace detail

using detail::holder;

Pool::Impl::Impl(PoolOptions o)
    : opt(std::move(o)),
      db(opt.database, static_cast<int>(opt.busy_timeout.count()), opt.synchronous_full,
         opt.manual_checkpoints) {
    if (!opt.clock)
        opt.clock = std::make_shared<SystemClock>();
    if (!opt.device)
        throw Error(ErrorKind::invalid_input, "lending pool: no DeviceControl given");
    sql::Transaction tx(db);
    store::create_schema(db);
    tx.commit();
}

store::DeviceRow Pool::Impl::require(Fdid fdid) {
    auto row = store::load_device(db, fdid);
    if (!row)
        throw LendingError(ErrorKind::not_found, Refusal::no_such_device, fdid, std::nullopt,
                           "no such device in the pool");
    return *row;
}

const Transition& Pool::Impl::apply(store::DeviceRow& row, Event event, const GuardFacts& facts,
                                    const Change& change) {
    auto leases = store::load_leases(db, row.info.fdid);
    const Transition& t = check_transition(row.info.fdid, row.state, event, facts, holder(leases));
    AuditRow audit;
    audit.time = now();
    audit.fdid = row.info.fdid;
    audit.event = event;
    audit.from = row.state;
    audit.to = t.to;
    audit.borrower = change.borrower;
    audit.lease_id = change.lease_id;
    audit.actor = change.actor;
    audit.reason = change.reason;
    row.state = t.to;
    row.since = audit.time;
    row.reason = change.reason;
    store::write_state(db, row);
    audit.id = store::insert_audit(db, audit);
    if (opt.before_commit)
        opt.before_commit(audit);
    return t;
}

Lease Pool::Impl::grant(store::DeviceRow& row, const BorrowRequest& req, const Decision& decision,
                        const std::string& actor, const std::string& reason) {
    auto leases = store::load_leases(db, row.info.fdid);
    GuardFacts facts;
    facts.shareable = req.mode == Mode::shared && !leases.empty() &&
                      std::all_of(leases.begin(), leases.end(),
                                  [](const Lease& l) { return l.mode == Mode::shared; });
    facts.leases_after = leases.size() + 1;
    // Check first so that no lease row is written for a refused borrow.
    check_transition(row.info.fdid, row.state, Event::borrow, facts, holder(leases));
    Lease lease;
    lease.fdid = row.info.fdid;
    lease.borrower = req.borrower;
    lease.mode = req.mode;
    lease.priority = decision.grant.priority;
    lease.granted = now();
    Millis max = decision.grant.max_lease;
    lease.ttl = req.lease.count() > 0 ? std::min(req.lease, max) : max;
    lease.expires = lease.granted + lease.ttl;
    lease.rule = decision.rule;
    lease.reset_on_release = decision.grant.reset_on_release;
    lease.id = store::insert_lease(db, lease, max);
    row.needs_reset = row.needs_reset || lease.reset_on_release;
    apply(row, Event::borrow, facts, {actor, reason, lease.borrower, lease.id});
    return lease;
}

void Pool::Impl::hand_over(store::DeviceRow& row) {
    if (row.state != State::available)
        return;
    auto now_t = now();
    for (const auto& w : store::waiting(db, row.info.fdid)) {
        if (w.deadline <= now_t) {
            store::set_waiter(db, w.id, store::WaitStatus::expired, std::nullopt);
            continue;
        }
        // After the first grant only shared waiters can join, in queue order.
        if (row.state == State::borrowed && w.request.mode == Mode::exclusive)
            break;
        auto leases = store::load_leases(db, row.info.fdid);
        if (row.state == State::borrowed && !leases.empty() && leases[0].mode == Mode::exclusive)
            break;
        Lease l = grant(row, w.request, w.decision, "hand-over",
                        "handed to waiter " + std::to_string(w.id) + " (priority " +
                            std::to_string(w.decision.grant.priority) + ")");
        store::set_waiter(db, w.id, store::WaitStatus::granted, l.id);
    }
}

Pool::Impl::Dropped Pool::Impl::drop_lease(const Lease& lease, Event event,
                                           const std::string& actor, const std::string& reason) {
    auto row = require(lease.fdid);
    auto leases = store::load_leases(db, lease.fdid);
    GuardFacts facts;
    facts.leases_after = leases.empty() ? 0 : leases.size() - 1;
    facts.reset_wanted = row.needs_reset;
    check_transition(row.info.fdid, row.state, event, facts, holder(leases));
    store::delete_lease(db, lease.id);
    const Transition& t = apply(row, event, facts, {actor, reason, lease.borrower, lease.id});
    return {row.info, t.to == State::returning};
}

void Pool::Impl::finish_return(const DeviceInfo& info, const std::vector<Lease>& dropped,
                               const std::string& actor) {
    for (const auto& l : dropped) {
        try {
            opt.device->quiesce(info, l);
        } catch (const std::exception& e) {
            fault_locked(info.fdid, std::string("quiesce of lease ") + std::to_string(l.id) +
                                        " failed: " + e.what());
            return;
        }
    }
    bool resetting = false;
    {
        std::lock_guard lock(mu);
        sql::Transaction tx(db);
        auto row = require(info.fdid);
        GuardFacts facts;
        facts.reset_wanted = row.needs_reset;
        std::string reason =
            row.needs_reset ? "quiesced; reset on release" : "quiesced; no reset by policy";
        const Transition& t = apply(row, Event::quiesced, facts, {actor, reason});
        resetting = t.to == State::resetting;
        hand_over(row);
        tx.commit();
    }
    if (resetting)
        run_reset(info, actor);
}

ResetOutcome Pool::Impl::run_reset(const DeviceInfo& info, const std::string& actor) {
    ResetOutcome outcome = ResetOutcome::failed;
    std::string detail;
    try {
        outcome = opt.device->reset(info, opt.reset_timeout);
    } catch (const std::exception& e) {
        detail = std::string(": ") + e.what();
    }
    std::lock_guard lock(mu);
    sql::Transaction tx(db);
    auto row = require(info.fdid);
    Event event = outcome == ResetOutcome::ok       ? Event::reset_ok
                  : outcome == ResetOutcome::failed ? Event::reset_failed
                                                    : Event::reset_timeout;
    std::string reason = outcome == ResetOutcome::ok ? "reset succeeded"
                         : outcome == ResetOutcome::failed
                             ? "reset failed" + detail + "; quarantined"
                             : "reset timed out after " +
                                   std::to_string(opt.reset_timeout.count()) + " ms; quarantined";
    if (outcome == ResetOutcome::ok)
        row.needs_reset = false;
    apply(row, event, {}, {actor, reason});
    hand_over(row);
    tx.commit();
    return outcome;
}

std::vector<Lease> Pool::Impl::fault_locked(Fdid fdid, const std::string& reason) {
    std::lock_guard lock(mu);
    sql::Transaction tx(db);
    auto row = require(fdid);
    auto leases = store::load_leases(db, fdid);
    check_transition(fdid, row.state, Event::fault, {}, holder(leases));
    for (const auto& l : leases)
        store::delete_lease(db, l.id);
    row.needs_reset = true;
    std::optional<Borrower> who;
    if (leases.size() == 1)
        who = leases[0].borrower;
    std::string why = reason;
    if (!leases.empty())
        why += "; dropped " + holder(leases);
    apply(row, Event::fault, {}, {"lender", why, who});
    tx.commit();
    return leases;
}

} // namespace dis::lending
