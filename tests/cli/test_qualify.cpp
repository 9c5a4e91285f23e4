// `dis-tool qualify --plan FILE` on a real 3-node software fabric with epf-test devices: every
// step kind runs and passes, the reports (JSON, JUnit parsed with xmllint) say what happened,
// a threshold that cannot hold fails its case (exit 1) with its message in the JUnit file.
#include "hostlend_tree.hpp"
#include "lending_host.hpp"
#include "qualify_support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>

using namespace dis::test;
using nlohmann::json;

namespace {

// xmllint --xpath EXPR FILE, REQUIREd to succeed.
std::string xpath(const std::string& file, const std::string& expr) {
    auto r = run({"/usr/bin/xmllint", "--xpath", expr, file});
    INFO(expr << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    if (!r.out.empty() && r.out.back() == '\n') // numbers come with one, strings without
        r.out.pop_back();
    return r.out;
}

const json& step_of(const json& doc, const std::string& name) {
    for (const auto& s : doc["steps"])
        if (s["name"] == name)
            return s;
    FAIL("no step " << name << " in " << doc.dump());
    static json none;
    return none;
}

} // namespace

TEST_CASE("qualify: every step kind on a 3-node fabric passes, with JSON and JUnit reports",
          "[cli][qualify]") {
    ToolFabric fabric(k_qualify_fabric);
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_lending_host(tree, {}); // 01:00.0: ready and alone in its IOMMU group
    const auto plan = tmp.path() / "all.toml";
    write_file(plan, R"([plan]
name = "all"

[[step]]
name = "cycles"
kind = "device-cycle"
devices = ["0x80000", "0x80001"]
borrowers = [4, 12]
cycles = 1

[[step]]
name = "pio"
kind = "bench"
test = "pio-latency"
local_node = 4
remote_node = 8
iterations = 200
thresholds = ["p99_us <= 100000", "iterations == 200"]

[[step]]
name = "dma"
kind = "bench"
test = "dma-bw"
remote_node = 12
sizes = "64K"
iterations = 20
thresholds = ["bandwidth_gbps > 0"]

[[step]]
name = "isolation"
kind = "isolation"
devices = ["0000:01:00.0"]
sysfs_root = ")" + tree.root().string() +
                         R"("

[[step]]
name = "recovery"
kind = "recovery"
device = "0x80001"
borrower = 12
bound = 10

[[step]]
name = "load"
kind = "load"
devices = ["0x80000", "0x80001"]
borrowers = [4, 12]
duration = 1
dma_local = 4
dma_remote = 12

[[step]]
name = "health"
kind = "diag"
)");
    const auto junit = (tmp.path() / "junit.xml").string();
    const auto report = (tmp.path() / "report.json").string();
    auto r = run({DIS_TOOL_PATH, "qualify", "--plan", plan.string(), "--fabric", fabric.dir(),
                  "--junit", junit, "--report", report, "-o", "json"},
                 {}, 180);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty()); // no progress bar when piped
    auto doc = json::parse(r.out);
    CHECK(json::parse(read_file(report)) == doc);
    CHECK(doc["plan"] == "all");
    CHECK(doc["passed"] == true);
    CHECK(doc["interrupted"] == false);
    CHECK(doc["summary"]["failed"] == 0);
    CHECK(doc["returned"].empty());
    std::set<std::string> kinds;
    for (const auto& s : doc["steps"]) {
        INFO(s.dump());
        CHECK(s["result"] == "passed");
        CHECK_FALSE(s["cases"].empty());
        kinds.insert(s["kind"].get<std::string>());
    }
    CHECK(kinds ==
          std::set<std::string>{"device-cycle", "bench", "isolation", "recovery", "load", "diag"});

