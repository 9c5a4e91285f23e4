// `dis-tool monitor`: a live view of the fabric (dis-tool-monitor(1)). The model and the
// screen are lib/monitor's; this file parses the options, chooses between the live screen
// (monitor_tty.cpp) and a printed snapshot (--once, -o json, or stdin/stdout not a
// terminal), and prints the snapshot.
#include "cli.hpp"
#include "monitor_tty.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/monitor.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

namespace dis::cli {

namespace {

struct MonitorOptions {
    std::string fabric;
    int delay_tenths = 10;
    std::optional<int> iterations;
    bool no_color = false;
    bool once = false;
    int node_timeout_ms = 500;
    int pcie_interval_s = 30;
    PciSourceOptions pci;
};

// NO_COLOR (no-color.org): present and not empty turns color off.
bool no_color_env() {
    const char* v = std::getenv("NO_COLOR");
    return v != nullptr && *v != '\0';
}

void print_snapshots(const Context& ctx, monitor::Collector& collector, const MonitorOptions& o) {
    const int n = o.iterations.value_or(1);
    const monitor::Demand all;
    for (int i = 0; i < n; ++i) {
        if (i > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(o.delay_tenths * 100));
            if (ctx.format() != output::Format::json)
                std::cout << '\n';
        }
        const auto snap = collector.sample(all);
        emit(ctx, monitor::to_json(snap),
             [&](std::ostream& out) { monitor::render_text(out, snap); });
        std::cout.flush();
    }
}

void run_monitor(Context& ctx, const MonitorOptions& o) {
    monitor::CollectorOptions co;
    try {
        co.fabric_dir =
            fabric::resolve_fabric_dir(o.fabric.empty() ? std::nullopt : std::optional(o.fabric));
    } catch (const Error& e) {
        if (!o.fabric.empty())
            throw;
        co.fabric_note = e.what(); // no fabric configured: the PCIe pane still works
    }
    co.pci = o.pci.source();
    co.node_timeout = std::chrono::milliseconds(o.node_timeout_ms);
    co.pcie_interval = std::chrono::seconds(o.pcie_interval_s);
    monitor::Collector collector(std::move(co));

    const bool live = !o.once && ctx.format() != output::Format::json;
    if (live && ::isatty(STDOUT_FILENO) && ::isatty(STDIN_FILENO)) {
        monitor::ViewState view;
        view.color = !o.no_color && !no_color_env();
        view.delay_tenths = o.delay_tenths;
        const auto outcome = run_monitor_tty(collector, view, o.iterations);
        if (outcome.ran)
            return;
        std::cerr << "dis-tool: monitor: " << outcome.why_not << "; printing one snapshot instead"
                  << std::endl;
        auto one = o;
        one.iterations = 1;
        print_snapshots(ctx, collector, one);
        return;
    }
    if (live && ::isatty(STDOUT_FILENO))
        std::cerr << "dis-tool: monitor: stdin is not a terminal; printing one snapshot instead"
                  << std::endl;
    print_snapshots(ctx, collector, o);
}

} // namespace

void register_monitor_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<MonitorOptions>();
    auto* cmd = app.add_subcommand(
        "monitor", "Live view of nodes, links, devices, segments, DMA rates and PCIe health");
    cmd->add_option("--fabric", opts->fabric, "Fabric directory of the node daemons")
        ->type_name("DIR");
    cmd->add_option("-d,--delay", opts->delay_tenths,
                    "Time between refreshes in tenths of a second")
        ->type_name("TENTHS")
        ->check(CLI::Range(1, 600))
        ->default_str("10");
    cmd->add_option("-n,--iterations", opts->iterations,
                    "Exit after this many refreshes (with --once: print this many snapshots)")
        ->type_name("N")
        ->check(CLI::Range(1, 1000000));
    cmd->add_flag("-C,--no-color", opts->no_color, "No colors (also when NO_COLOR is set)");
    cmd->add_flag("--once", opts->once,
                  "Print one snapshot (text, or JSON with -o json) and exit; the default when "
                  "stdout is not a terminal");
    cmd->add_option("--node-timeout", opts->node_timeout_ms,
                    "How long one node daemon may take to answer, in milliseconds")
        ->type_name("MS")
        ->check(CLI::Range(10, 60000))
        ->default_str("500");
    cmd->add_option("--pcie-interval", opts->pcie_interval_s,
                    "Rescan the host's PCIe devices at most every S seconds (scans read "
                    "configuration space)")
        ->type_name("S")
        ->check(CLI::Range(1, 3600))
        ->default_str("30");
    add_pci_source_options(cmd, opts->pci);
    cmd->callback([opts, &ctx] {
        run_monitor(ctx, *opts);
        ctx.exit_code = 0;
    });
}

} // namespace dis::cli
