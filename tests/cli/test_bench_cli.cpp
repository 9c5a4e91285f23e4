// `dis-tool bench` against a real 2-node software fabric (real disd daemons in a temporary
// directory): a short run of every test checking the results and payload integrity, the
// output formats, the responder's life cycle, and the failure paths.
#include "support.hpp"
#include "tool_fabric.hpp"

#include "dis/file_text.hpp"
#include "dis/local_fabric.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sisci_api.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <future>
#include <sys/wait.h>
#include <thread>

using dis::test::check_one_error_line;
using dis::test::parse_out;
using dis::test::run;
using dis::test::run_tool;
using dis::test::RunResult;
using dis::test::TempDir;
using nlohmann::json;

namespace {

// "" when the process exited meanwhile (then it is no responder left behind).
std::string read_proc(const std::string& path) {
    return dis::read_file_text(path).value_or("");
}

// Pids of `bench serve` processes started for the fabric in `dir` (found by their
// environment), so a test can prove that no responder was left behind.
std::vector<pid_t> responders_of(const std::string& dir) {
    std::vector<pid_t> pids;
    DIR* proc = opendir("/proc");
    if (!proc)
        return pids;
    while (auto* e = readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        const std::string base = std::string("/proc/") + e->d_name;
        const std::string cmdline = read_proc(base + "/cmdline");
        if (cmdline.find(std::string("bench\0serve", 11)) == std::string::npos)
            continue;
        const std::string stat = read_proc(base + "/stat");
        auto close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z')
            continue;
        if (read_proc(base + "/environ").find("DIS_FABRIC=" + dir + '\0') != std::string::npos)
            pids.push_back(static_cast<pid_t>(pid));
    }
    closedir(proc);
    return pids;
}

// Two nodes (4 and 8) started with the built tool and always stopped again.
class TestFabric : public dis::test::ToolFabric {
public:
    TestFabric() : ToolFabric(2) {}

