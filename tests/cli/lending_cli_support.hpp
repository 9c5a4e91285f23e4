// Shared by the `dis-tool device` lending CLI tests: a local fabric started by the built
// `dis-tool fabric start --config` with lendable devices on node 8, and dis-tool runs in the
// background (a holder that must be seen while it runs).
#pragma once

#include "support.hpp"
#include "tool_fabric.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace dis::test {

// Nodes 4 and 8; node 8 lends `devices` (config lines after "device 8 "), fdids 0x80000,
// 0x80001, ... in that order. Stopped (and any daemon left killed) on destruction.
class LendingFabric {
public:
    explicit LendingFabric(const std::vector<std::string>& devices);
    LendingFabric(const LendingFabric&) = delete;
    LendingFabric& operator=(const LendingFabric&) = delete;

    const std::string& dir() const { return m_dir; }
    // dis-tool with "--fabric DIR" appended (before any "--").
    RunResult tool(std::vector<std::string> args) const;
    // `device show FDID -o json`, REQUIREd to succeed.
    nlohmann::json show(const std::string& fdid) const;
    std::string state(const std::string& fdid) const;
    // Polls `device show` until the device is in `state` (seconds of deadline).
    bool wait_state(const std::string& fdid, const std::string& state,
                    std::chrono::milliseconds limit = std::chrono::seconds(10)) const;
    std::vector<std::string> with_fabric(std::vector<std::string> args) const;

private:
    ToolFabric m_fabric; // started and always stopped with this object
    std::string m_dir;
};

// disd daemons started directly (for daemon options `fabric start` does not pass, such as
// --command-timeout): node 4, and node 8 with `node8_args`. Killed on destruction.
class SpawnedFabric {
public:
    explicit SpawnedFabric(const std::vector<std::string>& node8_args);
    ~SpawnedFabric();
    SpawnedFabric(const SpawnedFabric&) = delete;
    SpawnedFabric& operator=(const SpawnedFabric&) = delete;
    const std::string& dir() const { return m_dir; }
    std::vector<std::string> with_fabric(std::vector<std::string> args) const;
    RunResult tool(std::vector<std::string> args) const;

private:
    TempDir m_tmp;
    std::string m_dir;
    std::vector<pid_t> m_pids;
};

// The built dis-tool run in the background with stdout and stderr collected; killed (and
// reaped) on destruction if still running.
class Background {
public:
    explicit Background(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {});
    ~Background();
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    pid_t pid() const { return m_pid; }
    bool running();
    // Waits for it to exit (false on timeout); then exit_code()/signal() and out()/err().
    bool wait(std::chrono::milliseconds limit);
    void signal(int sig) const;
    int exit_code() const { return m_exit; }
    int term_signal() const { return m_signal; }
    const std::string& out() const { return m_out; }
    const std::string& err() const { return m_err; }

private:
    void drain();
    pid_t m_pid = -1;
    int m_out_fd = -1;
    int m_err_fd = -1;
    bool m_done = false;
    int m_exit = -1;
    int m_signal = 0;
    std::string m_out;
    std::string m_err;
};

struct TtyRun {
    int exit_code = -1;
    std::string output; // what the terminal showed
};

// Runs dis-tool on a pseudo-terminal (stdin, stdout, stderr), answers `answer` once the
// question "[y/N]" shows, and collects what was shown until it exits.
TtyRun run_on_tty(const std::vector<std::string>& args, const std::string& answer);

} // namespace dis::test
