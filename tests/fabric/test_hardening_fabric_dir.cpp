// The fabric directory is verified, not trusted: a directory of another uid, a symbolic link
// planted as a log file, and a daemon socket served by another uid are each refused with one
// clear line, by disd, by dis-tool and by SCIInitialize.
#include "fabric_support.hpp"

#include "fabric_dir.hpp"
#include "wire.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

using namespace dis::test;
namespace fs = std::filesystem;

namespace {

constexpr uid_t k_nobody = 65534;

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// SCIInitialize's result in a child that uses `dir` as its fabric.
int sci_initialize_in(const std::string& dir, const char* node) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::setenv("DIS_FABRIC", dir.c_str(), 1);
        ::setenv("DIS_NODE_ID", node, 1);
        sci_error_t err;
        SCIInitialize(0, &err);
        ::_exit(err == SCI_ERR_OK ? 0 : err == SCI_ERR_ACCESS ? 1 : 2);
    }
    return wait_child(pid);
}

} // namespace

TEST_CASE("a fabric directory of another uid is refused", "[fabric][hardening][fabric-dir]") {
    REQUIRE(::geteuid() == 0);
    TempDir tmp;
    std::string dir = (tmp.path() / "fabric").string();
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chown(dir.c_str(), k_nobody, k_nobody) == 0);

    auto d = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", dir});
    CHECK(d.exit_code != 0);
    CHECK(lines(d.err) == 1);
    CHECK(d.err.find("owned by uid 65534") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/node-4.sock"));

    for (auto args : {std::vector<std::string>{"fabric", "start", "-n", "1", "--fabric", dir},
                      std::vector<std::string>{"fabric", "status", "--fabric", dir},
                      std::vector<std::string>{"topology", "--fabric", dir}}) {
        auto r = run_tool(args);
        INFO(args[0] << " " << args[1] << ": " << r.err);
        CHECK(r.exit_code != 0);
        CHECK(lines(r.err) == 1);
        CHECK(r.err.find("owned by uid 65534") != std::string::npos);
    }
    CHECK(sci_initialize_in(dir, "4") == 1);

    // Writable by others, or a symbolic link to a good directory: refused the same way.
    REQUIRE(::chown(dir.c_str(), 0, 0) == 0);
    REQUIRE(::chmod(dir.c_str(), 0777) == 0);
    CHECK(dis::wire::check_fabric_dir(dir, {}).error.find("writable by others") !=
          std::string::npos);
    CHECK(sci_initialize_in(dir, "4") == 1);
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    std::string link = (tmp.path() / "link").string();
    REQUIRE(::symlink(dir.c_str(), link.c_str()) == 0);
    auto l = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", link});
    CHECK(l.exit_code != 0);
    CHECK(l.err.find("symbolic link") != std::string::npos);
}

