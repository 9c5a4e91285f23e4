// Statistics, size lists, payload checksums and the JSON model of dis-tool bench, on known
// inputs.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <sstream>

using namespace dis::bench;

TEST_CASE("latency statistics of a known sample set", "[bench][stats]") {
    // 1..10 shuffled: the order must not matter.
    std::vector<double> v = {7, 3, 10, 1, 5, 9, 2, 8, 4, 6};
    auto s = compute_latency_stats(v);
    CHECK(s.iterations == 10);
    CHECK(s.min_us == 1);
    CHECK(s.max_us == 10);
    CHECK(s.median_us == Approx(5.5)); // even count: mean of the two middle samples
    CHECK(s.avg_us == Approx(5.5));
    CHECK(s.stdev_us == Approx(3.0276503541)); // sqrt(82.5 / 9)
    CHECK(s.p99_us == 10);                     // nearest rank ceil(9.9) = 10
    CHECK(s.p999_us == 10);
}

TEST_CASE("odd sample count takes the middle sample as median", "[bench][stats]") {
    auto s = compute_latency_stats({4, 1, 100});
    CHECK(s.median_us == 4);
    CHECK(s.avg_us == Approx(35));
    CHECK(s.stdev_us == Approx(56.3116329012));
}

TEST_CASE("percentiles use the nearest rank on 1000 samples", "[bench][stats]") {
    std::vector<double> v(1000);
    std::iota(v.begin(), v.end(), 1.0); // 1..1000
    std::shuffle(v.begin(), v.end(), std::mt19937(42));
    auto s = compute_latency_stats(v);
    CHECK(s.median_us == Approx(500.5));
    CHECK(s.p99_us == 990);
    CHECK(s.p999_us == 999);
    std::vector<double> sorted(1000);
    std::iota(sorted.begin(), sorted.end(), 1.0);
    CHECK(percentile(sorted, 50) == 500);
    CHECK(percentile(sorted, 100) == 1000);
    CHECK(percentile(sorted, 0.01) == 1);
}

TEST_CASE("a single sample has zero deviation", "[bench][stats]") {
    auto s = compute_latency_stats({2.5});
    CHECK(s.min_us == 2.5);
    CHECK(s.max_us == 2.5);
    CHECK(s.median_us == 2.5);
    CHECK(s.stdev_us == 0);
    CHECK(s.p999_us == 2.5);
}

TEST_CASE("empty samples are an error", "[bench][stats]") {
    CHECK_THROWS_AS(compute_latency_stats({}), dis::Error);
}

TEST_CASE("bandwidth is decimal GB/s and binary MiB/s", "[bench][stats]") {
    auto b = compute_bandwidth(1'000'000, 1000, 0.5); // 1e9 bytes in 0.5 s
    CHECK(b.bandwidth_gbps == Approx(2.0));
    CHECK(b.bandwidth_mibps == Approx(2e9 / 1048576.0));
    CHECK(b.msg_rate == Approx(2000));
    CHECK(b.iterations == 1000);
    CHECK_THROWS_AS(compute_bandwidth(1, 1, 0), dis::Error);
}

TEST_CASE("sizes accept suffixes", "[bench][sizes]") {
    CHECK(parse_size("64") == 64);
    CHECK(parse_size("4K") == 4096);
    CHECK(parse_size("4k") == 4096);
    CHECK(parse_size("2M") == 2u << 20);
    CHECK(parse_size("1G") == 1u << 30);
    CHECK(parse_size("16KB") == 16384);
    CHECK_THROWS_AS(parse_size("4X"), dis::Error);
    CHECK_THROWS_AS(parse_size("K"), dis::Error);
    CHECK_THROWS_AS(parse_size(""), dis::Error);
    CHECK_THROWS_AS(parse_size("-4"), dis::Error);
    CHECK_THROWS_AS(parse_size("99999999999G"), dis::Error);
}

