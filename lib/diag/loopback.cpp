// The loopback group of dis::diag: to each reachable node, the benchmarks' own payload-checked
// transfers (dis/bench.hpp run_test) in a few iterations each: PIO stores written to the
// node's segment and read back (pio-bw, write then read), a DMA transfer (dma-bw) and a data
// interrupt round trip (data-intr-latency), every one checksummed by both sides.
#include "checks.hpp"

#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <cstdio>

namespace dis::diag::detail {

namespace {

struct Step {
    const char* name; // the check's name after "node N "
    bench::TestKind test;
    bool read;
    std::uint64_t size;
};

constexpr Step k_steps[] = {
    {"pio write", bench::TestKind::pio_bw, false, 4096},
    {"pio read", bench::TestKind::pio_bw, true, 4096},
    {"dma", bench::TestKind::dma_bw, false, 65536},
    {"interrupt", bench::TestKind::data_intr_latency, false, 64},
};

constexpr std::uint64_t k_iterations = 16;

std::string fixed(double v, const char* unit) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f %s", v, unit);
    return buf;
}

} // namespace

void check_loopback(const Options& o, const FabricView& v, std::vector<Check>& out) {
    if (o.responder_argv.empty())
        return;
    for (auto node : v.reachable) {
        for (const auto& step : k_steps) {
            std::string what = "node " + std::to_string(node) + " " + step.name;
            bench::BenchOptions b;
            b.test = step.test;
            b.remote_node = node;
            b.read = step.read;
            b.sizes = {step.size};
            b.iterations = k_iterations;
            b.warmup = 1;
            b.baseline = false;
            b.responder_argv = o.responder_argv;
            b.responder_env = {"DIS_NODE_ID=" + std::to_string(node)};
            b.timeout = o.timeout;
            nlohmann::json counters = {{"test", bench::to_string(step.test)},
                                       {"size_bytes", step.size},
                                       {"iterations", k_iterations}};
            try {
                auto rep = bench::run_test(b);
                if (rep.results.empty())
                    throw Error(ErrorKind::internal, "no result");
                const auto& r = rep.results.front();
                counters["payload"] = bench::to_string(r.payload);
                counters["payload_detail"] = r.payload_detail;
                std::string figure;
                if (r.bandwidth) {
                    counters["bandwidth_bytes_per_second"] = r.bandwidth->bandwidth_gbps * 1e9;
                    figure = fixed(r.bandwidth->bandwidth_gbps, "GB/s");
                }
                if (r.latency) {
                    counters["latency_median_seconds"] = r.latency->median_us * 1e-6;
                    figure = fixed(r.latency->median_us, "us median");
                }
                Verdict verdict =
                    r.payload == bench::Payload::verified ? Verdict::pass : Verdict::fail;
                std::string reason = std::to_string(k_iterations) + " x " +
                                     bench::format_size(step.size) + " " +
                                     bench::to_string(r.payload) + " by checksum";
                if (verdict == Verdict::fail)
                    reason = "payload " + std::string(bench::to_string(r.payload)) + ": " +
                             r.payload_detail;
                out.push_back(make_check("loopback", what, verdict,
                                         reason + (figure.empty() ? "" : ", " + figure), counters));
            } catch (const Error& e) {
                counters["error_kind"] = dis::to_string(e.kind());
                out.push_back(make_check("loopback", what, Verdict::fail, e.what(), counters));
            }
        }
    }
}

} // namespace dis::diag::detail
