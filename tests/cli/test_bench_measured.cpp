// `dis-tool bench` says what it measured (issue 8, item 11), against a real 2-node software
// fabric: the completion labels, yardsticks of the same kind as the result, payload fields
// from each test's own check, CPU time of both sides, yardstick best and median rounds, and
// the default pinning with --no-pin.
#include "support.hpp"

#include "dis/file_text.hpp"
#include "dis/local_fabric.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using dis::test::run_tool;
using dis::test::RunResult;
using dis::test::TempDir;
using nlohmann::json;

namespace {

// Two nodes (4 and 8), stopped again at the end.
class Fabric {
public:
    Fabric() : m_dir((m_tmp.path() / "fabric").string()) {
        auto r = run_tool({"fabric", "start", "--nodes", "2", "--fabric", m_dir});
        INFO("fabric start: " << r.out << r.err);
        REQUIRE(r.exit_code == 0);
    }
    ~Fabric() {
        try {
            dis::fabric::stop_local_fabric(m_dir, std::chrono::milliseconds(2000));
        } catch (...) {
        }
    }
    const std::string& dir() const { return m_dir; }
    RunResult bench(std::vector<std::string> args) const {
        args.insert(args.begin(), "bench");
        args.insert(args.end(), {"-r", "8", "--fabric", m_dir});
        return run_tool(args);
    }
    json bench_json(std::vector<std::string> args) const {
        args.insert(args.end(), {"-o", "json"});
        auto r = bench(args);
        INFO("stdout: " << r.out << "\nstderr: " << r.err);
        REQUIRE(r.exit_code == 0);
        auto doc = json::parse(r.out, nullptr, false);
        REQUIRE_FALSE(doc.is_discarded());
        return doc;
    }

private:
    TempDir m_tmp;
    std::string m_dir;
};

// The yardstick a result is held to: same kind (spin-then-sleep is held to spin).
std::string yardstick_kind(const std::string& wait) {
    return wait == "spin-then-sleep" ? "spin" : wait;
}

// Every ratio is against a yardstick of the result's kind, and against its median and best
// rounds as the yardstick reports them.
void check_ratios(const json& doc) {
    for (const auto& r : doc["results"]) {
        INFO(r.dump());
        const json* base = nullptr;
        for (const auto& b : doc["baseline"])
            if (b["wait"] == yardstick_kind(r["wait"]) && (b["size"] == r["size"] || !base))
                base = &b;
        REQUIRE(base);
        REQUIRE(r.contains("baseline_ratio"));
        REQUIRE(r.contains("baseline_ratio_best"));
        const bool lat = r.contains("median_us");
        const double value = lat ? r["median_us"].get<double>() : r["bandwidth_gbps"].get<double>();
        const std::string unit = lat ? "_us" : "_gbps";
        CHECK(r["baseline_ratio"].get<double>() ==
              Approx(value / (*base)["round_median" + unit].get<double>()));
        CHECK(r["baseline_ratio_best"].get<double>() ==
              Approx(value / (*base)["best" + unit].get<double>()));
    }
}

void check_yardsticks(const json& doc, const std::string& schedule) {
    REQUIRE_FALSE(doc["baseline"].empty());
    for (const auto& b : doc["baseline"]) {
        INFO(b.dump());
        CHECK(b["schedule"] == schedule);
        CHECK(b["rounds"].get<int>() >= 2);
        if (b.contains("best_us"))
            CHECK(b["best_us"].get<double>() <= b["round_median_us"].get<double>());
        else
            CHECK(b["best_gbps"].get<double>() >= b["round_median_gbps"].get<double>());
    }
}

void check_cpu(const json& r) {
    INFO(r.dump());
    REQUIRE(r.contains("cpu_local_s"));
    REQUIRE(r.contains("cpu_remote_s"));
    REQUIRE(r["cpu_remote_s"].is_number());
    CHECK(r["cpu_local_s"].get<double>() >= 0);
    CHECK(r["cpu_remote_s"].get<double>() >= 0);
    CHECK_FALSE(r["cpu_remote"].get<std::string>().empty());
}

// "" when the process exited meanwhile.
std::string read_proc(const std::string& path) {
    return dis::read_file_text(path).value_or("");
}

// The `bench serve` process started for the fabric in `dir` (by its environment), or -1.
pid_t responder_of(const std::string& dir) {
    pid_t found = -1;
    DIR* proc = opendir("/proc");
    if (!proc)
        return found;
    while (auto* e = readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        const std::string base = std::string("/proc/") + e->d_name;
        if (read_proc(base + "/cmdline").find(std::string("bench\0serve", 11)) == std::string::npos)
            continue;
        if (read_proc(base + "/environ").find("DIS_FABRIC=" + dir + '\0') != std::string::npos)
            found = static_cast<pid_t>(pid);
    }
    closedir(proc);
    return found;
}

// "Cpus_allowed_list" of a process's main thread, e.g. "1" or "0-1".
std::string cpus_allowed(pid_t pid) {
    const std::string status = read_proc("/proc/" + std::to_string(pid) + "/status");
    const std::string key = "Cpus_allowed_list:";
    auto at = status.find(key);
    if (at == std::string::npos)
        return "";
    auto begin = status.find_first_not_of(" \t", at + key.size());
    return status.substr(begin, status.find('\n', begin) - begin);
}

bool wait_for(const std::function<bool()>& done, int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
}

} // namespace