    // device-cycle: 2 devices x 2 borrowers, each with a reset and a passing suite.
    const auto& cycles = step_of(doc, "cycles");
    REQUIRE(cycles["cases"].size() == 4);
    for (const auto& c : cycles["cases"]) {
        CHECK(c["detail"]["reset"] == "ok");
        CHECK(c["detail"]["suite_tests"].get<int>() > 5);
        CHECK(c["detail"]["suite_failed"] == 0);
    }
    // bench: the measured report and each threshold with the value it was judged on.
    const auto& pio = step_of(doc, "pio");
    REQUIRE(pio["cases"].size() == 3);
    CHECK(pio["cases"][0]["detail"]["results"][0]["payload"] == "verified");
    CHECK(pio["cases"][2]["detail"][0]["iterations"] == 200);
    // recovery: each kill, the device back within the bound, the audit row ending the lease.
    const auto& rec = step_of(doc, "recovery");
    REQUIRE(rec["cases"].size() == 3);
    CHECK(rec["cases"][0]["name"] == "kill borrower");
    CHECK(rec["cases"][1]["name"] == "kill borrower-daemon");
    CHECK(rec["cases"][2]["name"] == "kill lender-daemon");
    for (const auto& c : rec["cases"]) {
        INFO(c.dump());
        CHECK(c["detail"]["back_s"].get<double>() <= 10.0);
        REQUIRE_FALSE(c["detail"]["audit"].empty());
        CHECK(c["detail"]["audit"][0]["lease_id"] == c["detail"]["lease"]);
    }
    CHECK(rec["cases"][0]["detail"]["audit"][0]["actor"] == "connection closed");
    CHECK(rec["cases"][2]["detail"]["audit"][0]["event"] == "lease_lost");
    // load: cycles completed, never two owners, the DMA verified.
    const auto& load = step_of(doc, "load")["cases"][0]["detail"];
    CHECK(load["borrow_cycles"].get<int>() > 0);
    CHECK(load["double_owners"] == 0);
    CHECK(load["dma"]["results"][0]["payload"] == "verified");
    // diag: the health check's own checks are the cases.
    CHECK(step_of(doc, "health")["cases"].size() > 3);

    // The fabric is whole again: every node answers (the killed daemons were restarted) and
    // nothing is borrowed.
    auto status = run_tool({"fabric", "status", "--fabric", fabric.dir(), "-o", "json"});
    REQUIRE(status.exit_code == 0);
    const auto nodes = json::parse(status.out); // kept: a range-for over a temporary's member
                                                // would read freed memory
    for (const auto& n : nodes["nodes"])
        CHECK(n["reachable"] == true);
    check_nothing_borrowed(fabric);

    // The JUnit file, parsed: one testsuite per step, a testcase per case, PLAN.STEP classnames.
    CHECK(xpath(junit, "count(/testsuites/testsuite)") == std::to_string(doc["steps"].size()));
    CHECK(xpath(junit, "count(//testcase)") == std::to_string(doc["summary"]["cases"].get<int>()));
    CHECK(xpath(junit, "count(//failure)") == "0");
    CHECK(xpath(junit, "string(/testsuites/@tests)") ==
          std::to_string(doc["summary"]["cases"].get<int>()));
    CHECK(xpath(junit, "count(//testcase[@classname='all.recovery'])") == "3");
    CHECK(xpath(junit, "string(//testcase[@classname='all.cycles'][1]/@name)") ==
          "cycle 1 0x80000 node 4");
    const std::string t = xpath(junit, "string(//testcase[@classname='all.load']/@time)");
    CHECK(std::stod(t) >= 1.0); // seconds: the load step ran for its duration
}

