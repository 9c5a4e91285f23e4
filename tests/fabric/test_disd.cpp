// The disd command line, the fabric config file, the admin client, and the C ping-pong
// program compiled against the installed headers alone.
#include "fabric_support.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/fabric_config.hpp"
#include "dis/fabric_sample.hpp"
#include "wire.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

using namespace dis::test;
namespace fs = std::filesystem;

TEST_CASE("disd runs quietly in the foreground and removes its socket on SIGTERM/SIGINT",
          "[fabric][disd]") {
    TempDir dir;
    for (int sig : {SIGTERM, SIGINT}) {
        int out[2];
        REQUIRE(::pipe(out) == 0);
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(out[1], 1);
            ::dup2(out[1], 2);
            ::execl(DIS_DISD_PATH, DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.path().c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        std::string sock = dir.path().string() + "/node-4.sock";
        for (int i = 0; i < 500 && !fs::exists(sock); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        REQUIRE(fs::exists(sock));
        ::kill(pid, sig);
        int st = 0;
        ::waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
        CHECK_FALSE(fs::exists(sock));
        char buf[256];
        CHECK(::read(out[0], buf, sizeof(buf)) == 0); // printed nothing
        ::close(out[0]);
    }
}

TEST_CASE("disd rejects bad arguments and a second daemon for the same node", "[fabric][disd]") {
    TempDir dir;
    auto r = run({DIS_DISD_PATH, "--node-id", "5", "--fabric", dir.path().string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("disd: error: ", 0) == 0);
    CHECK(r.err.find("multiple of 4") != std::string::npos);
    r = run({DIS_DISD_PATH, "--fabric", dir.path().string()});
    CHECK(r.exit_code == 2); // --node-id is required
    r = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.path().string(), "--adapter", "1"});
    CHECK(r.exit_code == 2);
    r = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.path().string(), "--config",
             dir.path().string() + "/missing.conf"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("missing.conf") != std::string::npos);
    for (const char* option :
         {"--dma-streaming-bytes", "--max-client-memory", "--max-client-objects", "--adapter",
          "--max-uid-memory", "--max-uid-objects", "--max-uid-connections"}) {
        for (const char* bad : {"-1", "lots", "1.5", "0x10"}) {
            INFO(option << " " << bad);
            r = run(
                {DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.path().string(), option, bad});
            CHECK(r.exit_code == 2);
        }
    }
    r = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", dir.path().string(),
             "--dma-streaming-bytes", "0"});
    CHECK(r.exit_code == 2);
    r = run({DIS_DISD_PATH, "--node-id", "-4", "--fabric", dir.path().string()});
    CHECK(r.exit_code == 2);
    r = run({DIS_DISD_PATH, "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("--node-id") != std::string::npos);

    LocalFabric fabric({4});
    r = run({DIS_DISD_PATH, "--node-id", "4", "--fabric", fabric.dir()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("already running") != std::string::npos);
    // The first daemon is untouched.
    CHECK(dis::fabric::AdminClient(fabric.dir(), 4).node_info().node_id == 4);
}

TEST_CASE("fabric config: parsing and errors", "[fabric][config]") {
    auto cfg = dis::fabric::parse_fabric_config(R"(# a lab fabric
topology ring
default width=4 speed=16GT/s
node 4 name=alpha serial=0x1234
node 8 name=beta card=PXH830 adapters=2
node 12
link 4 8 width=8
link 8 12 state=down
link 12 4 speed=8GT/s
)");
    CHECK(cfg.topology == "ring");
    REQUIRE(cfg.nodes.size() == 3);
    CHECK(cfg.node(4)->name == "alpha");
    CHECK(cfg.node(4)->serial == 0x1234);
    CHECK(cfg.node(8)->card_type == "PXH830");
    CHECK(cfg.node(8)->adapters == 2);
    REQUIRE(cfg.links.size() == 3);
    CHECK(cfg.links[0].width == 8);
    CHECK(cfg.links[0].speed == "16GT/s");
    CHECK_FALSE(cfg.links[1].up);
    CHECK(cfg.links[2].width == 4);
    CHECK(cfg.links[2].speed == "8GT/s");
    auto l4 = cfg.links_of(4, {});
    REQUIRE(l4.size() == 2);
    CHECK(l4[0].b == 8);
    CHECK(l4[1].b == 12);

    auto bad = [](const std::string& text, const std::string& needle) {
        try {
            dis::fabric::parse_fabric_config(text, "f.conf");
        } catch (const dis::Error& e) {
            CHECK(e.kind() == dis::ErrorKind::invalid_input);
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
            return;
        }
        FAIL("accepted: " << text);
    };
    bad("node 5\n", "f.conf:1");
    bad("\nnode 4\nnode 4\n", "f.conf:3");
    bad("link 4 4\n", "two different");
    bad("link 4 8 width=3\n", "width");
    bad("link 4 8 speed=fast\n", "speed");
    bad("node 4 colour=red\n", "colour");
    bad("nodes 4\n", "unknown keyword");
    bad("node 4\nlink 4 8\n", "not declared");
    // A device line whose words are split by blanks other than space and tab, or that has
    // no spec after its node (found by fuzz_config: it threw std::out_of_range).
    bad("device 4\n", "expected 'device NODE");
    const char fuzzed[] = "device \0\0004\0ooptl\0309\0wng";
    bad(std::string(fuzzed, sizeof fuzzed - 1), "expected 'device NODE");
}

TEST_CASE("the daemons report the configured topology through the admin interface",
          "[fabric][config]") {
    TempDir cfgdir;
    std::string conf = cfgdir.path().string() + "/fabric.conf";
    write_file(conf, "topology ring\nnode 4 name=alpha\nnode 8 name=beta\nnode 12 name=gamma\n"
                     "link 4 8 width=16 speed=16GT/s\nlink 4 12 width=4 state=down\n");
    LocalFabric fabric({4, 8}, {"--config", conf});
    auto nodes = dis::fabric::discover_nodes(fabric.dir());
    CHECK(nodes == std::vector<std::uint32_t>{4, 8});
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    auto info = admin.node_info();
    CHECK(info.name == "alpha");
    CHECK(info.pid == fabric.pid(4));
    REQUIRE(info.adapters.size() == 1);
    CHECK(info.adapters[0].links == 2);
    auto links = admin.links();
    REQUIRE(links.size() == 2);
    CHECK(links[0].remote_node == 8);
    CHECK(links[0].state == "up");
    CHECK(links[0].width == 16);
    CHECK(links[0].speed == "16GT/s");
    CHECK(links[1].remote_node == 12);
    CHECK(links[1].state == "down"); // configured down, and node 12 is not running either
    // A node the config does not declare may not join.
    auto r = run({DIS_DISD_PATH, "--node-id", "16", "--fabric", fabric.dir(), "--config", conf});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("not declared") != std::string::npos);
}

TEST_CASE("admin client: unreachable nodes and shutdown", "[fabric][admin]") {
    LocalFabric fabric({4, 8});
    CHECK_THROWS_AS(dis::fabric::AdminClient(fabric.dir(), 12), dis::Error);
    try {
        dis::fabric::AdminClient(fabric.dir(), 12);
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::fabric_down);
    }
    CHECK(dis::fabric::node_socket_path("/x", 8) == "/x/node-8.sock");
    CHECK(dis::fabric::resolve_fabric_dir(std::string("/given")) == "/given");
    dis::fabric::AdminClient(fabric.dir(), 8).shutdown();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (fs::exists(fabric.socket(8)) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK_FALSE(fs::exists(fabric.socket(8)));
    CHECK(dis::fabric::discover_nodes(fabric.dir()) == std::vector<std::uint32_t>{4});
    CHECK(WEXITSTATUS(fabric.signal(8, 0)) == 0);
}

TEST_CASE("a C program built against the installed SISCI headers ping-pongs between nodes",
          "[fabric][c]") {
    TempDir prefix;
    // The "sisci" install component: libsisci.so and its three headers.
    auto inst = run({DIS_CMAKE_COMMAND, "--install", DIS_BUILD_DIR, "--component", "sisci",
                     "--prefix", prefix.path().string()},
                    {}, 120);
    REQUIRE(inst.exit_code == 0);
    for (const char* h : {"sisci_api.h", "sisci_types.h", "sisci_error.h"}) {
        REQUIRE(fs::exists(prefix.path() / "include" / h));
    }
    fs::path libdir = fs::exists(prefix.path() / "lib" / "libsisci.so") ? prefix.path() / "lib"
                                                                        : prefix.path() / "lib64";
    REQUIRE(fs::exists(libdir / "libsisci.so"));
    std::string exe = prefix.path().string() + "/pingpong";
    // Only the installed tree on the include and library paths; strict C11.
    std::vector<std::string> cmd{DIS_C_COMPILER,
                                 "-std=c11",
                                 "-Wall",
                                 "-Wextra",
                                 "-Werror",
                                 "-pedantic",
                                 "-D_POSIX_C_SOURCE=200809L",
                                 "-I" + (prefix.path() / "include").string(),
                                 DIS_PINGPONG_SOURCE,
                                 "-L" + libdir.string(),
                                 "-lsisci",
                                 "-Wl,-rpath," + libdir.string(),
                                 "-o",
                                 exe};
#ifdef __SANITIZE_ADDRESS__
    // A sanitized libsisci needs the sanitizer runtime loaded first.
    cmd.insert(cmd.begin() + 1, "-fsanitize=address,undefined");
#elif defined(__SANITIZE_THREAD__)
    cmd.insert(cmd.begin() + 1, "-fsanitize=thread");
#endif
    auto cc = run(cmd, {}, 120);
    INFO(cc.err);
    REQUIRE(cc.exit_code == 0);

    LocalFabric fabric({4, 8});
    pid_t server = ::fork();
    REQUIRE(server >= 0);
    if (server == 0) {
        ::setenv("DIS_FABRIC", fabric.dir().c_str(), 1);
        ::setenv("DIS_NODE_ID", "4", 1);
        ::execl(exe.c_str(), exe.c_str(), "server", "2000", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    auto client =
        run({exe, "client", "4", "2000"}, {"DIS_FABRIC=" + fabric.dir(), "DIS_NODE_ID=8"}, 60);
    INFO(client.err);
    CHECK(client.exit_code == 0);
    CHECK(client.out.find("2000 round trips") != std::string::npos);
    CHECK(wait_child(server, 30000) == 0);
}

TEST_CASE("links: probed by connecting to each peer, or as configured when the asker judges",
          "[fabric][config]") {
    TempDir cfgdir;
    const std::string conf = cfgdir.path().string() + "/fabric.conf";
    write_file(conf, "node 4\nnode 8\nnode 12\nlink 4 8\nlink 4 12\n");
    LocalFabric fabric({4, 8}, {"--config", conf}); // node 12 is declared, never started
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    dis::fabric::AdminClient peer(fabric.dir(), 8);
    const auto accepted = [&] { return peer.node_info().counters.at("clients_total"); };
    const auto clients = [&] { return peer.node_info().counters.at("clients"); };
    // Node 8 serves its listening socket and this connection in one loop, in either order.
    const auto settles = [](const std::function<std::uint64_t()>& read, std::uint64_t want) {
        for (int i = 0; i < 200 && read() != want; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return read();
    };
    const auto before = accepted();

    auto probed = admin.links();
    REQUIRE(probed.size() == 2);
    CHECK(probed[0].remote_node == 8);
    CHECK(probed[0].state == "up");
    CHECK(probed[1].remote_node == 12);
    CHECK(probed[1].state == "down"); // nobody accepts at node 12's socket
    // Node 8 accepted the probe's connection (dropped at once, having said nothing).
    CHECK(settles(accepted, before + 1) == before + 1);

    auto configured = admin.links(false);
    REQUIRE(configured.size() == 2);
    CHECK(configured[0].state == "up");
    CHECK(configured[1].state == "up"); // configured up: the asker judges node 12 itself
    CHECK(accepted() == before + 1);    // and node 4 connected to nobody
    // The probe left no client behind at node 8: this admin connection is its only one.
    CHECK(settles(clients, 1) == 1);
}

TEST_CASE("fabric sampler: a link is up while its remote node answers the same sample",
          "[fabric][config]") {
    TempDir cfgdir;
    const std::string conf = cfgdir.path().string() + "/fabric.conf";
    write_file(conf, "node 4\nnode 8\nnode 12\nlink 4 8\nlink 4 12\nlink 8 12 state=down\n");
    LocalFabric fabric({4, 8, 12}, {"--config", conf});
    dis::fabric::FabricSampler sampler(fabric.dir(), std::chrono::milliseconds(1000), true);
    const auto state = [](const std::vector<dis::fabric::NodeSample>& nodes, std::uint32_t node,
                          std::uint32_t remote) {
        for (const auto& n : nodes)
            for (const auto& l : n.links)
                if (n.id == node && l.remote_node == remote)
                    return l.state;
        return std::string("missing");
    };
    auto all = sampler.sample(false);
    CHECK(state(all, 4, 8) == "up");
    CHECK(state(all, 8, 4) == "up");
    CHECK(state(all, 4, 12) == "up");
    CHECK(state(all, 8, 12) == "down"); // configured down

    fabric.signal(12, SIGKILL); // its socket file stays behind
    auto after = sampler.sample(false);
    REQUIRE(after.size() == 3);
    CHECK_FALSE(after[2].up);
    CHECK(state(after, 4, 12) == "down");
    CHECK(state(after, 4, 8) == "up");
    CHECK(state(after, 8, 4) == "up");
}