TEST_CASE("a new fabric directory is created 0700", "[fabric][hardening][fabric-dir]") {
    TempDir tmp;
    std::string dir = (tmp.path() / "a" / "fabric").string();
    CHECK(dis::wire::prepare_fabric_dir(dir, {}).empty());
    struct stat st {};
    REQUIRE(::lstat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(dis::wire::choose_fabric_dir(std::string("/given")).path == "/given");
}

TEST_CASE("a symbolic link planted as a daemon log is not followed",
          "[fabric][hardening][fabric-dir]") {
    TempDir tmp;
    std::string dir = (tmp.path() / "fabric").string();
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    std::string victim = (tmp.path() / "victim").string();
    write_file(victim, "precious\n");
    REQUIRE(::symlink(victim.c_str(), (dir + "/disd-4.log").c_str()) == 0);

    auto r = run_tool({"fabric", "start", "-n", "1", "--fabric", dir});
    CHECK(r.exit_code != 0);
    CHECK(lines(r.err) == 1);
    CHECK(r.err.find("symbolic link") != std::string::npos);
    CHECK(read_file(victim) == "precious\n");
    CHECK_FALSE(fs::exists(dir + "/node-4.sock"));
}

TEST_CASE("a daemon socket served by another uid is not trusted",
          "[fabric][hardening][fabric-dir]") {
    REQUIRE(::geteuid() == 0);
    TempDir tmp;
    std::string dir = tmp.path().string();
    std::string path = dir + "/node-4.sock";
    // Bound here, listened on by a child of uid 65534: the socket's credentials are the
    // listener's.
    dis::wire::Fd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    Gate listening;
    pid_t fake = ::fork();
    REQUIRE(fake >= 0);
    if (fake == 0) {
        if (::setresgid(k_nobody, k_nobody, k_nobody) != 0 ||
            ::setresuid(k_nobody, k_nobody, k_nobody) != 0 || ::listen(sock.get(), 16) != 0) {
            ::_exit(90);
        }
        listening.open();
        for (;;) {
            int c = ::accept(sock.get(), nullptr, nullptr);
            (void)c; // held open, never answered
        }
    }
    listening.close_unused_write();
    REQUIRE(listening.wait(5000));

    CHECK(sci_initialize_in(dir, "4") == 1);
    for (auto args : {std::vector<std::string>{"fabric", "status", "--fabric", dir},
                      std::vector<std::string>{"topology", "--fabric", dir, "--local-node", "4"}}) {
        auto r = run_tool(args);
        INFO(args[0] << ": " << r.err);
        CHECK(r.exit_code != 0);
        CHECK(lines(r.err) == 1);
        CHECK(r.err.find("uid 65534") != std::string::npos);
    }
    // Trusted when configured.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::setenv("DIS_DAEMON_UID", "65534", 1);
        dis::wire::Fd fd(dis::wire::connect_socket(path));
        ::_exit(fd.valid() && dis::wire::check_daemon_peer(fd.get(), "x").empty() ? 0 : 1);
    }
    CHECK(wait_child(pid) == 0);
    ::kill(fake, SIGKILL);
    ::waitpid(fake, nullptr, 0);
}

TEST_CASE("without a fabric directory a non-root user gets an error, not /tmp",
          "[fabric][hardening][fabric-dir]") {
    REQUIRE(::geteuid() == 0);
    // A child of uid 65534 with neither $DIS_FABRIC nor $XDG_RUNTIME_DIR: the resolver says
    // why, disd exits 2 instead of serving from a directory under /tmp, SCIInitialize fails.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::setresgid(k_nobody, k_nobody, k_nobody) != 0 ||
            ::setresuid(k_nobody, k_nobody, k_nobody) != 0) {
            ::_exit(90);
        }
        ::unsetenv("DIS_FABRIC");
        ::unsetenv("XDG_RUNTIME_DIR");
        ::unsetenv("DIS_NODE_ID");
        auto choice = dis::wire::choose_fabric_dir();
        if (!choice.path.empty() || choice.error.find("XDG_RUNTIME_DIR") == std::string::npos) {
            ::_exit(1);
        }
        sci_error_t err;
        SCIInitialize(0, &err);
        if (err == SCI_ERR_OK) {
            ::_exit(2);
        }
        pid_t d = ::fork();
        if (d == 0) {
            int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 2);
            ::execl(DIS_DISD_PATH, DIS_DISD_PATH, "--node-id", "4", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int st = 0;
        ::waitpid(d, &st, 0);
        ::_exit(WIFEXITED(st) && WEXITSTATUS(st) == 2 ? 0 : 3);
    }
    CHECK(wait_child(pid, 10000) == 0);
}

TEST_CASE("disd --group shares a new fabric directory with one group, and only then",
          "[fabric][hardening][fabric-dir]") {
    REQUIRE(::geteuid() == 0);
    TempDir tmp;
    std::string dir = (tmp.path() / "shared").string();
    pid_t d = ::fork();
    REQUIRE(d >= 0);
    if (d == 0) {
        ::execl(DIS_DISD_PATH, DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.c_str(), "--group",
                "65534", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::string sock = dir + "/node-4.sock";
    bool up = false;
    for (int i = 0; i < 500 && !up; ++i) {
        dis::wire::Fd fd(dis::wire::connect_socket(sock));
        up = fd.valid();
        if (!up) {
            ::usleep(10000);
        }
    }
    REQUIRE(up);
    struct stat st {};
    REQUIRE(::lstat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0770);
    CHECK(st.st_gid == 65534);
    REQUIRE(::lstat(sock.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    CHECK(st.st_gid == 65534);
    ::kill(d, SIGTERM);
    int status = 0;
    REQUIRE(::waitpid(d, &status, 0) == d);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    // The same group-writable directory without --group: refused.
    auto r = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", dir});
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("group-writable") != std::string::npos);
}
