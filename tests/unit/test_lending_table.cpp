// The transition table, walked: every row works through check_transition() and through the
// pool's public operations, every other (state, event) pair is refused with a typed error
// naming the fdid, the state and why.
#include "test_lending_support.hpp"

#include <set>
#include <tuple>

using namespace dis::lending;
using namespace dis::lending::test;

namespace {

// Facts under which `g` holds, and under which it does not (nullopt for `none`).
GuardFacts facts_holding(Guard g) {
    GuardFacts f;
    f.shareable = g == Guard::shareable;
    f.leases_after = g == Guard::others_remain ? 2 : 0;
    f.reset_wanted = g != Guard::no_reset_wanted;
    return f;
}

std::optional<GuardFacts> facts_failing(Guard g) {
    GuardFacts f;
    switch (g) {
    case Guard::none:
        return std::nullopt;
    case Guard::shareable:
        f.shareable = false;
        return f;
    case Guard::others_remain:
        f.leases_after = 0;
        return f;
    case Guard::last_borrower:
        f.leases_after = 1;
        return f;
    case Guard::reset_wanted:
        f.reset_wanted = false;
        return f;
    case Guard::no_reset_wanted:
        f.reset_wanted = true;
        return f;
    }
    return std::nullopt;
}

std::vector<Transition> rows_for(State s, Event e) {
    std::vector<Transition> out;
    for (const auto& t : transition_table())
        if (t.from == s && t.event == e)
            out.push_back(t);
    return out;
}

} // namespace

TEST_CASE("every (state, event) pair: table rows pass, all others are refused by name",
          "[lending][table]") {
    const Fdid fdid = Fdid::make(8, 0);
    int legal = 0, refused = 0;
    for (State s : k_all_states) {
        for (Event e : k_all_events) {
            INFO(to_string(s) << " + " << to_string(e));
            auto rows = rows_for(s, e);
            if (rows.empty()) {
                try {
                    check_transition(fdid, s, e, facts_holding(Guard::none));
                    FAIL("accepted");
                } catch (const LendingError& err) {
                    ++refused;
                    CHECK(err.refusal() == Refusal::illegal_transition);
                    CHECK(err.fdid() == fdid);
                    CHECK(err.state() == s);
                    std::string msg = err.what();
                    CHECK(msg.find("0x80000") != std::string::npos);
                    CHECK(msg.find(to_string(s)) != std::string::npos);
                    CHECK(msg.find(std::string("'") + to_string(e) + "'") != std::string::npos);
                }
                continue;
            }
            for (const auto& row : rows) {
                ++legal;
                const Transition& t = check_transition(fdid, s, e, facts_holding(row.guard));
                CHECK(t.to == row.to);
                CHECK(t.guard == row.guard);
            }
            // When every row of the pair is guarded, facts failing all guards are refused.
            bool all_guarded = true;
            for (const auto& row : rows)
                all_guarded = all_guarded && row.guard != Guard::none;
            if (all_guarded && rows.size() == 1) {
                auto f = facts_failing(rows[0].guard);
                REQUIRE(f);
                try {
                    check_transition(fdid, s, e, *f, "held exclusively by node 4 pid 7 uid 1");
                    FAIL("guard ignored");
                } catch (const LendingError& err) {
                    CHECK(err.refusal() == Refusal::guard_failed);
                    CHECK(err.state() == s);
                    CHECK(std::string(err.what()).find("node 4 pid 7") != std::string::npos);
                }
            }
        }
    }
    CHECK(legal == static_cast<int>(transition_table().size()));
    CHECK(refused == static_cast<int>(std::size(k_all_states) * std::size(k_all_events)) -
                         static_cast<int>(std::set<std::pair<State, Event>>([] {
                                              std::set<std::pair<State, Event>> s;
                                              for (const auto& t : transition_table())
                                                  s.insert({t.from, t.event});
                                              return s;
                                          }())
                                              .size()));
}

