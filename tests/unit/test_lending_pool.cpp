// The pool's leases, sharing, reclaim, resets, policy refusals and hand-over to waiters.
#include "test_lending_support.hpp"

using namespace dis::lending;
using namespace dis::lending::test;
using namespace std::chrono_literals;

namespace {

BorrowRequest excl(Fdid f, Borrower b, Millis lease = 0ms) {
    return {f, b, Mode::exclusive, lease};
}
BorrowRequest shared(Fdid f, Borrower b, Millis lease = 0ms) {
    return {f, b, Mode::shared, lease};
}

std::string refusal_of(const std::function<void()>& op) {
    try {
        op();
    } catch (const LendingError& e) {
        return e.what();
    }
    return "(accepted)";
}

} // namespace

TEST_CASE("a lease expires by the injected clock and its device is reset and available",
          "[lending][pool][lease]") {
    PoolFixture fx;
    auto pool = fx.open(Policy::parse("[default]\nmax_lease = 60\n", "p.toml"));
    Fdid f = add_available(*pool, 0);
    Lease l = pool->borrow(excl(f, borrower(4, 100), 10s));
    CHECK(l.ttl == 10s);
    CHECK(l.expires == l.granted + 10s);
    CHECK(l.borrower.node_id == 4);
    CHECK(l.borrower.pid == 100);
    fx.clock->advance(9s);
    CHECK(pool->tick() == 0);
    CHECK(pool->device(f).state == State::borrowed);
    // Renewing moves the expiry; a request above the policy's maximum is cut to it.
    Lease r = pool->renew(l.id, 600s);
    CHECK(r.ttl == 60s);
    fx.clock->advance(59s);
    CHECK(pool->tick() == 0);
    fx.clock->advance(1s);
    CHECK(pool->tick() == 1);
    auto st = pool->device(f);
    CHECK(st.state == State::available);
    CHECK(st.leases.empty());
    CHECK(fx.dev->quiesces(f) == 1);
    CHECK(fx.dev->resets(f) == 1);
    // The expired lease is gone for good: no renew, no release.
    CHECK_THROWS_AS(pool->renew(l.id), LendingError);
    CHECK_THROWS_AS(pool->release(l.id, "t"), LendingError);
    auto h = pool->history(f);
    REQUIRE(h.size() == 6); // add, make_available, borrow, expire, quiesced, reset_ok
    CHECK(h[3].event == Event::expire);
    CHECK(h[3].actor == "lease clock");
    REQUIRE(h[3].borrower);
    CHECK(h[3].borrower->pid == 100);
    CHECK(h[3].lease_id == l.id);
}

TEST_CASE("renewing a lease that ran out is refused even before the clock ticks",
          "[lending][pool][lease]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid f = add_available(*pool, 0);
    Lease l = pool->borrow(excl(f, borrower(4, 1), 5s));
    fx.clock->advance(5s);
    try {
        pool->renew(l.id);
        FAIL("renewed");
    } catch (const LendingError& e) {
        CHECK(e.refusal() == Refusal::no_such_lease);
        CHECK(std::string(e.what()).find("expired") != std::string::npos);
    }
}

TEST_CASE("exclusive is exclusive, shared is shared by N and reset after the last",
          "[lending][pool][share]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid a = add_available(*pool, 0);
    pool->borrow(excl(a, borrower(4, 1234)));
    std::string msg = refusal_of([&] { pool->borrow(excl(a, borrower(12, 5))); });
    CHECK(msg.find("fdid 0x80000 is borrowed (held exclusively by node 4 pid 1234 uid 1000 "
                   "since ") != std::string::npos);
    CHECK(msg.find("busy") != std::string::npos);
    CHECK(refusal_of([&] { pool->borrow(shared(a, borrower(12, 5))); }) != "(accepted)");

    Fdid b = add_available(*pool, 1);
    std::vector<Lease> leases;
    for (int pid = 1; pid <= 3; ++pid)
        leases.push_back(pool->borrow(shared(b, borrower(4, pid))));
    CHECK(pool->device(b).leases.size() == 3);
    CHECK(refusal_of([&] { pool->borrow(excl(b, borrower(4, 9))); }).find("shared by 3") !=
          std::string::npos);
    pool->release(leases[0].id, "t");
    pool->release(leases[1].id, "t");
    CHECK(pool->device(b).state == State::borrowed);
    CHECK(fx.dev->resets(b) == 0);
    CHECK(fx.dev->quiesces(b) == 2); // each borrower's mappings go when it leaves
    pool->release(leases[2].id, "t");
    CHECK(pool->device(b).state == State::available);
    CHECK(fx.dev->resets(b) == 1);
    require_history_replays(*pool);
}

