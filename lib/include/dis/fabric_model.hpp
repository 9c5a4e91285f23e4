// The software fabric's model: nodes, adapters, links and segments as plain structs, with
// their one JSON schema (to_json/from_json, found by nlohmann's ADL). disd writes these
// objects on the wire, the admin client reads them back and the CLI prints them, all through
// the functions here; the field names are the documented ones (dis-tool-fabric(1),
// dis-tool-topology(1), dis-tool-segment(1), tools/disd/README.md).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dis::fabric {

struct AdapterInfo {
    std::uint32_t adapter_no = 0;
    std::uint32_t node_id = 0;
    std::string card_type;
    std::uint64_t serial = 0;
    std::uint32_t links = 0;
    bool link_operational = false;
    std::uint32_t link_width = 0;
    std::string link_speed; // lspci spelling, "8GT/s"
    std::uint32_t dma_alignment = 0;
};

struct NodeInfo {
    std::uint32_t node_id = 0;
    std::string name;
    pid_t pid = 0;
    std::uint64_t uptime_s = 0;
    std::string topology; // the config's topology keyword, empty without one
    std::vector<AdapterInfo> adapters;
    // Daemon counters in base units, Prometheus-style names ("dma_bytes_total", "clients").
    std::map<std::string, std::uint64_t> counters;

    // A counter's value; 0 when the daemon does not report it (an older daemon).
    std::uint64_t counter(const std::string& key) const;
};

struct SegmentInfo {
    std::uint32_t node_id = 0;
    std::uint32_t segment_id = 0;
    std::uint32_t adapter_no = 0;
    std::uint64_t size = 0;
    pid_t owner_pid = 0;
    uid_t owner_uid = 0;
    std::string state; // "created", "prepared", "available", "unavailable"
    std::uint32_t connections = 0;
    std::uint32_t mappings = 0;
    bool broadcast = false;
};

struct LinkInfo {
    std::uint32_t local_node = 0;
    std::uint32_t remote_node = 0;
    std::string state; // "up", "down"
    std::uint32_t width = 0;
    std::string speed;
};

// from_json throws nlohmann::json::exception on a missing or mistyped field.
void to_json(nlohmann::json& j, const AdapterInfo& a);
void from_json(const nlohmann::json& j, AdapterInfo& a);
void to_json(nlohmann::json& j, const NodeInfo& n);
void from_json(const nlohmann::json& j, NodeInfo& n);
void to_json(nlohmann::json& j, const SegmentInfo& s);
void from_json(const nlohmann::json& j, SegmentInfo& s);
void to_json(nlohmann::json& j, const LinkInfo& l);
void from_json(const nlohmann::json& j, LinkInfo& l);

} // namespace dis::fabric
