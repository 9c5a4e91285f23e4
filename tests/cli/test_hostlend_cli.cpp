// `dis-tool device lend | unlend | vfs` and device check's in-use row, run as built against a
// fake /sys and /proc (tests/support/hostlend_tree.hpp) and, where the pool is involved, real
// daemons. Never against this machine's own devices: every run names --sysfs-root. The real
// kernel side (binding, probing, resets) is tested in the VM (tests/vm/guest/lend.sh).
#include "hostlend_tree.hpp"
#include "lending_cli_support.hpp"

#include "dis/hostlend.hpp"
#include "dis/lending_client.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// dis-tool on the host tree: --sysfs-root, --proc-root and --state-dir appended.
RunResult host_tool(const HostTree& h, std::vector<std::string> args) {
    args.insert(args.end(), {"--sysfs-root", h.sys_root(), "--proc-root", h.proc_root()});
    if (args[0] == "device" && args[1] != "check")
        args.insert(args.end(), {"--state-dir", h.state.string()});
    return run_tool(args);
}

// Everything lend could change on the tree: driver links and driver_override files.
std::string tree_state(const HostTree& h) {
    std::string s;
    for (const char* b : {"0000:01:00.0", "0000:02:00.0", "0000:03:00.0"}) {
        s += std::string(b) + " " + h.driver(b).value_or("-") + " " +
             read_text(h.dev(b) / "driver_override") + "|" + read_text(h.dev(b) / "sriov_numvfs") +
             "\n";
    }
    return s;
}

