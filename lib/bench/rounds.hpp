// What every test family shares: the timed loop, the rounds that interleave a test with its
// yardstick, the CPU-time meters and the builders of results and yardsticks. Internal to
// libdis.
#pragma once

#include "dis/bench.hpp"

#include "pingpong.hpp"

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::bench::detail {

// ---- CPU time -------------------------------------------------------------------------------

// This process's CPU time, all threads (CLOCK_PROCESS_CPUTIME_ID).
std::uint64_t process_cpu_ns();
inline double process_cpu_s() {
    return static_cast<double>(process_cpu_ns()) * 1e-9;
}
// Another local process's CPU time from /proc/<pid>/stat; nullopt when unreadable.
std::optional<double> other_process_cpu_s(pid_t pid);

// The pid of the software fabric's daemon of `node` (it runs that node's DMA engine), from the
// fabric's record ($DIS_FABRIC); -1 when unknown or on a vendor SISCI.
pid_t engine_pid(std::uint32_t node);

// This process's CPU time over the measured loops only (not the yardstick rounds between).
class CpuMeter {
public:
    void start() { m_t0 = process_cpu_s(); }
    void stop() { m_total += process_cpu_s() - m_t0; }
    double seconds() const { return m_total; }

private:
    double m_t0 = 0;
    double m_total = 0;
};

// ---- the timed loop and its rounds ----------------------------------------------------------

// Runs `body(i)` for warm-up, then either `iterations` times or for `duration_s`, timing the
// measured part. Returns (iterations, seconds, index of the last call).
struct LoopResult {
    std::uint64_t iterations = 0;
    double seconds = 0;
    std::uint64_t last = 0;
};

template <class Body> LoopResult timed_loop(const BenchOptions& o, Body&& body) {
    std::uint64_t i = 0;
    for (; i < o.warmup; ++i)
        body(i);
    LoopResult r;
    const auto t0 = Clock::now();
    if (o.duration_s > 0) {
        const auto end = t0 + std::chrono::duration<double>(o.duration_s);
        do {
            body(i++);
            ++r.iterations;
        } while (Clock::now() < end);
    } else {
        for (std::uint64_t n = 0; n < o.iterations; ++n, ++i) {
            body(i);
            ++r.iterations;
        }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.last = i - 1;
    return r;
}

// Bandwidth and wake-up tests interleave the fabric and the yardstick in rounds: on a shared
// host the background load changes from one millisecond to the next, and both must see the
// same load.
constexpr std::uint64_t k_rounds = 32;
// Yardsticks that run after their test (the spinning ping-pongs: interleaving would move the
// two spinning processes on and off their CPUs) do so in this many rounds.
constexpr std::uint64_t k_after_rounds = 5;

std::uint64_t rounds_for(const BenchOptions& o);
// Round `r`'s share of the iterations (or duration). The warm-up runs before the first round;
// every later chunk (fabric and yardstick alike) gets one untimed copy to bring its buffers
// back into the caches the previous chunk used.
BenchOptions round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds);
// Wake-up rounds after the first start with a few untimed round trips, since the other side
// slept meanwhile.
BenchOptions latency_round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds);
// Iterations of a yardstick that runs after a test of `measured` samples.
std::uint64_t baseline_iterations(const BenchOptions& o, std::uint64_t measured);

struct Totals {
    std::uint64_t iterations = 0;
    double seconds = 0;
    std::uint64_t last = 0; // index of the last call of the last round

    void add(const LoopResult& l) {
        iterations += l.iterations;
        seconds += l.seconds;
        last = l.last;
    }
    LoopResult loop() const { return {iterations, seconds, last}; }
};

// ---- results --------------------------------------------------------------------------------

Result latency_result(std::uint64_t size, std::string method, Wait wait,
                      std::vector<double> samples, CpuTime cpu);
Result bandwidth_result(std::uint64_t size, std::string method, const LoopResult& loop);
// Records a payload check's outcome on `r`.
void set_payload(Result& r, Payload payload, std::string detail);

// ---- yardsticks -----------------------------------------------------------------------------

// A latency yardstick from its rounds' samples (pooled statistics, per-round medians).
Result latency_yardstick(std::uint64_t size, std::string method, Wait wait,
                         const std::vector<std::vector<double>>& rounds, Payload payload,
                         std::string schedule);

// The memcpy yardstick interleaved with a bandwidth test, one round per fabric round.
class MemcpyRounds {
public:
    MemcpyRounds(const BenchOptions& o, std::uint64_t size);
    // One round of as many copies as the fabric round made (at least one).
    void round(const BenchOptions& ro, std::uint64_t iterations);
    // Appends the yardstick to `rep` (nothing without --baseline).
    void finish(Report& rep) const;

private:
    std::uint64_t m_size;
    std::optional<MemcpyBaseline> m_baseline;
    std::vector<Bandwidth> m_rounds;
};

// The eventfd yardstick interleaved with a wake-up test, one round per fabric round.
class EventfdRounds {
public:
    explicit EventfdRounds(const BenchOptions& o);
    void round(const BenchOptions& ro, std::uint64_t measured);
    void finish(Report& rep);

private:
    std::optional<EventfdBaseline> m_baseline;
    std::vector<std::vector<double>> m_rounds;
};

// The samples (one-way us) of baseline_store_pingpong. Throws check_failed if a payload
// arrived corrupted.
std::vector<double> store_pingpong_samples(std::uint64_t size, std::uint64_t iterations,
                                           std::uint64_t warmup, int cpu);

// The spinning yardstick run after a test: a store ping-pong of `size` bytes (multiple of 4).
Result store_yardstick_after(const BenchOptions& o, std::uint64_t size, std::uint64_t measured);
// The sleeping yardstick run after a test: an eventfd ping-pong.
Result eventfd_yardstick_after(const BenchOptions& o, std::uint64_t measured);

} // namespace dis::bench::detail
