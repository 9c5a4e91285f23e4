// Test names, the JSON model of dis-tool-bench(1) and its table rendering.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

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
    {TestKind::device_cycle, "device-cycle"},
    {TestKind::device_copy, "device-copy"},
};

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

nlohmann::json result_json(const Result& r, bool yardstick) {
    nlohmann::json j = {{"size", r.size}};
    if (!r.method.empty())
        j["method"] = r.method;
    j["wait"] = to_string(r.wait);
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
    if (r.baseline_ratio_best)
        j["baseline_ratio_best"] = *r.baseline_ratio_best;
    j["payload"] = to_string(r.payload);
    if (!r.payload_detail.empty())
        j["payload_detail"] = r.payload_detail;
    if (r.cpu) {
        j["cpu_local_s"] = r.cpu->local_s;
        j["cpu_remote_s"] = r.cpu->remote_s ? nlohmann::json(*r.cpu->remote_s) : nlohmann::json();
        j["cpu_remote"] = r.cpu->remote;
    }
    if (yardstick) {
        j["schedule"] = r.schedule;
        j["rounds"] = r.rounds.size();
        const char* unit = r.latency ? "_us" : "_gbps";
        j[std::string("best") + unit] = best_round(r);
        j[std::string("round_median") + unit] = median_round(r);
    }
    return j;
}

// The yardstick a result is compared with: of its size (or the only one), of the kind its
// wait is held to.
const Result* find_baseline(const Report& report, const Result& r) {
    const Wait want = yardstick_wait(r.wait);
    const Result* only = nullptr;
    std::size_t matching = 0;
    for (const auto& b : report.baseline) {
        if (b.wait != want)
            continue;
        if (b.size == r.size)
            return &b;
        only = &b;
        ++matching;
    }
    return matching == 1 ? only : nullptr;
}

double ratio(const Result& r, double base) {
    if (base <= 0)
        return 0;
    return r.latency ? r.latency->median_us / base : r.bandwidth->bandwidth_gbps / base;
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
    return test != TestKind::pio_bw && test != TestKind::dma_bw && test != TestKind::device_copy;
}

const char* to_string(Wait wait) noexcept {
    switch (wait) {
    case Wait::none:
        return "none";
    case Wait::spin:
        return "spin";
    case Wait::sleep:
        return "sleep";
    case Wait::spin_then_sleep:
        return "spin-then-sleep";
    }
    return "unknown";
}

Wait yardstick_wait(Wait wait) noexcept {
    return wait == Wait::spin_then_sleep ? Wait::spin : wait;
}

const char* to_string(Payload payload) noexcept {
    switch (payload) {
    case Payload::unchecked:
        return "unchecked";
    case Payload::verified:
        return "verified";
    case Payload::counted:
        return "counted";
    case Payload::failed:
        return "failed";
    }
    return "unknown";
}

Payload checksum_check(std::uint64_t expected, std::uint64_t got) noexcept {
    return expected == got ? Payload::verified : Payload::failed;
}

Payload count_check(std::uint64_t expected, std::uint64_t got) noexcept {
    return expected == got ? Payload::counted : Payload::failed;
}

double best_round(const Result& y) {
    if (y.rounds.empty())
        return 0;
    return y.latency ? *std::min_element(y.rounds.begin(), y.rounds.end())
                     : *std::max_element(y.rounds.begin(), y.rounds.end());
}