TEST_CASE("reclaim quiesces every borrower, resets and returns the leases",
          "[lending][pool][reclaim]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid f = add_available(*pool, 0);
    auto l1 = pool->borrow(shared(f, borrower(4, 1)));
    auto l2 = pool->borrow(shared(f, borrower(12, 2)));
    auto taken = pool->reclaim(f, "admin uid 0", "maintenance");
    REQUIRE(taken.size() == 2);
    CHECK(fx.dev->quiesced_leases() == std::vector<std::int64_t>{l1.id, l2.id});
    CHECK(fx.dev->resets(f) == 1);
    CHECK(pool->device(f).state == State::available);
    auto h = pool->history(f);
    auto it = std::find_if(h.begin(), h.end(), [](auto& r) { return r.event == Event::reclaim; });
    REQUIRE(it != h.end());
    CHECK(it->actor == "admin uid 0");
    CHECK(it->reason.find("maintenance") != std::string::npos);
    CHECK(it->reason.find("node 12 pid 2") != std::string::npos);
}

TEST_CASE("a failed or timed-out reset quarantines, only a successful reset clears it",
          "[lending][pool][reset]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid f = add_available(*pool, 0);
    fx.dev->script(f, {ResetOutcome::failed, ResetOutcome::timed_out, ResetOutcome::ok});
    pool->release(pool->borrow(excl(f, borrower(4, 1))).id, "t");
    auto st = pool->device(f);
    CHECK(st.state == State::failed);
    CHECK(st.reason.find("reset failed") != std::string::npos);
    std::string msg = refusal_of([&] { pool->borrow(excl(f, borrower(4, 2))); });
    CHECK(msg.find("fdid 0x80000 is failed") != std::string::npos);
    CHECK(pool->reset(f, "admin") == ResetOutcome::timed_out);
    CHECK(pool->device(f).state == State::failed);
    CHECK(pool->device(f).reason.find("timed out") != std::string::npos);
    CHECK(pool->reset(f, "admin") == ResetOutcome::ok);
    CHECK(pool->device(f).state == State::available);
    pool->borrow(excl(f, borrower(4, 3)));
}

TEST_CASE("a device that stops responding is quarantined and its borrowers are named",
          "[lending][pool][fault]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid f = add_available(*pool, 0);
    auto l = pool->borrow(excl(f, borrower(4, 77)));
    auto dropped = pool->fault(f, "command timed out");
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].id == l.id);
    CHECK(pool->device(f).state == State::failed);
    CHECK(pool->device(f).leases.empty());
    CHECK_THROWS_AS(pool->release(l.id, "t"), LendingError);
}

TEST_CASE("reset on release follows the policy", "[lending][pool][policy]") {
    PoolFixture fx;
    auto pool = fx.open(Policy::parse("[[rule]]\nuids = [1001]\nreset_on_release = false\n"
                                      "[[rule]]\nuids = [1000]\n",
                                      "p.toml"));
    Fdid f = add_available(*pool, 0);
    pool->release(pool->borrow(excl(f, borrower(4, 1, 1001))).id, "t");
    CHECK(fx.dev->resets(f) == 0);
    pool->release(pool->borrow(excl(f, borrower(4, 1, 1000))).id, "t");
    CHECK(fx.dev->resets(f) == 1);
    // Shared: one lease that wants a reset is enough.
    auto a = pool->borrow(shared(f, borrower(4, 1, 1001)));
    auto b = pool->borrow(shared(f, borrower(4, 2, 1000)));
    pool->release(b.id, "t");
    pool->release(a.id, "t");
    CHECK(fx.dev->resets(f) == 2);
}

TEST_CASE("a refused borrow names the rule, nothing changes", "[lending][pool][policy]") {
    PoolFixture fx;
    auto pool = fx.open(Policy::parse(R"(
[[rule]]
uids = [1000]
[[rule]]
name = "no sharing"
exclusive_only = true
uids = [1002]
[[rule]]
uids = [1001]
allow = false
)",
                                      "p.toml"));
    Fdid f = add_available(*pool, 0);
    auto before = pool->audit_count();
    try {
        pool->borrow(excl(f, borrower(4, 1, 1001)));
        FAIL("allowed");
    } catch (const LendingError& e) {
        CHECK(e.refusal() == Refusal::policy);
        CHECK(e.kind() == dis::ErrorKind::permission);
        CHECK(std::string(e.what()) ==
              "fdid 0x80000 is available: not allowed for uid 1001 by rule 3 (line 8)");
    }
    CHECK(refusal_of([&] {
              pool->borrow(shared(f, borrower(4, 1, 1002)));
          }).find("shared borrow not allowed by rule 2 (no sharing, line 4)") != std::string::npos);
    CHECK(pool->audit_count() == before);
    CHECK(pool->device(f).state == State::available);
    pool->borrow(excl(f, borrower(4, 1, 1002)));
}

