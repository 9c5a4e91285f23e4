#include "lending_cli_support.hpp"

#include "dis/local_fabric.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <pty.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace dis::test {

namespace {

std::string lending_config(const std::vector<std::string>& devices) {
    std::string config = "node 4\nnode 8\n";
    for (const auto& d : devices)
        config += "device 8 " + d + "\n";
    return config;
}

} // namespace

LendingFabric::LendingFabric(const std::vector<std::string>& devices)
    : m_fabric(lending_config(devices)), m_dir(m_fabric.dir()) {}

namespace {

std::vector<std::string> insert_fabric(std::vector<std::string> args, const std::string& dir) {
    auto dashdash = std::find(args.begin(), args.end(), "--");
    dashdash = args.insert(dashdash, dir);
    args.insert(dashdash, "--fabric");
    return args;
}

} // namespace

std::vector<std::string> LendingFabric::with_fabric(std::vector<std::string> args) const {
    return insert_fabric(std::move(args), m_dir);
}

SpawnedFabric::SpawnedFabric(const std::vector<std::string>& node8_args)
    : m_dir((m_tmp.path() / "fabric").string()) {
    std::filesystem::create_directory(m_dir);
    std::filesystem::permissions(m_dir, std::filesystem::perms::owner_all);
    const std::string disd =
        dis::fabric::find_disd(std::filesystem::path(DIS_TOOL_PATH).parent_path().string());
    for (std::uint32_t node : {4u, 8u}) {
        std::vector<std::string> argv{disd, "--node-id", std::to_string(node), "--fabric", m_dir};
        if (node == 8)
            argv.insert(argv.end(), node8_args.begin(), node8_args.end());
        const std::string log = (m_tmp.path() / ("disd-" + std::to_string(node) + ".log")).string();
        std::vector<char*> cargv;
        for (auto& a : argv)
            cargv.push_back(a.data());
        cargv.push_back(nullptr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execv(cargv[0], cargv.data());
            _exit(127);
        }
        m_pids.push_back(pid);
    }
    bool up = wait_until(
        [&] {
            try {
                return dis::fabric::discover_nodes(m_dir).size() == 2;
            } catch (...) {
                return false;
            }
        },
        std::chrono::seconds(10));
    REQUIRE(up);
}

SpawnedFabric::~SpawnedFabric() {
    for (pid_t pid : m_pids)
        ::kill(pid, SIGTERM);
    for (pid_t pid : m_pids) {
        bool gone = wait_until(
            [&] {
                int status = 0;
                return waitpid(pid, &status, WNOHANG) == pid;
            },
            std::chrono::seconds(5));
        if (!gone) {
            ::kill(pid, SIGKILL);
            int status = 0;
            waitpid(pid, &status, 0);
        }
    }
}

std::vector<std::string> SpawnedFabric::with_fabric(std::vector<std::string> args) const {
    return insert_fabric(std::move(args), m_dir);
}

RunResult SpawnedFabric::tool(std::vector<std::string> args) const {
    return run_tool(with_fabric(std::move(args)));
}

RunResult LendingFabric::tool(std::vector<std::string> args) const {
    return run_tool(with_fabric(std::move(args)));
}

nlohmann::json LendingFabric::show(const std::string& fdid) const {
    auto r = tool({"device", "show", fdid, "-o", "json"});
    INFO("device show " << fdid << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    return parse_out(r);
}

std::string LendingFabric::state(const std::string& fdid) const {
    return show(fdid)["state"].get<std::string>();
}

bool LendingFabric::wait_state(const std::string& fdid, const std::string& state,
                               std::chrono::milliseconds limit) const {
    return wait_until(
        [&] {
            auto r = tool({"device", "show", fdid, "-o", "json"});
            return r.exit_code == 0 && parse_out(r)["state"] == state;
        },
        limit);
}

Background::Background(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::vector<std::string> argv{DIS_TOOL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    const SpawnedChild child = spawn_with_pipes(argv, env);
    m_pid = child.pid;
    m_out_fd = child.out_fd;
    m_err_fd = child.err_fd;
    fcntl(m_out_fd, F_SETFL, O_NONBLOCK);
    fcntl(m_err_fd, F_SETFL, O_NONBLOCK);
}

Background::~Background() {
    if (!m_done && m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        int status = 0;
        while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (m_out_fd >= 0)
        close(m_out_fd);
    if (m_err_fd >= 0)
        close(m_err_fd);
}

void Background::drain() {
    for (int fd : {m_out_fd, m_err_fd}) {
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            (fd == m_out_fd ? m_out : m_err).append(buf, static_cast<std::size_t>(n));
    }
}

bool Background::running() {
    if (m_done)
        return false;
    drain();
    int status = 0;
    pid_t r = waitpid(m_pid, &status, WNOHANG);
    if (r == m_pid) {
        m_done = true;
        if (WIFEXITED(status))
            m_exit = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
            m_signal = WTERMSIG(status);
        drain();
        return false;
    }
    return true;
}

bool Background::wait(std::chrono::milliseconds limit) {
    return wait_until([&] { return !running(); }, limit);
}

void Background::signal(int sig) const {
    if (!m_done)
        ::kill(m_pid, sig);
}

// Runs dis-tool on a pseudo-terminal (stdin, stdout, stderr), answers `answer` once the
// question "[y/N]" shows, and collects what was shown until it exits.
TtyRun run_on_tty(const std::vector<std::string>& args, const std::string& answer) {
    std::vector<std::string> argv{DIS_TOOL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execv(cargv[0], cargv.data());
        _exit(127);
    }
    TtyRun run;
    bool answered = false;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{master, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            char buf[1024];
            ssize_t n = read(master, buf, sizeof buf);
            if (n <= 0)
                break; // EIO: the terminal's other side closed (it exited)
            run.output.append(buf, static_cast<std::size_t>(n));
        }
        if (!answered && run.output.find("[y/N]") != std::string::npos) {
            std::string line = answer + "\n";
            REQUIRE(write(master, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
            answered = true;
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(master);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

} // namespace dis::test
