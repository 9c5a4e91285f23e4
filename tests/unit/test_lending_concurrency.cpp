// Contention: threads sharing one pool, and processes each with its own connection to the
// same database, borrow and return 2 exclusive devices many times. Each owner writes its token
// into the device's "register" and checks it before returning: zero double owners, zero
// leaked leases, and the audit row count equals the transitions made.
#include "test_lending_support.hpp"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

using namespace dis::lending;
using namespace dis::lending::test;
using namespace std::chrono_literals;

namespace {

struct Shared {
    std::atomic<std::int64_t> reg[2]; // the devices' token registers
    std::atomic<std::int64_t> double_owners;
    std::atomic<std::int64_t> transitions; // counted by the workers, per call that succeeded
    std::atomic<std::int64_t> cycles;
};

// One worker: `cycles` borrow/return cycles over the two devices. Busy is retried (polling);
// a borrow is 1 transition, a release of an exclusive lease 3 (release, quiesced, reset_ok).
void work(Pool& pool, Shared& sh, std::int64_t token, int cycles) {
    const Fdid devs[2] = {Fdid::make(8, 0), Fdid::make(8, 1)};
    for (int i = 0; i < cycles; ++i) {
        int which = static_cast<int>((token + i) % 2);
        Lease lease;
        for (;;) {
            try {
                lease =
                    pool.borrow({devs[which], borrower(4, token), Mode::exclusive, Millis(60'000)});
                break;
            } catch (const LendingError& e) {
                if (e.kind() != dis::ErrorKind::busy)
                    throw;
                which ^= 1; // try the other one
                std::this_thread::yield();
            }
        }
        sh.transitions += 1;
        sh.reg[which].store(token);
        std::this_thread::yield();
        if (sh.reg[which].load() != token)
            ++sh.double_owners;
        pool.release(lease.id, "worker");
        sh.transitions += 3;
        ++sh.cycles;
    }
}

void check_end_state(Pool& pool, const Shared& sh, std::int64_t expected_cycles) {
    CHECK(sh.double_owners.load() == 0);
    CHECK(sh.cycles.load() == expected_cycles);
    for (const auto& d : pool.devices()) {
        CHECK(d.state == State::available);
        CHECK(d.leases.empty()); // zero leaked leases
    }
    // 2 x (add, make_available) by the setup.
    CHECK(pool.audit_count() == sh.transitions.load() + 4);
    require_history_replays(pool);
}

} // namespace

TEST_CASE("threads on one pool: 2 exclusive devices, no double owner, no leak",
          "[lending][concurrency]") {
    PoolFixture fx;
    auto pool = fx.open();
    add_available(*pool, 0);
    add_available(*pool, 1);
    Shared sh{};
    constexpr int k_threads = 4, k_cycles = 150;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < k_threads; ++t)
        threads.emplace_back([&, t] {
            try {
                work(*pool, sh, 1000 + t, k_cycles);
            } catch (...) {
                ++failures;
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(failures.load() == 0);
    check_end_state(*pool, sh, k_threads * k_cycles);
    CHECK(fx.dev->resets(Fdid::make(8, 0)) + fx.dev->resets(Fdid::make(8, 1)) ==
          k_threads * k_cycles);
}

TEST_CASE("processes sharing the database file: no double owner, no leak",
          "[lending][concurrency]") {
    PoolFixture fx;
    {
        auto pool = fx.open();
        add_available(*pool, 0);
        add_available(*pool, 1);
    }
    void* mem =
        mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    auto* sh = new (mem) Shared{};
    constexpr int k_procs = 4, k_cycles = 100;
    std::vector<pid_t> kids;
    for (int p = 0; p < k_procs; ++p) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int rc = 0;
            try {
                auto pool = fx.open(); // its own connection, after the fork
                work(*pool, *sh, 2000 + p, k_cycles);
            } catch (...) {
                rc = 1;
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    auto pool = fx.open();
    check_end_state(*pool, *sh, k_procs * k_cycles);
    munmap(mem, sizeof(Shared));
}

TEST_CASE("threads that queue for the devices: every wait is granted, in order, no leak",
          "[lending][concurrency][wait]") {
    PoolFixture fx;
    auto pool = fx.open();
    const Fdid devs[2] = {add_available(*pool, 0), add_available(*pool, 1)};
    Shared sh{};
    constexpr int k_threads = 4, k_cycles = 100;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
        threads.emplace_back([&, t] {
            try {
                for (int i = 0; i < k_cycles; ++i) {
                    int which = (t + i) % 2;
                    WaitTicket ticket = pool->borrow_or_wait(
                        {devs[which], borrower(4, 3000 + t), Mode::exclusive, 60'000ms}, 60s);
                    std::optional<Lease> lease;
                    while (!(lease = pool->take_grant(ticket))) // poll: the clock never moves
                        std::this_thread::yield();
                    sh.transitions += 1;
                    sh.reg[which].store(3000 + t);
                    std::this_thread::yield();
                    if (sh.reg[which].load() != 3000 + t)
                        ++sh.double_owners;
                    pool->release(lease->id, "worker");
                    sh.transitions += 3;
                    ++sh.cycles;
                }
            } catch (...) {
                ++failures;
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(failures.load() == 0);
    check_end_state(*pool, sh, k_threads * k_cycles);
    auto h = pool->history();
    // Some grants were hand-overs (the device went straight from reset to a waiter).
    CHECK(std::count_if(h.begin(), h.end(), [](auto& r) { return r.actor == "hand-over"; }) > 0);
}
