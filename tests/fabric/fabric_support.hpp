// Helpers of the fabric tests: a local fabric of real disd daemons in a temporary directory,
// and child processes that act as SISCI clients of a given node.
#pragma once

#include "support.hpp"

#include <sisci_api.h>

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dis::test {

class LocalFabric {
public:
    // Starts one disd per node id and waits until each socket answers.
    explicit LocalFabric(const std::vector<std::uint32_t>& nodes,
                         const std::vector<std::string>& extra_args = {});
    ~LocalFabric();
    LocalFabric(const LocalFabric&) = delete;
    LocalFabric& operator=(const LocalFabric&) = delete;

    const std::string& dir() const { return m_dir_str; }
    std::string socket(std::uint32_t node) const;
    pid_t pid(std::uint32_t node) const { return m_pids.at(node); }
    void start(std::uint32_t node, const std::vector<std::string>& extra_args = {});
    // Sends `sig` and reaps the daemon; returns its wait status.
    int signal(std::uint32_t node, int sig);
    // Open descriptors of a daemon (from /proc).
    std::size_t daemon_fds(std::uint32_t node) const;
    // The same once it has stopped changing (transient connections, such as the readiness
    // probe of start(), are gone): unchanged over 100 ms, waiting at most 2 s.
    std::size_t settled_daemon_fds(std::uint32_t node) const;

private:
    TempDir m_dir;
    std::string m_dir_str;
    std::map<std::uint32_t, pid_t> m_pids;
};

// Runs `body` in a forked child that belongs to `node` (DIS_FABRIC/DIS_NODE_ID set; SISCI
// initialized and a descriptor opened before `body`, closed after). The child's return value
// is its exit status; child diagnostics go to stderr.
pid_t spawn_node_process(const LocalFabric& fabric, std::uint32_t node,
                         const std::function<int(sci_desc_t)>& body);
// Waits for a child, failing the test after `timeout_ms`; returns its exit code (128+signal
// when killed).
int wait_child(pid_t pid, int timeout_ms = 30000);
inline int run_node_process(const LocalFabric& fabric, std::uint32_t node,
                            const std::function<int(sci_desc_t)>& body, int timeout_ms = 30000) {
    return wait_child(spawn_node_process(fabric, node, body), timeout_ms);
}

// SISCI in the test process itself, as a client of `node`; terminated on destruction.
class SisciSession {
public:
    SisciSession(const LocalFabric& fabric, std::uint32_t node);
    ~SisciSession();
    SisciSession(const SisciSession&) = delete;
    SisciSession& operator=(const SisciSession&) = delete;
    sci_desc_t sd = nullptr;
};

// Open descriptors of this process.
std::size_t own_fds();

// A pipe-based one-shot signal between processes (parent waits for a child's "ready").
class Gate {
public:
    Gate();
    ~Gate();
    void open();               // in the signalling process
    bool wait(int timeout_ms); // in the waiting process
    void close_unused_write(); // the waiter closes its copy of the write end

private:
    int m_fds[2] = {-1, -1};
};

} // namespace dis::test
