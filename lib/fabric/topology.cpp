#include "dis/topology.hpp"

#include "dis/error.hpp"
#include "dis/sisci.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

namespace dis::fabric {

namespace {

std::vector<std::uint32_t> answering_nodes(const std::string& fabric_dir) {
    if (!std::filesystem::is_directory(fabric_dir))
        throw Error(ErrorKind::fabric_down,
                    "no fabric at " + fabric_dir + " (start one with: dis-tool fabric start)");
    auto ids = discover_nodes(fabric_dir);
    if (ids.empty())
        throw Error(ErrorKind::fabric_down, "no fabric node answers in " + fabric_dir +
                                                " (start one with: dis-tool fabric start)");
    return ids;
}

} // namespace

Topology read_topology(const std::string& fabric_dir, std::uint32_t adapter_no) {
    Topology topo;
    topo.fabric_dir = fabric_dir;
    topo.software_fabric = sisci::software_fabric();
    topo.admin_available = topo.software_fabric;

    std::vector<std::uint32_t> ids;
    if (topo.admin_available)
        ids = answering_nodes(fabric_dir); // a clear message before SISCI says less

    sisci::Library library;
    sisci::Descriptor sd(library);
    topo.local_node_id = sd.local_node_id(adapter_no);

    std::map<std::uint32_t, TopologyNode> nodes;
    auto& local = nodes[topo.local_node_id];
    local.node_id = topo.local_node_id;
    local.local = true;
    local.reachable = true;
    local.adapters.push_back(sisci::query_adapter(library, adapter_no));

    if (topo.admin_available) {
        std::set<std::pair<std::uint32_t, std::uint32_t>> seen_links;
        for (auto id : ids) {
            auto& node = nodes[id];
            node.node_id = id;
            if (id != topo.local_node_id)
                node.reachable = sd.probe_node(id, adapter_no);
            try {
                AdminClient client(fabric_dir, id);
                auto info = client.node_info();
                node.name = info.name;
                // SISCI describes the local adapter; the others' come from their daemons.
                if (id != topo.local_node_id)
                    node.adapters = info.adapters;
                for (const auto& link : client.links()) {
                    auto key = std::minmax(link.local_node, link.remote_node);
                    if (!seen_links.insert(key).second)
                        continue;
                    LinkInfo l = link;
                    if (l.local_node > l.remote_node)
                        std::swap(l.local_node, l.remote_node);
                    topo.links.push_back(l);
                }
            } catch (const Error&) {
                // It stopped answering since discovery: shown as unreachable, no name.
                if (id != topo.local_node_id)
                    node.reachable = false;
            }
        }
        // A dead node no longer answers discovery, but its peers still report their links to
        // it: show it, with what SISCI says about reaching it.
        for (const auto& l : topo.links) {
            for (auto id : {l.local_node, l.remote_node}) {
                if (nodes.count(id))
                    continue;
                auto& node = nodes[id];
                node.node_id = id;
                node.reachable = sd.probe_node(id, adapter_no);
            }
        }
        std::sort(topo.links.begin(), topo.links.end(), [](const auto& a, const auto& b) {
            return std::tie(a.local_node, a.remote_node) < std::tie(b.local_node, b.remote_node);
        });
    }
    for (auto& [id, node] : nodes)
        topo.nodes.push_back(std::move(node));
    return topo;
}

ProbeResult probe_node(const std::string& fabric_dir, std::uint32_t node_id,
                       std::uint32_t adapter_no) {
    ProbeResult result;
    result.node_id = node_id;
    result.adapter_no = adapter_no;
    if (sisci::software_fabric())
        answering_nodes(fabric_dir); // the local node needs a running fabric
    sisci::Library library;
    sisci::Descriptor sd(library);
    result.local_node_id = sd.local_node_id(adapter_no);
    result.reachable = node_id == result.local_node_id || sd.probe_node(node_id, adapter_no);
    if (sisci::software_fabric() && result.reachable) {
        try {
            result.name = AdminClient(fabric_dir, node_id).node_info().name;
        } catch (const Error&) {
            // The name is a courtesy; reachability is what SISCI said.
        }
    }
    return result;
}

std::vector<SegmentInfo> list_segments(const std::string& fabric_dir,
                                       std::optional<std::uint32_t> node_id) {
    if (!sisci::software_fabric())
        throw Error(ErrorKind::not_found,
                    "segment list needs the software fabric's admin interface, which is "
                    "unavailable in a vendor SISCI build");
    std::vector<std::uint32_t> ids;
    if (node_id)
        ids.push_back(*node_id);
    else
        ids = answering_nodes(fabric_dir);
    std::vector<SegmentInfo> segments;
    for (auto id : ids) {
        AdminClient client(fabric_dir, id);
        auto node_segments = client.segments();
        segments.insert(segments.end(), node_segments.begin(), node_segments.end());
    }
    std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) {
        return std::tie(a.node_id, a.segment_id) < std::tie(b.node_id, b.segment_id);
    });
    return segments;
}

} // namespace dis::fabric