TEST_CASE("the table is deterministic: rows sharing (state, event) have exclusive guards",
          "[lending][table]") {
    auto exclusive = [](Guard a, Guard b) {
        auto pair = std::minmax(a, b);
        return pair == std::minmax(Guard::others_remain, Guard::last_borrower) ||
               pair == std::minmax(Guard::reset_wanted, Guard::no_reset_wanted);
    };
    auto table = transition_table();
    for (std::size_t i = 0; i < table.size(); ++i)
        for (std::size_t j = i + 1; j < table.size(); ++j)
            if (table[i].from == table[j].from && table[i].event == table[j].event) {
                INFO(to_string(table[i].from) << " + " << to_string(table[i].event));
                CHECK(exclusive(table[i].guard, table[j].guard));
            }
}

TEST_CASE("the pool's operations walk every row of the table", "[lending][table][pool]") {
    PoolFixture fx;
    Policy policy =
        Policy::parse("[[rule]]\nfdid = \"0x80007\"\nreset_on_release = false\n", "walk.toml");
    auto pool = fx.open(policy);
    auto excl = [](Fdid f, std::int64_t pid) {
        return BorrowRequest{f, borrower(4, pid), Mode::exclusive, Millis(0)};
    };
    auto shared = [](Fdid f, std::int64_t pid) {
        return BorrowRequest{f, borrower(4, pid), Mode::shared, Millis(0)};
    };
    // 0: add, make_available, make_unavailable, make_available, exclusive borrow, release
    //    (quiesced -> resetting -> reset_ok), remove from available.
    Fdid a = add_available(*pool, 0);
    pool->make_unavailable(a, "t");
    pool->make_available(a, "t");
    pool->release(pool->borrow(excl(a, 1)).id, "t");
    pool->remove(a, "t");
    // 1: shared by two: borrow + borrow (shareable), release (others remain), expire (last).
    Fdid b = add_available(*pool, 1);
    auto l1 = pool->borrow(shared(b, 1));
    pool->borrow(shared(b, 2));
    pool->release(l1.id, "t");
    fx.clock->advance(std::chrono::hours(2));
    CHECK(pool->tick() == 1);
    // 2: shared by two, both expire at once (others_remain, then last_borrower).
    Fdid c = add_available(*pool, 2);
    pool->borrow(shared(c, 1));
    pool->borrow(shared(c, 2));
    fx.clock->advance(std::chrono::hours(2));
    CHECK(pool->tick() == 2);
    // 3: reclaim; then a failing reset (reset_failed), admin reset of failed, remove failed.
    Fdid d = add_available(*pool, 3);
    pool->borrow(excl(d, 1));
    fx.dev->script(d, {ResetOutcome::failed});
    pool->reclaim(d, "admin", "forced");
    CHECK(pool->device(d).state == State::failed);
    pool->reset(d, "admin");
    CHECK(pool->device(d).state == State::available);
    pool->fault(d, "stopped responding");
    pool->remove(d, "admin");
    // 4: admin reset of available timing out; fault while borrowed; remove from unavailable.
    Fdid e = add_available(*pool, 4);
    fx.dev->script(e, {ResetOutcome::timed_out});
    pool->reset(e, "admin");
    CHECK(pool->device(e).state == State::failed);
    pool->reset(e, "admin");
    pool->borrow(excl(e, 1));
    pool->fault(e, "stopped responding");
    Fdid f = Fdid::make(8, 5);
    pool->add_device(device_info(5), "t");
    pool->remove(f, "t");
    // 6: fault while returning (a quiesce that throws).
    Fdid g = add_available(*pool, 6);
    fx.dev->on_quiesce = [](const DeviceInfo&, const Lease&) {
        throw std::runtime_error("no answer");
    };
    pool->release(pool->borrow(excl(g, 1)).id, "t");
    fx.dev->on_quiesce = nullptr;
    CHECK(pool->device(g).state == State::failed);
    // 7: no reset by policy (quiesced -> available); lease_lost and reset_restart by recovery.
    Fdid h = add_available(*pool, 7);
    pool->release(pool->borrow(excl(h, 1)).id, "t");
    CHECK(fx.dev->resets(h) == 0);
    Fdid i = add_available(*pool, 8);
    pool->borrow(shared(i, 1));
    pool->borrow(shared(i, 2));
    pool->recover();
    CHECK(pool->device(i).state == State::available);
    // A reset that throws counts as a failed reset.
    Fdid j = add_available(*pool, 9);
    fx.dev->on_reset = [&](const DeviceInfo& info) {
        if (info.fdid == j)
            throw std::runtime_error("device gone");
    };
    CHECK(pool->reset(j, "admin") == ResetOutcome::failed);
    fx.dev->on_reset = nullptr;
    CHECK(pool->device(j).state == State::failed);

    std::set<std::tuple<State, Event, State>> seen;
    for (const auto& row : pool->history())
        seen.insert({row.from, row.event, row.to});
    for (const auto& t : transition_table()) {
        if (t.event == Event::reset_restart)
            continue; // needs a restart mid-reset: walked in test_lending_recovery.cpp
        INFO(to_string(t.from) << " + " << to_string(t.event) << " -> " << to_string(t.to));
        CHECK(seen.count({t.from, t.event, t.to}) == 1);
    }
    require_history_replays(*pool);
}

