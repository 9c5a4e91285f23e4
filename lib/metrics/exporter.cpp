// The Exporter: every source runs in its own thread with its own deadline, so a source that
// overruns its budget (a frozen daemon) is left out of this scrape instead of stalling it.
#include "dis/metrics.hpp"

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#ifndef DIS_VERSION
#define DIS_VERSION "unknown"
#endif

namespace dis::metrics {

namespace {

using Clock = std::chrono::steady_clock;

// One source's outcome, shared with its thread (which may outlive a scrape that gave up).
struct Outcome {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    bool ok = false;
    bool complete = true;
    double seconds = 0;
    std::vector<prometheus::MetricFamily> families;
};

} // namespace

std::vector<prometheus::MetricFamily> SourceCollector::Collect() const {
    bool complete = true;
    return collect(complete);
}

prometheus::MetricFamily gauge_family(std::string name, std::string help) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = prometheus::MetricType::Gauge;
    return f;
}

prometheus::MetricFamily counter_family(std::string name, std::string help) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = prometheus::MetricType::Counter;
    return f;
}

void add_sample(prometheus::MetricFamily& family,
                std::vector<prometheus::ClientMetric::Label> labels, double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    if (family.type == prometheus::MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    family.metric.push_back(std::move(m));
}

std::optional<double> transfers_per_second(const std::string& speed) {
    auto pos = speed.find("GT/s");
    if (pos == std::string::npos || pos == 0)
        return std::nullopt;
    const std::string number = speed.substr(0, pos);
    char* end = nullptr;
    double gt = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size() || gt <= 0)
        return std::nullopt;
    return gt * 1e9;
}

Exporter::Exporter(std::vector<std::shared_ptr<SourceCollector>> sources)
    : m_sources(std::move(sources)) {}

std::vector<prometheus::MetricFamily> Exporter::Collect() const {
    const auto start = Clock::now();
    std::vector<std::shared_ptr<Outcome>> outcomes;
    for (const auto& source : m_sources) {
        auto outcome = std::make_shared<Outcome>();
        outcomes.push_back(outcome);
        std::thread([source, outcome] {
            const auto t0 = Clock::now();
            std::vector<prometheus::MetricFamily> families;
            bool complete = true;
            bool ok = false;
            try {
                families = source->collect(complete);
                ok = true;
            } catch (...) {
                // A failed source reports collector_success 0; its series are left out.
            }
            std::lock_guard lock(outcome->mutex);
            outcome->families = std::move(families);
            outcome->ok = ok;
            outcome->complete = complete;
            outcome->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            outcome->done = true;
            outcome->done_cv.notify_all();
        }).detach();
    }

    auto duration =
        gauge_family("dis_scrape_duration_seconds", "Seconds each collector took in this scrape.");
    auto success = gauge_family("dis_scrape_collector_success",
                                "1 when the collector gathered all its series in this scrape.");
    std::vector<prometheus::MetricFamily> out;
    for (std::size_t i = 0; i < m_sources.size(); ++i) {
        const auto& source = *m_sources[i];
        auto& outcome = *outcomes[i];
        std::unique_lock lock(outcome.mutex);
        // A little grace past the budget for the thread's own bookkeeping.
        const auto deadline = start + source.budget() + std::chrono::milliseconds(50);
        bool finished = outcome.done_cv.wait_until(lock, deadline, [&] { return outcome.done; });
        double seconds = finished ? outcome.seconds
                                  : std::chrono::duration<double>(Clock::now() - start).count();
        bool good = finished && outcome.ok && outcome.complete;
        if (finished && outcome.ok) {
            for (auto& f : outcome.families)
                out.push_back(std::move(f));
        }
        add_sample(duration, {{"collector", source.name()}}, seconds);
        add_sample(success, {{"collector", source.name()}}, good ? 1 : 0);
    }
    auto build = gauge_family("dis_exporter_build_info",
                              "Always 1; the dis-tool version that serves these series.");
    add_sample(build, {{"version", DIS_VERSION}}, 1);
    out.push_back(std::move(duration));
    out.push_back(std::move(success));
    out.push_back(std::move(build));
    return out;
}

} // namespace dis::metrics
