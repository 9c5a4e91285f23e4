// The rebind step: N lend/unlend cycles of a real host device through `dis-tool device lend`
// and `device unlend` (lib/hostlend: vfio-pci and back to its own driver, the pool step, the
// binding record), the binding read back from sysfs after each, then the plan's check command
// ("the device works": on the QEMU test bed, the NVMe namespace reads back what was written).
#include "steps.hpp"

#include "dis/error.hpp"
#include "dis/hostlend.hpp"

namespace dis::qualify::detail {

namespace {

constexpr std::chrono::milliseconds k_tool_limit{60000};

std::vector<std::string> host_args(const RebindSpec& b, const StepEnv& env) {
    std::vector<std::string> a = {"--yes", "--fabric", env.fabric_dir};
    if (!b.sysfs_root.empty())
        a.insert(a.end(), {"--sysfs-root", b.sysfs_root});
    if (!b.state_dir.empty())
        a.insert(a.end(), {"--state-dir", b.state_dir});
    return a;
}

} // namespace

void run_rebind(const Step& step, StepEnv& env, StepResult& out) {
    const auto& b = step.rebind;
    const auto bdf = pci::Bdf::parse(b.bdf.value);
    const std::string root = b.sysfs_root.empty() ? "/sys" : b.sysfs_root;
    const hostlend::Binding original = hostlend::read_binding(root, bdf);
    for (unsigned cycle = 1; cycle <= b.cycles; ++cycle) {
        if (env.options.stop && env.options.stop->load())
            break; // the device is given back at the end of every cycle: stop between them
        run_case(out, "cycle " + std::to_string(cycle) + " " + b.bdf.value, [&] {
            std::vector<std::string> lend = {env.options.tool_path, "device", "lend", b.bdf.value};
            auto args = host_args(b, env);
            lend.insert(lend.end(), args.begin(), args.end());
            if (!b.proc_root.empty())
                lend.insert(lend.end(), {"--proc-root", b.proc_root});
            if (b.node)
                lend.insert(lend.end(), {"--node", std::to_string(b.node->value)});
            auto l = run_to_end(lend, {}, k_tool_limit);
            expect(l.exit_code == 0, "device lend " + b.bdf.value + " (exit " +
                                         std::to_string(l.exit_code) + "): " + l.last_error);
            const auto lent = hostlend::read_binding(root, bdf);
            nlohmann::json detail = {{"original", hostlend::to_string(original)},
                                     {"lent", hostlend::to_string(lent)}};
            std::vector<std::string> unlend = {env.options.tool_path, "device", "unlend",
                                               b.bdf.value};
            unlend.insert(unlend.end(), args.begin(), args.end());
            auto u = run_to_end(unlend, {}, k_tool_limit);
            const auto back = hostlend::read_binding(root, bdf);
            detail["returned"] = hostlend::to_string(back);
            expect(lent.driver == std::optional<std::string>(hostlend::k_vfio_driver),
                   "after device lend " + b.bdf.value + " is bound as " +
                       hostlend::to_string(lent) + ", not to vfio-pci");
            expect(u.exit_code == 0, "device unlend " + b.bdf.value + " (exit " +
                                         std::to_string(u.exit_code) + "): " + u.last_error);
            expect(back == original, "after device unlend " + b.bdf.value + " is bound as " +
                                         hostlend::to_string(back) + ", not as before (" +
                                         hostlend::to_string(original) + ")");
            if (!b.check.empty()) {
                auto c = run_to_end({"/bin/sh", "-c", b.check}, {}, k_tool_limit);
                expect(c.exit_code == 0, "check '" + b.check + "' (exit " +
                                             std::to_string(c.exit_code) + "): " + c.last_error);
            }
            return detail;
        });
    }
}

} // namespace dis::qualify::detail