TEST_CASE("qualify: a threshold that does not hold fails its case, exit 1, message in JUnit",
          "[cli][qualify]") {
    ToolFabric fabric(k_qualify_fabric);
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    Lender big;
    big.bar = 1ull << 30; // over the NTB window: not ready
    build_lending_host(tree, big);
    const auto plan = tmp.path() / "fail.toml";
    write_file(plan, R"([plan]
name = "fail"
[[step]]
name = "pio"
kind = "bench"
test = "pio-latency"
remote_node = 8
iterations = 50
thresholds = ["median_us < 0", "p99_us >= 0"]
[[step]]
name = "iso"
kind = "isolation"
devices = ["01:00.0"]
sysfs_root = ")" + tree.root().string() +
                         R"("
)");
    const auto junit = (tmp.path() / "junit.xml").string();
    auto r =
        run_tool({"qualify", "--plan", plan.string(), "--fabric", fabric.dir(), "--junit", junit});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto csv =
        run_tool({"qualify", "--plan", plan.string(), "--fabric", fabric.dir(), "-o", "csv"});
    CHECK(csv.exit_code == 1);
    auto rows = parse_csv(csv.out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0] == std::vector<std::string>{"STEP", "KIND", "RESULT", "CASES", "FAILED", "TIME_S",
                                              "MESSAGE"});
    CHECK(rows[1][0] == "pio");
    CHECK(rows[1][2] == "failed");
    CHECK(rows[1][4] == "1");
    CHECK(rows[1][6].find("median_us < 0: threshold 'median_us < 0' not met") == 0);
    CHECK(rows[2][2] == "failed");
    CHECK(r.out.find("plan fail: 2 steps, 4 cases: 2 passed, 2 failed, 0 skipped") !=
          std::string::npos);
    CHECK(xpath(junit, "count(//failure)") == "2");
    const std::string msg =
        xpath(junit, "string(//testcase[@name='median_us < 0']/failure/@message)");
    CHECK(msg.find("threshold 'median_us < 0' not met: 64 bytes: median_us = ") == 0);
    CHECK(xpath(junit, "string(//testcase[@name='median_us < 0']/failure)") == msg);
    CHECK(xpath(junit, "string(//testcase[@classname='fail.iso']/failure/@message)")
              .find("01:00.0 is not ready to lend") == 0);
    CHECK(xpath(junit, "count(//testcase[@name='p99_us >= 0']/failure)") == "0");
}

TEST_CASE("qualify: rebind runs device lend and unlend, a lend that fails fails its case, "
          "the device keeps its driver",
          "[cli][qualify][hostlend]") {
    // The fake host tree has no kernel behind it: lend's unbind write fails (step 2) and lend
    // rolls back. The successful cycle (vfio-pci and back, the NVMe namespace read back) runs
    // on the QEMU test bed only (tests/vm).
    ToolFabric fabric(k_qualify_fabric);
    HostTree h;
    TempDir tmp;
    const auto plan = tmp.path() / "rebind.toml";
    write_file(plan, "[plan]\nname = \"rb\"\n[[step]]\nname = \"nvme\"\nkind = \"rebind\"\n"
                     "device = \"03:00.0\"\ncycles = 2\nnode = 8\nsysfs_root = \"" +
                         h.sys_root() + "\"\nproc_root = \"" + h.proc_root() +
                         "\"\nstate_dir = \"" + h.state.string() + "\"\ncheck = \"true\"\n");
    const auto junit = (tmp.path() / "junit.xml").string();
    auto r = run_tool({"qualify", "--plan", plan.string(), "--fabric", fabric.dir(), "--junit",
                       junit, "-o", "json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto doc = json::parse(r.out);
    const auto& cases = step_of(doc, "nvme")["cases"];
    REQUIRE(cases.size() == 2);
    for (const auto& c : cases) {
        CHECK(c["result"] == "failed");
        const std::string msg = c["message"];
        CHECK(msg.find("device lend 03:00.0 (exit 4): dis-tool: error: ") == 0);
        CHECK(msg.find("failed at step 2 of 5 (unbind from nvme") != std::string::npos);
    }
    CHECK(h.driver("0000:03:00.0") == std::optional<std::string>("nvme"));
    CHECK(xpath(junit, "count(//testcase[@classname='rb.nvme']/failure)") == "2");
    // A device the tree does not have is a plan error.
    write_file(plan, "[[step]]\nname = \"nvme\"\nkind = \"rebind\"\ndevice = \"07:00.0\"\n"
                     "sysfs_root = \"" +
                         h.sys_root() + "\"\n");
    auto bad = run_tool({"qualify", "--plan", plan.string(), "--fabric", fabric.dir()});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find(plan.string() + ":4: key 'device': no PCI device 07:00.0") !=
          std::string::npos);
}
