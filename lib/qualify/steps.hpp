// lib/qualify internals: what a step runner gets, the step runners (one file per family) and
// the child processes they start.
#pragma once

#include "dis/qualify.hpp"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace dis::qualify::detail {

struct StepEnv {
    const Plan& plan;
    const RunOptions& options;
    std::string fabric_dir;
};

// Runs `body` as one case of `step`: its time, its detail (what `body` returns), and a failure
// with the message of whatever it threw (dis::Error or another exception).
void run_case(StepResult& step, const std::string& name,
              const std::function<nlohmann::json()>& body);

// A check inside a case: throws Error(check_failed, message) unless `ok`.
void expect(bool ok, const std::string& message);

// Polls `done` every 20 ms until true or `limit` passes; returns its last value.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit);

// A dis-tool child (`bench serve`, `device borrow --hold`) in its own process group (a
// terminal's Ctrl-C reaches the qualify run only, which then stops it), stdout and stderr to
// /dev/null. Killed and reaped on destruction.
class Child {
public:
    Child() = default;
    Child(const std::vector<std::string>& argv, const std::vector<std::string>& env);
    ~Child();
    Child(Child&& other) noexcept;
    Child& operator=(Child&& other) noexcept;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return m_pid; }
    bool running();
    void kill_now(); // SIGKILL and reap

private:
    pid_t m_pid = -1;
};

// The argv of the running disd of `node` in `fabric_dir` and its pid (from /proc); throws
// Error(not_found) when none runs.
struct DaemonProcess {
    pid_t pid = 0;
    std::vector<std::string> argv;
    std::string cwd; // its relative paths (--config FILE) are relative to this
};
DaemonProcess find_daemon(const std::string& fabric_dir, std::uint32_t node);
// Starts the daemon again with its own command line, in its own working directory and a
// session of its own (like `fabric start`), output appended to FABRIC/disd-N.log; waits until
// it answers.
void restart_daemon(const std::string& fabric_dir, std::uint32_t node, const DaemonProcess& daemon);

// The device's state name and leases as its lender says ("" when it does not answer).
std::string device_state(const std::string& fabric_dir, lending::Fdid fdid);

void run_device_cycle(const Step& step, StepEnv& env, StepResult& out);
void run_recovery(const Step& step, StepEnv& env, StepResult& out);
void run_load(const Step& step, StepEnv& env, StepResult& out);
void run_bench(const Step& step, StepEnv& env, StepResult& out);
void run_isolation(const Step& step, StepEnv& env, StepResult& out);
void run_diag(const Step& step, StepEnv& env, StepResult& out);
void run_rebind(const Step& step, StepEnv& env, StepResult& out);

// Runs `argv` to its end (killed after `limit`) with stdin on /dev/null and stdout dropped;
// returns its exit code (-1 when killed) and the last line it wrote on stderr.
struct Finished {
    int exit_code = -1;
    std::string last_error;
};
Finished run_to_end(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    std::chrono::milliseconds limit);

// The responder argv for bench runs on the software fabric (`TOOL bench serve --once`).
std::vector<std::string> responder_argv(const StepEnv& env);

} // namespace dis::qualify::detail
