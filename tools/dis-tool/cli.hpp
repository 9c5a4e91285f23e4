// Shared plumbing of the dis-tool front end: the global options every subcommand accepts,
// and the one place that chooses between the text and JSON renderings of a model.
#pragma once

#include "dis/output.hpp"
#include "dis/pci.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace dis::cli {

struct GlobalOptions {
    std::string output = "table";
    bool verbose = false;
};

// Passed to every area's commands: the parsed global options and the exit code the
// command wants (a check that found problems sets k_exit_check_failed without it being an
// error; see dis::exit_code_for and dis-tool(1), EXIT STATUS).
struct Context {
    GlobalOptions options;
    int exit_code = 0;

    output::Format format() const { return output::parse_format(options.output); }
};

// Where host-PCIe commands read the hierarchy from: live (default), --dump FILE or
// --sysfs-root DIR. Shared by pci, iommu, p2p and device commands.
struct PciSourceOptions {
    std::string dump;
    std::string sysfs_root;

    pci::Source source() const;
};
void add_pci_source_options(CLI::App* cmd, PciSourceOptions& opts);

// Prints `doc` in JSON mode; otherwise calls `text` to write the human rendering.
// CSV falls back to text for commands without a tabular CSV form.
void emit(const Context& ctx, const nlohmann::json& doc,
          const std::function<void(std::ostream&)>& text);

// State-changing commands show what they will change, take --dry-run, and ask on a terminal
// unless --yes (STYLE.md, "Mutations are guarded"); confirm.cpp.
struct ChangeGuard {
    bool yes = false;
    bool dry_run = false;
};
void add_change_guard_options(CLI::App* cmd, ChangeGuard& guard);
// Whether to make the change `plan` describes (one line, "reclaim 0x80000 from ..."): false
// with --dry-run; true with --yes or when stdin or stderr is not a terminal; on a terminal
// asks "<plan>: proceed? [y/N]" on stderr and throws Error(invalid_input) unless answered yes.
bool confirm_change(const ChangeGuard& guard, const std::string& plan);

// The command line as CLI11 should see it. CLI11 lets an option with an optional value
// (`device borrow --wait [S]`) eat a following "--" or the next word; a bare one becomes
// "--wait=forever" (lending_borrow.cpp).
std::vector<std::string> normalize_arguments(int argc, char** argv);

// Areas register their noun commands on the root app (explicit list in main.cpp).
void register_pci_commands(CLI::App& app, Context& ctx);
void register_iommu_commands(CLI::App& app, Context& ctx);
void register_p2p_commands(CLI::App& app, Context& ctx);
void register_device_commands(CLI::App& app, Context& ctx);
void register_lending_commands(CLI::App& app, Context& ctx); // device list|show|borrow|...
void register_fabric_commands(CLI::App& app, Context& ctx);  // fabric, topology, probe, segment
void register_bench_commands(CLI::App& app, Context& ctx);
void register_exporter_commands(CLI::App& app, Context& ctx); // exporter (Prometheus)
void register_monitor_commands(CLI::App& app, Context& ctx);  // monitor (ncurses)
void register_diag_commands(CLI::App& app, Context& ctx);     // diag (health check)
void register_qualify_commands(CLI::App& app, Context& ctx);  // qualify --plan FILE

} // namespace dis::cli
