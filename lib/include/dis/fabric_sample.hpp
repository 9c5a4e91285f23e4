// One sample of the software fabric's node daemons, the one source of fabric data for the
// exporter's fabric collector (lib/metrics) and `dis-tool monitor` (lib/monitor): node
// sockets are found in the fabric directory and every node is asked in parallel, each within
// the timeout, so a dead or frozen node costs one timeout and is reported down, never stalls.
#pragma once

#include "dis/fabric_model.hpp"
#include "dis/parallel.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dis::fabric {

class AdminClient;

struct NodeSample {
    std::uint32_t id = 0;
    bool up = false;
    std::string error; // why the node is down
    NodeInfo info;
    std::vector<LinkInfo> links;
    std::optional<std::vector<SegmentInfo>> segments; // only when asked for
};

// The node ids whose socket file is in `dir`, answering or not, ascending (discover_nodes
// would ping each in turn, and a frozen node would cost its full timeout).
std::vector<std::uint32_t> node_socket_ids(const std::string& dir);

// Asks every node of `dir`. With `keep_connections`, one admin connection per node is kept
// between samples (the monitor, the exporter's fabric collector); a connection that fails is
// dropped and the node asked once more on a fresh one, within what is left of the timeout.
// Without, every sample connects anew. A link is reported up when it is configured up and its
// remote node answered the same sample. A kept node's segments are asked again only when its
// segment_changes_total moved. sample() may be called from one thread at a time.
class FabricSampler {
public:
    FabricSampler(std::string dir, std::chrono::milliseconds timeout, bool keep_connections);
    ~FabricSampler();
    FabricSampler(const FabricSampler&) = delete;
    FabricSampler& operator=(const FabricSampler&) = delete;

    const std::string& dir() const { return m_dir; }
    std::vector<NodeSample> sample(bool with_segments);

private:
    NodeSample sample_node(std::uint32_t id, bool with_segments,
                           std::chrono::steady_clock::time_point start);
    std::vector<SegmentInfo> segments_of(std::uint32_t id, AdminClient& client,
                                         const NodeInfo& info);

    struct KeptSegments {
        pid_t pid = 0;
        std::uint64_t changes = 0; // the daemon's segment_changes_total when they were read
        std::vector<SegmentInfo> segments;
    };

    std::string m_dir;
    std::chrono::milliseconds m_timeout;
    bool m_keep;
    std::mutex m_mutex; // guards m_clients and m_segments against the per-node jobs
    std::map<std::uint32_t, std::shared_ptr<AdminClient>> m_clients;
    std::map<std::uint32_t, KeptSegments> m_segments; // with keep_connections only
    WorkerPool m_pool; // one thread per node, kept between samples; last, so joined first
};

} // namespace dis::fabric