TEST_CASE("size ranges are powers of two", "[bench][sizes]") {
    auto v = parse_sizes("4..4M");
    REQUIRE(v.size() == 21);
    CHECK(v.front() == 4);
    CHECK(v[1] == 8);
    CHECK(v.back() == 4u << 20);
    CHECK(parse_sizes("3..16") == std::vector<std::uint64_t>{3, 4, 8, 16});
    CHECK(parse_sizes("1M..1M") == std::vector<std::uint64_t>{1u << 20});
    CHECK(parse_sizes("64, 8,4K,8") == std::vector<std::uint64_t>{8, 64, 4096});
    CHECK(parse_sizes("1K..4K,100") == std::vector<std::uint64_t>{100, 1024, 2048, 4096});
    CHECK_THROWS_AS(parse_sizes(""), dis::Error);
    CHECK_THROWS_AS(parse_sizes("8,,16"), dis::Error);
    CHECK_THROWS_AS(parse_sizes("16..8"), dis::Error);
    CHECK_THROWS_AS(parse_sizes("0"), dis::Error);
    CHECK(format_size(4096) == "4K");
    CHECK(format_size(3u << 20) == "3M");
    CHECK(format_size(3000) == "3000");
}

TEST_CASE("checksums see changed, moved and truncated payloads", "[bench][pattern]") {
    std::vector<unsigned char> a(4099), b(4099);
    fill_pattern(a.data(), a.size(), 11);
    fill_pattern(b.data(), b.size(), 11);
    CHECK(a == b);
    CHECK(checksum(a.data(), a.size()) == checksum(b.data(), b.size()));
    b[4000] ^= 1;
    CHECK(checksum(a.data(), a.size()) != checksum(b.data(), b.size()));
    b = a;
    std::swap(b[0], b[8]);
    CHECK(checksum(a.data(), a.size()) != checksum(b.data(), b.size()));
    CHECK(checksum(a.data(), 4098) != checksum(a.data(), 4099));
    std::vector<unsigned char> c(4099);
    fill_pattern(c.data(), c.size(), 12);
    CHECK(c != a);
}

TEST_CASE("report JSON follows the fixed schema", "[bench][json]") {
    Report rep;
    rep.test = TestKind::pio_latency;
    rep.local_node = 4;
    rep.remote_node = 8;
    Result r;
    r.size = 8;
    r.latency = compute_latency_stats({1, 2, 3});
    r.baseline_ratio = 1.5;
    rep.results.push_back(r);
    Result b;
    b.size = 8;
    b.method = "shm-store";
    b.latency = compute_latency_stats({1, 1, 1});
    rep.baseline.push_back(b);
    auto j = to_json(rep);
    CHECK(j["test"] == "pio-latency");
    CHECK(j["local_node"] == 4);
    CHECK(j["remote_node"] == 8);
    REQUIRE(j["results"].size() == 1);
    for (const char* key : {"size", "iterations", "min_us", "max_us", "median_us", "avg_us",
                            "stdev_us", "p99_us", "p999_us", "baseline_ratio"})
        CHECK(j["results"][0].contains(key));
    CHECK(j["results"][0]["median_us"] == 2.0);
    CHECK(j["results"][0]["baseline_ratio"] == 1.5);
    REQUIRE(j["baseline"].size() == 1);
    CHECK_FALSE(j["baseline"][0].contains("baseline_ratio"));

    Report bw;
    bw.test = TestKind::dma_bw;
    Result x;
    x.size = 1 << 20;
    x.bandwidth = compute_bandwidth(1 << 20, 10, 0.001);
    bw.results.push_back(x);
    auto jb = to_json(bw);
    for (const char* key : {"size", "iterations", "bandwidth_gbps", "bandwidth_mibps", "msg_rate"})
        CHECK(jb["results"][0].contains(key));
    CHECK_FALSE(jb["results"][0].contains("baseline_ratio"));
    CHECK(jb["baseline"].is_array());

    std::ostringstream csv;
    to_table(bw).render_csv(csv);
    CHECK(csv.str().rfind("SIZE,METHOD,ITERS,GB/S", 0) == 0);
}

TEST_CASE("test and mode names round-trip", "[bench]") {
    for (const auto& name : test_names())
        CHECK(to_string(parse_test(name)) == name);
    CHECK_THROWS_AS(parse_test("pio"), dis::Error);
    CHECK(parse_dma_mode("poll") == DmaMode::poll);
    CHECK_THROWS_AS(parse_dma_mode("spin"), dis::Error);
    CHECK(is_latency_test(TestKind::intr_latency));
    CHECK_FALSE(is_latency_test(TestKind::dma_bw));
}
