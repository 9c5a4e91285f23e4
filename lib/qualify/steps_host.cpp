// The measuring and inspecting steps: bench (a `dis-tool bench` test through lib/bench with
// thresholds on its result fields), isolation (readiness verdicts and IOMMU isolation of host
// devices) and diag (the fabric health check).
#include "steps.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/pci.hpp"
#include "dis/readiness.hpp"
#include "dis/sisci.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace dis::qualify::detail {

namespace {

// Small defaults: a qualification run repeats steps, it does not chart a device.
std::string default_sizes(bench::TestKind test) {
    switch (test) {
    case bench::TestKind::intr_latency:
    case bench::TestKind::device_cycle:
        return "";
    case bench::TestKind::pio_latency:
    case bench::TestKind::dma_latency:
    case bench::TestKind::data_intr_latency:
        return "64";
    case bench::TestKind::device_copy:
        return "64K";
    default:
        return "64K";
    }
}

std::string number(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

} // namespace

void run_bench(const Step& step, StepEnv& env, StepResult& out) {
    const auto& spec = step.bench;
    bench::Report report;
    bool ran = false;
    run_case(out, bench::to_string(spec.test), [&] {
        bench::BenchOptions o;
        o.test = spec.test;
        const bool device_test =
            spec.test == bench::TestKind::device_cycle || spec.test == bench::TestKind::device_copy;
        if (device_test) {
            o.device = spec.device->value.value;
            o.remote_node = spec.device->value.node_id();
        } else {
            o.remote_node = spec.remote_node->value;
        }
        const std::string sizes = spec.sizes.empty() ? default_sizes(spec.test) : spec.sizes;
        if (!sizes.empty())
            o.sizes = bench::parse_sizes(sizes);
        o.iterations = spec.iterations ? spec.iterations : 200;
        o.warmup = spec.warmup ? spec.warmup : 20;
        o.baseline = std::any_of(spec.thresholds.begin(), spec.thresholds.end(),
                                 [](const Threshold& t) { return t.field == "baseline_ratio"; });
        std::uint32_t local = 0;
        if (spec.local_node)
            local = spec.local_node->value;
        else
            for (auto n : fabric::discover_nodes(env.fabric_dir))
                if (n != o.remote_node) {
                    local = n;
                    break;
                }
        ::setenv("DIS_FABRIC", env.fabric_dir.c_str(), 1);
        ::setenv("DIS_NODE_ID", std::to_string(local).c_str(), 1);
        if (fabric::sisci::software_fabric()) {
            auto pin = bench::plan_pinning(-1, -1, false, bench::allowed_cpus());
            o.cpu = pin.local_cpu;
            o.remote_cpu = pin.remote_cpu;
            if (!device_test) {
                o.responder_argv = responder_argv(env);
                if (o.remote_cpu >= 0) {
                    o.responder_argv.push_back("--cpu");
                    o.responder_argv.push_back(std::to_string(o.remote_cpu));
                }
                o.responder_env = {"DIS_NODE_ID=" + std::to_string(o.remote_node)};
            }
        }
        report = bench::run_test(o);
        ran = true;
        return bench::to_json(report);
    });
    for (const auto& t : spec.thresholds)
        run_case(out, t.text, [&] {
            expect(ran, "the test did not run");
            nlohmann::json detail = nlohmann::json::array();
            std::string failures;
            const nlohmann::json doc = bench::to_json(report);
            for (const auto& r : doc["results"]) {
                const std::string size =
                    r.value("size", 0) ? std::to_string(r.value("size", 0)) + " bytes" : "the test";
                expect(r.contains(t.field) && r[t.field].is_number(),
                       "no " + t.field + " in the result of " + size);
                const double v = r[t.field].get<double>();
                detail.push_back({{"size", r.value("size", 0)}, {t.field, v}});
                if (!holds(t, v))
                    failures +=
                        (failures.empty() ? "" : "; ") + size + ": " + t.field + " = " + number(v);
            }
            expect(!detail.empty(), "the test gave no results");
            expect(failures.empty(), "threshold '" + t.text + "' not met: " + failures);
            return detail;
        });
}

void run_isolation(const Step& step, StepEnv&, StepResult& out) {
    const auto& spec = step.isolation;
    pci::Source source = !spec.dump.empty()         ? pci::Source::dump(spec.dump)
                         : !spec.sysfs_root.empty() ? pci::Source::sysfs(spec.sysfs_root)
                                                    : pci::Source::live();
    const pci::Topology topology = pci::scan(source);
    for (const auto& b : spec.bdfs)
        run_case(out, b.value, [&] {
            const auto report = pci::check_readiness(topology, pci::Bdf::parse(b.value));
            std::string problems;
            for (const auto& f : report.findings)
                if (f.severity == pci::Severity::error ||
                    (f.severity == pci::Severity::warning && !spec.allow_warnings))
                    problems += (problems.empty() ? "" : "; ") + f.check + ": " + f.message;
            nlohmann::json detail = {{"verdict", pci::to_string(report.verdict)},
                                     {"isolated", report.isolation.isolated},
                                     {"group", report.isolation.group
                                                   ? nlohmann::json(*report.isolation.group)
                                                   : nlohmann::json()}};
            expect(report.verdict != pci::Verdict::not_ready,
                   b.value + " is not ready to lend: " + problems);
            expect(spec.allow_warnings || report.verdict == pci::Verdict::ready,
                   b.value + " is ready only with warnings: " + problems);
            if (spec.require_isolated) {
                std::string why;
                for (const auto& r : report.isolation.reasons)
                    why += (why.empty() ? "" : "; ") + r;
                expect(report.isolation.isolated, b.value + " is not isolated: " + why);
            }
            return detail;
        });
}

} // namespace dis::qualify::detail
