// The fabric groups of dis::diag: versions, nodes, adapters and links, judged on what the
// topology (dis/topology.hpp), the local fabric's record (dis/local_fabric.hpp) and the fabric
// config (dis/fabric_config.hpp) say.
#include "checks.hpp"

#include "dis/error.hpp"
#include "dis/local_fabric.hpp"
#include "dis/sisci.hpp"

#include "../fabric/sci.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>

#ifndef DIS_VERSION
#define DIS_VERSION "unknown"
#endif

namespace dis::diag::detail {

namespace fab = dis::fabric;

namespace {

std::string id_list(const std::vector<std::uint32_t>& ids) {
    std::string out;
    for (auto id : ids)
        out += (out.empty() ? "" : ", ") + std::to_string(id);
    return out.empty() ? "none" : out;
}

std::string query_string(unsigned int command) {
    char buf[256] = {};
    sci_query_string_t q{buf, sizeof buf};
    sci_error_t err = SCI_ERR_OK;
    SCIQuery(command, &q, 0, &err);
    sci::check(err, "SCIQuery");
    buf[sizeof buf - 1] = '\0';
    return buf;
}

// "8GT/s" -> 8.0; 0 when unparsable.
double speed_value(const std::string& s) {
    return std::strtod(s.c_str(), nullptr);
}

std::string link_text(std::uint32_t width, const std::string& speed) {
    std::string out;
    if (width)
        out += "x" + std::to_string(width);
    if (!speed.empty())
        out += (out.empty() ? "" : " ") + speed;
    return out;
}

// Below the expected width or speed: the words saying which, empty when not downgraded.
std::string downgrade(std::uint32_t width, const std::string& speed, std::uint32_t want_width,
                      const std::string& want_speed) {
    std::string out;
    if (width < want_width)
        out = "width x" + std::to_string(width) + " below x" + std::to_string(want_width);
    if (!want_speed.empty() && speed_value(speed) < speed_value(want_speed))
        out += (out.empty() ? "" : ", ") + std::string("speed ") +
               (speed.empty() ? "unknown" : speed) + " below " + want_speed;
    return out;
}

} // namespace

void check_versions(const Options&, std::vector<Check>& out) {
    out.push_back(make_check("versions", "toolkit", Verdict::pass,
                             std::string("dis-tool ") + DIS_VERSION, {{"version", DIS_VERSION}}));
    const char* impl = fab::sisci::software_fabric() ? "software" : "vendor";
    try {
        sci::Library library;
        std::string vendor = query_string(SCI_Q_VENDORID);
        std::string api = query_string(SCI_Q_API);
        out.push_back(make_check("versions", "sisci", Verdict::pass, api + " (" + vendor + ")",
                                 {{"implementation", impl}, {"vendor", vendor}, {"api", api}}));
    } catch (const Error& e) {
        out.push_back(make_check("versions", "sisci", Verdict::fail,
                                 std::string(impl) + " SISCI not usable: " + e.what(),
                                 {{"implementation", impl}}));
    }
}

FabricView read_fabric(const Options& o) {
    FabricView v;
    if (o.config_file)
        v.config = fab::load_fabric_config(*o.config_file); // invalid_input / not_found
    try {
        v.topology = fab::read_topology(o.fabric_dir);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::fabric_down && e.kind() != ErrorKind::timeout &&
            e.kind() != ErrorKind::not_found)
            throw;
        v.unreachable_reason = e.what();
    }
    std::set<std::uint32_t> configured;
    if (v.config && !v.config->nodes.empty()) {
        for (const auto& [id, node] : v.config->nodes)
            configured.insert(id);
        v.configured_from = "config " + *o.config_file;
    } else if (fab::sisci::software_fabric()) {
        try {
            for (const auto& n : fab::local_fabric_status(o.fabric_dir).nodes)
                if (n.recorded)
                    configured.insert(n.node_id);
        } catch (const Error&) {
            // No readable record: no node ids to expect beyond the live ones.
        }
        if (!configured.empty())
            v.configured_from = "the local fabric's record";
    }
    if (v.topology) {
        for (const auto& n : v.topology->nodes)
            if (n.reachable)
                v.reachable.push_back(n.node_id);
        if (configured.empty()) {
            for (const auto& n : v.topology->nodes)
                configured.insert(n.node_id);
            v.configured_from = "no configuration: the live nodes";
        }
    }
    v.configured.assign(configured.begin(), configured.end());
    return v;
}