    RunResult bench(std::vector<std::string> args) const {
        std::vector<std::string> full = {"bench"};
        full.insert(full.end(), args.begin(), args.end());
        full.insert(full.end(), {"--fabric", dir()});
        return run_tool(full);
    }
};

json run_ok(const TestFabric& fab, const std::vector<std::string>& args) {
    auto r = fab.bench(args);
    INFO("args: " << dis::test::join_args(args) << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    auto doc = parse_out(r);
    CHECK(responders_of(fab.dir()).empty());
    return doc;
}

void check_header(const json& doc, const std::string& test) {
    CHECK(doc["test"] == test);
    CHECK(doc["local_node"] == 4);
    CHECK(doc["remote_node"] == 8);
    REQUIRE(doc["results"].is_array());
    REQUIRE(doc["baseline"].is_array());
}

void check_latency(const json& r, std::uint64_t iterations) {
    INFO(r.dump());
    CHECK(r["iterations"] == iterations);
    const double min = r["min_us"], med = r["median_us"], max = r["max_us"];
    CHECK(min > 0);
    CHECK(min <= med);
    CHECK(med <= max);
    CHECK(r["avg_us"].get<double>() >= min);
    CHECK(r["avg_us"].get<double>() <= max);
    CHECK(r["p99_us"].get<double>() >= med);
    CHECK(r["p999_us"].get<double>() >= r["p99_us"].get<double>());
    CHECK(r["stdev_us"].get<double>() >= 0);
    CHECK(r["baseline_ratio"].get<double>() > 0);
}

void check_bandwidth(const json& r, std::uint64_t iterations) {
    INFO(r.dump());
    CHECK(r["iterations"] == iterations);
    CHECK(r["bandwidth_gbps"].get<double>() > 0);
    CHECK(r["bandwidth_mibps"].get<double>() ==
          Approx(r["bandwidth_gbps"].get<double>() * 1e9 / 1048576.0));
    CHECK(r["msg_rate"].get<double>() > 0);
    CHECK(r["baseline_ratio"].get<double>() > 0);
}

std::vector<std::uint64_t> sizes_of(const json& results) {
    std::vector<std::uint64_t> v;
    for (const auto& r : results)
        v.push_back(r["size"]);
    return v;
}

} // namespace

TEST_CASE("bench pio-latency: short run with baseline and payload check", "[bench][cli]") {
    TestFabric fab;
    auto doc = run_ok(fab, {"pio-latency", "-r", "8", "--sizes", "4,8,4K", "-n", "200", "-w", "20",
                            "-o", "json"});
    check_header(doc, "pio-latency");
    CHECK(sizes_of(doc["results"]) == std::vector<std::uint64_t>{4, 8, 4096});
    for (const auto& r : doc["results"])
        check_latency(r, 200);
    REQUIRE(doc["baseline"].size() == 3);
    CHECK(doc["baseline"][0]["method"] == "shm-store");
    CHECK(doc["baseline"][0]["iterations"] == 200);
}

TEST_CASE("bench pio-bw: SCIMemCpy and stores, then loads with --read", "[bench][cli]") {
    TestFabric fab;
    auto doc = run_ok(fab, {"pio-bw", "-r", "8", "--sizes", "4K,64K", "-n", "20", "-o", "json"});
    check_header(doc, "pio-bw");
    CHECK(doc["mode"] == "write");
    REQUIRE(doc["results"].size() == 4);
    CHECK(doc["results"][0]["method"] == "scimemcpy");
    CHECK(doc["results"][1]["method"] == "store");
    for (const auto& r : doc["results"])
        check_bandwidth(r, 20);
    CHECK(doc["baseline"][0]["method"] == "memcpy");

    auto rd =
        run_ok(fab, {"pio-bw", "-r", "8", "--sizes", "64K", "-n", "20", "--read", "-o", "json"});
    CHECK(rd["mode"] == "read");
    REQUIRE(rd["results"].size() == 2);
    CHECK(rd["results"][1]["method"] == "load");
    for (const auto& r : rd["results"])
        check_bandwidth(r, 20);
}

TEST_CASE("bench dma-bw: push, pull and vector transfers", "[bench][cli]") {
    TestFabric fab;
    auto push = run_ok(fab, {"dma-bw", "-r", "8", "--sizes", "4K,1M", "-n", "10", "-o", "json"});
    check_header(push, "dma-bw");
    CHECK(push["mode"] == "push");
    CHECK(sizes_of(push["results"]) == std::vector<std::uint64_t>{4096, 1 << 20});
    for (const auto& r : push["results"])
        check_bandwidth(r, 10);

    auto pull = run_ok(fab, {"dma-bw", "-r", "8", "--sizes", "64K", "-n", "10", "--pull",
                             "--vector", "4", "-o", "json"});
    CHECK(pull["mode"] == "pull");
    REQUIRE(pull["results"].size() == 1);
    CHECK(pull["results"][0]["method"] == "dma-vector-4");
    check_bandwidth(pull["results"][0], 10);
}

TEST_CASE("bench dma-latency: wait, sleep, poll and callback completion", "[bench][cli]") {
    TestFabric fab;
    for (const char* mode : {"wait", "sleep", "poll", "callback"}) {
        auto doc = run_ok(fab, {"dma-latency", "-r", "8", "--sizes", "64,4K", "-n", "50", "--mode",
                                mode, "-o", "json"});
        check_header(doc, "dma-latency");
        CHECK(doc["mode"] == mode);
        REQUIRE(doc["results"].size() == 2);
        for (const auto& r : doc["results"])
            check_latency(r, 50);
        // Held to a yardstick that waits the same way: only a sleeping wait to a wake-up.
        CHECK(doc["baseline"][0]["method"] ==
              (std::string(mode) == "sleep" ? "eventfd" : "shm-store"));
    }
}

TEST_CASE("bench intr-latency and data-intr-latency", "[bench][cli]") {
    TestFabric fab;
    auto doc = run_ok(fab, {"intr-latency", "-r", "8", "-n", "200", "-o", "json"});
    check_header(doc, "intr-latency");
    REQUIRE(doc["results"].size() == 1);
    CHECK(doc["results"][0]["size"] == 0);
    check_latency(doc["results"][0], 200);
    CHECK(doc["baseline"][0]["method"] == "eventfd");

    auto data =
        run_ok(fab, {"data-intr-latency", "-r", "8", "--sizes", "4,2K", "-n", "100", "-o", "json"});
    check_header(data, "data-intr-latency");
    CHECK(sizes_of(data["results"]) == std::vector<std::uint64_t>{4, 2048});
    for (const auto& r : data["results"])
        check_latency(r, 100);
}

TEST_CASE("bench prints a table and CSV, -o accepted after the subcommand", "[bench][cli]") {
    TestFabric fab;
    auto t = fab.bench({"pio-latency", "-r", "8", "--sizes", "8", "-n", "50"});
    INFO(t.err);
    REQUIRE(t.exit_code == 0);
    CHECK(t.out.find("pio-latency: node 4 -> node 8") != std::string::npos);
    CHECK(t.out.find("MEDIAN_US") != std::string::npos);
    CHECK(t.out.find("payload verified") != std::string::npos);

    auto c = fab.bench({"dma-bw", "-r", "8", "--sizes", "4K", "-n", "5", "-o", "csv"});
    INFO(c.err);
    REQUIRE(c.exit_code == 0);
    CHECK(c.out.rfind("SIZE,METHOD,ITERS,GB/S,MIB/S,MSG/S,BASE_GB/S,BEST_GB/S,RATIO,RATIO_BEST\n",
                      0) == 0);
    CHECK(c.out.find("\n4096,dma,5,") != std::string::npos);

    auto d =
        fab.bench({"intr-latency", "-r", "8", "--duration", "0.2", "--no-baseline", "-o", "json"});
    REQUIRE(d.exit_code == 0);
    auto doc = parse_out(d);
    CHECK(doc["results"][0]["iterations"].get<int>() > 10);
    CHECK(doc["baseline"].empty());
    CHECK_FALSE(doc["results"][0].contains("baseline_ratio"));
}

TEST_CASE("bench serve as a separate responder (--no-spawn) exits after --once", "[bench][cli]") {
    TestFabric fab;
    auto server = std::async(std::launch::async, [&] {
        return run({DIS_TOOL_PATH, "bench", "serve", "--once", "--idle-timeout", "20",
                    "--local-node", "8", "--fabric", fab.dir()});
    });
    // Wait until the responder's control segment is there (the fabric's own admin view).
    bool up = false;
    for (int i = 0; i < 500 && !up; ++i) {
        auto seg = run_tool({"segment", "list", "--fabric", fab.dir(), "-o", "json"});
        up = seg.out.find("\"segment_id\": 3512401921") != std::string::npos;
        if (!up)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(up);

    // A run that starts its own responder must not talk to this one.
    auto clash = fab.bench({"pio-latency", "-r", "8", "--sizes", "64", "-n", "10"});
    CHECK(clash.exit_code == 3);
    check_one_error_line(clash);
    CHECK(clash.err.find("another bench responder") != std::string::npos);

    auto r = fab.bench(
        {"pio-latency", "-r", "8", "--sizes", "64", "-n", "100", "--no-spawn", "-o", "json"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto served = server.get();
    INFO("serve stderr: " << served.err);
    CHECK(served.exit_code == 0);
    CHECK(parse_out(r)["results"][0]["iterations"] == 100);
}

TEST_CASE("bench serve gives up after --idle-timeout", "[bench][cli]") {
    TestFabric fab;
    auto t0 = std::chrono::steady_clock::now();
    auto r = run({DIS_TOOL_PATH, "bench", "serve", "--idle-timeout", "1", "--local-node", "8",
                  "--fabric", fab.dir()});
    auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(r.exit_code == 3);
    check_one_error_line(r);
    CHECK(s >= 1.0);
    CHECK(s < 10.0);
}

TEST_CASE("bench reports an unreachable node with exit 3 and leaves no responder", "[bench][cli]") {
    TestFabric fab;
    auto r = fab.bench(
        {"pio-latency", "-r", "12", "--sizes", "8", "-n", "10", "--timeout", "2000", "-o", "json"});
    CHECK(r.exit_code == 3);
    check_one_error_line(r);
    auto doc = parse_out(r);
    CHECK(doc.contains("error"));
    CHECK(responders_of(fab.dir()).empty());

    // No responder at all (--no-spawn): the handshake times out.
    auto n = fab.bench({"intr-latency", "-r", "8", "--no-spawn", "--timeout", "500"});
    CHECK(n.exit_code == 3);
    check_one_error_line(n);
}

TEST_CASE("bench rejects bad options with exit 2", "[bench][cli]") {
    TestFabric fab;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"pio-latency", "-r", "8", "--sizes", "16..8"},
             {"pio-latency", "-r", "8", "--sizes", "6"},
             {"pio-latency", "-r", "8", "--sizes", "4X"},
             {"intr-latency", "-r", "8", "--sizes", "4"},
             {"data-intr-latency", "-r", "8", "--sizes", "4K", "-n", "5"},
             {"dma-latency", "-r", "8", "--mode", "spin"},
             {"dma-bw", "-r", "8", "--sizes", "64", "--vector", "4", "-n", "2"},
             {"pio-bw"},
             {"intr-latency", "-r", "8", "--cpu", "-2"},
             {"intr-latency", "-r", "8", "--remote-cpu", "-2"},
             {"intr-latency", "-r", "8", "--duration", "-1"},
         }) {
        auto r = fab.bench(args);
        INFO(args[0] << " " << (args.size() > 4 ? args[4] : ""));
        CHECK(r.exit_code == 2);
        check_one_error_line(r);
    }
    CHECK(responders_of(fab.dir()).empty());
}

TEST_CASE("bench fails loudly when the payload is corrupted on the way", "[bench][cli]") {
    TestFabric fab;
    // A third party on node 4 keeps scribbling over the responder's data segment while
    // pio-bw --read loads it: the data no longer matches what the responder wrote.
    ::setenv("DIS_FABRIC", fab.dir().c_str(), 1);
    ::setenv("DIS_NODE_ID", "4", 1);
    std::atomic<bool> stop{false}, attached{false};
    std::thread scribbler([&] {
        sci_error_t err = SCI_ERR_OK;
        sci_desc_t sd = nullptr;
        SCIInitialize(0, &err);
        if (err != SCI_ERR_OK)
            return;
        SCIOpen(&sd, 0, &err);
        sci_remote_segment_t seg = nullptr;
        sci_map_t map = nullptr;
        volatile std::uint32_t* p = nullptr;
        while (!stop && !p) {
            SCIConnectSegment(sd, &seg, 8, 0xD15B0002, 0, nullptr, nullptr, 100, 0, &err);
            if (err != SCI_ERR_OK) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            p = static_cast<volatile std::uint32_t*>(
                SCIMapRemoteSegment(seg, &map, 0, 4096, nullptr, 0, &err));
            if (err != SCI_ERR_OK)
                p = nullptr;
        }
        if (p)
            attached = true;
        while (!stop && p) {
            p[0] = 0xDEADBEEF;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (p)
            SCIUnmapSegment(map, 0, &err);
        if (seg)
            SCIDisconnectSegment(seg, 0, &err);
        SCIClose(sd, 0, &err);
        SCITerminate();
    });
    auto r = fab.bench({"pio-bw", "-r", "8", "--sizes", "4K", "--read", "--duration", "1"});
    stop = true;
    scribbler.join();
    REQUIRE(attached);
    CHECK(r.exit_code == 1);
    check_one_error_line(r);
    CHECK(r.err.find("payload check failed") != std::string::npos);
    CHECK(responders_of(fab.dir()).empty());
}

TEST_CASE("a killed client takes its responder with it", "[bench][cli]") {
    TestFabric fab;
    const std::string tool = DIS_TOOL_PATH;
    std::vector<std::string> args = {tool,       "bench",   "intr-latency", "-r", "8",
                                     "--fabric", fab.dir(), "--duration",   "30", "--no-baseline"};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t client = fork();
    REQUIRE(client >= 0);
    if (client == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execv(argv[0], argv.data());
        _exit(127);
    }
    auto wait_for = [](const std::function<bool()>& done, int ms) {
        for (int i = 0; i < ms / 10 && !done(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return done();
    };
    const bool started = wait_for([&] { return !responders_of(fab.dir()).empty(); }, 10000);
    ::kill(client, SIGKILL);
    int status = 0;
    waitpid(client, &status, 0);
    REQUIRE(started);
    CHECK(wait_for([&] { return responders_of(fab.dir()).empty(); }, 3000));
}

TEST_CASE("bench pins both sides with --cpu and --remote-cpu", "[bench][cli]") {
    TestFabric fab;
    auto doc = run_ok(fab, {"intr-latency", "-r", "8", "-n", "100", "--cpu", "0", "--remote-cpu",
                            "0", "-o", "json"});
    check_latency(doc["results"][0], 100);
    auto bad = fab.bench({"intr-latency", "-r", "8", "-n", "10", "--cpu", "100000"});
    CHECK(bad.exit_code == 2);
    check_one_error_line(bad);
}