std::size_t count_of(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("device check: a controller with a mounted namespace is not ready (in use), an idle "
          "one says so",
          "[cli][hostlend]") {
    HostTree h;
    h.add_namespace("0000:03:00.0", "nvme0", 0);
    h.mount("259:1", "/", "/dev/nvme0n1p1");
    auto r = host_tool(h, {"device", "check", "03:00.0"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("not ready: in use (mounted / (nvme0n1p1), the root filesystem)") !=
          std::string::npos);
    CHECK(r.out.find("Verdict: not ready") != std::string::npos);
    auto j = host_tool(h, {"device", "check", "03:00.0", "-o", "json"});
    REQUIRE(j.exit_code == 1);
    auto doc = json::parse(j.out);
    CHECK(doc["verdict"] == "not_ready");
    bool row = false;
    for (const auto& f : doc["findings"])
        row |= f["check"] == "in_use" && f["severity"] == "error";
    CHECK(row);
    auto idle = host_tool(h, {"device", "check", "02:00.0", "-o", "json"});
    auto idle_doc = json::parse(idle.out);
    CHECK(idle_doc["verdict"] != "not_ready");
    bool ok_row = false;
    for (const auto& f : idle_doc["findings"])
        ok_row |= f["check"] == "in_use" && f["severity"] == "ok";
    CHECK(ok_row);
}

TEST_CASE("device lend --dry-run prints each sysfs write in order and changes nothing",
          "[cli][hostlend]") {
    HostTree h;
    const std::string before = tree_state(h);
    auto r = host_tool(h, {"device", "lend", "03:00.0", "--dry-run", "--name", "nvme9"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string dev = h.sys_root() + "/bus/pci/devices/0000:03:00.0";
    const std::vector<std::string> order = {"echo 'vfio-pci' > " + dev + "/driver_override",
                                            "echo '0000:03:00.0' > " + dev + "/driver/unbind",
                                            "echo '0000:03:00.0' > " + h.sys_root() +
                                                "/bus/pci/drivers_probe",
                                            "check that " + dev + "/driver links to vfio-pci",
                                            "echo '1' > " + dev + "/reset",
                                            "dev_add 'vfio:0000:03:00.0,name=nvme9'",
                                            "nothing changed"};
    std::size_t at = 0;
    for (const auto& line : order) {
        auto p = r.out.find(line, at);
        INFO(line);
        REQUIRE(p != std::string::npos);
        at = p;
    }
    auto j = host_tool(h, {"device", "lend", "03:00.0", "--dry-run", "-o", "json"});
    REQUIRE(j.exit_code == 0);
    auto doc = json::parse(j.out);
    CHECK(doc["dry_run"] == true);
    CHECK(doc["plan"]["steps"].size() == 5);
    CHECK(doc["plan"]["original"]["driver"] == "nvme");
    CHECK(doc["spec"] == "vfio:0000:03:00.0,name=nvme-0000-03-00.0");
    CHECK(tree_state(h) == before);
    CHECK_FALSE(std::filesystem::exists(h.state));
}

TEST_CASE("device lend refuses a device in use, also with --force, before any change",
          "[cli][hostlend]") {
    HostTree h;
    auto ns = h.add_namespace("0000:03:00.0", "nvme0", 0);
    h.add_dm(ns / "nvme0n1p1", "dm-0", "vg-swap", "254:0");
    h.swap("/dev/mapper/vg-swap");
    const std::string before = tree_state(h);
    for (bool force : {false, true}) {
        std::vector<std::string> args = {"device", "lend", "03:00.0", "--yes"};
        if (force)
            args.push_back("--force");
        auto r = host_tool(h, args);
        INFO(r.out << r.err);
        CHECK(r.exit_code == 2);
        CHECK(count_of(r.err, "dis-tool: error:") == 1);
        CHECK(r.err.find("in use (active swap /dev/mapper/vg-swap)") != std::string::npos);
        CHECK(r.err.find("--force does not override this") != std::string::npos);
    }
    {
        auto r = host_tool(h, {"device", "lend", "03:00.0", "-o", "json"});
        CHECK(r.exit_code == 2);
        auto doc = json::parse(r.out);
        CHECK(doc["error"]["kind"] == "busy");
    }
    // An interface that is up on the NIC blocks the NVMe of its IOMMU group.
    h.add_interface("0000:01:00.1", "eth0", true);
    auto g = host_tool(h, {"device", "lend", "01:00.0", "--force", "--dry-run"});
    CHECK(g.exit_code == 2);
    CHECK(g.err.find("0000:01:00.1 (IOMMU group): network interface eth0 is up") !=
          std::string::npos);
    CHECK(tree_state(h) == before);
}

TEST_CASE("device lend refuses a not-ready device naming each reason, --force goes past them",
          "[cli][hostlend]") {
    HostTree h;
    // 01:00.0 shares its IOMMU group with the NIC: not isolated.
    auto r = host_tool(h, {"device", "lend", "01:00.0", "--dry-run"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 1);
    CHECK(r.err.find("is not ready for lending: iommu:") != std::string::npos);
    CHECK(r.err.find("(--force lends it anyway)") != std::string::npos);
    auto f = host_tool(h, {"device", "lend", "01:00.0", "--dry-run", "--force"});
    INFO(f.out << f.err);
    REQUIRE(f.exit_code == 0);
    CHECK(f.out.find("forced past: iommu:") != std::string::npos);
    auto fj = host_tool(h, {"device", "lend", "01:00.0", "--dry-run", "--force", "-o", "json"});
    REQUIRE(fj.exit_code == 0);
    CHECK_FALSE(json::parse(fj.out)["forced"].empty());
}

TEST_CASE("device lend: a fabric that does not answer is refused before any change",
          "[cli][hostlend]") {
    HostTree h;
    TempDir empty;
    const std::string before = tree_state(h);
    auto r = host_tool(h, {"device", "lend", "03:00.0", "--yes", "--node", "8", "--fabric",
                           empty.path().string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 3);
    CHECK(tree_state(h) == before);
    CHECK_FALSE(std::filesystem::exists(
        dis::hostlend::record_path(h.state.string(), dis::pci::Bdf::parse("0000:03:00.0"))));
}

TEST_CASE("device lend: a write that fails half-way is rolled back, each step is an audit row, "
          "no record is left",
          "[cli][hostlend]") {
    HostTree h;
    LendingFabric fabric({"memory name=m reset_ms=1"});
    // The fake tree has no kernel behind it: writing the driver's unbind file fails (step 2).
    auto r = host_tool(h, {"device", "lend", "03:00.0", "--yes", "--node", "8", "--fabric",
                           fabric.dir(), "--verify-timeout", "200"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 4);
    CHECK(count_of(r.err, "dis-tool: error:") == 1);
    CHECK(r.err.find("failed at step 2 of 5 (unbind from nvme") != std::string::npos);
    CHECK(r.err.find("rolled back: driver nvme, no driver_override") != std::string::npos);
    CHECK(h.driver("0000:03:00.0") == std::optional<std::string>("nvme"));
    CHECK_FALSE(std::filesystem::exists(
        dis::hostlend::record_path(h.state.string(), dis::pci::Bdf::parse("0000:03:00.0"))));
    auto hist = fabric.tool({"device", "history", "0x8ffff", "-o", "json"});
    INFO(hist.out << hist.err);
    REQUIRE(hist.exit_code == 0);
    auto doc = json::parse(hist.out);
    const json& list = doc["rows"];
    std::vector<std::string> reasons;
    for (const auto& row : list) {
        CHECK(row["event"] == "note");
        reasons.push_back(row["reason"]);
    }
    INFO(hist.out);
    REQUIRE(reasons.size() >= 4);
    CHECK(reasons[0].find("0000:03:00.0: lend: record driver nvme") == 0);
    CHECK(reasons[1].find("lend step 1: driver_override = vfio-pci") != std::string::npos);
    CHECK(reasons[1].find(": ok") != std::string::npos);
    CHECK(reasons[2].find("lend step 2: unbind from nvme") != std::string::npos);
    CHECK(reasons[2].find(": failed") != std::string::npos);
    CHECK(reasons[3].find("lend rollback 1: clear driver_override") != std::string::npos);
}

TEST_CASE("device unlend: no record is refused, a borrowed device is refused unless --force, "
          "which reclaims it and takes it out of the pool",
          "[cli][hostlend]") {
    HostTree h;
    auto none = host_tool(h, {"device", "unlend", "02:00.0", "--yes"});
    CHECK(none.exit_code == 2);
    CHECK(none.err.find("is not lent by dis-tool") != std::string::npos);

    LendingFabric fabric({"memory name=m reset_ms=1"});
    // As lend leaves it: a record of the original binding and the pool's fdid.
    dis::hostlend::Record rec;
    rec.bdf = dis::pci::Bdf::parse("0000:02:00.0");
    rec.name = "m";
    rec.node_id = 8;
    rec.fabric_dir = fabric.dir();
    rec.fdid = 0x80000;
    dis::hostlend::save_record(h.state.string(), rec);
    // ... and the device bound to vfio-pci with the override set.
    write_text(h.dev("0000:02:00.0") / "driver_override", "vfio-pci\n");
    std::filesystem::create_symlink(
        std::filesystem::relative(h.sys / "bus/pci/drivers/vfio-pci", h.dev("0000:02:00.0")),
        h.dev("0000:02:00.0") / "driver");
    Background holder(fabric.with_fabric({"device", "borrow", "0x80000", "--exclusive", "--hold"}));
    REQUIRE(wait_until([&] { return fabric.show("0x80000")["leases"].size() == 1; }, 10s));

    auto busy = host_tool(h, {"device", "unlend", "02:00.0", "--yes"});
    INFO(busy.out << busy.err);
    CHECK(busy.exit_code == 2);
    CHECK(busy.err.find("not unlending it (--force reclaims it first)") != std::string::npos);
    CHECK(busy.err.find("pid " + std::to_string(holder.pid())) != std::string::npos);
    auto dry = host_tool(h, {"device", "unlend", "02:00.0", "--force", "--dry-run"});
    INFO(dry.out << dry.err);
    CHECK(dry.exit_code == 0);
    CHECK(dry.out.find("dev_remove 0x80000 force") != std::string::npos);
    CHECK(fabric.state("0x80000") == "borrowed");

    // Forced: reclaimed and removed; the fake tree's driver never changes, so the sysfs part
    // fails its check and says the device left the pool; the record stays for a retry.
    auto forced = host_tool(
        h, {"device", "unlend", "02:00.0", "--force", "--yes", "--verify-timeout", "100"});
    INFO(forced.out << forced.err);
    CHECK(forced.exit_code == 4);
    CHECK(forced.err.find("it left the pool") != std::string::npos);
    CHECK(fabric.state("0x80000") == "removed");
    CHECK(holder.wait(10s));
    auto kept = dis::hostlend::load_record(h.state.string(), rec.bdf);
    REQUIRE(kept);
    CHECK_FALSE(kept->fdid);
}

TEST_CASE("device vfs: --dry-run shows 0 first when the count changes, over the total is refused",
          "[cli][hostlend]") {
    HostTree h;
    write_text(h.dev("0000:03:00.0") / "sriov_numvfs", "2\n");
    const std::string before = tree_state(h);
    auto r = host_tool(h, {"device", "vfs", "03:00.0", "--count", "1", "--dry-run"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string f = h.sys_root() + "/bus/pci/devices/0000:03:00.0/sriov_numvfs";
    auto zero = r.out.find("echo '0' > " + f);
    auto one = r.out.find("echo '1' > " + f);
    CHECK(zero != std::string::npos);
    CHECK(one != std::string::npos);
    CHECK(zero < one);
    CHECK(tree_state(h) == before);
    auto over = host_tool(h, {"device", "vfs", "03:00.0", "--count", "3", "--yes"});
    CHECK(over.exit_code == 2);
    CHECK(over.err.find("offers 0 to 2 VFs") != std::string::npos);
    auto nosriov = host_tool(h, {"device", "vfs", "02:00.0", "--count", "1", "-o", "json"});
    CHECK(nosriov.exit_code == 2);
    CHECK(json::parse(nosriov.out)["error"]["kind"] == "invalid_input");
}

TEST_CASE("device lend on a terminal asks first, and no changes nothing", "[cli][hostlend]") {
    HostTree h;
    LendingFabric fabric({"memory name=m reset_ms=1"});
    const std::string before = tree_state(h);
    auto no = run_on_tty({"device", "lend", "03:00.0", "--node", "8", "--fabric", fabric.dir(),
                          "--sysfs-root", h.sys_root(), "--proc-root", h.proc_root(), "--state-dir",
                          h.state.string()},
                         "n");
    INFO("terminal: " << no.output);
    CHECK(no.output.find("lend 0000:03:00.0 (driver nvme, no driver_override): bind it to "
                         "vfio-pci and add it to the pool as "
                         "'vfio:0000:03:00.0,name=nvme-0000-03-00.0': proceed? [y/N]") !=
          std::string::npos);
    CHECK(no.exit_code == 2);
    CHECK(no.output.find("dis-tool: error: not confirmed") != std::string::npos);
    CHECK(tree_state(h) == before);
    CHECK_FALSE(std::filesystem::exists(h.state));
    auto hist = fabric.tool({"device", "history", "0x8ffff", "-o", "json"});
    REQUIRE(hist.exit_code == 0);
    CHECK(json::parse(hist.out)["rows"].empty());
}

TEST_CASE("an epf-test device added while the node runs (dev_add) passes the pcitest suite, the "
          "device engine serves it",
          "[cli][hostlend][pcitest]") {
    LendingFabric fabric({"memory name=m reset_ms=1"});
    dis::lending::LenderClient admin(fabric.dir(), 8);
    auto added = admin.add_device("epf-test name=late reset_ms=5");
    REQUIRE(added.size() == 1);
    CHECK(dis::lending::to_string(added[0].status.info.fdid) == "0x80001");
    auto r = fabric.tool({"device", "test", "0x80001", "-o", "json"});
    INFO("stderr: " << r.err << "\nstdout: " << r.out);
    CHECK(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["failed"] == 0);
    CHECK(doc["passed"] == doc["tests"].size());
    CHECK(doc["passed"] > 0);
}
