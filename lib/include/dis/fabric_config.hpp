// The software fabric's optional config file (format in disd(8)): which nodes exist, their
// names and adapters, the links (width, speed, state) and topology the daemons report, and
// the devices each node lends.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dis::fabric {

struct ConfigNode {
    std::uint32_t node_id = 0;
    std::string name;
    std::uint32_t adapters = 1;
    std::string card_type = "software fabric adapter";
    std::uint64_t serial = 0; // 0: derived from the node id
};

struct ConfigLink {
    std::uint32_t a = 0;
    std::uint32_t b = 0;
    std::uint32_t width = 8;
    std::string speed = "8GT/s";
    bool up = true;
};

struct FabricConfig {
    std::string topology = "switch"; // reported as-is: "switch", "ring", "direct", ...
    std::uint32_t default_width = 8;
    std::string default_speed = "8GT/s";
    std::map<std::uint32_t, ConfigNode> nodes; // empty: every node with a socket is a member
    std::vector<ConfigLink> links;             // empty: every pair of members is linked
    // Lendable devices per node, in declaration order: the text after NODE of each `device`
    // line, exactly what dis::endpoint::parse_device_spec() takes ("epf-test name=ep0 ...").
    std::map<std::uint32_t, std::vector<std::string>> devices;

    const ConfigNode* node(std::uint32_t id) const;
    // The links of `node_id` to `peers` (explicit links, or a full mesh when none are given).
    std::vector<ConfigLink> links_of(std::uint32_t node_id,
                                     const std::vector<std::uint32_t>& peers) const;
};

// Parses config text; throws dis::Error(invalid_input) naming `origin` and the line.
FabricConfig parse_fabric_config(const std::string& text, const std::string& origin = "config");
// Reads and parses a file; throws dis::Error(not_found / invalid_input).
FabricConfig load_fabric_config(const std::string& path);

// Node ids are positive multiples of 4 (the NTB convention).
bool valid_node_id(std::uint64_t id);

} // namespace dis::fabric
