// Rounds, CPU meters and result builders shared by the test families (rounds.hpp).
#include "rounds.hpp"

#include "dis/file_text.hpp"
#include "dis/local_fabric.hpp"

#include <time.h>

#include <cstdlib>
#include <sstream>
#include <unistd.h>

namespace dis::bench::detail {

std::uint64_t process_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::optional<double> other_process_cpu_s(pid_t pid) {
    if (pid <= 0)
        return std::nullopt;
    const auto read = read_file_text("/proc/" + std::to_string(pid) + "/stat");
    if (!read)
        return std::nullopt; // it exited
    const std::string& stat = *read;
    // Fields after the command name (which may contain spaces) in parentheses: utime and
    // stime are the 12th and 13th after it.
    auto close = stat.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream fields(stat.substr(close + 1));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 1; i <= 13 && fields >> f; ++i) {
        if (i == 12)
            utime = std::stoull(f);
        if (i == 13)
            stime = std::stoull(f);
    }
    if (!fields)
        return std::nullopt;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

pid_t engine_pid(std::uint32_t node) {
#ifdef DIS_VENDOR_SISCI
    (void)node;
    return -1;
#else
    const char* dir = std::getenv("DIS_FABRIC");
    if (!dir || !*dir)
        return -1;
    try {
        for (const auto& n : fabric::local_fabric_status(dir).nodes)
            if (n.node_id == node && n.recorded)
                return n.recorded_pid;
    } catch (const std::exception&) {
        // Only a courtesy: the result then says the engine's CPU time is not readable.
    }
    return -1;
#endif
}

std::uint64_t rounds_for(const BenchOptions& o) {
    return o.duration_s > 0 ? k_rounds
                            : std::max<std::uint64_t>(std::min(k_rounds, o.iterations), 1);
}

BenchOptions round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds) {
    BenchOptions ro = o;
    ro.warmup = r == 0 ? o.warmup : 1;
    ro.iterations = o.iterations / rounds + (r < o.iterations % rounds ? 1 : 0);
    ro.duration_s = o.duration_s / static_cast<double>(rounds);
    return ro;
}

BenchOptions latency_round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds) {
    BenchOptions ro = round_options(o, r, rounds);
    if (r > 0)
        ro.warmup = std::max<std::uint64_t>(1, o.warmup / rounds);
    return ro;
}

std::uint64_t baseline_iterations(const BenchOptions& o, std::uint64_t measured) {
    return o.duration_s > 0 ? std::max<std::uint64_t>(measured, 1) : o.iterations;
}

Result latency_result(std::uint64_t size, std::string method, Wait wait,
                      std::vector<double> samples, CpuTime cpu) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.wait = wait;
    r.latency = compute_latency_stats(std::move(samples));
    r.cpu = std::move(cpu);
    return r;
}

Result bandwidth_result(std::uint64_t size, std::string method, const LoopResult& loop) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.bandwidth = compute_bandwidth(size, loop.iterations, loop.seconds);
    return r;
}

void set_payload(Result& r, Payload payload, std::string detail) {
    r.payload = payload;
    r.payload_detail = std::move(detail);
}

Result latency_yardstick(std::uint64_t size, std::string method, Wait wait,
                         const std::vector<std::vector<double>>& rounds, Payload payload,
                         std::string schedule) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.wait = wait;
    std::vector<double> pooled;
    for (const auto& round : rounds) {
        if (round.empty())
            continue;
        r.rounds.push_back(compute_latency_stats(round).median_us);
        pooled.insert(pooled.end(), round.begin(), round.end());
    }
    r.latency = compute_latency_stats(std::move(pooled));
    r.payload = payload;
    r.schedule = std::move(schedule);
    return r;
}

MemcpyRounds::MemcpyRounds(const BenchOptions& o, std::uint64_t size) : m_size(size) {
    if (o.baseline)
        m_baseline.emplace(size);
}

void MemcpyRounds::round(const BenchOptions& ro, std::uint64_t iterations) {
    if (m_baseline)
        m_rounds.push_back(m_baseline->run(std::max<std::uint64_t>(iterations, 1), ro.warmup));
}

void MemcpyRounds::finish(Report& rep) const {
    if (!m_baseline)
        return;
    Result b;
    b.size = m_size;
    b.method = "memcpy";
    std::uint64_t iterations = 0;
    double seconds = 0;
    for (const auto& round : m_rounds) {
        iterations += round.iterations;
        seconds += round.seconds;
        b.rounds.push_back(round.bandwidth_gbps);
    }
    b.bandwidth = compute_bandwidth(m_size, iterations, seconds);
    b.payload = Payload::verified; // MemcpyBaseline::run checks every round's last copy
    b.schedule = "interleaved";
    rep.baseline.push_back(b);
}

EventfdRounds::EventfdRounds(const BenchOptions& o) {
    if (o.baseline)
        m_baseline.emplace(o.remote_cpu);
}

void EventfdRounds::round(const BenchOptions& ro, std::uint64_t measured) {
    if (!m_baseline)
        return;
    m_rounds.emplace_back();
    m_baseline->run(std::max<std::uint64_t>(measured, 1), ro.warmup, m_rounds.back());
}

void EventfdRounds::finish(Report& rep) {
    if (!m_baseline)
        return;
    m_baseline->finish(); // throws unless the peer answered every wake-up
    rep.baseline.push_back(
        latency_yardstick(0, "eventfd", Wait::sleep, m_rounds, Payload::counted, "interleaved"));
}

namespace {

// `total` iterations in k_after_rounds rounds (each at least one).
std::vector<std::uint64_t> after_rounds(std::uint64_t total) {
    std::vector<std::uint64_t> rounds;
    const std::uint64_t n = std::max<std::uint64_t>(std::min(k_after_rounds, total), 1);
    for (std::uint64_t r = 0; r < n; ++r)
        rounds.push_back(std::max<std::uint64_t>(total / n + (r < total % n ? 1 : 0), 1));
    return rounds;
}

} // namespace

Result store_yardstick_after(const BenchOptions& o, std::uint64_t size, std::uint64_t measured) {
    std::vector<std::vector<double>> rounds;
    for (auto n : after_rounds(baseline_iterations(o, measured)))
        rounds.push_back(store_pingpong_samples(size, n, o.warmup, o.remote_cpu));
    // store_pingpong_samples throws check_failed unless every message arrived intact.
    return latency_yardstick(size, "shm-store", Wait::spin, rounds, Payload::verified, "after");
}

Result eventfd_yardstick_after(const BenchOptions& o, std::uint64_t measured) {
    EventfdBaseline baseline(o.remote_cpu);
    std::vector<std::vector<double>> rounds;
    bool first = true;
    for (auto n : after_rounds(baseline_iterations(o, measured))) {
        rounds.emplace_back();
        baseline.run(n, first ? o.warmup : std::max<std::uint64_t>(1, o.warmup / k_after_rounds),
                     rounds.back());
        first = false;
    }
    baseline.finish();
    return latency_yardstick(0, "eventfd", Wait::sleep, rounds, Payload::counted, "after");
}

} // namespace dis::bench::detail
