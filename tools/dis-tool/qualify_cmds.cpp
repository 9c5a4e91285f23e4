// `dis-tool qualify --plan FILE`: parsing, the progress bar and printing only; the plan, the
// steps and the reports live in libdis (dis/qualify.hpp). Plan format: dis-tool-qualify(5);
// JSON report, JUnit file and exit codes: dis-tool-qualify(1).
#include "cli.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/qualify.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

namespace dis::cli {

namespace {

struct QualifyOptions {
    std::string plan;
    std::string fabric_dir;
    std::string junit;
    std::string report;
    bool check_only = false;
};

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int) {
    g_stop.store(true);
    static const char msg[] =
        "\ndis-tool: qualify: stopping after the current step (returning every device)\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

// SIGINT and SIGTERM ask the run to stop after the current step while this object lives.
class StopSignals {
public:
    StopSignals() {
        struct sigaction sa = {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &m_old_int);
        ::sigaction(SIGTERM, &sa, &m_old_term);
    }
    ~StopSignals() {
        ::sigaction(SIGINT, &m_old_int, nullptr);
        ::sigaction(SIGTERM, &m_old_term, nullptr);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    struct sigaction m_old_int = {};
    struct sigaction m_old_term = {};
};

// "[#####.....] 3/7 step-name" on stderr, redrawn in place; only when both stdout and stderr
// are terminals (a piped or redirected run is read by a program).
class ProgressBar {
public:
    ProgressBar() : m_on(::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO)) {}
    void show(std::size_t index, std::size_t total, const std::string& step) {
        if (!m_on)
            return;
        constexpr std::size_t width = 30;
        if (index >= total) {
            std::cerr << "\r\033[K" << std::flush;
            return;
        }
        const std::size_t done = total ? index * width / total : 0;
        std::cerr << "\r\033[K[" << std::string(done, '#') << std::string(width - done, '.') << "] "
                  << index + 1 << "/" << total << " " << step << std::flush;
    }

private:
    bool m_on;
};

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        throw os_error("reading /proc/self/exe", errno);
    return std::string(buf, static_cast<std::size_t>(n));
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        throw Error(ErrorKind::os, "cannot write " + path);
}

void run_qualify(Context& ctx, const QualifyOptions& o) {
    // A plan error is found and reported (exit 2) before anything runs.
    auto plan = qualify::load_plan(o.plan);
    std::string dir = fabric::resolve_fabric_dir(
        !o.fabric_dir.empty()      ? std::optional<std::string>(o.fabric_dir)
        : !plan.fabric_dir.empty() ? std::optional<std::string>(plan.fabric_dir)
                                   : std::nullopt);
    qualify::check_plan(plan, dir);
    if (o.check_only) {
        nlohmann::json doc = {{"plan", plan.name},
                              {"source", plan.source},
                              {"valid", true},
                              {"steps", plan.steps.size()}};
        emit(ctx, doc, [&](std::ostream& out) {
            out << plan.source << ": plan '" << plan.name << "' is valid (" << plan.steps.size()
                << (plan.steps.size() == 1 ? " step)\n" : " steps)\n");
        });
        return;
    }
    ProgressBar bar;
    qualify::RunOptions ro;
    ro.fabric_dir = dir;
    ro.tool_path = self_exe();
    ro.stop = &g_stop;
    ro.on_step = [&](std::size_t i, std::size_t n, const std::string& s) { bar.show(i, n, s); };
    g_stop.store(false);
    qualify::RunReport report;
    {
        StopSignals signals;
        report = qualify::run_plan(plan, ro);
    }
    const auto doc = qualify::to_json(report);
    if (!o.report.empty())
        write_file(o.report, doc.dump(2) + "\n");
    if (!o.junit.empty())
        write_file(o.junit, qualify::to_junit(report));
    emit(ctx, doc, [&](std::ostream& out) {
        auto table = qualify::to_table(report);
        if (ctx.format() == output::Format::csv) {
            table.render_csv(out);
            return;
        }
        table.render_text(out);
        std::size_t cases = 0, failed = 0, skipped = 0;
        for (const auto& s : report.steps)
            for (const auto& c : s.cases) {
                ++cases;
                failed += c.outcome == qualify::Outcome::failed;
                skipped += c.outcome == qualify::Outcome::skipped;
            }
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.1f", report.seconds);
        out << "plan " << report.plan << ": " << report.steps.size()
            << (report.steps.size() == 1 ? " step, " : " steps, ") << cases
            << (cases == 1 ? " case: " : " cases: ") << cases - failed - skipped << " passed, "
            << failed << " failed, " << skipped << " skipped in " << secs << " s"
            << (report.interrupted ? " (interrupted)" : "") << "\n";
        for (const auto& r : report.returned)
            out << "returned " << r << "\n";
    });
    if (!qualify::all_passed(report))
        ctx.exit_code = k_exit_check_failed;
}

} // namespace

void register_qualify_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<QualifyOptions>();
    auto* cmd = app.add_subcommand(
        "qualify", "Run a qualification plan (TOML, dis-tool-qualify(5)) against the fabric");
    cmd->add_option("-p,--plan", opts->plan, "The plan file")->required()->type_name("FILE");
    cmd->add_option("--fabric", opts->fabric_dir,
                    "Software fabric directory (default: the plan's fabric, $DIS_FABRIC, "
                    "/run/dis as root, else $XDG_RUNTIME_DIR/dis)")
        ->type_name("DIR");
    cmd->add_option("--junit", opts->junit, "Write a JUnit XML report to FILE")->type_name("FILE");
    cmd->add_option("--report", opts->report, "Write the JSON report to FILE")->type_name("FILE");
    cmd->add_flag("--check", opts->check_only,
                  "Only check the plan (and that its devices and nodes exist); run nothing");
    cmd->callback([&ctx, opts] { run_qualify(ctx, *opts); });
}

} // namespace dis::cli