TEST_CASE("bench dma-latency labels each completion mode and compares like with like",
          "[bench][cli][measured]") {
    Fabric fab;
    struct Mode {
        const char* name;
        const char* wait;
        const char* yardstick;
        const char* label; // a phrase the completion text must contain
    };
    for (const Mode m : {Mode{"wait", "spin-then-sleep", "shm-store", "spins"},
                         Mode{"sleep", "sleep", "eventfd", "sleeps in the kernel"},
                         Mode{"poll", "spin", "shm-store", "spins"},
                         Mode{"callback", "spin-then-sleep", "shm-store", "callback"}}) {
        INFO("mode " << m.name);
        auto doc = fab.bench_json({"dma-latency", "--sizes", "64", "-n", "200", "--mode", m.name});
        CHECK(doc["mode"] == m.name);
        CHECK(doc["completion"].get<std::string>().find(m.label) != std::string::npos);
        if (std::string(m.name) == "wait")
            CHECK(doc["completion"].get<std::string>().find("then sleeps") != std::string::npos);
        REQUIRE(doc["results"].size() == 1);
        CHECK(doc["results"][0]["wait"] == m.wait);
        CHECK(doc["results"][0]["payload"] == "verified");
        check_cpu(doc["results"][0]);
        REQUIRE(doc["baseline"].size() == 1);
        CHECK(doc["baseline"][0]["method"] == m.yardstick);
        CHECK(doc["baseline"][0]["wait"] == yardstick_kind(m.wait));
        check_yardsticks(doc, "after");
        check_ratios(doc);
    }
}

TEST_CASE("bench intr-latency counts its interrupts and does not claim a checksum",
          "[bench][cli][measured]") {
    Fabric fab;
    auto doc = fab.bench_json({"intr-latency", "-n", "300"});
    CHECK(doc["results"][0]["payload"] == "counted");
    CHECK(doc["results"][0]["wait"] == "sleep");
    CHECK(doc["payload_summary"].get<std::string>().find("verified") == std::string::npos);
    check_cpu(doc["results"][0]);
    CHECK(doc["baseline"][0]["method"] == "eventfd");
    check_yardsticks(doc, "interleaved");
    check_ratios(doc);

    auto text = fab.bench({"intr-latency", "-n", "100"});
    INFO(text.err);
    REQUIRE(text.exit_code == 0);
    CHECK(text.out.find("payload counted") != std::string::npos);
    CHECK(text.out.find("payload verified") == std::string::npos);
    CHECK(text.out.find("rounds interleaved") != std::string::npos);
}

TEST_CASE("bench pio-latency and data-intr-latency verify checksums and report CPU time",
          "[bench][cli][measured]") {
    Fabric fab;
    auto pio = fab.bench_json({"pio-latency", "--sizes", "8,64", "-n", "500"});
    for (const auto& r : pio["results"]) {
        CHECK(r["payload"] == "verified");
        CHECK(r["wait"] == "spin");
        check_cpu(r);
        // Both sides spin through the measured loop: neither can have spent no CPU at all.
        CHECK(r["cpu_local_s"].get<double>() > 0);
        CHECK(r["cpu_remote_s"].get<double>() > 0);
    }
    check_yardsticks(pio, "after");
    check_ratios(pio);

    auto data = fab.bench_json({"data-intr-latency", "--sizes", "16", "-n", "200"});
    CHECK(data["results"][0]["payload"] == "verified");
    check_cpu(data["results"][0]);
}