double median_round(const Result& y) {
    if (y.rounds.empty())
        return 0;
    std::vector<double> sorted = y.rounds;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

void attach_ratios(Report& report) {
    for (auto& r : report.results) {
        r.baseline_ratio.reset();
        r.baseline_ratio_best.reset();
        const Result* base = find_baseline(report, r);
        if (!base || (r.latency && !base->latency) || (r.bandwidth && !base->bandwidth) ||
            base->rounds.empty())
            continue;
        if (!r.latency && !r.bandwidth)
            continue;
        if (double v = ratio(r, median_round(*base)); v > 0)
            r.baseline_ratio = v;
        if (double v = ratio(r, best_round(*base)); v > 0)
            r.baseline_ratio_best = v;
    }
}

std::string payload_summary(const Report& report) {
    std::set<Payload> seen;
    std::string failure;
    for (const auto& r : report.results) {
        seen.insert(r.payload);
        if (r.payload == Payload::failed && failure.empty())
            failure = "size " + std::to_string(r.size) + ": " + r.payload_detail;
    }
    if (seen.count(Payload::failed))
        return "payload check FAILED: " + failure;
    std::string line;
    auto add = [&](const std::string& part) { line += (line.empty() ? "" : "; ") + part; };
    if (seen.count(Payload::verified))
        add("payload verified: checksums match on both sides");
    if (seen.count(Payload::counted))
        add("payload counted: every message arrived (they carry no data; nothing checksummed)");
    if (seen.count(Payload::unchecked) || line.empty())
        add("payload not checked");
    return line;
}

const char* to_string(DmaMode mode) noexcept {
    switch (mode) {
    case DmaMode::wait:
        return "wait";
    case DmaMode::sleep:
        return "sleep";
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
    if (name == "sleep")
        return DmaMode::sleep;
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
    if (!report.completion.empty())
        doc["completion"] = report.completion;
    if (report.pinning) {
        const auto& p = *report.pinning;
        doc["pinning"] = {
            {"local_cpu", p.local_cpu >= 0 ? nlohmann::json(p.local_cpu) : nullptr},
            {"remote_cpu", p.remote_cpu >= 0 ? nlohmann::json(p.remote_cpu) : nullptr},
            {"default", p.by_default}};
        if (!p.warning.empty())
            doc["pinning"]["warning"] = p.warning;
    }
    doc["results"] = nlohmann::json::array();
    for (const auto& r : report.results)
        doc["results"].push_back(result_json(r, false));
    doc["baseline"] = nlohmann::json::array();
    for (const auto& b : report.baseline)
        doc["baseline"].push_back(result_json(b, true));
    doc["payload_summary"] = payload_summary(report);
    return doc;
}

output::Table to_table(const Report& report) {
    using output::Align;
    using output::Column;
    const bool latency = is_latency_test(report.test);
    std::vector<Column> cols = {
        {"SIZE", Align::right}, {"METHOD", Align::left}, {"ITERS", Align::right}};
    if (latency) {
        for (const char* h :
             {"MIN_US", "MEDIAN_US", "AVG_US", "MAX_US", "STDEV_US", "P99_US", "P99.9_US",
              "CPU_L_S", "CPU_R_S", "BASE_US", "BEST_US", "RATIO", "RATIO_BEST"})
            cols.push_back({h, Align::right});
    } else {
        for (const char* h :
             {"GB/S", "MIB/S", "MSG/S", "BASE_GB/S", "BEST_GB/S", "RATIO", "RATIO_BEST"})
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
            row.push_back(r.cpu ? fixed(r.cpu->local_s, 3) : "");
            row.push_back(r.cpu && r.cpu->remote_s ? fixed(*r.cpu->remote_s, 3) : "");
            const bool b = base && base->latency;
            row.push_back(b ? fixed(median_round(*base), 3) : "");
            row.push_back(b ? fixed(best_round(*base), 3) : "");
        } else if (r.bandwidth) {
            const auto& b = *r.bandwidth;
            row.push_back(std::to_string(b.iterations));
            row.push_back(fixed(b.bandwidth_gbps, 3));
            row.push_back(fixed(b.bandwidth_mibps, 1));
            row.push_back(fixed(b.msg_rate, 0));
            const bool bw = base && base->bandwidth;
            row.push_back(bw ? fixed(median_round(*base), 3) : "");
            row.push_back(bw ? fixed(best_round(*base), 3) : "");
        }
        row.push_back(r.baseline_ratio ? fixed(*r.baseline_ratio, 2) : "");
        row.push_back(r.baseline_ratio_best ? fixed(*r.baseline_ratio_best, 2) : "");
        table.add_row(std::move(row));
    }
    return table;
}

} // namespace dis::bench
