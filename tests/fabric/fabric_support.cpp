#include "fabric_support.hpp"

#include "wire.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <thread>

namespace dis::test {

LocalFabric::LocalFabric(const std::vector<std::uint32_t>& nodes,
                         const std::vector<std::string>& extra_args)
    : m_dir_str(m_dir.path().string()) {
    for (auto n : nodes) {
        start(n, extra_args);
    }
}

LocalFabric::~LocalFabric() {
    for (auto& [node, pid] : m_pids) {
        ::kill(pid, SIGTERM);
    }
    for (auto& [node, pid] : m_pids) {
        for (int i = 0; i < 300; ++i) {
            int st;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                pid = 0;
                // A clean shutdown exits 0; a sanitizer report or a crash does not.
                if (std::uncaught_exceptions() == 0) {
                    INFO("disd node " << node << " wait status " << st);
                    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
                }
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (pid != 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
}

std::string LocalFabric::socket(std::uint32_t node) const {
    return m_dir_str + "/node-" + std::to_string(node) + ".sock";
}

void LocalFabric::start(std::uint32_t node, const std::vector<std::string>& extra_args) {
    std::vector<std::string> args{DIS_DISD_PATH, "--node-id", std::to_string(node), "--fabric",
                                  m_dir_str};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    m_pids[node] = pid;
    // Ready when the socket accepts a connection (a killed daemon's stale file does not).
    for (int i = 0; i < 500; ++i) {
        int fd = dis::wire::connect_socket(socket(node));
        if (fd >= 0) {
            ::close(fd);
            return;
        }
        int st;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
            m_pids.erase(node);
            FAIL("disd for node " << node << " exited during start-up");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("disd for node " << node << " did not create its socket within 5 s");
}

int LocalFabric::signal(std::uint32_t node, int sig) {
    pid_t pid = m_pids.at(node);
    ::kill(pid, sig);
    int st = 0;
    ::waitpid(pid, &st, 0);
    m_pids.erase(node);
    return st;
}

std::size_t LocalFabric::daemon_fds(std::uint32_t node) const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(m_pids.at(node)) + "/fd")) {
        ++n;
    }
    return n;
}

std::size_t LocalFabric::settled_daemon_fds(std::uint32_t node) const {
    std::size_t last = daemon_fds(node);
    auto stable_since = std::chrono::steady_clock::now();
    auto deadline = stable_since + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::size_t now = daemon_fds(node);
        if (now != last) {
            last = now;
            stable_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - stable_since >=
                   std::chrono::milliseconds(100)) {
            break;
        }
    }
    return last;
}

std::size_t own_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        ++n;
    }
    return n;
}

pid_t spawn_node_process(const LocalFabric& fabric, std::uint32_t node,
                         const std::function<int(sci_desc_t)>& body) {
    std::cout.flush();
    std::cerr.flush();
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid != 0) {
        return pid;
    }
    // A test that fails before it reaps its child must not leave it running: an orphan that
    // waits for a gate keeps ctest's output pipe open until ctest's timeout.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
        ::_exit(102);
    }
    ::setenv("DIS_FABRIC", fabric.dir().c_str(), 1);
    ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
    sci_error_t err;
    SCIInitialize(0, &err);
    if (err != SCI_ERR_OK) {
        std::cerr << "child of node " << node << ": SCIInitialize: " << SCIGetErrorString(err)
                  << "\n";
        ::_exit(100);
    }
    sci_desc_t sd;
    SCIOpen(&sd, 0, &err);
    if (err != SCI_ERR_OK) {
        std::cerr << "child: SCIOpen: " << SCIGetErrorString(err) << "\n";
        ::_exit(101);
    }
    int rc = body(sd);
    std::cout.flush();
    std::cerr.flush();
    ::_exit(rc); // no SCITerminate: the child may have left objects behind on purpose
}

int wait_child(pid_t pid, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            FAIL("child process did not finish within " << timeout_ms << " ms");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

SisciSession::SisciSession(const LocalFabric& fabric, std::uint32_t node) {
    ::setenv("DIS_FABRIC", fabric.dir().c_str(), 1);
    ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
    sci_error_t err;
    SCIInitialize(0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIOpen(&sd, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
}

SisciSession::~SisciSession() {
    sci_error_t err;
    SCIClose(sd, 0, &err);
    SCITerminate();
}

Gate::Gate() {
    REQUIRE(::pipe2(m_fds, O_CLOEXEC) == 0);
}

Gate::~Gate() {
    for (int fd : m_fds) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

void Gate::open() {
    char c = 1;
    [[maybe_unused]] auto n = ::write(m_fds[1], &c, 1);
}

void Gate::close_unused_write() {
    ::close(m_fds[1]);
    m_fds[1] = -1;
}

bool Gate::wait(int timeout_ms) {
    pollfd p{m_fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
        return false;
    }
    char c;
    return ::read(m_fds[0], &c, 1) == 1;
}

} // namespace dis::test
