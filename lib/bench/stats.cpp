// Latency statistics (perftest-style) and bandwidth arithmetic.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dis::bench {

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty() || p <= 0 || p > 100)
        throw Error(ErrorKind::invalid_input, "percentile of an empty set or out of range");
    // Nearest rank: the smallest sample with at least p% of the samples at or below it.
    // The epsilon keeps 99.9% of 1000 at rank 999 despite binary rounding.
    double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()) - 1e-9);
    auto index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
    return sorted[std::min(index, sorted.size() - 1)];
}

LatencyStats compute_latency_stats(std::vector<double> samples_us) {
    if (samples_us.empty())
        throw Error(ErrorKind::invalid_input, "no latency samples");
    std::sort(samples_us.begin(), samples_us.end());
    const std::size_t n = samples_us.size();
    LatencyStats s;
    s.iterations = n;
    s.min_us = samples_us.front();
    s.max_us = samples_us.back();
    s.median_us = n % 2 ? samples_us[n / 2] : (samples_us[n / 2 - 1] + samples_us[n / 2]) / 2;
    s.avg_us = std::accumulate(samples_us.begin(), samples_us.end(), 0.0) / static_cast<double>(n);
    if (n > 1) {
        double sq = 0;
        for (double v : samples_us)
            sq += (v - s.avg_us) * (v - s.avg_us);
        s.stdev_us = std::sqrt(sq / static_cast<double>(n - 1));
    }
    s.p99_us = percentile(samples_us, 99.0);
    s.p999_us = percentile(samples_us, 99.9);
    return s;
}

Bandwidth compute_bandwidth(std::uint64_t size, std::uint64_t iterations, double seconds) {
    if (!(seconds > 0))
        throw Error(ErrorKind::invalid_input, "bandwidth over a non-positive duration");
    Bandwidth b;
    b.iterations = iterations;
    b.seconds = seconds;
    const double bytes = static_cast<double>(size) * static_cast<double>(iterations);
    b.bandwidth_gbps = bytes / seconds / 1e9;
    b.bandwidth_mibps = bytes / seconds / (1024.0 * 1024.0);
    b.msg_rate = static_cast<double>(iterations) / seconds;
    return b;
}

} // namespace dis::bench
