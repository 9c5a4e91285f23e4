// The one JSON schema of the fabric model (see fabric_model.hpp). Part of dis_core, which
// both libdis and disd link.
#include "dis/fabric_model.hpp"

#include <nlohmann/json.hpp>

namespace dis::fabric {

using nlohmann::json;

void to_json(json& j, const AdapterInfo& a) {
    j = json{{"adapter_no", a.adapter_no},
             {"node_id", a.node_id},
             {"card_type", a.card_type},
             {"serial", a.serial},
             {"links", a.links},
             {"link_operational", a.link_operational},
             {"link_width", a.link_width},
             {"link_speed", a.link_speed},
             {"dma_alignment", a.dma_alignment}};
}

void from_json(const json& j, AdapterInfo& a) {
    j.at("adapter_no").get_to(a.adapter_no);
    j.at("node_id").get_to(a.node_id);
    j.at("card_type").get_to(a.card_type);
    j.at("serial").get_to(a.serial);
    j.at("links").get_to(a.links);
    j.at("link_operational").get_to(a.link_operational);
    j.at("link_width").get_to(a.link_width);
    j.at("link_speed").get_to(a.link_speed);
    j.at("dma_alignment").get_to(a.dma_alignment);
}

std::uint64_t NodeInfo::counter(const std::string& key) const {
    auto it = counters.find(key);
    return it == counters.end() ? 0 : it->second;
}

void to_json(json& j, const NodeInfo& n) {
    j = json{{"node_id", n.node_id},   {"name", n.name},         {"pid", n.pid},
             {"uptime_s", n.uptime_s}, {"topology", n.topology}, {"adapters", n.adapters},
             {"counters", n.counters}};
}

void from_json(const json& j, NodeInfo& n) {
    j.at("node_id").get_to(n.node_id);
    j.at("name").get_to(n.name);
    j.at("pid").get_to(n.pid);
    j.at("uptime_s").get_to(n.uptime_s);
    n.topology = j.value("topology", std::string());
    j.at("adapters").get_to(n.adapters);
    j.at("counters").get_to(n.counters);
}

void to_json(json& j, const SegmentInfo& s) {
    j = json{{"node_id", s.node_id},       {"segment_id", s.segment_id},
             {"adapter_no", s.adapter_no}, {"size", s.size},
             {"owner_pid", s.owner_pid},   {"owner_uid", s.owner_uid},
             {"state", s.state},           {"connections", s.connections},
             {"mappings", s.mappings},     {"broadcast", s.broadcast}};
}

void from_json(const json& j, SegmentInfo& s) {
    j.at("node_id").get_to(s.node_id);
    j.at("segment_id").get_to(s.segment_id);
    j.at("adapter_no").get_to(s.adapter_no);
    j.at("size").get_to(s.size);
    j.at("owner_pid").get_to(s.owner_pid);
    j.at("owner_uid").get_to(s.owner_uid);
    j.at("state").get_to(s.state);
    j.at("connections").get_to(s.connections);
    j.at("mappings").get_to(s.mappings);
    j.at("broadcast").get_to(s.broadcast);
}

void to_json(json& j, const LinkInfo& l) {
    j = json{{"local_node", l.local_node},
             {"remote_node", l.remote_node},
             {"state", l.state},
             {"width", l.width},
             {"speed", l.speed}};
}

void from_json(const json& j, LinkInfo& l) {
    j.at("local_node").get_to(l.local_node);
    j.at("remote_node").get_to(l.remote_node);
    j.at("state").get_to(l.state);
    j.at("width").get_to(l.width);
    j.at("speed").get_to(l.speed);
}

} // namespace dis::fabric
