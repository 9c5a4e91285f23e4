// dis/parallel.hpp: run_on_threads and the WorkerPool the fabric sampler keeps between samples.
#include "dis/parallel.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("run_on_threads runs every index once and rethrows a failure", "[util][parallel]") {
    std::vector<std::atomic<int>> runs(4);
    dis::run_on_threads(4, [&](unsigned i) { ++runs[i]; });
    for (auto& r : runs)
        CHECK(r == 1);
    CHECK_THROWS_AS(dis::run_on_threads(3,
                                        [](unsigned i) {
                                            if (i == 2)
                                                throw std::runtime_error("two");
                                        }),
                    std::runtime_error);
}

TEST_CASE("WorkerPool runs each job once, all at once, on threads kept between rounds",
          "[util][parallel]") {
    dis::WorkerPool pool;
    CHECK(pool.threads() == 0);
    pool.run(0, [](std::size_t) { FAIL("a job of an empty round ran"); });

    for (int round = 0; round < 50; ++round) {
        const std::size_t count = round % 2 == 0 ? 16 : 5;
        std::vector<std::atomic<int>> runs(count);
        std::mutex mutex;
        std::set<std::thread::id> threads;
        pool.run(count, [&](std::size_t i) {
            ++runs.at(i);
            std::lock_guard lock(mutex);
            threads.insert(std::this_thread::get_id());
        });
        for (auto& r : runs)
            CHECK(r == 1);
        CHECK(threads.count(std::this_thread::get_id()) == 0);
        CHECK(pool.threads() == 16); // grown to the largest round, then kept
    }

    // All jobs of a round run at once: each waits until all 8 have started, which only
    // threads of their own allow (one thread running them in turn would wait forever).
    std::atomic<int> started{0};
    std::atomic<bool> all_met{true};
    pool.run(8, [&](std::size_t) {
        ++started;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (started < 8 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        if (started < 8)
            all_met = false;
    });
    CHECK(all_met);
}

TEST_CASE("WorkerPool: a job that throws fails the round after every job returned",
          "[util][parallel]") {
    dis::WorkerPool pool;
    std::atomic<int> finished{0};
    CHECK_THROWS_WITH(pool.run(6,
                               [&](std::size_t i) {
                                   if (i == 3)
                                       throw std::runtime_error("job 3 failed");
                                   std::this_thread::sleep_for(20ms);
                                   ++finished;
                               }),
                      "job 3 failed");
    CHECK(finished == 5);
    // The next round starts clean.
    std::atomic<int> runs{0};
    pool.run(6, [&](std::size_t) { ++runs; });
    CHECK(runs == 6);
}
