// A local software fabric: a set of `disd` daemons on this host sharing one fabric directory.
// In a vendor SISCI build, start and status throw Error(not_found): there is no such fabric.
// Starting, stopping and inspecting it is library code so that any front end (dis-tool, a test
// harness, a future GUI) can reuse it; nothing here prints or exits.
#pragma once

#include "dis/fabric_admin.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::fabric {

// The daemons that `start_local_fabric` launched, recorded in the fabric directory so that a
// later `stop` or `status` (another process) knows their pids.
inline constexpr const char* k_local_fabric_record = "local-fabric.json";

// Node ids of a local fabric of `count` nodes, NTB style: 4, 8, 12, ...
std::vector<std::uint32_t> local_node_ids(unsigned count);

// The nodes `fabric start` launches: `count` nodes 4, 8, ... when given; else the nodes a
// config file lists; else 3 nodes. Throws Error for a bad count or config file.
std::vector<std::uint32_t> nodes_to_start(std::optional<unsigned> count,
                                          const std::optional<std::string>& config_file);

// The disd binary: `dir_of_self`/disd if it exists and is executable (dis-tool and disd are
// installed side by side), else the first disd on $PATH. Throws Error(not_found).
std::string find_disd(const std::string& dir_of_self);

struct StartOptions {
    std::string fabric_dir;
    std::vector<std::uint32_t> node_ids;
    std::optional<std::string> config_file;
    std::string disd_path;
    // How long each daemon may take until its socket answers.
    std::chrono::milliseconds ready_timeout{5000};
};

struct LocalNode {
    std::uint32_t node_id = 0;
    pid_t pid = 0;
    std::string socket;
    std::string log_file; // the daemon's stdout/stderr
};

// Starts one `disd --node-id N --fabric DIR [--config FILE]` per node in the background (own
// session, stdio to DIR/disd-N.log), waits until each answers its admin interface and
// records the pids. If any node fails to come up, the ones already started are stopped again
// and an Error is thrown (invalid_input when a node is already running, fabric_down or
// timeout when a daemon dies or does not answer).
std::vector<LocalNode> start_local_fabric(const StartOptions& options);

struct StoppedNode {
    std::uint32_t node_id = 0;
    pid_t pid = 0;
    // "shutdown" (asked through the admin interface), "sigterm", "sigkill", or "not_running".
    std::string method;
    bool stopped = false;
};

// Stops every node of the fabric in `fabric_dir`: the recorded ones and any other daemon
// answering there. Each is asked to shut down, then sent SIGTERM, then SIGKILL, each step
// waiting up to `grace`. Removes the record. Signals are only sent to pids whose command
// line is a disd of that node, never to a recycled pid.
std::vector<StoppedNode>
stop_local_fabric(const std::string& fabric_dir,
                  std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

struct NodeStatus {
    std::uint32_t node_id = 0;
    bool reachable = false;
    bool recorded = false; // started by start_local_fabric
    pid_t recorded_pid = 0;
    NodeInfo info;     // valid when reachable
    std::string error; // why not, when unreachable
};

struct FabricStatus {
    std::string fabric_dir;
    std::vector<NodeStatus> nodes; // ascending node id
};

// Every recorded or discovered node of the fabric, with its admin information.
FabricStatus local_fabric_status(const std::string& fabric_dir);

} // namespace dis::fabric
