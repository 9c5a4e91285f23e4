// `dis-tool device list|show|return|reclaim|reset|available|unavailable|history|test`: the
// lending pool of the fabric's lender nodes (dis-tool-device(1)). Parsing and printing only;
// the work is in libdis (dis/lending_client.hpp) and the lender daemons. `device borrow` is in
// lending_borrow.cpp, `device check` in device_cmds.cpp.
#include "lending_cli.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/lending_states.hpp"
#include "dis/lending_test.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <ostream>

namespace dis::cli {

namespace {

using nlohmann::json;
using namespace lend;

struct DeviceCmdOptions {
    LendingOptions lending;
    std::string fdid;
    std::optional<std::int64_t> lease_id; // return --lease-id
    std::string reason;                   // reclaim --reason
    std::string since;                    // history --since
    std::optional<std::uint32_t> limit;   // history --limit
    ChangeGuard guard;
};

bool csv(const Context& ctx) {
    return ctx.format() == output::Format::csv;
}

void render(const Context& ctx, const output::Table& t, std::ostream& out) {
    if (csv(ctx))
        t.render_csv(out);
    else
        t.render_text(out);
}

// Nodes that answered ping but not the lending request: named on stderr, exit 3 (as
// `fabric status` does for unreachable nodes), after what the others said was printed.
void report_unreachable(Context& ctx, const std::vector<lm::NodeFailure>& failures) {
    for (const auto& f : failures)
        std::cerr << "dis-tool: error: " << f.error << "\n";
    if (!failures.empty())
        ctx.exit_code = k_exit_fabric;
}

std::string borrowers_text(const lm::DeviceStatus& s) {
    std::string out;
    for (const auto& l : s.leases)
        out += (out.empty() ? "" : ", ") + std::string("node ") +
               std::to_string(l.borrower.node_id) + " pid " + std::to_string(l.borrower.pid);
    return out;
}

// The earliest expiry among the device's leases.
std::string lease_left_text(const lm::DeviceStatus& s, std::int64_t now) {
    if (s.leases.empty())
        return "";
    auto first = std::min_element(
        s.leases.begin(), s.leases.end(),
        [](const lm::Lease& a, const lm::Lease& b) { return a.expires < b.expires; });
    return format_left(first->expires, now);
}

lm::DeviceView show_device(const std::string& dir, lm::Fdid fdid) {
    lm::LenderClient c(dir, fdid.node_id());
    return c.show(fdid);
}

// ---- list, show, history ---------------------------------------------------------------------

void run_list(Context& ctx, const DeviceCmdOptions& opts) {
    std::string dir = fabric_dir(opts.lending);
    auto view = lm::list_pool(dir);
    const std::int64_t now = now_ms();
    json devices = json::array();
    for (const auto& d : view.devices)
        devices.push_back(lm::to_json(d));
    json unreachable = json::array();
    for (const auto& f : view.unreachable)
        unreachable.push_back({{"node_id", f.node_id}, {"error", f.error}});
    json doc = {{"fabric_dir", dir},
                {"nodes", view.nodes},
                {"unreachable", unreachable},
                {"devices", devices}};
    emit(ctx, doc, [&](std::ostream& out) {
        output::Table t({{"FDID", output::Align::left},
                         {"NODE", output::Align::right},
                         {"IDS", output::Align::left},
                         {"KIND", output::Align::left},
                         {"NAME", output::Align::left},
                         {"STATE", output::Align::left},
                         {"BORROWER", output::Align::left},
                         {"LEASE_LEFT", output::Align::right}});
        for (const auto& d : view.devices) {
            const auto& s = d.status;
            t.add_row({lm::to_string(s.info.fdid), std::to_string(d.node_id), ids_text(s.info),
                       d.kind, s.info.name, lm::to_string(s.state), borrowers_text(s),
                       lease_left_text(s, now)});
        }
        if (view.devices.empty() && !csv(ctx))
            out << "no lendable devices\n";
        else
            render(ctx, t, out);
    });
    report_unreachable(ctx, view.unreachable);
}

std::string bars_text(const std::vector<std::uint64_t>& bars) {
    std::string out;
    for (std::size_t i = 0; i < bars.size(); ++i) {
        std::uint64_t b = bars[i];
        std::string size = b >= (1u << 20) && b % (1u << 20) == 0 ? std::to_string(b >> 20) + "M"
                           : b >= 1024 && b % 1024 == 0           ? std::to_string(b >> 10) + "K"
                                                                  : std::to_string(b);
        out += (out.empty() ? "" : " ") + std::to_string(i) + ":" + size;
    }
    return out;
}

void run_show(Context& ctx, const DeviceCmdOptions& opts) {
    auto fdid = lm::parse_fdid(opts.fdid);
    auto d = show_device(fabric_dir(opts.lending), fdid);
    const auto& s = d.status;
    const std::int64_t now = now_ms();
    emit(ctx, lm::to_json(d), [&](std::ostream& out) {
        output::Table leases({{"LEASE", output::Align::right},
                              {"MODE", output::Align::left},
                              {"NODE", output::Align::right},
                              {"PID", output::Align::right},
                              {"UID", output::Align::right},
                              {"GRANTED", output::Align::left},
                              {"LEFT", output::Align::right},
                              {"RULE", output::Align::left}});
        for (const auto& l : s.leases)
            leases.add_row({std::to_string(l.id), lm::to_string(l.mode),
                            std::to_string(l.borrower.node_id), std::to_string(l.borrower.pid),
                            std::to_string(l.borrower.uid), format_time(l.granted),
                            format_left(l.expires, now), l.rule});
        if (csv(ctx)) {
            leases.render_csv(out); // the one table of show; the device is in -o json
            return;
        }
        char cls[16];
        std::snprintf(cls, sizeof cls, "%06x", s.info.class_code);
        output::KeyValues kv;
        kv.add("fdid", lm::to_string(s.info.fdid) + " (node " + std::to_string(d.node_id) +
                           ", index " + std::to_string(s.info.fdid.index()) + ")");
        kv.add("name", s.info.name);
        kv.add("kind", d.kind);
        kv.add("ids", ids_text(s.info) + " class " + cls);
        kv.add("bars", bars_text(d.bars));
        if (d.physfn)
            kv.add("physfn", lm::to_string(*d.physfn));
        kv.add("state", std::string(lm::to_string(s.state)) + " since " + format_time(s.since) +
                            (s.reason.empty() ? "" : " (" + s.reason + ")"));
        kv.add("waiters", std::to_string(s.waiters));
        kv.render_text(out);
        if (!s.leases.empty()) {
            out << "\n";
            leases.render_text(out);
        }
    });
}

void run_history(Context& ctx, const DeviceCmdOptions& opts) {
    std::optional<lm::Fdid> fdid;
    if (!opts.fdid.empty())
        fdid = lm::parse_fdid(opts.fdid);
    std::optional<std::int64_t> since;
    if (!opts.since.empty())
        since = parse_since(opts.since, now_ms());
    auto view = lm::pool_history(fabric_dir(opts.lending), fdid, since, opts.limit);
    json rows = json::array();
    for (const auto& r : view.rows)
        rows.push_back(lm::to_json(r));
    json unreachable = json::array();
    for (const auto& f : view.unreachable)
        unreachable.push_back({{"node_id", f.node_id}, {"error", f.error}});
    json doc = {{"nodes", view.nodes}, {"unreachable", unreachable}, {"rows", rows}};
    emit(ctx, doc, [&](std::ostream& out) {
        output::Table t({{"TIME", output::Align::left},
                         {"FDID", output::Align::left},
                         {"EVENT", output::Align::left},
                         {"FROM", output::Align::left},
                         {"TO", output::Align::left},
                         {"BORROWER", output::Align::left},
                         {"LEASE", output::Align::right},
                         {"ACTOR", output::Align::left},
                         {"REASON", output::Align::left}});
        for (const auto& r : view.rows)
            t.add_row({format_time(r.time), lm::to_string(r.fdid), lm::to_string(r.event),
                       lm::to_string(r.from), lm::to_string(r.to),
                       r.borrower ? borrower_text(*r.borrower) : "",
                       r.lease_id ? std::to_string(*r.lease_id) : "", r.actor, r.reason});
        if (view.rows.empty() && !csv(ctx))
            out << "no history\n";
        else
            render(ctx, t, out);
    });
    report_unreachable(ctx, view.unreachable);
}

// ---- return ----------------------------------------------------------------------------------

// The lease `device return` gives back: --lease-id, else the only lease, else the only one of
// this uid.
const lm::Lease& lease_to_return(const lm::DeviceView& d, std::optional<std::int64_t> id) {
    const auto& s = d.status;
    const std::string who = "fdid " + lm::to_string(s.info.fdid) + " is " + lm::to_string(s.state);
    if (s.leases.empty())
        throw Error(ErrorKind::invalid_input, who + ": nothing to return (no lease)");
    if (id) {
        for (const auto& l : s.leases)
            if (l.id == *id)
                return l;
        throw Error(ErrorKind::not_found, who + ": it has no lease " + std::to_string(*id) +
                                              " (see dis-tool device show)");
    }
    if (s.leases.size() == 1)
        return s.leases.front();
    const lm::Lease* mine = nullptr;
    int count = 0;
    for (const auto& l : s.leases)
        if (l.borrower.uid == ::geteuid()) {
            mine = &l;
            ++count;
        }
    if (count == 1)
        return *mine;
    throw Error(ErrorKind::invalid_input,
                who + " by " + std::to_string(s.leases.size()) +
                    " leases: name one with --lease-id (see dis-tool device show)");
}

void run_return(Context& ctx, const DeviceCmdOptions& opts) {
    auto fdid = lm::parse_fdid(opts.fdid);
    std::string dir = fabric_dir(opts.lending);
    lm::LenderClient c(dir, fdid.node_id());
    auto before = c.show(fdid);
    lm::Lease lease = lease_to_return(before, opts.lease_id);
    const std::int64_t now = now_ms();
    c.return_lease(fdid, lease.id);
    auto after = c.show(fdid);
    json doc = {{"fdid", lm::to_string(fdid)},
                {"lease", lm::to_json(lease)},
                {"device", lm::to_json(after)}};
    emit(ctx, doc, [&](std::ostream& out) {
        out << "returned " << lm::to_string(fdid) << " " << lease_text(lease, now) << "; now "
            << lm::to_string(after.status.state) << "\n";
    });
}

// ---- reclaim, reset, available, unavailable: guarded state changes --------------------------

struct Change {
    const char* action; // "reclaim"
    lm::Event event;
    lm::State target; // where the device ends up when all goes well
};

// Refuses (as the lender would, from the one transition table) a change the device's state
// does not allow, so that --dry-run says so too.
void check_allowed(const lm::DeviceView& d, const Change& change) {
    const auto& s = d.status;
    lm::GuardFacts facts;
    facts.leases_after = 0;
    std::string holder;
    for (const auto& l : s.leases)
        holder += (holder.empty() ? "" : ", ") + borrower_text(l.borrower);
    lm::check_transition(s.info.fdid, s.state, change.event, facts, holder);
}

std::string plan_text(const lm::DeviceView& d, const Change& change, std::int64_t now) {
    const auto& s = d.status;
    std::string text = std::string(change.action) + " " + lm::to_string(s.info.fdid) +
                       (s.info.name.empty() ? "" : " (" + s.info.name + ")") + ": " +
                       lm::to_string(s.state) + " -> " + lm::to_string(change.target);
    if (change.event == lm::Event::reclaim) {
        text += "; drops";
        for (std::size_t i = 0; i < s.leases.size(); ++i)
            text += (i ? ", " : " ") + lease_text(s.leases[i], now);
        text += "; the device is quiesced and reset";
    }
    return text;
}

void run_change(Context& ctx, const DeviceCmdOptions& opts, const Change& change) {
    auto fdid = lm::parse_fdid(opts.fdid);
    std::string dir = fabric_dir(opts.lending);
    lm::LenderClient c(dir, fdid.node_id());
    auto before = c.show(fdid);
    check_allowed(before, change);
    const std::int64_t now = now_ms();
    const std::string plan = plan_text(before, change, now);
    json leases = json::array();
    for (const auto& l : before.status.leases)
        leases.push_back(lm::to_json(l));
    json doc = {{"fdid", lm::to_string(fdid)},
                {"action", change.action},
                {"from", lm::to_string(before.status.state)}};
    if (!confirm_change(opts.guard, plan)) {
        doc["dry_run"] = true;
        doc["to"] = lm::to_string(change.target);
        doc["leases"] = leases;
        emit(ctx, doc, [&](std::ostream& out) { out << "dry run: would " << plan << "\n"; });
        return;
    }
    doc["dry_run"] = false;
    std::string outcome;
    switch (change.event) {
    case lm::Event::reclaim: {
        auto dropped =
            c.reclaim(fdid, opts.reason.empty() ? "dis-tool device reclaim" : opts.reason);
        leases = json::array();
        for (const auto& l : dropped)
            leases.push_back(lm::to_json(l));
        doc["leases"] = leases;
        break;
    }
    case lm::Event::reset:
        outcome = c.reset(fdid);
        doc["outcome"] = outcome;
        break;
    case lm::Event::make_available:
        c.make_available(fdid);
        break;
    default:
        c.make_unavailable(fdid);
        break;
    }
    auto after = c.show(fdid);
    doc["to"] = lm::to_string(after.status.state);
    doc["device"] = lm::to_json(after);
    emit(ctx, doc, [&](std::ostream& out) {
        out << change.action << " " << lm::to_string(fdid) << ": "
            << lm::to_string(before.status.state) << " -> " << lm::to_string(after.status.state);
        if (!outcome.empty())
            out << " (reset " << outcome << ")";
        if (change.event == lm::Event::reclaim)
            for (std::size_t i = 0; i < before.status.leases.size(); ++i)
                out << (i ? ", " : "; dropped ") << lease_text(before.status.leases[i], now);
        out << "\n";
    });
    // A reset that ran and failed is a finding about the device, not an error of the tool.
    if (!outcome.empty() && outcome != "ok") {
        std::cerr << "dis-tool: error: fdid " << lm::to_string(fdid) << ": reset "
                  << (outcome == "timed_out" ? "timed out" : "failed") << ": the device is "
                  << lm::to_string(after.status.state) << " (quarantined until a reset succeeds)\n";
        ctx.exit_code = k_exit_check_failed;
    }
}

// ---- test -----------------------------------------------------------------------------------

void run_test(Context& ctx, const DeviceCmdOptions& opts) {
    lm::DeviceTestOptions to;
    to.fdid = lm::parse_fdid(opts.fdid);
    to.fabric_dir = fabric_dir(opts.lending);
    to.local_node = opts.lending.local_node.value_or(0);
    const bool text = ctx.format() != output::Format::json;
    const bool progress = !text && ::isatty(STDERR_FILENO);
    std::size_t done = 0;
    // Text prints each test as pcitest does, as it finishes; JSON shows progress on a terminal.
    to.suite.on_result = [&](const endpoint::TestResult& r) {
        ++done;
        if (text) {
            std::cout << r.name << ":"
                      << std::string(r.name.size() < 31 ? 31 - r.name.size() : 1, ' ')
                      << endpoint::to_string(r.outcome);
            if (r.outcome != endpoint::Outcome::okay && !r.detail.empty())
                std::cout << " (" << r.detail << ")";
            std::cout << std::endl;
        } else if (progress) {
            std::cerr << "\rdevice test " << lm::to_string(to.fdid) << ": " << done << " tests, "
                      << r.name << "\x1b[K" << std::flush;
        }
    };
    auto report = lm::test_device(to);
    if (progress)
        std::cerr << "\r\x1b[K" << std::flush;
    std::size_t passed = 0, failed = 0, skipped = 0;
    json tests = json::array();
    for (const auto& r : report.results) {
        passed += r.outcome == endpoint::Outcome::okay;
        failed += r.outcome == endpoint::Outcome::failed;
        skipped += r.outcome == endpoint::Outcome::skipped;
        tests.push_back({{"name", r.name},
                         {"outcome", endpoint::to_string(r.outcome)},
                         {"ok", r.outcome != endpoint::Outcome::failed},
                         {"detail", r.detail},
                         {"elapsed_us", r.elapsed.count()}});
    }
    json doc = {{"fdid", lm::to_string(to.fdid)},
                {"passed", passed},
                {"failed", failed},
                {"skipped", skipped},
                {"lost", report.lost.empty() ? json(nullptr) : json(report.lost)},
                {"tests", tests}};
    if (!text)
        output::render_json(std::cout, doc);
    else
        std::cout << report.results.size() << " tests on " << lm::to_string(to.fdid) << ": "
                  << passed << " OKAY, " << failed << " FAILED, " << skipped << " SKIPPED\n";
    if (failed > 0)
        ctx.exit_code = k_exit_check_failed;
}

// ---- registration ----------------------------------------------------------------------------

CLI::App* add_verb(CLI::App* device, const std::string& name, const std::string& help,
                   DeviceCmdOptions& opts, bool takes_fdid = true) {
    auto* cmd = device->add_subcommand(name, help);
    if (takes_fdid)
        cmd->add_option("fdid", opts.fdid, "The device's fabric device id (0x80000)")
            ->required()
            ->type_name("FDID");
    add_fabric_option(cmd, opts.lending);
    return cmd;
}

} // namespace

void register_lending_commands(CLI::App& app, Context& ctx) {
    CLI::App* device = app.get_subcommand("device");
    device->description("Host devices for lending (check) and the fabric's lending pool");
    auto opts = std::make_shared<DeviceCmdOptions>();

    add_verb(device, "list",
             "The pool across all reachable nodes: fdid, node, ids, name, state, borrower, lease "
             "left",
             *opts, false)
        ->callback([&ctx, opts] { run_list(ctx, *opts); });
    add_verb(device, "show", "One device: ids, BARs, state, leases", *opts)->callback([&ctx, opts] {
        run_show(ctx, *opts);
    });

    lend::register_borrow_command(device, ctx);
    lend::register_hostlend_commands(device, ctx); // lend, unlend, vfs (hostlend_cmds.cpp)

    auto* ret = add_verb(device, "return",
                         "Return a device's lease held elsewhere (a `borrow --hold`, say)", *opts);
    ret->add_option("--lease-id", opts->lease_id,
                    "The lease to return when the device is shared by several");
    ret->callback([&ctx, opts] { run_return(ctx, *opts); });

    auto* reclaim = add_verb(device, "reclaim",
                             "Forced: drop every lease, quiesce and reset the device (shows the "
                             "borrower, asks on a terminal)",
                             *opts);
    reclaim->add_option("--reason", opts->reason, "Why, for the borrower and the history")
        ->type_name("TEXT");
    add_change_guard_options(reclaim, opts->guard);
    reclaim->callback([&ctx, opts] {
        run_change(ctx, *opts, {"reclaim", lm::Event::reclaim, lm::State::available});
    });

    auto* reset = add_verb(device, "reset",
                           "Reset an available or quarantined (failed) device; a reset that "
                           "succeeds restores a quarantined one",
                           *opts);
    add_change_guard_options(reset, opts->guard);
    reset->callback([&ctx, opts] {
        run_change(ctx, *opts, {"reset", lm::Event::reset, lm::State::available});
    });

    auto* available =
        add_verb(device, "available", "Offer an unavailable device for lending", *opts);
    add_change_guard_options(available, opts->guard);
    available->callback([&ctx, opts] {
        run_change(ctx, *opts, {"available", lm::Event::make_available, lm::State::available});
    });

    auto* unavailable = add_verb(device, "unavailable",
                                 "Take an available device back for the lender's own use", *opts);
    add_change_guard_options(unavailable, opts->guard);
    unavailable->callback([&ctx, opts] {
        run_change(ctx, *opts,
                   {"unavailable", lm::Event::make_unavailable, lm::State::unavailable});
    });

    auto* history = add_verb(device, "history",
                             "The audit log: one row per transition (all nodes, or one device's)",
                             *opts, false);
    history->add_option("fdid", opts->fdid, "Only this device")->type_name("FDID");
    history
        ->add_option("--since", opts->since,
                     "Only rows since TIME: ISO 8601 (2026-12-01T18:30:00Z) or ago (10m, 2h, 1d)")
        ->type_name("TIME");
    history->add_option("--limit", opts->limit, "At most N rows per node")->type_name("N");
    history->callback([&ctx, opts] { run_history(ctx, *opts); });

    auto* test = add_verb(device, "test",
                          "The kernel's pci_endpoint_test suite on an epf-test device, borrowed "
                          "exclusively through SmartIO (OKAY/FAILED per test, exit 1 on a failure)",
                          *opts);
    add_local_node_option(test, opts->lending);
    test->callback([&ctx, opts] { run_test(ctx, *opts); });
}

} // namespace dis::cli
