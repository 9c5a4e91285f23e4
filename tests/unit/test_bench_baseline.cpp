// The host yardsticks run for real (two processes, shared memory, eventfds).
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <catch2/catch.hpp>

using namespace dis::bench;

TEST_CASE("store ping-pong baseline measures every iteration", "[bench][baseline]") {
    for (std::uint64_t size : {4u, 8u, 4096u}) {
        auto s = baseline_store_pingpong(size, 200, 20);
        CHECK(s.iterations == 200);
        CHECK(s.min_us > 0);
        CHECK(s.min_us <= s.median_us);
        CHECK(s.median_us <= s.max_us);
        CHECK(s.p99_us <= s.max_us);
    }
}

TEST_CASE("store ping-pong rejects sizes that are not whole words", "[bench][baseline]") {
    CHECK_THROWS_AS(baseline_store_pingpong(6, 10, 0), dis::Error);
}

TEST_CASE("memcpy baseline reports a positive bandwidth", "[bench][baseline]") {
    auto b = baseline_memcpy(1 << 20, 20, 2);
    CHECK(b.iterations == 20);
    CHECK(b.bandwidth_gbps > 0.1);
    CHECK(b.msg_rate > 0);
}

TEST_CASE("eventfd baseline wakes the peer every time", "[bench][baseline]") {
    auto s = baseline_eventfd_pingpong(200, 10);
    CHECK(s.iterations == 200);
    CHECK(s.min_us > 0);
    CHECK(s.median_us < 10000);
}

TEST_CASE("eventfd baseline keeps one peer across rounds and counts every wake-up",
          "[bench][baseline]") {
    EventfdBaseline baseline(0); // pinned, as bench --remote-cpu 0 does
    std::vector<double> samples;
    baseline.run(50, 5, samples);
    baseline.run(30, 1, samples);
    REQUIRE(samples.size() == 80); // warm-ups are not samples
    for (double us : samples)
        CHECK(us > 0);
    baseline.finish();
    // A finished yardstick has no peer left to answer.
    CHECK_THROWS_AS(baseline.run(1, 0, samples), dis::Error);
}
