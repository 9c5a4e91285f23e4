// The fabric directory's resolver and checks (see fabric_dir.hpp).
#include "fabric_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace dis::wire {

namespace {

bool env_set(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0';
}

bool trusted_owner(uid_t owner) {
    if (owner == 0 || owner == ::geteuid()) {
        return true;
    }
    if (const char* d = std::getenv("DIS_DAEMON_UID"); d != nullptr && *d != '\0') {
        char* end = nullptr;
        unsigned long v = std::strtoul(d, &end, 10);
        return *end == '\0' && v == owner;
    }
    return false;
}

} // namespace

FabricDirChoice choose_fabric_dir(const std::optional<std::string>& flag) {
    if (flag && !flag->empty()) {
        return {*flag, {}};
    }
    if (env_set("DIS_FABRIC")) {
        return {std::getenv("DIS_FABRIC"), {}};
    }
    if (::geteuid() == 0) {
        return {"/run/dis", {}};
    }
    if (env_set("XDG_RUNTIME_DIR")) {
        return {std::string(std::getenv("XDG_RUNTIME_DIR")) + "/dis", {}};
    }
    return {{}, "no fabric directory: give --fabric, or set $DIS_FABRIC or $XDG_RUNTIME_DIR"};
}

FabricDirPolicy client_fabric_dir_policy() {
    return FabricDirPolicy{env_set("DIS_FABRIC_GROUP")};
}

FabricDirCheck check_fabric_dir(const std::string& dir, const FabricDirPolicy& policy) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) {
        int e = errno;
        return {e == ENOENT ? FabricDirState::missing : FabricDirState::untrusted,
                "fabric directory " + dir + ": " + std::strerror(e)};
    }
    auto refuse = [&](const std::string& why) {
        return FabricDirCheck{FabricDirState::untrusted,
                              "refusing fabric directory " + dir + ": " + why};
    };
    if (S_ISLNK(st.st_mode)) {
        return refuse("it is a symbolic link");
    }
    if (!S_ISDIR(st.st_mode)) {
        return refuse("not a directory");
    }
    if (!trusted_owner(st.st_uid)) {
        return refuse("owned by uid " + std::to_string(st.st_uid) + ", not by root or uid " +
                      std::to_string(::geteuid()));
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        return refuse("writable by others");
    }
    if ((st.st_mode & S_IWGRP) != 0 && !policy.group_writable) {
        return refuse("group-writable, and no group was configured");
    }
    return {};
}

std::string prepare_fabric_dir(const std::string& dir, const FabricDirPolicy& policy, mode_t mode) {
    auto check = check_fabric_dir(dir, policy);
    if (check.state != FabricDirState::missing) {
        return check.error;
    }
    std::error_code ec;
    auto parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty()) {
        std::filesystem::create_directories(parent, ec);
        if (ec) {
            return "cannot create fabric directory " + dir + ": " + ec.message();
        }
    }
    // The umask may only narrow the mode; chmod sets exactly the one asked for.
    if (::mkdir(dir.c_str(), mode) == 0) {
        ::chmod(dir.c_str(), mode);
    } else if (errno != EEXIST) {
        return "cannot create fabric directory " + dir + ": " + std::strerror(errno);
    }
    return check_fabric_dir(dir, policy).error;
}

} // namespace dis::wire
