// The software fabric's commands: `fabric start|stop|status`, `topology`, `probe`,
// `segment list`. Parsing and printing only; the work is in libdis (local_fabric.hpp,
// topology.hpp). JSON schemas: dis-tool-fabric(1), dis-tool-topology(1), dis-tool-probe(1),
// dis-tool-segment(1).
#include "cli.hpp"

#include "dis/error.hpp"
#include "dis/fabric_model.hpp"
#include "dis/local_fabric.hpp"
#include "dis/sisci.hpp"
#include "dis/topology.hpp"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>

namespace dis::cli {

namespace {

using nlohmann::json;
namespace fab = dis::fabric;

struct FabricOptions {
    std::string fabric_dir;        // --fabric; empty: DIS_FABRIC or the default
    std::optional<unsigned> nodes; // default: the config's nodes, else 3
    std::string config;
    unsigned ready_timeout_ms = 5000;
    std::optional<std::uint32_t> node;       // segment list --node
    std::optional<std::uint32_t> local_node; // topology/probe --local-node
    std::uint32_t adapter = 0;
    std::uint32_t target = 0; // probe <node>
};

std::string fabric_dir(const FabricOptions& opts) {
    return fab::resolve_fabric_dir(
        opts.fabric_dir.empty() ? std::nullopt : std::optional<std::string>(opts.fabric_dir));
}

// libsisci reads its fabric and node from the environment at SCIInitialize, like the
// vendor library reads its driver configuration; set them for this process only.
void select_sisci_node(const std::string& dir, const std::optional<std::uint32_t>& local_node) {
    ::setenv("DIS_FABRIC", dir.c_str(), 1);
    if (local_node)
        ::setenv("DIS_NODE_ID", std::to_string(*local_node).c_str(), 1);
}

void add_fabric_option(CLI::App* cmd, FabricOptions& opts) {
    cmd->add_option("--fabric", opts.fabric_dir,
                    "Fabric directory (default: $DIS_FABRIC, /run/dis as root, else "
                    "$XDG_RUNTIME_DIR/dis)")
        ->type_name("DIR");
}

std::string self_dir() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.parent_path().string();
}

std::string format_uptime(std::uint64_t s) {
    std::uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    std::string out;
    if (d)
        out += std::to_string(d) + "d";
    if (d || h)
        out += std::to_string(h) + "h";
    if (d || h || m)
        out += std::to_string(m) + "m";
    return out + std::to_string(sec) + "s";
}

// The nodes' and segments' JSON is the model's one schema (dis/fabric_model.hpp).
json adapters_json(const std::vector<fab::AdapterInfo>& adapters) {
    return json(adapters);
}

bool csv(const Context& ctx) {
    return ctx.format() == output::Format::csv;
}

// A table as text, or with -o csv as CSV (header row, then one row per line).
void render(const Context& ctx, const output::Table& t, std::ostream& out) {
    if (csv(ctx))
        t.render_csv(out);
    else
        t.render_text(out);
}

std::string adapters_text(const std::vector<fab::AdapterInfo>& adapters) {
    std::string out;
    for (const auto& a : adapters) {
        if (!out.empty())
            out += ", ";
        out += std::to_string(a.adapter_no);
        if (!a.card_type.empty())
            out += " (" + a.card_type + ")";
    }
    return out;
}

std::string link_text(bool up, std::uint32_t width, const std::string& speed) {
    std::string out = up ? "up" : "down";
    if (width)
        out += " x" + std::to_string(width);
    if (!speed.empty())
        out += " " + speed;
    return out;
}

// ---- fabric start|stop|status -------------------------------------------------------------

void run_start(Context& ctx, const FabricOptions& opts) {
    fab::StartOptions start;
    start.fabric_dir = fabric_dir(opts);
    if (!opts.config.empty())
        start.config_file = opts.config;
    start.node_ids = fab::nodes_to_start(opts.nodes, start.config_file);
    if (fab::sisci::software_fabric())
        start.disd_path = fab::find_disd(self_dir());
    start.ready_timeout = std::chrono::milliseconds(opts.ready_timeout_ms);
    auto nodes = fab::start_local_fabric(start);

    json arr = json::array();
    for (const auto& n : nodes)
        arr.push_back({{"node_id", n.node_id},
                       {"pid", n.pid},
                       {"socket", n.socket},
                       {"log_file", n.log_file}});
    json doc = {{"fabric_dir", start.fabric_dir}, {"nodes", arr}};
    emit(ctx, doc, [&](std::ostream& out) {
        if (!csv(ctx))
            out << "started " << nodes.size() << " node(s) in " << start.fabric_dir << "\n";
        output::Table t({{"NODE", output::Align::right},
                         {"PID", output::Align::right},
                         {"SOCKET", output::Align::left}});
        for (const auto& n : nodes)
            t.add_row({std::to_string(n.node_id), std::to_string(n.pid), n.socket});
        render(ctx, t, out);
    });
}

void run_stop(Context& ctx, const FabricOptions& opts) {
    std::string dir = fabric_dir(opts);
    auto stopped = fab::stop_local_fabric(dir);
    json arr = json::array();
    std::vector<std::uint32_t> failed;
    for (const auto& s : stopped) {
        arr.push_back(
            {{"node_id", s.node_id}, {"pid", s.pid}, {"method", s.method}, {"stopped", s.stopped}});
        if (!s.stopped)
            failed.push_back(s.node_id);
    }
    json doc = {{"fabric_dir", dir}, {"nodes", arr}};
    emit(ctx, doc, [&](std::ostream& out) {
        if (stopped.empty() && !csv(ctx)) {
            out << "no fabric nodes running in " << dir << "\n";
            return;
        }
        output::Table t({{"NODE", output::Align::right},
                         {"PID", output::Align::right},
                         {"METHOD", output::Align::left},
                         {"STOPPED", output::Align::left}});
        for (const auto& s : stopped)
            t.add_row({std::to_string(s.node_id), s.pid ? std::to_string(s.pid) : "", s.method,
                       s.stopped ? "yes" : "no"});
        render(ctx, t, out);
    });
    if (!failed.empty()) {
        std::string list;
        for (auto id : failed)
            list += (list.empty() ? "" : ", ") + std::to_string(id);
        std::cerr << "dis-tool: error: could not stop node(s) " << list << "\n";
        ctx.exit_code = k_exit_check_failed;
    }
}

void run_status(Context& ctx, const FabricOptions& opts) {
    auto status = fab::local_fabric_status(fabric_dir(opts));
    if (status.nodes.empty())
        throw Error(ErrorKind::fabric_down, "no fabric nodes in " + status.fabric_dir +
                                                " (start one with: dis-tool fabric start)");
    json arr = json::array();
    std::vector<std::string> down;
    for (const auto& n : status.nodes) {
        json node = {{"node_id", n.node_id}, {"reachable", n.reachable}};
        if (n.reachable) {
            node["name"] = n.info.name;
            node["pid"] = n.info.pid;
            node["uptime_s"] = n.info.uptime_s;
            node["adapters"] = adapters_json(n.info.adapters);
            node["counters"] = n.info.counters;
        } else {
            node["pid"] = n.recorded_pid;
            node["error"] = n.error;
            down.push_back(std::to_string(n.node_id));
        }
        arr.push_back(node);
    }
    json doc = {{"fabric_dir", status.fabric_dir}, {"nodes", arr}};
    emit(ctx, doc, [&](std::ostream& out) {
        if (!csv(ctx))
            out << "fabric " << status.fabric_dir << "\n";
        output::Table t({{"NODE", output::Align::right},
                         {"NAME", output::Align::left},
                         {"STATE", output::Align::left},
                         {"PID", output::Align::right},
                         {"UPTIME", output::Align::right},
                         {"ADAPTERS", output::Align::left}});
        for (const auto& n : status.nodes) {
            if (n.reachable)
                t.add_row({std::to_string(n.node_id), n.info.name, "up", std::to_string(n.info.pid),
                           format_uptime(n.info.uptime_s), adapters_text(n.info.adapters)});
            else
                t.add_row({std::to_string(n.node_id), "", "down",
                           n.recorded_pid ? std::to_string(n.recorded_pid) : "", "", ""});
        }
        render(ctx, t, out);
        if (csv(ctx))
            return; // one table per CSV document; the counters are in -o json
        for (const auto& n : status.nodes) {
            if (!n.reachable || n.info.counters.empty())
                continue;
            out << "\nnode " << n.node_id << " counters\n";
            output::KeyValues kv;
            for (const auto& [name, value] : n.info.counters)
                kv.add(name, std::to_string(value), 1);
            kv.render_text(out);
        }
    });
    if (!down.empty()) {
        std::string list;
        for (const auto& id : down)
            list += (list.empty() ? "" : ", ") + id;
        std::cerr << "dis-tool: error: node(s) " << list << " unreachable\n";
        ctx.exit_code = k_exit_fabric;
    }
}

// ---- topology, probe, segment list --------------------------------------------------------

void run_topology(Context& ctx, const FabricOptions& opts) {
    std::string dir = fabric_dir(opts);
    select_sisci_node(dir, opts.local_node);
    auto topo = fab::read_topology(dir, opts.adapter);

    json nodes = json::array();
    for (const auto& n : topo.nodes)
        nodes.push_back({{"node_id", n.node_id},
                         {"name", n.name},
                         {"local", n.local},
                         {"reachable", n.reachable},
                         {"adapters", adapters_json(n.adapters)}});
    json links = topo.links;
    json doc = {{"fabric_dir", topo.fabric_dir},
                {"implementation", topo.software_fabric ? "software" : "vendor"},
                {"admin_available", topo.admin_available},
                {"local_node_id", topo.local_node_id},
                {"nodes", nodes},
                {"links", links}};
    emit(ctx, doc, [&](std::ostream& out) {
        if (!csv(ctx))
            out << (topo.software_fabric ? "software fabric " + topo.fabric_dir : "vendor SISCI")
                << ", local node " << topo.local_node_id << "\n\n";
        output::Table t({{"NODE", output::Align::right},
                         {"NAME", output::Align::left},
                         {"STATE", output::Align::left},
                         {"ADAPTER", output::Align::right},
                         {"CARD", output::Align::left},
                         {"SERIAL", output::Align::right},
                         {"LINK", output::Align::left}});
        for (const auto& n : topo.nodes) {
            std::string state = n.local ? "local" : (n.reachable ? "up" : "down");
            std::string name = n.name;
            if (n.adapters.empty())
                t.add_row({std::to_string(n.node_id), name, state, "", "", "", ""});
            for (const auto& a : n.adapters) {
                t.add_row({std::to_string(n.node_id), name, state, std::to_string(a.adapter_no),
                           a.card_type, std::to_string(a.serial),
                           link_text(a.link_operational, a.link_width, a.link_speed)});
                if (!csv(ctx)) { // CSV rows stand alone: every row names its node
                    name.clear();
                    state.clear();
                }
            }
        }
        render(ctx, t, out);
        if (csv(ctx))
            return; // one table per CSV document; the links are in -o json
        out << "\n";
        if (!topo.admin_available) {
            out << "links: unavailable (no admin interface in a vendor SISCI build)\n";
            return;
        }
        output::Table lt({{"LINK", output::Align::left},
                          {"STATE", output::Align::left},
                          {"WIDTH", output::Align::right},
                          {"SPEED", output::Align::left}});
        for (const auto& l : topo.links)
            lt.add_row({std::to_string(l.local_node) + " <-> " + std::to_string(l.remote_node),
                        l.state, l.width ? "x" + std::to_string(l.width) : "", l.speed});
        lt.render_text(out);
    });
}

void run_probe(Context& ctx, const FabricOptions& opts) {
    std::string dir = fabric_dir(opts);
    select_sisci_node(dir, opts.local_node);
    auto r = fab::probe_node(dir, opts.target, opts.adapter);
    json doc = {{"node_id", r.node_id},
                {"local_node_id", r.local_node_id},
                {"adapter_no", r.adapter_no},
                {"reachable", r.reachable},
                {"name", r.name}};
    emit(ctx, doc, [&](std::ostream& out) {
        out << "node " << r.node_id << (r.name.empty() ? "" : " (" + r.name + ")") << " is "
            << (r.reachable ? "reachable" : "NOT reachable") << " from node " << r.local_node_id
            << " adapter " << r.adapter_no << "\n";
    });
    if (!r.reachable) {
        std::cerr << "dis-tool: error: node " << r.node_id << " is unreachable from node "
                  << r.local_node_id << "\n";
        ctx.exit_code = k_exit_fabric;
    }
}

void run_segment_list(Context& ctx, const FabricOptions& opts) {
    std::string dir = fabric_dir(opts);
    auto segments = fab::list_segments(dir, opts.node);
    json doc = {{"fabric_dir", dir}, {"segments", segments}};
    emit(ctx, doc, [&](std::ostream& out) {
        output::Table t({{"NODE", output::Align::right},
                         {"SEGMENT", output::Align::right},
                         {"ADAPTER", output::Align::right},
                         {"SIZE", output::Align::right},
                         {"OWNER_PID", output::Align::right},
                         {"OWNER_UID", output::Align::right},
                         {"STATE", output::Align::left},
                         {"CONNECTIONS", output::Align::right},
                         {"MAPPINGS", output::Align::right},
                         {"FLAGS", output::Align::left}});
        for (const auto& s : segments)
            t.add_row({std::to_string(s.node_id), std::to_string(s.segment_id),
                       std::to_string(s.adapter_no), std::to_string(s.size),
                       std::to_string(s.owner_pid), std::to_string(s.owner_uid), s.state,
                       std::to_string(s.connections), std::to_string(s.mappings),
                       s.broadcast ? "broadcast" : ""});
        if (segments.empty() && !csv(ctx))
            out << "no segments\n";
        else
            render(ctx, t, out);
    });
}

} // namespace

