// The fabric sampler shared by the exporter and the monitor (dis/fabric_sample.hpp).
#include "dis/fabric_sample.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace dis::fabric {

std::vector<std::uint32_t> node_socket_ids(const std::string& dir) {
    std::vector<std::uint32_t> ids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("node-", 0) != 0)
            continue;
        char* end = nullptr;
        unsigned long id = std::strtoul(name.c_str() + 5, &end, 10);
        if (end == name.c_str() + 5 || id > 0xffffffffUL)
            continue;
        const auto node = static_cast<std::uint32_t>(id);
        if (node_socket_path(dir, node) == entry.path().string())
            ids.push_back(node);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

FabricSampler::FabricSampler(std::string dir, std::chrono::milliseconds timeout,
                             bool keep_connections)
    : m_dir(std::move(dir)), m_timeout(timeout), m_keep(keep_connections) {}

FabricSampler::~FabricSampler() = default;

// The node's segments, from the last sample when its daemon (same pid) reports the same
// segment_changes_total: parsing a thousand segments each second was most of the monitor's
// CPU. node_info is asked first, so a list fetched here is never older than the count it is
// kept with. Daemons without the counter are asked every time.
std::vector<SegmentInfo> FabricSampler::segments_of(std::uint32_t id, AdminClient& client,
                                                    const NodeInfo& info) {
    const auto changes = info.counters.find("segment_changes_total");
    if (!m_keep || changes == info.counters.end())
        return client.segments();
    {
        std::lock_guard lock(m_mutex);
        auto it = m_segments.find(id);
        if (it != m_segments.end() && it->second.pid == info.pid &&
            it->second.changes == changes->second)
            return it->second.segments;
    }
    auto segments = client.segments();
    std::lock_guard lock(m_mutex);
    m_segments[id] = {info.pid, changes->second, segments};
    return segments;
}

NodeSample FabricSampler::sample_node(std::uint32_t id, bool with_segments,
                                      std::chrono::steady_clock::time_point start) {
    std::shared_ptr<AdminClient> kept;
    if (m_keep) {
        std::lock_guard lock(m_mutex);
        if (auto it = m_clients.find(id); it != m_clients.end())
            kept = it->second;
    }
    NodeSample s;
    s.id = id;
    auto ask = [&](AdminClient& client) {
        s.info = client.node_info();
        // Links as configured: whether each remote end is up is this sample's own
        // answer (below), where a probing node would connect to every peer in turn.
        s.links = client.links(false);
        if (with_segments)
            s.segments = segments_of(id, client, s.info);
        s.up = true;
    };
    if (kept) {
        try {
            ask(*kept);
            return s;
        } catch (const std::exception&) {
            // A restarted daemon or a reply that came too late: start afresh, within
            // what is left of the timeout (a frozen node costs one timeout in all).
        }
    }
    const auto left = m_timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - start);
    try {
        if (left <= std::chrono::milliseconds(0))
            throw Error(ErrorKind::fabric_down,
                        "node " + std::to_string(id) + " did not answer in time");
        auto client = std::make_shared<AdminClient>(m_dir, id, left);
        ask(*client);
        if (m_keep) {
            std::lock_guard lock(m_mutex);
            m_clients[id] = client;
        }
    } catch (const std::exception& e) {
        s = NodeSample{};
        s.id = id;
        s.error = e.what();
        if (m_keep) {
            std::lock_guard lock(m_mutex);
            m_clients.erase(id);
        }
    }
    return s;
}

std::vector<NodeSample> FabricSampler::sample(bool with_segments) {
    const auto ids = node_socket_ids(m_dir);
    const auto start = std::chrono::steady_clock::now();
    std::vector<NodeSample> nodes(ids.size());
    m_pool.run(ids.size(),
               [&](std::size_t i) { nodes[i] = sample_node(ids[i], with_segments, start); });
    if (m_keep) {
        // Nodes whose socket went away keep no connection.
        std::lock_guard lock(m_mutex);
        std::erase_if(m_clients, [&](const auto& kv) {
            return !std::binary_search(ids.begin(), ids.end(), kv.first);
        });
        std::erase_if(m_segments, [&](const auto& kv) {
            return !std::binary_search(ids.begin(), ids.end(), kv.first);
        });
    }
    // A link is up when it is configured up and its remote node answered this sample.
    std::set<std::uint32_t> answered;
    for (const auto& n : nodes)
        if (n.up)
            answered.insert(n.id);
    for (auto& n : nodes)
        for (auto& l : n.links)
            if (!answered.count(l.remote_node))
                l.state = "down";
    return nodes;
}

} // namespace dis::fabric
