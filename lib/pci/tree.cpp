// The hierarchy as a tree (grouped like `lspci -t`) and its text and JSON renderings. The
// renderers only format the model; printing is left to the front end.
#include "dis/pci.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace dis::pci {

namespace {

using ChildMap = std::map<Bdf, std::vector<const Device*>>;

TreeNode make_node(const Device* d, const ChildMap& kids, std::set<Bdf>& visited) {
    TreeNode node;
    node.device = d;
    if (!visited.insert(d->bdf).second)
        return node; // a parent cycle in a hand-built Topology: stop here
    if (auto it = kids.find(d->bdf); it != kids.end())
        for (const Device* c : it->second)
            node.children.push_back(make_node(c, kids, visited));
    return node;
}

std::string device_label(const Device& d) {
    std::string s =
        to_hex(d.bdf.bus, 2) + ":" + to_hex(d.bdf.device, 2) + "." + to_hex(d.bdf.function, 1);
    if (d.secondary_bus && d.subordinate_bus) {
        s += " [" + to_hex(*d.secondary_bus, 2);
        if (*d.subordinate_bus != *d.secondary_bus)
            s += "-" + to_hex(*d.subordinate_bus, 2);
        s += "]";
    }
    s += "  ";
    s += d.vendor_name.empty() ? "Vendor " + to_hex(d.vendor_id, 4) : d.vendor_name;
    s += " ";
    s += d.device_name.empty() ? "Device " + to_hex(d.device_id, 4) : d.device_name;
    if (d.link)
        s += "  " + describe_link(*d.link);
    if (d.link && d.link->downgraded)
        s += "  !downgraded";
    if (d.aer && d.aer->has_errors()) {
        s += "  !aer";
        std::string bits;
        for (const auto& b : d.aer->uncorrectable_status)
            bits += (bits.empty() ? "" : ",") + b;
        for (const auto& b : d.aer->correctable_status)
            bits += (bits.empty() ? "" : ",") + b;
        if (!bits.empty())
            s += "(" + bits + ")";
    }
    return s;
}

void render_nodes(const std::vector<TreeNode>& nodes, const std::string& prefix, std::string& out) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        bool last = i + 1 == nodes.size();
        out += prefix + (last ? "\\-" : "+-") + device_label(*nodes[i].device) + "\n";
        render_nodes(nodes[i].children, prefix + (last ? "  " : "| "), out);
    }
}

nlohmann::json nodes_json(const std::vector<TreeNode>& nodes) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& n : nodes) {
        nlohmann::json j = to_json(*n.device);
        j["children"] = nodes_json(n.children);
        arr.push_back(std::move(j));
    }
    return arr;
}

} // namespace

std::string describe_link(const Link& link) {
    std::string s = link.speed + " x" + std::to_string(link.width);
    if (link.speed != link.max_speed || link.width != link.max_width)
        s += " (max " + link.max_speed + " x" + std::to_string(link.max_width) + ")";
    return s;
}

std::vector<TreeRoot> build_tree(const Topology& topology) {
    ChildMap kids;
    std::map<std::pair<std::uint32_t, std::uint8_t>, std::vector<const Device*>> root_buses;
    for (const auto& d : topology.devices()) {
        if (d.parent && topology.find(*d.parent))
            kids[*d.parent].push_back(&d);
        else
            root_buses[{d.bdf.domain, d.bdf.bus}].push_back(&d);
    }
    std::set<Bdf> visited;
    std::vector<TreeRoot> roots;
    for (const auto& [key, devices] : root_buses) {
        TreeRoot root;
        root.domain = key.first;
        root.bus = key.second;
        for (const Device* d : devices)
            root.devices.push_back(make_node(d, kids, visited));
        roots.push_back(std::move(root));
    }
    return roots;
}

std::string render_tree_text(const Topology& topology) {
    std::string out;
    for (const auto& root : build_tree(topology)) {
        out += "[" + to_hex(root.domain, 4) + ":" + to_hex(root.bus, 2) + "]\n";
        render_nodes(root.devices, "", out);
    }
    return out;
}

nlohmann::json tree_to_json(const Topology& topology) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& root : build_tree(topology))
        arr.push_back({{"domain", to_hex(root.domain, 4)},
                       {"bus", to_hex(root.bus, 2)},
                       {"devices", nodes_json(root.devices)}});
    return arr;
}

} // namespace dis::pci
