// `dis-tool bench <test>` and `dis-tool bench serve`: parsing and printing only; the tests,
// the responder and the statistics live in libdis (dis/bench.hpp). JSON schema and exit
// codes: dis-tool-bench(1).
#include "cli.hpp"

#include "dis/bench.hpp"
#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/lending_fdid.hpp"
#include "dis/sisci.hpp"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

namespace dis::cli {

namespace {

namespace bench = dis::bench;

// A CPU to pin to. Negative values would silently mean "do not pin" (the default, -1).
const CLI::Range k_cpu_number(0, CPU_SETSIZE - 1);

struct BenchCliOptions {
    std::uint32_t remote_node = 0;
    std::string sizes;
    std::uint64_t iterations = 0;
    std::uint64_t warmup = 0;
    double duration_s = 0;
    int cpu = -1;
    int remote_cpu = -1;
    bool read = false;
    bool pull = false;
    std::uint32_t vector = 0;
    std::string mode = "wait";
    bool baseline = true;
    bool no_spawn = false;
    bool no_pin = false;
    std::uint32_t adapter = 0;
    unsigned timeout_ms = 10000;
    std::string fabric_dir;
    std::optional<std::uint32_t> local_node;
    std::string device; // device-cycle, device-copy: the fdid
    // serve
    bool once = false;
    unsigned idle_timeout_s = 0;
};

struct TestDefaults {
    const char* sizes;
    std::uint64_t iterations;
    std::uint64_t warmup;
};

TestDefaults defaults_for(bench::TestKind test) {
    switch (test) {
    case bench::TestKind::pio_latency:
        return {"4..4K", 1000, 100};
    case bench::TestKind::pio_bw:
        return {"4K..4M", 100, 10};
    case bench::TestKind::dma_bw:
        return {"4K..4M", 100, 10};
    case bench::TestKind::dma_latency:
        return {"64,4K,64K", 1000, 100};
    case bench::TestKind::intr_latency:
        return {"", 1000, 100};
    case bench::TestKind::data_intr_latency:
        return {"4..1K", 1000, 100};
    case bench::TestKind::device_cycle:
        return {"", 1000, 20};
    case bench::TestKind::device_copy:
        return {"1M", 200, 10};
    }
    return {"4K", 100, 10};
}

// libsisci reads its fabric and node from the environment at SCIInitialize.
void select_fabric(const BenchCliOptions& o) {
    if (!o.fabric_dir.empty() || !std::getenv("DIS_FABRIC"))
        ::setenv("DIS_FABRIC",
                 fabric::resolve_fabric_dir(
                     o.fabric_dir.empty() ? std::nullopt : std::optional<std::string>(o.fabric_dir))
                     .c_str(),
                 1);
    if (o.local_node)
        ::setenv("DIS_NODE_ID", std::to_string(*o.local_node).c_str(), 1);
}

void add_common_options(CLI::App* cmd, BenchCliOptions& o) {
    cmd->add_option("-a,--adapter", o.adapter, "Local adapter number (default 0)");
    cmd->add_option("--fabric", o.fabric_dir,
                    "Software fabric directory (default: $DIS_FABRIC, /run/dis as root, else "
                    "$XDG_RUNTIME_DIR/dis)")
        ->type_name("DIR");
    cmd->add_option("--local-node", o.local_node,
                    "Run as this node of the software fabric (default: $DIS_NODE_ID, else the "
                    "lowest)");
}

std::string fixed3(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

void print_text(std::ostream& out, const bench::Report& rep, bool csv) {
    auto table = bench::to_table(rep);
    if (csv) {
        table.render_csv(out);
        return;
    }
    out << bench::to_string(rep.test) << ": node " << rep.local_node << " -> node "
        << rep.remote_node;
    if (!rep.mode.empty())
        out << " (" << rep.mode << ")";
    out << "\n";
    if (!rep.completion.empty())
        out << "waiting: " << rep.completion << "\n";
    table.render_text(out);
    for (const auto& b : rep.baseline) {
        out << "baseline: " << b.method;
        if (b.size)
            out << " " << bench::format_size(b.size);
        out << " on this host (";
        if (b.wait != bench::Wait::none)
            out << bench::to_string(b.wait) << ", ";
        out << b.rounds.size() << " rounds " << b.schedule << "): median round "
            << fixed3(bench::median_round(b)) << ", best " << fixed3(bench::best_round(b))
            << (b.latency ? " us" : " GB/s") << "\n";
    }
    if (!rep.baseline.empty())
        out << "RATIO is "
            << (bench::is_latency_test(rep.test)
                    ? "median / the baseline's median round (lower is better)"
                    : "bandwidth / the baseline's median round (higher is better)")
            << ", RATIO_BEST against its best round; only against a baseline that waits the "
               "same way\n";
    if (bench::is_latency_test(rep.test))
        out << "CPU_L_S / CPU_R_S: CPU seconds this process / the other side spent in the "
               "measured loops\n";
    if (rep.pinning) {
        const auto& p = *rep.pinning;
        if (p.local_cpu >= 0 || p.remote_cpu >= 0)
            out << "pinned: this process to CPU " << p.local_cpu << ", the other side to CPU "
                << p.remote_cpu << (p.by_default ? " (default; --no-pin to opt out)" : "") << "\n";
        else
            out << "not pinned\n";
    }
    out << bench::payload_summary(rep) << "\n";
}

void run_bench(const Context& ctx, bench::TestKind test, const BenchCliOptions& o, CLI::App* cmd) {
    select_fabric(o);
    const auto d = defaults_for(test);
    bench::BenchOptions opts;
    opts.test = test;
    opts.remote_node = o.remote_node;
    opts.adapter = o.adapter;
    const bool device_test =
        test == bench::TestKind::device_cycle || test == bench::TestKind::device_copy;
    const bool sized =
        test != bench::TestKind::intr_latency && test != bench::TestKind::device_cycle;
    const bool sizes_given = sized && cmd->count("--sizes") > 0;
    if (sized)
        opts.sizes = bench::parse_sizes(sizes_given ? o.sizes : d.sizes);
    if (device_test) {
        opts.device = lending::parse_fdid(o.device).value;
        opts.remote_node = *opts.device >> 16;
    }
    opts.iterations = cmd->count("--iterations") ? o.iterations : d.iterations;
    opts.warmup = cmd->count("--warmup") ? o.warmup : d.warmup;
    opts.duration_s = o.duration_s;
    opts.read = o.read;
    opts.pull = o.pull;
    opts.vector = o.vector;
    // device-copy spins on STATUS unless told to sleep until the device's interrupt.
    opts.dma_mode = bench::parse_dma_mode(
        test == bench::TestKind::device_copy && !cmd->count("--mode") ? "poll" : o.mode);
    opts.timeout = std::chrono::milliseconds(o.timeout_ms);
    const bool software = fabric::sisci::software_fabric();
    // On the software fabric both sides run on this host: give them CPUs of their own.
    bench::Pinning pinning{o.cpu, o.remote_cpu, false, ""};
    if (software)
        pinning = bench::plan_pinning(o.cpu, o.remote_cpu, o.no_pin, bench::allowed_cpus());
    if (!pinning.warning.empty())
        std::cerr << "dis-tool: warning: " << pinning.warning << "\n";
    opts.cpu = pinning.local_cpu;
    opts.remote_cpu = pinning.remote_cpu;
    // The yardstick is on by default where the "fabric" is this host's memory.
    opts.baseline = cmd->count("--baseline") || cmd->count("--no-baseline") ? o.baseline : software;
    if (software && !o.no_spawn && !device_test) {
        opts.responder_argv = {"/proc/self/exe", "bench",
                               "serve",          "--once",
                               "--adapter",      std::to_string(o.adapter),
                               "--idle-timeout", std::to_string(o.timeout_ms / 1000 + 5)};
        if (opts.remote_cpu >= 0) {
            opts.responder_argv.push_back("--cpu");
            opts.responder_argv.push_back(std::to_string(opts.remote_cpu));
        }
        opts.responder_env = {"DIS_NODE_ID=" + std::to_string(o.remote_node)};
    }
    auto report = bench::run_test(opts);
    report.pinning = pinning;
    emit(ctx, bench::to_json(report),
         [&](std::ostream& out) { print_text(out, report, ctx.format() == output::Format::csv); });
}

} // namespace

void register_bench_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<BenchCliOptions>();
    auto* bench_cmd = app.add_subcommand(
        "bench", "PIO, DMA and interrupt latency and bandwidth tests against a remote node");
    bench_cmd->require_subcommand(1);

