// The benchmark report model: payload fields derived from the checks, ratios only against a
// yardstick of the same kind (against its median and its best round), and the pinning plan.
#include "dis/bench.hpp"

#include <catch2/catch.hpp>

using namespace dis::bench;

namespace {

Result latency(std::uint64_t size, Wait wait, std::vector<double> samples) {
    Result r;
    r.size = size;
    r.method = "test";
    r.wait = wait;
    r.latency = compute_latency_stats(std::move(samples));
    return r;
}

Result latency_yardstick(std::uint64_t size, Wait wait, std::vector<double> rounds) {
    Result y = latency(size, wait, rounds);
    y.method = wait == Wait::sleep ? "eventfd" : "shm-store";
    y.rounds = std::move(rounds);
    y.schedule = "after";
    y.payload = Payload::verified;
    return y;
}

} // namespace

TEST_CASE("payload checks are derived from the comparison", "[bench][report]") {
    CHECK(checksum_check(0x1234, 0x1234) == Payload::verified);
    CHECK(checksum_check(0x1234, 0x1235) == Payload::failed);
    CHECK(count_check(10, 10) == Payload::counted);
    CHECK(count_check(10, 9) == Payload::failed);
    CHECK(std::string(to_string(Payload::counted)) == "counted");
}

TEST_CASE("a failed checksum is reported as failed, never as verified", "[bench][report]") {
    Report rep;
    rep.test = TestKind::pio_latency;
    auto r = latency(64, Wait::spin, {1, 2, 3});
    r.payload = checksum_check(1, 2);
    r.payload_detail = "replies from the responder arrived corrupted";
    rep.results.push_back(r);
    auto ok = latency(128, Wait::spin, {1, 2, 3});
    ok.payload = checksum_check(7, 7);
    rep.results.push_back(ok);

    const auto summary = payload_summary(rep);
    CHECK(summary.find("verified") == std::string::npos);
    CHECK(summary.find("FAILED") != std::string::npos);
    CHECK(summary.find("size 64") != std::string::npos);
    auto doc = to_json(rep);
    CHECK(doc["results"][0]["payload"] == "failed");
    CHECK(doc["results"][0]["payload_detail"] == r.payload_detail);
    CHECK(doc["results"][1]["payload"] == "verified");
    CHECK(doc["payload_summary"] == summary);
}

TEST_CASE("counted interrupts are not called verified", "[bench][report]") {
    Report rep;
    rep.test = TestKind::intr_latency;
    auto r = latency(0, Wait::sleep, {5, 6, 7});
    r.payload = count_check(100, 100);
    rep.results.push_back(r);
    const auto summary = payload_summary(rep);
    CHECK(summary.find("payload counted") == 0);
    CHECK(summary.find("verified") == std::string::npos);
    CHECK(to_json(rep)["results"][0]["payload"] == "counted");

    Report none;
    none.results.push_back(latency(0, Wait::sleep, {1}));
    CHECK(payload_summary(none) == "payload not checked");
}

TEST_CASE("a ratio is given only against a yardstick that waits the same way", "[bench][report]") {
    Report rep;
    rep.test = TestKind::dma_latency;
    rep.results.push_back(latency(64, Wait::sleep, {10, 12, 14}));
    rep.baseline.push_back(latency_yardstick(64, Wait::spin, {0.5, 0.4, 0.6}));
    attach_ratios(rep);
    CHECK_FALSE(rep.results[0].baseline_ratio);
    CHECK_FALSE(rep.results[0].baseline_ratio_best);
    CHECK_FALSE(to_json(rep)["results"][0].contains("baseline_ratio"));
    auto table = to_table(rep);
    (void)table;

    // A spin-then-sleep wait is held to the spinning yardstick, not to the wake-up.
    Report wait;
    wait.test = TestKind::dma_latency;
    wait.results.push_back(latency(64, Wait::spin_then_sleep, {1.0, 1.2, 1.4}));
    wait.baseline.push_back(latency_yardstick(0, Wait::sleep, {10, 11, 12}));
    wait.baseline.push_back(latency_yardstick(64, Wait::spin, {0.5, 0.4, 0.6}));
    attach_ratios(wait);
    REQUIRE(wait.results[0].baseline_ratio);
    CHECK(*wait.results[0].baseline_ratio == Approx(1.2 / 0.5));
    REQUIRE(wait.results[0].baseline_ratio_best);
    CHECK(*wait.results[0].baseline_ratio_best == Approx(1.2 / 0.4));
}

