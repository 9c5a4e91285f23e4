// Child processes of the benchmarks (baseline peers, the spawned responder): every child is
// pinned to its parent's life and reaped or killed by its owner. Internal to libdis.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace dis::bench::detail {

// Pins the calling thread to `cpu` (no-op for cpu < 0). Throws dis::Error.
void pin_to_cpu(int cpu);

// Call first thing in a forked child: it dies with its parent.
void die_with_parent(pid_t parent);

// A child process that is always reaped: the destructor kills it (SIGTERM, then SIGKILL
// after a grace period) unless it already exited.
class ChildProcess {
public:
    ChildProcess() = default;
    explicit ChildProcess(pid_t pid) : m_pid(pid) {}
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ChildProcess(ChildProcess&& other) noexcept
        : m_pid(other.m_pid), m_status(other.m_status), m_stderr(other.m_stderr) {
        other.m_pid = -1;
        other.m_stderr = -1;
    }
    ChildProcess& operator=(ChildProcess&& other) noexcept;

    // Starts argv[0] (a path) with `env` ("NAME=value") added to the environment. Its
    // stderr goes to a pipe (see error_output) so that its complaints can be reported as
    // part of one error instead of interleaving with ours.
    static ChildProcess spawn(const std::vector<std::string>& argv,
                              const std::vector<std::string>& env);

    pid_t pid() const { return m_pid; }
    bool running() const { return m_pid > 0; }
    // True (and the exit status stored) if the child has exited; never blocks.
    bool poll_exited();
    // Waits up to `timeout` for the child to exit; kills it after that. Returns its wait
    // status.
    int wait(std::chrono::milliseconds timeout);
    // A short description of how the child ended ("exit status 2", "killed by signal 9").
    std::string describe() const;
    // What the child wrote to stderr so far (last line, trimmed); empty if nothing.
    std::string error_output();

private:
    void kill_and_reap();
    pid_t m_pid = -1;
    int m_status = 0;
    int m_stderr = -1; // read end of the child's stderr pipe
};

} // namespace dis::bench::detail
