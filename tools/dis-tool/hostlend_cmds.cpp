// `dis-tool device lend | unlend | vfs`: a real host device into the local node's pool through
// vfio-pci and back (dis-tool-device(1); the library side is dis/hostlend.hpp).
#include "cli.hpp"
#include "lending_cli.hpp"

#include "dis/error.hpp"
#include "dis/hostlend.hpp"
#include "dis/readiness.hpp"
#include "dis/strings.hpp"

#include <iostream>
#include <memory>
#include <ostream>

namespace dis::cli::lend {

namespace {

namespace hl = dis::hostlend;
using json = nlohmann::json;

struct HostLendOptions {
    std::string bdf;
    std::string sysfs_root; // empty: the live /sys
    std::string proc_root = "/proc";
    std::string state_dir; // empty: hl::default_state_dir()
    std::string name;
    std::optional<std::uint32_t> node;
    int count = -1;
    bool force = false;
    std::uint32_t verify_timeout_ms = 10000;
    LendingOptions lending;
    ChangeGuard guard;
};

std::string sysfs_of(const HostLendOptions& o) {
    return o.sysfs_root.empty() ? "/sys" : o.sysfs_root;
}
std::string state_dir_of(const HostLendOptions& o) {
    return o.state_dir.empty() ? hl::default_state_dir() : o.state_dir;
}
pci::Topology scan_of(const HostLendOptions& o) {
    return pci::scan(o.sysfs_root.empty() ? pci::Source::live() : pci::Source::sysfs(o.sysfs_root));
}

// One audit row per step; a lender that stops answering half-way does not stop a rollback.
class Auditor {
public:
    Auditor(lm::LenderClient* client, std::string subject)
        : m_client(client), m_subject(std::move(subject)) {}
    void note(const std::string& action, const std::string& result, const std::string& detail) {
        if (m_client == nullptr)
            return;
        try {
            m_client->audit_note(m_fdid, m_subject, action, result, detail);
        } catch (const std::exception& e) {
            if (m_failed.empty())
                m_failed = e.what();
        }
    }
    void set_fdid(std::optional<lm::Fdid> f) { m_fdid = f; }
    const std::string& failed() const { return m_failed; }
    hl::ExecOptions exec_options(const std::string& action, std::uint32_t verify_ms,
                                 bool progress) {
        hl::ExecOptions eo;
        eo.verify_timeout = std::chrono::milliseconds(verify_ms);
        eo.on_step = [this, action, progress](const std::string& phase, const hl::StepResult& r) {
            note(action + " " + phase + " " + std::to_string(r.number) + ": " + r.description,
                 r.ok ? "ok" : "failed", r.error);
            if (progress)
                std::cout << "  " << (phase == "rollback" ? "rollback " : "") << r.number << ". "
                          << r.description << (r.ok ? "  ok" : "  FAILED: " + r.error) << "\n";
        };
        return eo;
    }

private:
    lm::LenderClient* m_client;
    std::string m_subject;
    std::optional<lm::Fdid> m_fdid;
    std::string m_failed;
};

void print_plan(std::ostream& out, const hl::Plan& plan, const std::string& root) {
    for (std::size_t i = 0; i < plan.steps.size(); ++i)
        out << "  " << i + 1 << ". " << plan.steps[i].what << ": "
            << hl::describe(plan.steps[i], root) << "\n";
}

std::string rollback_text(const hl::ExecResult& r) {
    if (r.rolled_back)
        return "rolled back: " + hl::to_string(r.after);
    std::string failed;
    for (const auto& s : r.rollback)
        if (!s.ok)
            failed += (failed.empty() ? "" : "; ") + s.description + ": " + s.error;
    return "ROLLBACK FAILED (" + failed + "), now " + hl::to_string(r.after);
}

// ---- lend

void run_lend(Context& ctx, const HostLendOptions& o) {
    const pci::Bdf bdf = pci::Bdf::parse(o.bdf);
    const std::string root = sysfs_of(o);
    const std::string state_dir = state_dir_of(o);
    pci::Topology topo = scan_of(o);
    pci::ReadinessReport ready = pci::check_readiness(topo, bdf);
    // Mandatory: never skipped, not even by --force.
    hl::InUseReport in_use = hl::check_in_use(topo, bdf, o.proc_root);
    if (in_use.in_use())
        throw Error(ErrorKind::busy, bdf.to_string() + " is " + in_use.summary() +
                                         ": not lending it (--force does not override this)");
    std::vector<std::string> reasons;
    for (const auto& f : ready.findings)
        if (f.severity == pci::Severity::error)
            reasons.push_back(f.check + ": " + f.message);
    if (!reasons.empty() && !o.force)
        throw Error(ErrorKind::check_failed,
                    bdf.to_string() + " is not ready for lending: " + join(reasons, "; ") +
                        " (--force lends it anyway)");
    if (auto rec = hl::load_record(state_dir, bdf))
        throw Error(ErrorKind::invalid_input, bdf.to_string() + " is lent already (" +
                                                  hl::record_path(state_dir, bdf) +
                                                  "): device unlend it first");
    hl::Plan plan = hl::lend_plan(root, bdf);
    std::string name = o.name;
    if (name.empty()) {
        std::string b = bdf.to_string();
        for (auto& c : b)
            if (c == ':')
                c = '-';
        name = plan.original.driver.value_or("pci") + "-" + b;
    }
    const std::string spec = "vfio:" + bdf.to_string() + ",name=" + name;
    const std::string dir = fabric_dir(o.lending);

    json doc{{"action", "lend"},
             {"bdf", bdf.to_string()},
             {"spec", spec},
             {"forced", reasons},
             {"plan", hl::to_json(plan, root)}};
    const std::string line = "lend " + bdf.to_string() + " (" + hl::to_string(plan.original) +
                             "): bind it to vfio-pci and add it to the pool as '" + spec + "'";
    if (o.guard.dry_run) {
        doc["dry_run"] = true;
        emit(ctx, doc, [&](std::ostream& out) {
            for (const auto& r : reasons)
                out << "forced past: " << r << "\n";
            out << "dry run: " << line << "; would write, in order:\n";
            print_plan(out, plan, root);
            out << "  then: dev_add '" << spec << "' to node "
                << (o.node ? std::to_string(*o.node) : std::string("(the local node)")) << " of "
                << dir << "\nnothing changed\n";
        });
        return;
    }
    // The lender must answer before anything changes.
    const std::uint32_t node = o.node ? *o.node : local_node(dir, o.lending);
    lm::LenderClient client(dir, node);
    confirm_change(o.guard, line);
    const bool text = ctx.format() != output::Format::json;
    for (const auto& r : reasons)
        if (text)
            std::cout << "forced past: " << r << "\n";
    if (text)
        std::cout << line << "\n";

    Auditor audit(&client, bdf.to_string());
    audit.note("lend: record " + hl::to_string(plan.original), "ok",
               reasons.empty() ? "" : "forced past: " + join(reasons, "; "));
    hl::Record rec;
    rec.bdf = bdf;
    rec.original = plan.original;
    rec.reset_methods = plan.reset_methods;
    rec.name = name;
    rec.node_id = node;
    rec.fabric_dir = dir;
    rec.lent_ms = now_ms();
    hl::save_record(state_dir, rec); // before the first write: unlend can always undo
    hl::RealSysfs sysfs(root);
    hl::ExecResult res =
        hl::execute(plan, sysfs, audit.exec_options("lend", o.verify_timeout_ms, text));
    if (!res.ok) {
        if (res.rolled_back)
            hl::remove_record(state_dir, bdf);
        const auto& step = res.steps.back();
        throw Error(ErrorKind::os, "lend of " + bdf.to_string() + " failed at step " +
                                       std::to_string(step.number) + " of " +
                                       std::to_string(plan.steps.size()) + " (" + step.description +
                                       "): " + res.error + "; " + rollback_text(res));
    }
    std::vector<lm::DeviceView> added;
    try {
        added = client.add_device(spec);
    } catch (const Error& e) {
        audit.note("lend: dev_add " + spec, "failed", e.what());
        hl::ExecResult rb =
            hl::run_rollback(bdf, hl::restore_steps(root, bdf, plan.original), sysfs,
                             audit.exec_options("lend", o.verify_timeout_ms, text));
        if (rb.rolled_back)
            hl::remove_record(state_dir, bdf);
        throw Error(e.kind(), "node " + std::to_string(node) + " did not take " + bdf.to_string() +
                                  " into its pool: " + e.what() + "; " + rollback_text(rb));
    }
    const lm::Fdid fdid = added.front().status.info.fdid;
    rec.fdid = fdid.value;
    hl::save_record(state_dir, rec);
    audit.set_fdid(fdid);
    audit.note("lend: in the pool of node " + std::to_string(node), "ok", spec);

    doc["dry_run"] = false;
    doc["result"] = hl::to_json(res);
    doc["node_id"] = node;
    doc["fdid"] = lm::to_string(fdid);
    doc["record"] = hl::record_path(state_dir, bdf);
    json devs = json::array();
    for (const auto& d : added)
        devs.push_back(lm::to_json(d));
    doc["devices"] = devs;
    if (!audit.failed().empty())
        doc["audit_error"] = audit.failed();
    emit(ctx, doc, [&](std::ostream& out) {
        out << "lent " << bdf.to_string() << " as fdid " << lm::to_string(fdid) << " (" << name
            << ") in the pool of node " << node << "; record " << hl::record_path(state_dir, bdf)
            << "\n";
        if (!audit.failed().empty())
            out << "warning: audit rows missing: " << audit.failed() << "\n";
    });
}

// ---- unlend

void run_unlend(Context& ctx, const HostLendOptions& o) {
    const pci::Bdf bdf = pci::Bdf::parse(o.bdf);
    const std::string root = sysfs_of(o);
    const std::string state_dir = state_dir_of(o);
    auto rec = hl::load_record(state_dir, bdf);
    if (!rec)
        throw Error(ErrorKind::not_found, bdf.to_string() + " is not lent by dis-tool (no " +
                                              hl::record_path(state_dir, bdf) + ")");
    const std::string dir = o.lending.fabric_dir.empty() ? rec->fabric_dir : fabric_dir(o.lending);
    std::unique_ptr<lm::LenderClient> client;
    std::string unreachable;
    std::optional<lm::DeviceView> view;
    try {
        client = std::make_unique<lm::LenderClient>(dir, rec->node_id);
        if (rec->fdid) {
            try {
                view = client->show(lm::Fdid{*rec->fdid});
            } catch (const Error& e) {
                if (e.kind() != ErrorKind::not_found)
                    throw;
            }
        }
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::fabric_down || !o.force)
            throw Error(e.kind(), std::string(e.what()) +
                                      (e.kind() == ErrorKind::fabric_down
                                           ? " (--force gives the device back without the pool)"
                                           : ""));
        unreachable = e.what();
        client.reset();
    }
    const bool in_pool = view && view->status.state != lm::State::removed;
    const bool borrowed = in_pool && !view->status.leases.empty();
    if (borrowed && !o.force)
        throw Error(ErrorKind::busy, "fdid " + lm::to_string(view->status.info.fdid) + " (" +
                                         bdf.to_string() + ") is " +
                                         lm::to_string(view->status.state) + " by " +
                                         borrower_text(view->status.leases.front().borrower) +
                                         ": not unlending it (--force reclaims it first)");
    hl::Plan plan = hl::unlend_plan(root, bdf, rec->original);
    json doc{{"action", "unlend"}, {"bdf", bdf.to_string()}, {"plan", hl::to_json(plan, root)}};
    if (rec->fdid)
        doc["fdid"] = lm::to_string(lm::Fdid{*rec->fdid});
    std::string pool_step = !in_pool   ? std::string()
                            : borrowed ? "dev_remove " + lm::to_string(view->status.info.fdid) +
                                             " force (reclaims it from its borrower first)"
                                       : "dev_remove " + lm::to_string(view->status.info.fdid);
    const std::string line = "unlend " + bdf.to_string() + ": " +
                             (pool_step.empty() ? "" : pool_step + ", then ") + "restore " +
                             hl::to_string(rec->original);
    if (o.guard.dry_run) {
        doc["dry_run"] = true;
        emit(ctx, doc, [&](std::ostream& out) {
            out << "dry run: " << line << "; would write, in order:\n";
            if (!pool_step.empty())
                out << "  first: " << pool_step << " on node " << rec->node_id << "\n";
            print_plan(out, plan, root);
            out << "nothing changed\n";
        });
        return;
    }
    confirm_change(o.guard, line);
    const bool text = ctx.format() != output::Format::json;
    if (text)
        std::cout << line << "\n";
    if (!unreachable.empty() && text)
        std::cout << "warning: " << unreachable << ": giving the device back without the pool\n";
    Auditor audit(client.get(), bdf.to_string());
    if (in_pool) {
        audit.set_fdid(view->status.info.fdid);
        client->remove_device(view->status.info.fdid, borrowed);
        audit.note("unlend: " + pool_step, "ok", "");
        rec->fdid.reset();
        hl::save_record(state_dir, *rec);
    }
    hl::RealSysfs sysfs(root);
    hl::ExecResult res =
        hl::execute(plan, sysfs, audit.exec_options("unlend", o.verify_timeout_ms, text));
    if (!res.ok) {
        const auto& step = res.steps.back();
        throw Error(ErrorKind::os,
                    "unlend of " + bdf.to_string() + " failed at step " +
                        std::to_string(step.number) + " of " + std::to_string(plan.steps.size()) +
                        " (" + step.description + "): " + res.error + "; " + rollback_text(res) +
                        (in_pool ? "; it left the pool: device unlend again once fixed" : "") +
                        " (record kept: " + hl::record_path(state_dir, bdf) + ")");
    }
    hl::remove_record(state_dir, bdf);
    doc["dry_run"] = false;
    doc["result"] = hl::to_json(res);
    if (!audit.failed().empty())
        doc["audit_error"] = audit.failed();
    emit(ctx, doc, [&](std::ostream& out) {
        out << "unlent " << bdf.to_string() << ": " << hl::to_string(res.after) << "\n";
    });
}

// ---- vfs

void run_vfs(Context& ctx, const HostLendOptions& o) {
    const pci::Bdf bdf = pci::Bdf::parse(o.bdf);
    const std::string root = sysfs_of(o);
    const std::string state_dir = state_dir_of(o);
    if (o.count < 0)
        throw Error(ErrorKind::invalid_input, "--count N is required (0 disables the VFs)");
    hl::Plan plan = hl::vfs_plan(root, bdf, o.count);
    // VFs that go away must be idle and not lent.
    if (plan.original_vfs != plan.target_vfs && plan.original_vfs > 0) {
        pci::Topology topo = scan_of(o);
        for (const auto& d : topo.devices()) {
            if (!d.physfn || *d.physfn != bdf)
                continue;
            if (hl::load_record(state_dir, d.bdf))
                throw Error(ErrorKind::busy, "VF " + d.bdf.to_string() +
                                                 " is lent: device unlend it before changing "
                                                 "the VF count of " +
                                                 bdf.to_string());
            auto use = hl::check_in_use(topo, d.bdf, o.proc_root);
            for (const auto& r : use.reasons)
                if (r.bdf == d.bdf)
                    throw Error(ErrorKind::busy, "VF " + d.bdf.to_string() + " is " +
                                                     use.summary() + ": not changing the VFs");
        }
    }
    json doc{{"action", "vfs"}, {"bdf", bdf.to_string()}, {"plan", hl::to_json(plan, root)}};
    const std::string line = "vfs " + bdf.to_string() + ": sriov_numvfs " +
                             std::to_string(plan.original_vfs) + " -> " +
                             std::to_string(plan.target_vfs);
    if (o.guard.dry_run) {
        doc["dry_run"] = true;
        emit(ctx, doc, [&](std::ostream& out) {
            out << "dry run: " << line << "; would write, in order:\n";
            print_plan(out, plan, root);
            out << "nothing changed\n";
        });
        return;
    }
    confirm_change(o.guard, line);
    const bool text = ctx.format() != output::Format::json;
    if (text)
        std::cout << line << "\n";
    hl::RealSysfs sysfs(root);
    Auditor none(nullptr, bdf.to_string());
    hl::ExecResult res =
        hl::execute(plan, sysfs, none.exec_options("vfs", o.verify_timeout_ms, text));
    if (!res.ok)
        throw Error(ErrorKind::os,
                    "vfs " + bdf.to_string() + " failed at step " +
                        std::to_string(res.steps.back().number) + " (" +
                        res.steps.back().description + "): " + res.error + "; " +
                        (res.rolled_back
                             ? "rolled back to " + std::to_string(plan.original_vfs) + " VFs"
                             : "ROLLBACK FAILED"));
    doc["dry_run"] = false;
    doc["result"] = hl::to_json(res);
    emit(ctx, doc,
         [&](std::ostream& out) { out << bdf.to_string() << ": " << plan.target_vfs << " VFs\n"; });
}

void add_host_options(CLI::App* cmd, HostLendOptions& o) {
    cmd->add_option("bdf", o.bdf, "The host device (BDF, domain optional)")
        ->required()
        ->type_name("BDF");
    cmd->add_option("--sysfs-root", o.sysfs_root, "Read and write this copy of /sys (tests)")
        ->type_name("DIR");
    cmd->add_option("--proc-root", o.proc_root,
                    "Read mounts and swaps from this /proc (default /proc)")
        ->type_name("DIR");
    cmd->add_option("--state-dir", o.state_dir,
                    "Where lend records the original binding (default /run/dis/hostlend as root, "
                    "else $XDG_RUNTIME_DIR/dis/hostlend)")
        ->type_name("DIR");
    cmd->add_option("--verify-timeout", o.verify_timeout_ms,
                    "Milliseconds a driver gets to bind (default 10000)")
        ->type_name("MS");
    add_change_guard_options(cmd, o.guard);
}

} // namespace

