// The diag step: the fabric health check of `dis-tool diag` (dis/diag.hpp), each of its checks
// one case; a FAIL fails its case, a WARN only with `strict`.
#include "steps.hpp"

#include "dis/diag.hpp"
#include "dis/error.hpp"

#include <cstdlib>

namespace dis::qualify::detail {

void run_diag(const Step& step, StepEnv& env, StepResult& out) {
    const auto& spec = step.diag;
    diag::Options o;
    o.fabric_dir = env.fabric_dir;
    o.config_file = spec.config;
    o.sysfs_root = spec.sysfs_root;
    o.lendable = spec.lendable;
    o.responder_argv = {env.options.tool_path, "bench", "serve", "--once"};
    // The SISCI side of the checks runs as the fabric's lowest node of this fabric.
    ::setenv("DIS_FABRIC", env.fabric_dir.c_str(), 1);
    ::unsetenv("DIS_NODE_ID");
    diag::Report report;
    run_case(out, "run", [&] {
        report = diag::run(o);
        const auto s = report.summary();
        expect(!report.fabric_unreachable, "the fabric in " + env.fabric_dir + " is unreachable");
        return nlohmann::json{{"summary", diag::summary_line(report)},
                              {"checks", s.checks},
                              {"failed", s.failed},
                              {"warnings", s.warnings}};
    });
    for (const auto& c : report.checks)
        run_case(out, c.group + " " + c.name, [&] {
            expect(c.verdict != diag::Verdict::fail, "FAIL: " + c.reason);
            expect(!spec.strict || c.verdict != diag::Verdict::warn, "WARN (strict): " + c.reason);
            return diag::to_json(c);
        });
}

} // namespace dis::qualify::detail