void check_nodes(const Options& o, const FabricView& v, std::vector<Check>& out) {
    if (!v.topology) {
        out.push_back(make_check("nodes", "fabric", Verdict::fail,
                                 "unreachable: " + v.unreachable_reason,
                                 {{"fabric_dir", o.fabric_dir}, {"configured", v.configured}}));
        return;
    }
    const auto& topo = *v.topology;
    std::vector<std::uint32_t> live;
    for (const auto& n : topo.nodes)
        if (n.reachable)
            live.push_back(n.node_id);
    std::vector<std::uint32_t> missing, extra;
    std::set_difference(v.configured.begin(), v.configured.end(), live.begin(), live.end(),
                        std::back_inserter(missing));
    std::set_difference(live.begin(), live.end(), v.configured.begin(), v.configured.end(),
                        std::back_inserter(extra));
    nlohmann::json ids = {
        {"configured", v.configured}, {"live", live}, {"missing", missing}, {"unexpected", extra}};
    std::string base = "configured " + id_list(v.configured) + " (" + v.configured_from +
                       "), live " + id_list(live);
    if (!missing.empty())
        out.push_back(make_check("nodes", "node ids", Verdict::fail,
                                 base + ": " + id_list(missing) + " missing", ids));
    else if (!extra.empty())
        out.push_back(make_check("nodes", "node ids", Verdict::warn,
                                 base + ": " + id_list(extra) + " not configured", ids));
    else
        out.push_back(make_check("nodes", "node ids", Verdict::pass, base, ids));

    // Every configured node probed (SCIProbeNode from the local node), and any live extra.
    std::set<std::uint32_t> all(v.configured.begin(), v.configured.end());
    all.insert(live.begin(), live.end());
    std::unique_ptr<fab::sisci::Library> library;
    std::unique_ptr<fab::sisci::Descriptor> sd;
    for (auto id : all) {
        auto it = std::find_if(topo.nodes.begin(), topo.nodes.end(),
                               [&](const auto& n) { return n.node_id == id; });
        bool reachable = false;
        std::string name;
        if (it != topo.nodes.end()) {
            reachable = it->reachable;
            name = it->name;
        } else {
            try {
                if (!sd) {
                    library = std::make_unique<fab::sisci::Library>();
                    sd = std::make_unique<fab::sisci::Descriptor>(*library);
                }
                reachable = sd->probe_node(id);
            } catch (const Error&) {
                reachable = false;
            }
        }
        nlohmann::json counters = {{"node_id", id}, {"reachable", reachable}};
        std::string what = "node " + std::to_string(id);
        if (id == topo.local_node_id) {
            out.push_back(make_check("nodes", what, Verdict::pass,
                                     "the local node" + (name.empty() ? "" : " (" + name + ")"),
                                     counters));
        } else if (reachable) {
            out.push_back(make_check("nodes", what, Verdict::pass,
                                     "reachable from node " + std::to_string(topo.local_node_id) +
                                         (name.empty() ? "" : " (" + name + ")"),
                                     counters));
        } else {
            bool configured = std::binary_search(v.configured.begin(), v.configured.end(), id);
            out.push_back(make_check("nodes", what, Verdict::fail,
                                     std::string(configured ? "configured but " : "") +
                                         "not reachable from node " +
                                         std::to_string(topo.local_node_id) + " (SCIProbeNode)",
                                     counters));
        }
    }
}

void check_adapters(const FabricView& v, std::vector<Check>& out) {
    const auto& topo = *v.topology;
    for (const auto& n : topo.nodes) {
        if (!n.reachable)
            continue; // the node row already failed
        if (n.adapters.empty()) {
            out.push_back(make_check("adapter", "node " + std::to_string(n.node_id), Verdict::fail,
                                     "no adapter reported"));
            continue;
        }
        for (const auto& a : n.adapters) {
            std::string what =
                "node " + std::to_string(n.node_id) + " adapter " + std::to_string(a.adapter_no);
            nlohmann::json counters = a;
            std::string link = link_text(a.link_width, a.link_speed);
            if (!a.link_operational) {
                out.push_back(make_check(
                    "adapter", what, Verdict::fail,
                    "link not operational" + (link.empty() ? "" : " (" + link + ")"), counters));
                continue;
            }
            if (v.config) {
                counters["configured_width"] = v.config->default_width;
                counters["configured_speed"] = v.config->default_speed;
                std::string down = downgrade(a.link_width, a.link_speed, v.config->default_width,
                                             v.config->default_speed);
                if (!down.empty()) {
                    out.push_back(make_check("adapter", what, Verdict::warn,
                                             "link downgraded: " + down, counters));
                    continue;
                }
            }
            out.push_back(make_check(
                "adapter", what, Verdict::pass,
                a.card_type + ", link up " + link + (v.config ? " as configured" : ""), counters));
        }
    }
}

void check_links(const FabricView& v, std::vector<Check>& out) {
    const auto& topo = *v.topology;
    for (const auto& l : topo.links) {
        std::string what =
            "link " + std::to_string(l.local_node) + "-" + std::to_string(l.remote_node);
        nlohmann::json counters = l;
        std::optional<fab::ConfigLink> want;
        if (v.config) {
            for (const auto& c : v.config->links_of(l.local_node, {l.remote_node}))
                if ((c.a == l.local_node && c.b == l.remote_node) ||
                    (c.b == l.local_node && c.a == l.remote_node))
                    want = c;
        }
        if (want) {
            counters["configured_width"] = want->width;
            counters["configured_speed"] = want->speed;
            counters["configured_state"] = want->up ? "up" : "down";
        }
        std::string link = link_text(l.width, l.speed);
        if (l.state != "up") {
            if (want && !want->up)
                out.push_back(
                    make_check("link", what, Verdict::warn, "down, as configured", counters));
            else
                out.push_back(make_check("link", what, Verdict::fail, "link " + l.state, counters));
            continue;
        }
        if (want) {
            std::string down = downgrade(l.width, l.speed, want->width, want->speed);
            if (!down.empty()) {
                out.push_back(
                    make_check("link", what, Verdict::warn, "downgraded: " + down, counters));
                continue;
            }
        }
        out.push_back(make_check("link", what, Verdict::pass,
                                 "up " + link + (want ? " as configured" : ""), counters));
    }
}

} // namespace dis::diag::detail