void register_hostlend_commands(CLI::App* device, Context& ctx) {
    auto lend = std::make_shared<HostLendOptions>();
    auto* l = device->add_subcommand(
        "lend", "Bind a host device to vfio-pci and add it to the local node's pool");
    add_host_options(l, *lend);
    add_fabric_option(l, lend->lending);
    l->add_option("--node", lend->node,
                  "The lender node whose pool gets it (default: $DIS_NODE_ID, else the lowest "
                  "local node)");
    l->add_option("--name", lend->name, "The device's name in the pool (default DRIVER-BDF)");
    l->add_flag("--force", lend->force,
                "Lend a device the readiness check calls not ready (never one in use)");
    l->callback([&ctx, lend] { run_lend(ctx, *lend); });

    auto unlend = std::make_shared<HostLendOptions>();
    auto* u = device->add_subcommand(
        "unlend", "Take a lent host device out of the pool and give it back to its driver");
    add_host_options(u, *unlend);
    add_fabric_option(u, unlend->lending);
    u->add_flag("--force", unlend->force,
                "Reclaim it from a borrower first; without a reachable lender, skip the pool");
    u->callback([&ctx, unlend] { run_unlend(ctx, *unlend); });

    auto vfs = std::make_shared<HostLendOptions>();
    auto* v = device->add_subcommand("vfs", "Set the number of SR-IOV virtual functions");
    add_host_options(v, *vfs);
    v->add_option("--count", vfs->count, "Number of VFs (0 disables them)")
        ->required()
        ->type_name("N");
    v->callback([&ctx, vfs] { run_vfs(ctx, *vfs); });
}

} // namespace dis::cli::lend
