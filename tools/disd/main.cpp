// disd: one logical node of the software fabric. Runs in the foreground until SIGTERM,
// SIGINT or an admin shutdown; prints nothing unless -v. See disd(8) and README.md here.
#include "daemon.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

namespace {

// CLI11 converts "-1" into an unsigned option by wrapping it around; refuse signs instead.
CLI::Validator whole_number(bool positive) {
    return CLI::Validator(
        [positive](std::string& value) {
            if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
                return "expected a non-negative whole number, got '" + value + "'";
            }
            if (positive && value.find_first_not_of('0') == std::string::npos) {
                return std::string("must be at least 1");
            }
            return std::string();
        },
        "");
}

} // namespace

int main(int argc, char** argv) {
    dis::disd::Options opts;
    std::string fabric;
    std::string config;
    CLI::App app{"disd: a node daemon of the dis-tool software fabric"};
    app.set_version_flag("--version", std::string(DIS_VERSION));
    app.add_option("--node-id", opts.node_id, "This node's id (a positive multiple of 4)")
        ->required()
        ->check(whole_number(false));
    app.add_option("--fabric", fabric,
                   "Fabric directory (default $DIS_FABRIC, /run/dis as root, else "
                   "$XDG_RUNTIME_DIR/dis)");
    app.add_option("--config", config, "Fabric config file (see disd(8))");
    app.add_option("--adapter", opts.adapter, "Adapter number (software nodes have adapter 0)")
        ->check(whole_number(false));
    app.add_option("--max-client-memory", opts.max_client_bytes,
                   "Segment memory one client process may hold, in bytes (default 1 GiB)")
        ->check(whole_number(false));
    app.add_option("--max-client-objects", opts.max_client_objects,
                   "Segments, interrupts and DMA queues one client may hold, each (default 1024)")
        ->check(whole_number(false));
    app.add_option("--dma-streaming-bytes", opts.dma_streaming_bytes,
                   "DMA transfers of at least this many bytes bypass the CPU caches "
                   "(default: a quarter of the last-level cache)")
        ->check(whole_number(true));
    app.add_flag("-v,--verbose", opts.verbose, "Log events to stderr");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : dis::k_exit_usage;
    }
    try {
        opts.fabric_dir = dis::fabric::resolve_fabric_dir(
            fabric.empty() ? std::nullopt : std::optional<std::string>(fabric));
        if (!config.empty()) {
            opts.config_path = config;
        }
        dis::disd::Daemon daemon(opts);
        daemon.start();
        daemon.run();
    } catch (const dis::Error& e) {
        std::cerr << "disd: error: " << e.what() << "\n";
        return dis::exit_code_for(e.kind());
    } catch (const std::exception& e) {
        std::cerr << "disd: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
