// Test names, the JSON model of dis-tool-bench(1) and its table rendering.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <cstdio>

namespace dis::bench {

namespace {

struct TestName {
    TestKind kind;
    const char* name;
};
constexpr TestName k_tests[] = {
    {TestKind::pio_latency, "pio-latency"},
    {TestKind::pio_bw, "pio-bw"},
    {TestKind::dma_bw, "dma-bw"},
    {TestKind::dma_latency, "dma-latency"},
    {TestKind::intr_latency, "intr-latency"},
    {TestKind::data_intr_latency, "data-intr-latency"},
};

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

nlohmann::json result_json(const Result& r) {
    nlohmann::json j = {{"size", r.size}};
    if (!r.method.empty())
        j["method"] = r.method;
    if (r.latency) {
        const auto& s = *r.latency;
        j["iterations"] = s.iterations;
        j["min_us"] = s.min_us;
        j["max_us"] = s.max_us;
        j["median_us"] = s.median_us;
        j["avg_us"] = s.avg_us;
        j["stdev_us"] = s.stdev_us;
        j["p99_us"] = s.p99_us;
        j["p999_us"] = s.p999_us;
    }
    if (r.bandwidth) {
        const auto& b = *r.bandwidth;
        j["iterations"] = b.iterations;
        j["bandwidth_gbps"] = b.bandwidth_gbps;
        j["bandwidth_mibps"] = b.bandwidth_mibps;
        j["msg_rate"] = b.msg_rate;
    }
    if (r.baseline_ratio)
        j["baseline_ratio"] = *r.baseline_ratio;
    return j;
}

const Result* find_baseline(const Report& report, const Result& r) {
    for (const auto& b : report.baseline)
        if (b.size == r.size)
            return &b;
    return report.baseline.size() == 1 ? &report.baseline.front() : nullptr;
}

} // namespace

const char* to_string(TestKind test) noexcept {
    for (const auto& t : k_tests)
        if (t.kind == test)
            return t.name;
    return "unknown";
}

TestKind parse_test(const std::string& name) {
    for (const auto& t : k_tests)
        if (name == t.name)
            return t.kind;
    throw Error(ErrorKind::invalid_input, "unknown test '" + name + "'");
}

std::vector<std::string> test_names() {
    std::vector<std::string> names;
    for (const auto& t : k_tests)
        names.emplace_back(t.name);
    return names;
}

bool is_latency_test(TestKind test) noexcept {
    return test != TestKind::pio_bw && test != TestKind::dma_bw;
}

const char* to_string(DmaMode mode) noexcept {
    switch (mode) {
    case DmaMode::wait:
        return "wait";
    case DmaMode::poll:
        return "poll";
    case DmaMode::callback:
        return "callback";
    }
    return "unknown";
}

DmaMode parse_dma_mode(const std::string& name) {
    if (name == "wait")
        return DmaMode::wait;
    if (name == "poll")
        return DmaMode::poll;
    if (name == "callback")
        return DmaMode::callback;
    throw Error(ErrorKind::invalid_input, "unknown DMA completion mode '" + name + "'");
}

nlohmann::json to_json(const Report& report) {
    nlohmann::json doc = {{"test", to_string(report.test)},
                          {"local_node", report.local_node},
                          {"remote_node", report.remote_node}};
    if (!report.mode.empty())
        doc["mode"] = report.mode;
    doc["results"] = nlohmann::json::array();
    for (const auto& r : report.results)
        doc["results"].push_back(result_json(r));
    doc["baseline"] = nlohmann::json::array();
    for (const auto& b : report.baseline)
        doc["baseline"].push_back(result_json(b));
    return doc;
}

output::Table to_table(const Report& report) {
    using output::Align;
    using output::Column;
    const bool latency = is_latency_test(report.test);
    std::vector<Column> cols = {
        {"SIZE", Align::right}, {"METHOD", Align::left}, {"ITERS", Align::right}};
    if (latency) {
        for (const char* h : {"MIN_US", "MEDIAN_US", "AVG_US", "MAX_US", "STDEV_US", "P99_US",
                              "P99.9_US", "BASE_US", "RATIO"})
            cols.push_back({h, Align::right});
    } else {
        for (const char* h : {"GB/S", "MIB/S", "MSG/S", "BASE_GB/S", "RATIO"})
            cols.push_back({h, Align::right});
    }
    output::Table table(cols);
    for (const auto& r : report.results) {
        const Result* base = find_baseline(report, r);
        std::vector<std::string> row = {std::to_string(r.size), r.method};
        if (r.latency) {
            const auto& s = *r.latency;
            row.push_back(std::to_string(s.iterations));
            for (double v :
                 {s.min_us, s.median_us, s.avg_us, s.max_us, s.stdev_us, s.p99_us, s.p999_us})
                row.push_back(fixed(v, 3));
            row.push_back(base && base->latency ? fixed(base->latency->median_us, 3) : "");
        } else if (r.bandwidth) {
            const auto& b = *r.bandwidth;
            row.push_back(std::to_string(b.iterations));
            row.push_back(fixed(b.bandwidth_gbps, 3));
            row.push_back(fixed(b.bandwidth_mibps, 1));
            row.push_back(fixed(b.msg_rate, 0));
            row.push_back(base && base->bandwidth ? fixed(base->bandwidth->bandwidth_gbps, 3) : "");
        }
        row.push_back(r.baseline_ratio ? fixed(*r.baseline_ratio, 2) : "");
        table.add_row(std::move(row));
    }
    return table;
}

} // namespace dis::bench