TEST_CASE("a yardstick reports its best and its median round", "[bench][report]") {
    auto lat = latency_yardstick(8, Wait::spin, {3, 1, 2, 5});
    CHECK(best_round(lat) == 1);
    CHECK(median_round(lat) == Approx(2.5));

    Result bw;
    bw.size = 4096;
    bw.method = "memcpy";
    bw.bandwidth = compute_bandwidth(4096, 10, 1e-6);
    bw.rounds = {8.0, 12.0, 10.0};
    CHECK(best_round(bw) == 12.0);
    CHECK(median_round(bw) == 10.0);

    Report rep;
    rep.test = TestKind::dma_bw;
    Result r;
    r.size = 4096;
    r.method = "dma";
    r.bandwidth = compute_bandwidth(4096, 6, 4096.0 * 6 / 6e9); // 6 GB/s
    rep.results.push_back(r);
    rep.baseline.push_back(bw);
    attach_ratios(rep);
    CHECK(*rep.results[0].baseline_ratio == Approx(0.6));
    CHECK(*rep.results[0].baseline_ratio_best == Approx(0.5));
    auto doc = to_json(rep);
    CHECK(doc["baseline"][0]["best_gbps"] == 12.0);
    CHECK(doc["baseline"][0]["round_median_gbps"] == 10.0);
    CHECK(doc["baseline"][0]["rounds"] == 3);
}

TEST_CASE("the two sides are pinned to different CPUs by default", "[bench][pinning]") {
    auto p = plan_pinning(-1, -1, false, {0, 1, 2, 3});
    CHECK(p.local_cpu == 0);
    CHECK(p.remote_cpu == 1);
    CHECK(p.by_default);
    CHECK(p.warning.empty());

    p = plan_pinning(0, -1, false, {0, 1});
    CHECK(p.local_cpu == 0);
    CHECK(p.remote_cpu == 1);
    p = plan_pinning(-1, 0, false, {0, 1});
    CHECK(p.local_cpu == 1);
    CHECK(p.remote_cpu == 0);
    p = plan_pinning(-1, -1, false, {2, 5});
    CHECK(p.local_cpu == 2);
    CHECK(p.remote_cpu == 5);

    // Explicit choices win, even on one CPU.
    p = plan_pinning(3, 3, false, {0, 1});
    CHECK(p.local_cpu == 3);
    CHECK(p.remote_cpu == 3);
    CHECK_FALSE(p.by_default);
}

TEST_CASE("pinning: no-pin opts out and one CPU gets a warning", "[bench][pinning]") {
    auto p = plan_pinning(-1, -1, true, {0, 1, 2});
    CHECK(p.local_cpu == -1);
    CHECK(p.remote_cpu == -1);
    CHECK_FALSE(p.by_default);
    CHECK(p.warning.empty());

    p = plan_pinning(-1, -1, false, {0});
    CHECK(p.local_cpu == -1);
    CHECK(p.remote_cpu == -1);
    CHECK_FALSE(p.warning.empty());
    Report rep;
    rep.pinning = p;
    auto doc = to_json(rep);
    CHECK(doc["pinning"]["warning"] == p.warning);
    CHECK(doc["pinning"]["local_cpu"].is_null());
    CHECK(doc["pinning"]["default"] == false);
}

TEST_CASE("wait kinds and DMA modes have their names", "[bench][report]") {
    CHECK(std::string(to_string(Wait::spin_then_sleep)) == "spin-then-sleep");
    CHECK(yardstick_wait(Wait::spin_then_sleep) == Wait::spin);
    CHECK(yardstick_wait(Wait::sleep) == Wait::sleep);
    CHECK(parse_dma_mode("sleep") == DmaMode::sleep);
    CHECK(std::string(to_string(DmaMode::sleep)) == "sleep");
    CHECK(!allowed_cpus().empty());
}