void register_fabric_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<FabricOptions>();

    auto* fabric = app.add_subcommand("fabric", "Start, stop and show a local software fabric");
    fabric->require_subcommand(1);

    auto* start = fabric->add_subcommand(
        "start", "Start a local fabric of disd daemons (node ids 4, 8, 12, ...) in the background");
    start
        ->add_option("-n,--nodes", opts->nodes,
                     "Number of nodes, ids 4, 8, ... (default: the config file's nodes, else 3)")
        ->check(CLI::Range(1, 64));
    start->add_option("-c,--config", opts->config, "Fabric config file passed to every disd")
        ->type_name("FILE");
    start->add_option("--timeout-ms", opts->ready_timeout_ms,
                      "How long each daemon may take to answer (default 5000)");
    add_fabric_option(start, *opts);
    start->callback([&ctx, opts] { run_start(ctx, *opts); });

    auto* stop = fabric->add_subcommand("stop", "Stop every daemon of the local fabric cleanly");
    add_fabric_option(stop, *opts);
    stop->callback([&ctx, opts] { run_stop(ctx, *opts); });

    auto* status = fabric->add_subcommand(
        "status", "Show each node: pid, uptime, adapters and daemon counters");
    add_fabric_option(status, *opts);
    status->callback([&ctx, opts] { run_status(ctx, *opts); });

    auto* topology = app.add_subcommand(
        "topology", "Show nodes, adapters and links (width, speed, state) through SISCI");
    add_fabric_option(topology, *opts);
    topology->add_option("--local-node", opts->local_node,
                         "Look at the fabric as this node (default: $DIS_NODE_ID, else the "
                         "lowest local node)");
    topology->add_option("-a,--adapter", opts->adapter, "Local adapter number (default 0)");
    topology->callback([&ctx, opts] { run_topology(ctx, *opts); });

    auto* probe = app.add_subcommand("probe", "Check whether a node is reachable (SCIProbeNode)");
    probe->add_option("node", opts->target, "Node id to probe")->required();
    add_fabric_option(probe, *opts);
    probe->add_option("--local-node", opts->local_node,
                      "Probe from this node (default: $DIS_NODE_ID, else the lowest local "
                      "node)");
    probe->add_option("-a,--adapter", opts->adapter, "Local adapter number (default 0)");
    probe->callback([&ctx, opts] { run_probe(ctx, *opts); });

    auto* segment = app.add_subcommand("segment", "Shared-memory segments of the fabric");
    segment->require_subcommand(1);
    auto* list = segment->add_subcommand(
        "list", "List segments: id, size, owner pid and uid, state, connections");
    list->add_option("--node", opts->node, "Only this node's segments");
    add_fabric_option(list, *opts);
    list->callback([&ctx, opts] { run_segment_list(ctx, *opts); });
}

} // namespace dis::cli
