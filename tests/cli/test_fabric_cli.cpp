// The built dis-tool against a real local software fabric: `fabric start|status|stop`,
// `topology`, `probe` and `segment list` with real disd daemons in a temporary fabric
// directory, a segment created through libsisci in this process, and the unreachable cases.
#include "support.hpp"
#include "tool_fabric.hpp"

#include "dis/local_fabric.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sisci_api.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <unistd.h>

using dis::test::check_one_error_line;
using dis::test::parse_out;
using dis::test::pid_alive;
using dis::test::run_tool;
using dis::test::RunResult;
using dis::test::TempDir;
using dis::test::wait_until;
using nlohmann::json;

namespace {

using TestFabric = dis::test::ToolFabric;

std::set<std::uint32_t> node_ids(const json& nodes) {
    std::set<std::uint32_t> ids;
    for (const auto& n : nodes)
        ids.insert(n["node_id"].get<std::uint32_t>());
    return ids;
}

// A segment of node `node` created by this process through libsisci.
class SisciSegment {
public:
    SisciSegment(const std::string& fabric_dir, std::uint32_t node, unsigned id, size_t size) {
        ::setenv("DIS_FABRIC", fabric_dir.c_str(), 1);
        ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
        sci_error_t err = SCI_ERR_OK;
        SCIInitialize(0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIOpen(&m_sd, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCICreateSegment(m_sd, &m_segment, id, size, nullptr, nullptr, 0, &err);
        INFO("SCICreateSegment: " << SCIGetErrorString(err));
        REQUIRE(err == SCI_ERR_OK);
        SCIPrepareSegment(m_segment, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCISetSegmentAvailable(m_segment, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
    }
    ~SisciSegment() {
        remove();
        sci_error_t err = SCI_ERR_OK;
        SCIClose(m_sd, 0, &err);
        SCITerminate();
    }
    void remove() {
        if (!m_segment)
            return;
        sci_error_t err = SCI_ERR_OK;
        SCIRemoveSegment(m_segment, 0, &err);
        CHECK(err == SCI_ERR_OK);
        m_segment = nullptr;
    }

private:
    sci_desc_t m_sd{};
    sci_local_segment_t m_segment{};
};

} // namespace

TEST_CASE("fabric start, status, topology, probe and stop with 3 real daemons", "[fabric]") {
    TestFabric fabric(3);
    const auto& dir = fabric.dir();

    const json& start = fabric.start_doc();
    CHECK(start["fabric_dir"] == dir);
    REQUIRE(node_ids(start["nodes"]) == std::set<std::uint32_t>{4, 8, 12});
    for (const auto& n : start["nodes"]) {
        pid_t pid = n["pid"].get<pid_t>();
        CHECK(pid_alive(pid));
        std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
        std::string argv0;
        std::getline(cmdline, argv0, '\0');
        CHECK(argv0.find("disd") != std::string::npos);
    }

    SECTION("status lists every node with pid, uptime, adapters and counters") {
        auto r = run_tool({"fabric", "status", "--fabric", dir, "-o", "json"});
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        REQUIRE(doc["nodes"].size() == 3);
        for (const auto& n : doc["nodes"]) {
            CHECK(n["reachable"] == true);
            CHECK(n["pid"] == fabric.pid_of(n["node_id"]));
            CHECK(n["uptime_s"].is_number_unsigned());
            CHECK(!n["adapters"].empty());
            CHECK(n["counters"].is_object());
        }
        // DIS_FABRIC selects the directory as well as --fabric does.
        auto text = run_tool({"fabric", "status"}, {"DIS_FABRIC=" + dir});
        REQUIRE(text.exit_code == 0);
        CHECK(text.out.find(std::to_string(fabric.pid_of(8))) != std::string::npos);
        CHECK(text.out.find("up") != std::string::npos);
        CHECK(text.err.empty());
    }

    SECTION("topology shows nodes, adapters and links through SISCI") {
        auto r = run_tool({"topology", "--fabric", dir, "-o", "json"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        CHECK(doc["implementation"] == "software");
        CHECK(doc["admin_available"] == true);
        CHECK(doc["local_node_id"] == 4); // the lowest node by default
        REQUIRE(node_ids(doc["nodes"]) == std::set<std::uint32_t>{4, 8, 12});
        for (const auto& n : doc["nodes"]) {
            CHECK(n["reachable"] == true);
            CHECK(n["local"] == (n["node_id"] == 4));
            REQUIRE(!n["adapters"].empty());
            CHECK(n["adapters"][0]["node_id"] == n["node_id"]);
        }
        const auto& local_adapter = doc["nodes"][0]["adapters"][0];
        CHECK(local_adapter["link_operational"] == true);
        CHECK(local_adapter["link_width"].get<unsigned>() > 0);
        CHECK(local_adapter["link_speed"].get<std::string>().find("GT/s") != std::string::npos);
        REQUIRE(!doc["links"].empty());
        for (const auto& l : doc["links"]) {
            CHECK(l["local_node"] < l["remote_node"]);
            CHECK(l["state"] == "up");
            CHECK(l["speed"].get<std::string>().find("GT/s") != std::string::npos);
        }

        auto as8 = run_tool({"topology", "--fabric", dir, "--local-node", "8", "-o", "json"});
        REQUIRE(as8.exit_code == 0);
        CHECK(parse_out(as8)["local_node_id"] == 8);

        auto text = run_tool({"topology", "--fabric", dir});
        REQUIRE(text.exit_code == 0);
        CHECK(text.out.find("local node 4") != std::string::npos);
        CHECK(text.out.find("12") != std::string::npos);
    }

    SECTION("probe reports a live node reachable and an unknown one unreachable") {
        auto r = run_tool({"probe", "12", "--fabric", dir, "-o", "json"});
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        CHECK(doc["node_id"] == 12);
        CHECK(doc["local_node_id"] == 4);
        CHECK(doc["reachable"] == true);

        auto text = run_tool({"probe", "8", "--fabric", dir});
        CHECK(text.exit_code == 0);
        CHECK(text.out.find("is reachable") != std::string::npos);

        auto missing = run_tool({"probe", "40", "--fabric", dir, "-o", "json"});
        CHECK(missing.exit_code == 3);
        check_one_error_line(missing);
        CHECK(parse_out(missing)["reachable"] == false);
    }

    SECTION("segment list shows a segment created through libsisci") {
        SisciSegment segment(dir, 8, 77, 65536);
        auto r = run_tool({"segment", "list", "--fabric", dir, "--node", "8", "-o", "json"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        const json* found = nullptr;
        for (const auto& s : doc["segments"])
            if (s["segment_id"] == 77)
                found = &s;
        REQUIRE(found != nullptr);
        CHECK((*found)["node_id"] == 8);
        CHECK((*found)["size"] == 65536);
        CHECK((*found)["owner_pid"] == ::getpid());
        CHECK((*found)["owner_uid"] == ::getuid());
        CHECK((*found)["state"] == "available");
        CHECK((*found)["connections"] == 0);

        // Without --node every node is asked; node 4 has no segment 77.
        auto all = run_tool({"segment", "list", "--fabric", dir, "-o", "json"});
        REQUIRE(all.exit_code == 0);
        INFO("segment list: " << all.out);
        int hits = 0;
        auto all_doc = parse_out(all); // the loop must not iterate a temporary
        for (const auto& s : all_doc["segments"])
            hits += s["segment_id"] == 77 && s["node_id"] == 8;
        CHECK(hits == 1);

        auto text = run_tool({"segment", "list", "--fabric", dir, "--node", "8"});
        REQUIRE(text.exit_code == 0);
        CHECK(text.out.find("65536") != std::string::npos);
        CHECK(text.out.find("available") != std::string::npos);

        segment.remove();
        auto after = run_tool({"segment", "list", "--fabric", dir, "--node", "8", "-o", "json"});
        REQUIRE(after.exit_code == 0);
        auto after_doc = parse_out(after); // the loop must not iterate a temporary
        for (const auto& s : after_doc["segments"])
            CHECK(s["segment_id"] != 77);
    }

    SECTION("stop shuts every daemon down and the fabric is then unreachable") {
        auto r = run_tool({"fabric", "stop", "--fabric", dir, "-o", "json"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        REQUIRE(node_ids(doc["nodes"]) == std::set<std::uint32_t>{4, 8, 12});
        for (const auto& n : doc["nodes"]) {
            CHECK(n["stopped"] == true);
            CHECK(n["method"] == "shutdown");
            CHECK_FALSE(pid_alive(n["pid"].get<pid_t>()));
        }
        auto status = run_tool({"fabric", "status", "--fabric", dir, "-o", "json"});
        CHECK(status.exit_code == 3);
        check_one_error_line(status);
        CHECK(parse_out(status)["error"]["kind"] == "fabric_down");

        auto again = run_tool({"fabric", "stop", "--fabric", dir});
        CHECK(again.exit_code == 0); // stopping a stopped fabric is not an error
    }
}

TEST_CASE("fabric commands against no fabric exit 3 with one stderr line", "[fabric]") {
    TempDir tmp;
    for (const std::string& dir : {(tmp.path() / "empty").string(), tmp.path().string()}) {
        std::vector<std::vector<std::string>> commands = {
            {"fabric", "status"},
            {"topology"},
            {"probe", "4"},
            {"segment", "list"},
            {"segment", "list", "--node", "8"},
        };
        for (const auto& cmd : commands) {
            std::vector<std::string> args = cmd;
            args.insert(args.end(), {"--fabric", dir});
            std::string joined;
            for (const auto& a : args)
                joined += a + " ";
            INFO("dis-tool " << joined);
            auto text = run_tool(args);
            CHECK(text.exit_code == 3);
            check_one_error_line(text);
            CHECK(text.out.empty());

            args.insert(args.end(), {"-o", "json"});
            auto js = run_tool(args);
            CHECK(js.exit_code == 3);
            check_one_error_line(js);
            auto doc = parse_out(js);
            CHECK(doc["error"]["kind"] == "fabric_down");
            CHECK(!doc["error"]["message"].get<std::string>().empty());
        }
    }
}

TEST_CASE("fabric status and stop refuse a malformed pid record", "[fabric]") {
    TempDir tmp;
    dis::test::write_file(tmp.path() / dis::fabric::k_local_fabric_record, "{\"nodes\": 4}");
    for (const char* verb : {"status", "stop"}) {
        auto r = run_tool({"fabric", verb, "--fabric", tmp.path().string(), "-o", "json"});
        INFO(verb);
        CHECK(r.exit_code == 2);
        check_one_error_line(r);
        CHECK(parse_out(r)["error"]["kind"] == "invalid_input");
    }
}

TEST_CASE("fabric status, probe and topology show a killed daemon as down", "[fabric]") {
    TestFabric fabric(3);
    const auto& dir = fabric.dir();
    pid_t victim = fabric.pid_of(8);
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE(wait_until([&] { return !pid_alive(victim); }, std::chrono::seconds(5)));

    auto status = run_tool({"fabric", "status", "--fabric", dir, "-o", "json"});
    CHECK(status.exit_code == 3);
    check_one_error_line(status);
    CHECK(status.err.find("8") != std::string::npos);
    auto doc = parse_out(status);
    REQUIRE(doc["nodes"].size() == 3);
    for (const auto& n : doc["nodes"])
        CHECK(n["reachable"] == (n["node_id"] != 8));

    // The issue allows a second for the loss to be seen.
    RunResult probe;
    bool down = wait_until(
        [&] {
            probe = run_tool({"probe", "8", "--fabric", dir, "-o", "json"});
            return probe.exit_code == 3;
        },
        std::chrono::seconds(2));
    CHECK(down);
    check_one_error_line(probe);
    CHECK(parse_out(probe)["reachable"] == false);

    auto topo = run_tool({"topology", "--fabric", dir, "-o", "json"});
    INFO(topo.err);
    REQUIRE(topo.exit_code == 0);
    auto topo_doc = parse_out(topo);
    // Node 8 no longer answers discovery, but its peers' links to it keep it in the picture.
    REQUIRE(node_ids(topo_doc["nodes"]) == std::set<std::uint32_t>{4, 8, 12});
    for (const auto& n : topo_doc["nodes"])
        CHECK(n["reachable"] == (n["node_id"] != 8));
    for (const auto& l : topo_doc["links"])
        CHECK(l["state"] == ((l["local_node"] == 8 || l["remote_node"] == 8) ? "down" : "up"));

    auto stop = run_tool({"fabric", "stop", "--fabric", dir, "-o", "json"});
    CHECK(stop.exit_code == 0);
    auto stop_doc = parse_out(stop); // the loop must not iterate a temporary
    for (const auto& n : stop_doc["nodes"]) {
        CHECK(n["stopped"] == true);
        CHECK(n["method"] == (n["node_id"] == 8 ? "not_running" : "shutdown"));
    }
    // The killed daemon's stale socket is gone too.
    CHECK_FALSE(std::filesystem::exists(dis::fabric::node_socket_path(dir, 8)));
}

TEST_CASE("fabric start rejects bad input and a node that is already running", "[fabric]") {
    TempDir tmp;
    std::string dir = (tmp.path() / "fabric").string();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"fabric", "start", "--nodes", "0", "--fabric", dir},
             {"fabric", "start", "--nodes", "x", "--fabric", dir},
             {"fabric", "start", "--config", (tmp.path() / "missing.conf").string(), "--fabric",
              dir},
             {"probe", "--fabric", dir},
         }) {
        auto r = run_tool(args);
        INFO(args[0] << " " << args[1] << ": " << r.err);
        CHECK(r.exit_code == 2);
        check_one_error_line(r);
    }

    TestFabric fabric(1);
    auto again = run_tool({"fabric", "start", "--nodes", "1", "--fabric", fabric.dir()});
    CHECK(again.exit_code == 2);
    check_one_error_line(again);
    CHECK(again.err.find("already running") != std::string::npos);
    auto status = run_tool({"fabric", "status", "--fabric", fabric.dir(), "-o", "json"});
    REQUIRE(status.exit_code == 0);
    CHECK(parse_out(status)["nodes"].size() == 1);
}

TEST_CASE("fabric, topology, probe and segment commands have --help", "[fabric]") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"fabric", "start", "--help"},
             {"fabric", "stop", "--help"},
             {"fabric", "status", "--help"},
             {"topology", "--help"},
             {"probe", "--help"},
             {"segment", "list", "--help"},
         }) {
        auto r = run_tool(args);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("--fabric") != std::string::npos);
    }
}

TEST_CASE("fabric start --config starts the config's nodes and topology reports its links",
          "[fabric]") {
    TempDir tmp;
    std::string dir = (tmp.path() / "fabric").string();
    auto config = tmp.path() / "fabric.conf";
    dis::test::write_file(config, "topology ring\n"
                                  "node 4 name=alpha\n"
                                  "node 16 name=delta\n"
                                  "link 4 16 width=4 speed=16GT/s\n");
    auto start =
        run_tool({"fabric", "start", "--config", config.string(), "--fabric", dir, "-o", "json"});
    INFO(start.err);
    REQUIRE(start.exit_code == 0);
    struct Stop {
        std::string dir;
        ~Stop() { dis::fabric::stop_local_fabric(dir, std::chrono::milliseconds(2000)); }
    } stop{dir};
    auto start_doc = parse_out(start);
    CHECK(node_ids(start_doc["nodes"]) == std::set<std::uint32_t>{4, 16});

    auto topo = run_tool({"topology", "--fabric", dir, "-o", "json"});
    INFO(topo.err);
    REQUIRE(topo.exit_code == 0);
    auto doc = parse_out(topo);
    REQUIRE(doc["nodes"].size() == 2);
    CHECK(doc["nodes"][0]["name"] == "alpha");
    CHECK(doc["nodes"][1]["name"] == "delta");
    REQUIRE(doc["links"].size() == 1);
    CHECK(doc["links"][0]["local_node"] == 4);
    CHECK(doc["links"][0]["remote_node"] == 16);
    CHECK(doc["links"][0]["width"] == 4);
    CHECK(doc["links"][0]["speed"] == "16GT/s");

    auto bad = tmp.path() / "bad.conf";
    dis::test::write_file(bad, "node 5\n");
    auto refused = run_tool(
        {"fabric", "start", "--config", bad.string(), "--fabric", (tmp.path() / "other").string()});
    CHECK(refused.exit_code == 2);
    check_one_error_line(refused);
}

TEST_CASE("fabric commands acting as a node that does not exist exit 3", "[fabric]") {
    TestFabric fabric(2);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"topology", "--local-node", "40"},
             {"probe", "4", "--local-node", "40"},
         }) {
        std::vector<std::string> with_dir = args;
        with_dir.insert(with_dir.end(), {"--fabric", fabric.dir(), "-o", "json"});
        auto r = run_tool(with_dir);
        INFO(args[0] << ": " << r.err);
        CHECK(r.exit_code == 3);
        check_one_error_line(r);
        CHECK(parse_out(r)["error"]["kind"] == "fabric_down");
    }
    // A missing adapter is an input error, with SCIGetErrorString's text.
    auto r = run_tool({"topology", "--fabric", fabric.dir(), "--adapter", "3"});
    CHECK(r.exit_code == 2);
    check_one_error_line(r);
    CHECK(r.err.find(SCIGetErrorString(SCI_ERR_NO_SUCH_ADAPTERNO)) != std::string::npos);
}

TEST_CASE("topology describes the local adapter through SISCI as the admin view does", "[fabric]") {
    TestFabric fabric(2);
    auto r = run_tool({"topology", "--fabric", fabric.dir(), "--local-node", "8", "-o", "json"});
    REQUIRE(r.exit_code == 0);
    auto doc = parse_out(r);
    // Node 8's adapter comes from SCIQuery (it is the local node), node 4's from the admin
    // interface; the two paths must describe adapters alike.
    dis::fabric::AdminClient admin(fabric.dir(), 8);
    auto info = admin.node_info();
    REQUIRE(info.adapters.size() == 1);
    bool seen_local = false;
    for (const auto& n : doc["nodes"]) {
        if (n["node_id"] != 8)
            continue;
        seen_local = true;
        CHECK(n["local"] == true);
        REQUIRE(n["adapters"].size() == 1);
        CHECK(n["adapters"][0]["serial"] == info.adapters[0].serial);
        CHECK(n["adapters"][0]["card_type"] == info.adapters[0].card_type);
    }
    CHECK(seen_local);
}
