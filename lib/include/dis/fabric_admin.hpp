// The software fabric's admin interface: what the SISCI API itself cannot tell (every segment
// of a node, daemon counters, node discovery through the fabric directory). On a vendor SISCI
// build these views are reported as unavailable; fabric data paths never use this.
#pragma once

#include "dis/fabric_model.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::fabric {

// The fabric directory: `flag` if given, else $DIS_FABRIC, else /run/dis as root, else
// $XDG_RUNTIME_DIR/dis; no fallback (Error invalid_input without any). When it exists it must
// pass the checks of the one resolver (lib/sisci/fabric_dir.hpp: a real directory owned by
// root, the euid or $DIS_DAEMON_UID, not writable by others), else Error(permission).
std::string resolve_fabric_dir(const std::optional<std::string>& flag = std::nullopt);

// The Unix socket of node `node_id` in `fabric_dir`.
std::string node_socket_path(const std::string& fabric_dir, std::uint32_t node_id);

// Node ids whose daemon socket exists in `fabric_dir` and answers, ascending. Throws
// Error(permission) when one is served by an untrusted uid.
std::vector<std::uint32_t> discover_nodes(const std::string& fabric_dir);

// One connection to one node daemon's admin interface. Throws dis::Error(fabric_down) when
// the daemon is not there or does not answer within `timeout`.
class AdminClient {
public:
    AdminClient(const std::string& fabric_dir, std::uint32_t node_id,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
    ~AdminClient();
    AdminClient(AdminClient&&) noexcept;
    AdminClient& operator=(AdminClient&&) noexcept;

    NodeInfo node_info();
    std::vector<SegmentInfo> segments();
    // The node's links. With `probe`, a link is up when it is configured up and the node
    // could connect to the remote daemon just now; without, as configured (the caller judges
    // the remote end itself: FabricSampler, which has just asked every node).
    std::vector<LinkInfo> links(bool probe = true);
    // Asks the daemon to release everything and exit.
    void shutdown();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace dis::fabric
