// The fabric directory: where node daemons put their sockets, logs and the local fabric's
// pid record. One resolver and one set of checks, shared by disd, libsisci and libdis (it
// lives in the wire library, which all three link).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace dis::wire {

struct FabricDirChoice {
    std::string path;  // empty when none could be chosen
    std::string error; // why not, one line
};

// `flag` if given, else $DIS_FABRIC, else /run/dis as root, else $XDG_RUNTIME_DIR/dis. There
// is no fallback to a shared directory such as /tmp: without $XDG_RUNTIME_DIR a non-root
// user must name the directory.
FabricDirChoice choose_fabric_dir(const std::optional<std::string>& flag = std::nullopt);

struct FabricDirPolicy {
    // Group members may write into the directory (a daemon started with --group, or a
    // client with $DIS_FABRIC_GROUP set). Never others.
    bool group_writable = false;
};
// The client side's policy: group-writable only with $DIS_FABRIC_GROUP set.
FabricDirPolicy client_fabric_dir_policy();

enum class FabricDirState { ok, missing, untrusted };
struct FabricDirCheck {
    FabricDirState state = FabricDirState::ok;
    std::string error; // one line when not ok
};

// lstat checks: a directory (not a symbolic link), owned by the euid, root or
// $DIS_DAEMON_UID, not writable by others, not group-writable unless the policy allows.
FabricDirCheck check_fabric_dir(const std::string& dir, const FabricDirPolicy& policy);

// Creates `dir` if missing (its parents with default permissions, the directory itself with
// `mode`, 0700 unless a group was configured), then checks it. Empty when usable, else one
// line.
std::string prepare_fabric_dir(const std::string& dir, const FabricDirPolicy& policy,
                               mode_t mode = 0700);

} // namespace dis::wire