TEST_CASE("bench bandwidth yardsticks report their best and median round",
          "[bench][cli][measured]") {
    Fabric fab;
    auto doc = fab.bench_json({"dma-bw", "--sizes", "64K", "-n", "40"});
    check_yardsticks(doc, "interleaved");
    check_ratios(doc);
    CHECK(doc["results"][0]["payload"] == "verified");
}

TEST_CASE("bench pins the two sides to different CPUs by default and --no-pin opts out",
          "[bench][cli][measured][pinning]") {
    Fabric fab;
    cpu_set_t mine;
    REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
    if (CPU_COUNT(&mine) >= 2) {
        auto doc = fab.bench_json({"intr-latency", "-n", "50"});
        REQUIRE(doc.contains("pinning"));
        CHECK(doc["pinning"]["default"] == true);
        REQUIRE(doc["pinning"]["local_cpu"].is_number());
        REQUIRE(doc["pinning"]["remote_cpu"].is_number());
        CHECK(doc["pinning"]["local_cpu"] != doc["pinning"]["remote_cpu"]);
        CHECK(CPU_ISSET(doc["pinning"]["local_cpu"].get<int>(), &mine));
        CHECK(CPU_ISSET(doc["pinning"]["remote_cpu"].get<int>(), &mine));
        CHECK_FALSE(doc["pinning"].contains("warning"));
    }

    auto off = fab.bench_json({"intr-latency", "-n", "50", "--no-pin"});
    CHECK(off["pinning"]["default"] == false);
    CHECK(off["pinning"]["local_cpu"].is_null());
    CHECK(off["pinning"]["remote_cpu"].is_null());

    // Explicit CPUs still apply with --no-pin.
    auto given = fab.bench_json({"intr-latency", "-n", "50", "--no-pin", "--cpu", "0"});
    CHECK(given["pinning"]["local_cpu"] == 0);
    CHECK(given["pinning"]["remote_cpu"].is_null());
}

TEST_CASE("bench warns when the two sides cannot get CPUs of their own",
          "[bench][cli][measured][pinning]") {
    Fabric fab;
    // The tool inherits this process's affinity: one CPU only.
    cpu_set_t saved, one;
    REQUIRE(sched_getaffinity(0, sizeof saved, &saved) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &saved))
        ++first;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    auto r = fab.bench({"intr-latency", "-n", "50", "-o", "json"});
    REQUIRE(sched_setaffinity(0, sizeof saved, &saved) == 0);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("dis-tool: warning: ") == 0);
    CHECK(r.err.find("share a CPU") != std::string::npos);
    auto doc = json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(doc.is_discarded());
    CHECK(doc["pinning"]["warning"].get<std::string>().find("share a CPU") != std::string::npos);
    CHECK(doc["pinning"]["default"] == false);
}

TEST_CASE("bench really runs the two sides on the CPUs it reports", "[bench][cli][pinning]") {
    cpu_set_t mine;
    REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
    if (CPU_COUNT(&mine) < 2) {
        WARN("one CPU: nothing to pin apart (the warning is tested separately)");
        return;
    }
    int first = -1, second = -1;
    for (int c = 0; c < CPU_SETSIZE && second < 0; ++c)
        if (CPU_ISSET(c, &mine))
            (first < 0 ? first : second) = c;
    Fabric fab;
    const std::string dir = fab.dir();
    std::vector<std::string> args = {DIS_TOOL_PATH, "bench", "intr-latency", "-r", "8",
                                     "--fabric",    dir,     "--duration",   "30", "--no-baseline"};
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
    pid_t responder = -1;
    const bool started = wait_for(
        [&] {
            responder = responder_of(dir);
            return responder > 0 && cpus_allowed(responder) == std::to_string(second);
        },
        10000);
    const std::string client_cpus = cpus_allowed(client);
    const std::string responder_cpus = responder > 0 ? cpus_allowed(responder) : "";
    ::kill(client, SIGKILL);
    int status = 0;
    waitpid(client, &status, 0);
    INFO("client " << client_cpus << ", responder " << responder_cpus);
    CHECK(started);
    CHECK(client_cpus == std::to_string(first));
    CHECK(responder_cpus == std::to_string(second));
    CHECK(wait_for([&] { return responder_of(dir) < 0; }, 3000));
}