TEST_CASE("hand-over: highest priority first, then first come first served",
          "[lending][pool][wait]") {
    PoolFixture fx;
    auto pool = fx.open(Policy::parse("[[rule]]\nnodes = [12]\npriority = 5\n", "p.toml"));
    Fdid f = add_available(*pool, 0);
    Lease holder = pool->borrow(excl(f, borrower(4, 1)));
    WaitTicket low1 = pool->borrow_or_wait(excl(f, borrower(4, 2)), 60s);
    fx.clock->advance(1ms);
    WaitTicket low2 = pool->borrow_or_wait(excl(f, borrower(4, 3)), 60s);
    fx.clock->advance(1ms);
    WaitTicket high = pool->borrow_or_wait(excl(f, borrower(12, 4)), 60s);
    CHECK(pool->device(f).waiters == 3);
    CHECK_FALSE(pool->take_grant(low1));
    // While others wait, a plain borrow does not jump the queue.
    CHECK(refusal_of([&] { pool->borrow(excl(f, borrower(4, 9))); }) != "(accepted)");

    pool->release(holder.id, "t");
    CHECK(fx.dev->resets(f) == 1);
    auto st = pool->device(f);
    REQUIRE(st.state == State::borrowed);
    CHECK(st.leases.at(0).borrower.pid == 4); // priority 5 beats the earlier waiters
    CHECK_FALSE(pool->take_grant(low1));
    auto got = pool->take_grant(high);
    REQUIRE(got);
    CHECK(got->borrower.node_id == 12);
    CHECK(got->priority == 5);

    pool->release(got->id, "t");
    CHECK(pool->device(f).leases.at(0).borrower.pid == 2); // then first come first served
    auto g1 = pool->take_grant(low1);
    REQUIRE(g1);
    pool->release(g1->id, "t");
    auto g2 = pool->take_grant(low2);
    REQUIRE(g2);
    CHECK(g2->borrower.pid == 3);
    auto h = pool->history(f);
    CHECK(std::count_if(h.begin(), h.end(), [](auto& r) { return r.actor == "hand-over"; }) == 3);
    require_history_replays(*pool);
}

TEST_CASE("a wait that outlives its timeout ends with a typed error, shared waiters join",
          "[lending][pool][wait]") {
    PoolFixture fx;
    auto pool = fx.open();
    Fdid f = add_available(*pool, 0);
    Lease holder = pool->borrow(excl(f, borrower(4, 1)));
    WaitTicket t = pool->borrow_or_wait(excl(f, borrower(4, 2)), 5s);
    fx.clock->advance(5s);
    try {
        pool->take_grant(t);
        FAIL("still waiting");
    } catch (const LendingError& e) {
        CHECK(e.refusal() == Refusal::wait_ended);
        CHECK(e.kind() == dis::ErrorKind::timeout);
    }
    // Two shared waiters are both handed the device; an exclusive one behind them waits.
    WaitTicket s1 = pool->borrow_or_wait(shared(f, borrower(4, 3)), 60s);
    WaitTicket s2 = pool->borrow_or_wait(shared(f, borrower(4, 4)), 60s);
    WaitTicket x = pool->borrow_or_wait(excl(f, borrower(4, 5)), 60s);
    pool->release(holder.id, "t");
    CHECK(pool->device(f).leases.size() == 2);
    auto l1 = pool->take_grant(s1);
    auto l2 = pool->take_grant(s2);
    REQUIRE(l1);
    REQUIRE(l2);
    CHECK_FALSE(pool->take_grant(x));
    // A cancelled wait leaves the queue; the device then stays free.
    pool->cancel_wait(x);
    pool->release(l1->id, "t");
    pool->release(l2->id, "t");
    CHECK(pool->device(f).state == State::available);
    // An available device is granted to borrow_or_wait at once.
    WaitTicket now = pool->borrow_or_wait(excl(f, borrower(4, 6)), 1s);
    CHECK(pool->take_grant(now));
}