    for (const auto& name : bench::test_names()) {
        const auto test = bench::parse_test(name);
        const auto d = defaults_for(test);
        auto* cmd = bench_cmd->add_subcommand(name, [&] {
            switch (test) {
            case bench::TestKind::pio_latency:
                return "Store ping-pong through mapped segments; one-way = round trip / 2";
            case bench::TestKind::pio_bw:
                return "Bandwidth of SCIMemCpy and plain stores into the remote segment "
                       "(--read: loads)";
            case bench::TestKind::dma_bw:
                return "DMA bandwidth, push (--pull: remote to local), --vector N";
            case bench::TestKind::dma_latency:
                return "DMA post-to-completion latency, --mode wait|sleep|poll|callback";
            case bench::TestKind::intr_latency:
                return "Remote interrupt round trip / 2";
            case bench::TestKind::data_intr_latency:
                return "Data interrupt (with payload) round trip / 2";
            case bench::TestKind::device_cycle:
                return "SmartIO: borrow + connect BAR0 + map + first register read + return";
            case bench::TestKind::device_copy:
                return "SmartIO: epf-test COPY with the DMA flag against memcpy";
            }
            return "";
        }());
        const bool device_test =
            test == bench::TestKind::device_cycle || test == bench::TestKind::device_copy;
        if (device_test)
            cmd->add_option("--device", opts->device,
                            "Fabric device id of the lent device (e.g. 0x80000; its lender is "
                            "the remote node)")
                ->required();
        else
            cmd->add_option("-r,--remote-node", opts->remote_node, "Node id of the responder")
                ->required();
        if (test != bench::TestKind::intr_latency && test != bench::TestKind::device_cycle)
            cmd->add_option("-s,--sizes", opts->sizes,
                            std::string("Sizes: a list and/or ranges in powers of two, e.g. "
                                        "4..4M or 8,64,4K (default ") +
                                d.sizes + ")");
        cmd->add_option("-n,--iterations", opts->iterations,
                        "Measured iterations per size (default " + std::to_string(d.iterations) +
                            ")");
        cmd->add_option("-w,--warmup", opts->warmup,
                        "Unmeasured iterations first (default " + std::to_string(d.warmup) + ")");
        cmd->add_option("-d,--duration", opts->duration_s,
                        "Run each size this many seconds instead of --iterations")
            ->check(CLI::Range(0.0, 86400.0));
        cmd->add_option("--cpu", opts->cpu,
                        "Pin this process to a CPU (default on the software fabric: one of "
                        "its own)")
            ->check(k_cpu_number);
        cmd->add_option("--remote-cpu", opts->remote_cpu,
                        "Pin the started responder and the baseline's peer process to a CPU "
                        "(default on the software fabric: another one)")
            ->check(k_cpu_number);
        cmd->add_flag("--no-pin", opts->no_pin,
                      "Do not pin the two sides by default (--cpu and --remote-cpu still apply)");
        cmd->add_flag("--baseline,!--no-baseline", opts->baseline,
                      "Measure the host yardstick at the same sizes (default: on with the "
                      "software fabric)");
        if (!device_test)
            cmd->add_flag("--no-spawn", opts->no_spawn,
                          "Do not start the responder; one runs already (`bench serve`)");
        cmd->add_option("--timeout", opts->timeout_ms,
                        "Milliseconds to wait for the responder or a message (default 10000)");
        if (test == bench::TestKind::pio_bw)
            cmd->add_flag("--read", opts->read, "Remote loads instead of stores");
        if (test == bench::TestKind::dma_bw || test == bench::TestKind::dma_latency)
            cmd->add_flag("--pull", opts->pull, "Transfer remote to local (SCI_FLAG_DMA_READ)");
        if (test == bench::TestKind::dma_bw)
            cmd->add_option("--vector", opts->vector,
                            "Vector transfers of N entries (SCIStartDmaTransferVec)")
                ->check(CLI::Range(1u, 256u));
        if (test == bench::TestKind::dma_latency)
            cmd->add_option("-m,--mode", opts->mode,
                            "Completion: wait (SCIWaitForDMAQueue: spins, then sleeps), sleep "
                            "(sleeps until the completion callback wakes it), poll "
                            "(SCIDMAQueueState: spins) or callback (default wait)")
                ->check(CLI::IsMember({"wait", "sleep", "poll", "callback"}));
        if (test == bench::TestKind::device_copy)
            cmd->add_option("-m,--mode", opts->mode,
                            "Completion: poll (spin on STATUS) or sleep (until the device's "
                            "interrupt) (default poll)")
                ->check(CLI::IsMember({"poll", "sleep"}));
        add_common_options(cmd, *opts);
        cmd->callback([&ctx, opts, test, cmd] { run_bench(ctx, test, *opts, cmd); });
    }

    auto* serve = bench_cmd->add_subcommand(
        "serve", "The responder: run on the remote node (started automatically on the "
                 "software fabric)");
    serve->add_flag("--once", opts->once, "Exit after the first client finishes");
    serve->add_option("--idle-timeout", opts->idle_timeout_s,
                      "Exit after this many seconds without a client request (default: never)");
    serve->add_option("--cpu", opts->cpu, "Pin the responder to a CPU")->check(k_cpu_number);
    add_common_options(serve, *opts);
    serve->callback([opts] {
        select_fabric(*opts);
        bench::ServeOptions s;
        s.adapter = opts->adapter;
        s.once = opts->once;
        s.idle_timeout = std::chrono::seconds(opts->idle_timeout_s);
        s.cpu = opts->cpu;
        bench::serve(s);
    });
}

} // namespace dis::cli