TEST_CASE("operations on a device in the wrong state are refused and change nothing",
          "[lending][table][pool]") {
    PoolFixture fx;
    auto pool = fx.open();
    // One device per stable state.
    Fdid unavailable = Fdid::make(8, 0);
    pool->add_device(device_info(0), "t");
    Fdid available = add_available(*pool, 1);
    Fdid borrowed = add_available(*pool, 2);
    pool->borrow({borrowed, borrower(4, 1), Mode::exclusive, Millis(0)});
    Fdid failed = add_available(*pool, 3);
    pool->fault(failed, "test");
    Fdid removed = add_available(*pool, 4);
    pool->remove(removed, "t");

    using Op = std::function<void(Fdid)>;
    std::vector<std::pair<Event, Op>> ops = {
        {Event::add, [&](Fdid f) { pool->add_device(device_info(f.index()), "t"); }},
        {Event::make_available, [&](Fdid f) { pool->make_available(f, "t"); }},
        {Event::make_unavailable, [&](Fdid f) { pool->make_unavailable(f, "t"); }},
        {Event::borrow,
         [&](Fdid f) {
             pool->borrow({f, borrower(4, 9), Mode::exclusive, Millis(0)});
         }},
        {Event::reclaim, [&](Fdid f) { pool->reclaim(f, "t", "t"); }},
        {Event::reset, [&](Fdid f) { pool->reset(f, "t"); }},
        {Event::fault, [&](Fdid f) { pool->fault(f, "t"); }},
        {Event::remove, [&](Fdid f) { pool->remove(f, "t"); }},
    };
    auto try_all = [&](Fdid f, State s) {
        for (const auto& [event, op] : ops) {
            if (!rows_for(s, event).empty() && !(s == State::borrowed && event == Event::borrow))
                continue; // legal (walked above); an exclusive holder makes borrow busy
            INFO(to_string(s) << " + " << to_string(event));
            auto before = pool->audit_count();
            try {
                op(f);
                FAIL("accepted");
            } catch (const LendingError& err) {
                CHECK(err.fdid() == f);
                CHECK(err.state() == s);
                std::string msg = err.what();
                CHECK(msg.find(to_string(f)) != std::string::npos);
                CHECK(msg.find(to_string(s)) != std::string::npos);
                if (s == State::borrowed)
                    CHECK(msg.find("held exclusively by node 4 pid 1 uid 1000") !=
                          std::string::npos);
            }
            CHECK(pool->device(f).state == s);
            CHECK(pool->audit_count() == before);
        }
    };
    try_all(unavailable, State::unavailable);
    try_all(available, State::available);
    try_all(borrowed, State::borrowed);
    try_all(failed, State::failed);
    try_all(removed, State::removed);

    // The transient states, seen from inside the device hooks.
    int checked = 0;
    fx.dev->on_quiesce = [&](const DeviceInfo& info, const Lease&) {
        REQUIRE(pool->device(info.fdid).state == State::returning);
        try_all(info.fdid, State::returning);
        ++checked;
    };
    fx.dev->on_reset = [&](const DeviceInfo& info) {
        REQUIRE(pool->device(info.fdid).state == State::resetting);
        try_all(info.fdid, State::resetting);
        ++checked;
    };
    Fdid t = add_available(*pool, 5);
    pool->release(pool->borrow({t, borrower(4, 1), Mode::exclusive, Millis(0)}).id, "t");
    CHECK(checked == 2);
    CHECK(pool->device(t).state == State::available);
    fx.dev->on_quiesce = nullptr;
    fx.dev->on_reset = nullptr;
    require_history_replays(*pool);
}
