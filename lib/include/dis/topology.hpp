// The fabric as a process on one node sees it: its own adapters and the reachability of the
// other nodes through the SISCI API, completed on the software fabric by the daemons' admin
// interface (node discovery, names, the other nodes' adapters and links, segment lists).
// The SISCI side uses this process's SISCI configuration (on the software fabric the
// DIS_FABRIC and DIS_NODE_ID environment variables, read at SCIInitialize).
#pragma once

#include "dis/fabric_admin.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::fabric {

struct TopologyNode {
    std::uint32_t node_id = 0;
    std::string name;       // empty when the admin interface is unavailable
    bool local = false;     // the node this process belongs to
    bool reachable = false; // SCIProbeNode from the local node (true for the local node)
    std::vector<AdapterInfo> adapters;
};

struct Topology {
    std::string fabric_dir;
    bool software_fabric = true;
    bool admin_available = true;
    std::uint32_t local_node_id = 0;
    std::vector<TopologyNode> nodes; // ascending node id
    std::vector<LinkInfo> links;     // one entry per node pair, lower node id first
};

// Throws Error(fabric_down) when no node of the fabric answers or the local node's SISCI
// cannot be opened.
Topology read_topology(const std::string& fabric_dir, std::uint32_t adapter_no = 0);

struct ProbeResult {
    std::uint32_t node_id = 0;
    std::uint32_t local_node_id = 0;
    std::uint32_t adapter_no = 0;
    bool reachable = false;
    std::string name; // from the admin interface when available
};

// SCIProbeNode from the local node to `node_id`. An unreachable or unknown node is a result
// (reachable false), not an error; an unreachable local node throws Error(fabric_down).
ProbeResult probe_node(const std::string& fabric_dir, std::uint32_t node_id,
                       std::uint32_t adapter_no = 0);

// Segments of one node, or of every node answering in the fabric, from the admin interface.
// Throws Error(fabric_down) when the node (or every node) is unreachable, and
// Error(not_found) on a vendor SISCI build, where this view is unavailable.
std::vector<SegmentInfo> list_segments(const std::string& fabric_dir,
                                       std::optional<std::uint32_t> node_id = std::nullopt);

} // namespace dis::fabric
