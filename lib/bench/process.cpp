#include "process.hpp"

#include "dis/error.hpp"
#include "dis/exec_args.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace dis::bench::detail {

void pin_to_cpu(int cpu) {
    if (cpu < 0)
        return;
    if (cpu >= CPU_SETSIZE)
        throw Error(ErrorKind::invalid_input, "CPU number out of range: " + std::to_string(cpu));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        throw os_error("cannot pin to CPU " + std::to_string(cpu), errno);
}

void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) // the parent died before prctl took effect
        _exit(127);
}

ChildProcess::~ChildProcess() {
    kill_and_reap();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        if (m_stderr >= 0)
            close(m_stderr);
        m_pid = other.m_pid;
        m_status = other.m_status;
        m_stderr = other.m_stderr;
        other.m_pid = -1;
        other.m_stderr = -1;
    }
    return *this;
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env) {
    // Everything the child needs is prepared before fork: it only calls async-signal-safe
    // functions afterwards.
    const ExecArgs exec(argv, env);

    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0)
        throw os_error("pipe", errno);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(err_pipe[0]);
        close(err_pipe[1]);
        throw os_error("fork", e);
    }
    if (pid == 0) {
        die_with_parent(parent);
        // A process group of its own: a terminal's Ctrl-C goes to the caller, which decides
        // (dis-tool qualify finishes its current step first); the child dies with it anyway.
        setpgid(0, 0);
        dup2(err_pipe[1], STDERR_FILENO);
        execve(exec.path(), exec.argv(), exec.envp());
        _exit(127);
    }
    close(err_pipe[1]);
    // Non-blocking: the child writes at most a line or two, far below the pipe's capacity.
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    ChildProcess child(pid);
    child.m_stderr = err_pipe[0];
    return child;
}

bool ChildProcess::poll_exited() {
    if (m_pid <= 0)
        return true;
    int status = 0;
    pid_t r = waitpid(m_pid, &status, WNOHANG);
    if (r == m_pid) {
        m_status = status;
        m_pid = -1;
        return true;
    }
    return false;
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!poll_exited()) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill_and_reap();
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return m_status;
}

void ChildProcess::kill_and_reap() {
    if (m_pid <= 0)
        return;
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 250; ++i) { // 500 ms grace
        if (poll_exited())
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_status = status;
    m_pid = -1;
}

std::string ChildProcess::error_output() {
    std::string text;
    if (m_stderr < 0)
        return text;
    char buf[4096];
    ssize_t n;
    while ((n = read(m_stderr, buf, sizeof buf)) > 0)
        text.append(buf, static_cast<std::size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    auto nl = text.rfind('\n');
    if (nl != std::string::npos)
        text.erase(0, nl + 1);
    return text;
}

std::string ChildProcess::describe() const {
    if (WIFEXITED(m_status))
        return "exit status " + std::to_string(WEXITSTATUS(m_status));
    if (WIFSIGNALED(m_status))
        return "killed by signal " + std::to_string(WTERMSIG(m_status));
    return "status " + std::to_string(m_status);
}

} // namespace dis::bench::detail
