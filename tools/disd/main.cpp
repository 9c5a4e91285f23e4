// disd: one logical node of the software fabric. Runs in the foreground until SIGTERM,
// SIGINT or an admin shutdown; prints nothing unless -v. See disd(8) and README.md here.
#include "daemon.hpp"

#include "dis/error.hpp"
#include "fabric_dir.hpp"

#include <CLI/CLI.hpp>

#include <grp.h>

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

// A group name or number.
std::optional<gid_t> lookup_group(const std::string& name) {
    if (const group* g = ::getgrnam(name.c_str()); g != nullptr) {
        return g->gr_gid;
    }
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
        return static_cast<gid_t>(std::stoul(name));
    }
    return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
    dis::disd::Options opts;
    std::string fabric;
    std::string config;
    std::string group;
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
    app.add_option("--group", group,
                   "Share the fabric directory (0770) and socket with this group; without it "
                   "the directory is 0700")
        ->type_name("GROUP");
    app.add_option("--max-client-memory", opts.max_client_bytes,
                   "Segment and DMA region memory one connection may hold, in bytes (default "
                   "1 GiB)")
        ->check(whole_number(false));
    app.add_option("--max-client-objects", opts.max_client_objects,
                   "Segments, interrupts and DMA queues one connection may hold, each (default "
                   "1024; 4x for DMA regions)")
        ->check(whole_number(false));
    app.add_option("--max-uid-memory", opts.max_uid_bytes,
                   "The same memory summed over all connections of one uid (default 4 GiB)")
        ->check(whole_number(false));
    app.add_option("--max-uid-objects", opts.max_uid_objects,
                   "Objects of every kind one uid may hold over all its connections (default "
                   "16384)")
        ->check(whole_number(false));
    app.add_option("--max-uid-connections", opts.max_uid_connections,
                   "Connections one uid may have open at a time (default 256)")
        ->check(whole_number(true));
    app.add_option("--dma-streaming-bytes", opts.dma_streaming_bytes,
                   "DMA transfers of at least this many bytes bypass the CPU caches "
                   "(default: a quarter of the last-level cache)")
        ->check(whole_number(true));
    app.add_option("--device", opts.devices,
                   "A lendable device, as in the config's device line after NODE "
                   "(\"epf-test name=ep0 reset_ms=5\"), or vfio:BDF[,name=NAME] for a function "
                   "bound to vfio-pci; repeatable")
        ->type_name("SPEC");
    std::string lending_db;
    std::string lending_policy;
    std::uint64_t lease_ttl = 10000;
    std::uint64_t reset_timeout = 5000;
    std::uint64_t command_timeout = 2000;
    app.add_option("--lending-db", lending_db,
                   "The device pool's SQLite database (default FABRIC/node-ID.lending.sqlite)");
    app.add_option("--lending-policy", lending_policy,
                   "The lending policy (TOML, dis-tool-lending-policy(5); default: allow all)");
    app.add_option("--lease-ttl", lease_ttl,
                   "Lease of a borrower that asks for none, in ms (default 10000; cut to the "
                   "policy's maximum)")
        ->check(whole_number(true));
    app.add_option("--reset-timeout", reset_timeout,
                   "A device reset taking longer fails and quarantines it, in ms (default 5000)")
        ->check(whole_number(true));
    app.add_option("--command-timeout", command_timeout,
                   "An epf-test command pending longer means the device stopped responding, in "
                   "ms (default 2000)")
        ->check(whole_number(true));
    app.add_flag("-v,--verbose", opts.verbose, "Log events to stderr");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : dis::k_exit_usage;
    }
    try {
        auto dir = dis::wire::choose_fabric_dir(
            fabric.empty() ? std::nullopt : std::optional<std::string>(fabric));
        if (dir.path.empty()) {
            throw dis::Error(dis::ErrorKind::invalid_input, dir.error);
        }
        opts.fabric_dir = dir.path;
        if (!group.empty()) {
            opts.group = lookup_group(group);
            if (!opts.group) {
                throw dis::Error(dis::ErrorKind::invalid_input, "no group '" + group + "'");
            }
        }
        if (!config.empty()) {
            opts.config_path = config;
        }
        if (!lending_db.empty()) {
            opts.lending_db = lending_db;
        }
        if (!lending_policy.empty()) {
            opts.lending_policy = lending_policy;
        }
        opts.lease_ttl = std::chrono::milliseconds(lease_ttl);
        opts.reset_timeout = std::chrono::milliseconds(reset_timeout);
        opts.command_timeout = std::chrono::milliseconds(command_timeout);
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
