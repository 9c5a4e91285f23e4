// `dis-tool diag`: the fabric health check. Parsing and printing only; the checks are in
// libdis (dis/diag.hpp, lib/diag). JSON schema and the baseline file: dis-tool-diag(1).
#include "cli.hpp"

#include "dis/diag.hpp"
#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/sisci.hpp"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>

namespace dis::cli {

namespace {

struct DiagOptions {
    std::string fabric_dir;
    std::string config;
    std::string sysfs_root = "/sys";
    bool no_host = false;
    std::vector<std::string> lendable;
    int verbosity = 1;
    bool clear = false;
    bool strict = false;
    std::string state;
    bool no_loopback = false;
    unsigned timeout_ms = 5000;
};

const char* verdict_word(diag::Verdict v) {
    switch (v) {
    case diag::Verdict::pass:
        return "PASS";
    case diag::Verdict::warn:
        return "WARN";
    case diag::Verdict::fail:
        return "FAIL";
    }
    return "FAIL";
}

// The counters of -V 9, one "key: value" line each, nested objects flattened with dots.
void flatten(const nlohmann::json& j, const std::string& prefix, output::KeyValues& kv) {
    if (j.is_object()) {
        for (const auto& [key, value] : j.items())
            flatten(value, prefix.empty() ? key : prefix + "." + key, kv);
        return;
    }
    kv.add(prefix, j.is_string() ? j.get<std::string>() : j.dump(), 2);
}

void run_diag(Context& ctx, const DiagOptions& o) {
    diag::Options opts;
    opts.fabric_dir = fabric::resolve_fabric_dir(
        o.fabric_dir.empty() ? std::nullopt : std::optional<std::string>(o.fabric_dir));
    // libsisci reads its fabric from the environment at SCIInitialize (dis/diag.hpp).
    ::setenv("DIS_FABRIC", opts.fabric_dir.c_str(), 1);
    if (!o.config.empty())
        opts.config_file = o.config;
    if (!o.no_host)
        opts.sysfs_root = o.sysfs_root;
    opts.lendable = o.lendable;
    const std::string state = o.state.empty() ? diag::default_baseline_file() : o.state;
    opts.baseline_file = state;
    opts.timeout = std::chrono::milliseconds(o.timeout_ms);
    // A vendor SISCI has no way to start the responder on another host: no loopback there.
    if (!o.no_loopback && fabric::sisci::software_fabric())
        opts.responder_argv = {"/proc/self/exe", "bench",
                               "serve",          "--once",
                               "--idle-timeout", std::to_string(o.timeout_ms / 1000 + 5)};

    auto report = diag::run(opts);
    if (o.clear)
        diag::save_baseline(report, state);
    std::string unreachable;
    if (report.fabric_unreachable) {
        unreachable = "the fabric is unreachable: " + report.unreachable_reason;
        // With -o json the one error object stands for the report (dis-tool(1)).
        if (ctx.format() == output::Format::json)
            throw Error(ErrorKind::fabric_down, unreachable);
    }

    const bool csv = ctx.format() == output::Format::csv;
    emit(ctx, diag::to_json(report), [&](std::ostream& out) {
        output::Table t({{"VERDICT", output::Align::left},
                         {"GROUP", output::Align::left},
                         {"CHECK", output::Align::left},
                         {"REASON", output::Align::left}});
        for (const auto& c : report.checks)
            if (o.verbosity > 0 || c.verdict != diag::Verdict::pass)
                t.add_row({verdict_word(c.verdict), c.group, c.name, c.reason});
        if (csv) {
            t.render_csv(out);
            return;
        }
        if (o.verbosity < 9) {
            if (t.rows() > 0) // -V 0 on a healthy fabric: the summary line alone
                t.render_text(out);
        } else {
            // Each row followed by its counters.
            for (const auto& c : report.checks) {
                out << verdict_word(c.verdict) << "  " << c.group << "  " << c.name << "  "
                    << c.reason << "\n";
                output::KeyValues kv;
                flatten(c.counters, "", kv);
                kv.render_text(out);
            }
        }
        out << diag::summary_line(report) << "\n";
        if (o.clear)
            out << "counters stored in " << state << ": the next run reports only new errors\n";
    });
    if (report.fabric_unreachable)
        std::cerr << "dis-tool: error: " << unreachable << "\n";
    ctx.exit_code = diag::exit_code(report, o.strict);
}

} // namespace

void register_diag_commands(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<DiagOptions>();
    auto* cmd = app.add_subcommand("diag", "Health check of the fabric, its devices and the "
                                           "host's PCIe: every check PASS, WARN or FAIL");
    cmd->add_option("-V", o->verbosity,
                    "0: only problems, 1: every check (default), 9: every counter too")
        ->check(CLI::IsMember({0, 1, 9}))
        ->type_name("0|1|9");
    cmd->add_flag("--clear", o->clear,
                  "Store the current counters: the next run reports only new errors");
    cmd->add_option("--state", o->state,
                    "Baseline file of --clear (default: $XDG_STATE_HOME/dis/diag-baseline.json, "
                    "else ~/.local/state/dis/diag-baseline.json)")
        ->type_name("FILE");
    cmd->add_flag("--strict", o->strict, "A warning fails the check too (exit 1)");
    cmd->add_option("--fabric", o->fabric_dir,
                    "Fabric directory (default: $DIS_FABRIC, /run/dis as root, else "
                    "$XDG_RUNTIME_DIR/dis)")
        ->type_name("DIR");
    cmd->add_option("--config", o->config,
                    "Fabric config (disd(8)) to judge against: nodes, link width and speed")
        ->type_name("FILE");
    cmd->add_option("--sysfs-root", o->sysfs_root, "Host PCIe from this /sys tree (default /sys)")
        ->type_name("DIR");
    cmd->add_flag("--no-host", o->no_host, "Skip the host PCIe and IOMMU checks");
    cmd->add_option("--lendable", o->lendable,
                    "A lendable host device whose IOMMU and ACS isolation is checked (repeatable)")
        ->type_name("BDF");
    cmd->add_flag("--no-loopback", o->no_loopback, "Skip the loopback tests");
    cmd->add_option("--timeout", o->timeout_ms, "Per request and per loopback message, in ms")
        ->check(CLI::Range(100u, 600000u))
        ->type_name("MS");
    cmd->callback([&ctx, o] { run_diag(ctx, *o); });
}

} // namespace dis::cli
