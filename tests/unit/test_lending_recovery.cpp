// Kill-safety: a lender process that dies mid-transaction or mid-reset leaves a database whose
// state and history agree, and a restarted lender reclaims and resets what it cannot confirm.
#include "test_lending_support.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

using namespace dis::lending;
using namespace dis::lending::test;
using namespace std::chrono_literals;

namespace {

// Runs `body` in a forked child, which must end by _exit(0) from inside a hook; returns the
// child's exit status (3: the body finished without dying, 2: it threw).
int run_child(const std::function<void()>& body) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            body();
        } catch (...) {
            _exit(2);
        }
        _exit(3);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

std::size_t count_reason(const std::vector<AuditRow>& rows, const std::string& text) {
    return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [&](const auto& r) {
        return r.reason.find(text) != std::string::npos;
    }));
}

} // namespace

TEST_CASE("a lender killed inside a transaction loses exactly that transition",
          "[lending][recovery]") {
    PoolFixture fx;
    const Fdid f = Fdid::make(8, 0);
    int status = run_child([&] {
        auto opts = fx.options();
        int transitions = 0;
        opts.before_commit = [&](const AuditRow&) {
            if (++transitions == 4) // the release: written, not committed
                _exit(0);
        };
        Pool pool(opts);
        add_available(pool, 0);
        Lease l = pool.borrow({f, borrower(4, 100), Mode::exclusive, 0ms});
        pool.release(l.id, "t");
    });
    REQUIRE(status == 0);

    auto pool = fx.open();
    CHECK(pool->audit_count() == 3); // add, make_available, borrow
    auto st = pool->device(f);
    CHECK(st.state == State::borrowed);
    REQUIRE(st.leases.size() == 1);
    CHECK(st.leases[0].borrower.pid == 100);
    require_history_replays(*pool);

    // The restarted lender cannot confirm the lease: reclaimed, reset, available.
    auto report = pool->recover();
    CHECK(report.reclaimed.size() == 1);
    CHECK(report.confirmed.empty());
    CHECK(pool->device(f).state == State::available);
    CHECK(fx.dev->resets(f) == 1);
    CHECK(fx.dev->quiesces(f) == 1);
    auto h = pool->history();
    CHECK(h.size() == 3 + 3); // lease_lost, quiesced, reset_ok
    CHECK(count_reason(h, "lender restarted: lease 1 of node 4 pid 100 uid 1000 not confirmed") ==
          1);
    CHECK(h.back().event == Event::reset_ok);
    CHECK(h.back().actor == "recovery");
    require_history_replays(*pool);
}

TEST_CASE("a lender killed mid-reset: the restart finishes the reset, confirmed leases stay",
          "[lending][recovery]") {
    PoolFixture fx;
    const Fdid a = Fdid::make(8, 0);
    const Fdid b = Fdid::make(8, 1);
    int status = run_child([&] {
        auto dev = std::make_shared<FakeDevice>();
        dev->on_reset = [](const DeviceInfo&) { _exit(0); };
        auto opts = fx.options();
        opts.device = dev;
        Pool pool(opts);
        add_available(pool, 0);
        add_available(pool, 1);
        pool.borrow({b, borrower(4, 50), Mode::shared, 0ms});
        pool.borrow({b, borrower(12, 51), Mode::shared, 0ms});
        Lease l = pool.borrow({a, borrower(4, 60), Mode::exclusive, 0ms});
        pool.release(l.id, "t"); // dies inside the reset
    });
    REQUIRE(status == 0);

    auto pool = fx.open();
    // 2 x (add, make_available), 2 shared borrows, borrow, release, quiesced.
    CHECK(pool->audit_count() == 9);
    CHECK(pool->device(a).state == State::resetting);
    CHECK(pool->device(b).leases.size() == 2);
    require_history_replays(*pool);

    auto report = pool->recover([](const Lease& l) { return l.borrower.pid == 50; });
    REQUIRE(report.confirmed.size() == 1);
    CHECK(report.confirmed[0].borrower.pid == 50);
    REQUIRE(report.reclaimed.size() == 1);
    CHECK(report.reclaimed[0].borrower.pid == 51);
    CHECK(pool->device(a).state == State::available);
    CHECK(fx.dev->resets(a) == 1);
    auto sb = pool->device(b);
    CHECK(sb.state == State::borrowed);
    REQUIRE(sb.leases.size() == 1);
    CHECK(sb.leases[0].borrower.pid == 50);
    auto h = pool->history();
    CHECK(h.size() == 9 + 3); // lease_lost (b), reset_restart and reset_ok (a)
    CHECK(count_reason(h, "reset interrupted by a lender restart") == 1);
    CHECK(count_reason(h, "node 12 pid 51 uid 1000 not confirmed") == 1);
    require_history_replays(*pool);
}

TEST_CASE("dropping the pool without shutdown and reopening keeps every state and lease",
          "[lending][recovery]") {
    PoolFixture fx;
    std::int64_t lease_id = 0;
    {
        auto pool = fx.open();
        add_available(*pool, 0);
        pool->add_device(device_info(1), "t");
        add_available(*pool, 2);
        lease_id = pool->borrow({Fdid::make(8, 2), borrower(4, 7), Mode::exclusive, 30s}).id;
        pool->fault(Fdid::make(8, 0), "test");
    }
    auto pool = fx.open();
    CHECK(pool->device(Fdid::make(8, 0)).state == State::failed);
    CHECK(pool->device(Fdid::make(8, 1)).state == State::unavailable);
    auto st = pool->device(Fdid::make(8, 2));
    CHECK(st.state == State::borrowed);
    REQUIRE(st.leases.size() == 1);
    CHECK(st.leases[0].id == lease_id);
    CHECK(pool->audit_count() == 7);
    require_history_replays(*pool);
    // Still a working lease after the reopen (no recover() called: another process's view).
    pool->release(lease_id, "t");
    CHECK(pool->device(Fdid::make(8, 2)).state == State::available);
}

TEST_CASE("a lender killed -9 at an arbitrary moment: consistent, and recover() cleans up",
          "[lending][recovery]") {
    PoolFixture fx;
    {
        auto pool = fx.open();
        add_available(*pool, 0);
        add_available(*pool, 1);
    }
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            auto pool = fx.open();
            for (std::int64_t i = 0;; ++i) {
                Fdid f = Fdid::make(8, static_cast<std::uint32_t>(i % 2));
                auto a = pool->borrow({f, borrower(4, i, 1000), Mode::shared, 0ms});
                auto b = pool->borrow({f, borrower(12, i, 1001), Mode::shared, 0ms});
                pool->release(a.id, "t");
                pool->release(b.id, "t");
            }
        } catch (...) {
            _exit(2);
        }
    }
    // Let it run until it has made a few hundred transitions, then kill it mid-flight.
    {
        auto watcher = fx.open();
        auto deadline = std::chrono::steady_clock::now() + 60s;
        while (watcher->audit_count() < 300 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        REQUIRE(watcher->audit_count() >= 300);
    }
    REQUIRE(kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));

    auto pool = fx.open();
    require_history_replays(*pool);
    auto before = pool->audit_count();
    auto leases_before = pool->devices()[0].leases.size() + pool->devices()[1].leases.size();
    auto report = pool->recover();
    CHECK(report.reclaimed.size() == leases_before);
    for (const auto& d : pool->devices()) {
        CHECK(d.state == State::available);
        CHECK(d.leases.empty());
    }
    CHECK(pool->audit_count() >= before);
    require_history_replays(*pool);
}
