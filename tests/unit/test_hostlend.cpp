// Host lending (dis/hostlend.hpp) on fake sysfs trees: the in-use check from fake mountinfo,
// swaps and net trees; lend/unlend/vfs plans in order; execution on a simulated kernel with
// rollback when a write fails half-way; the binding record.
#include "hostlend_tree.hpp"

#include "dis/hostlend.hpp"
#include "dis/readiness.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis;
using namespace dis::test;
namespace hl = dis::hostlend;

namespace {

hl::InUseReport in_use(const HostTree& h, const std::string& bdf) {
    auto topo = pci::scan(pci::Source::sysfs(h.sys_root()));
    return hl::check_in_use(topo, pci::Bdf::parse(bdf), h.proc_root());
}

std::vector<std::string> paths(const hl::Plan& p) {
    std::vector<std::string> out;
    for (const auto& s : p.steps)
        out.push_back(s.path + (s.kind == hl::Step::Kind::write ? "=" + s.value : "?" + s.value));
    return out;
}

const pci::Bdf k_nvme = pci::Bdf::parse("0000:01:00.0");
const pci::Bdf k_edu = pci::Bdf::parse("0000:02:00.0");
const pci::Bdf k_pf = pci::Bdf::parse("0000:03:00.0");

} // namespace

TEST_CASE("hostlend in-use: an idle device is not in use, its group members are checked too") {
    HostTree h;
    auto r = in_use(h, "0000:01:00.0");
    CHECK_FALSE(r.in_use());
    // The NIC shares the group (and the root port, a bridge).
    CHECK(std::find(r.checked.begin(), r.checked.end(), pci::Bdf::parse("0000:01:00.1")) !=
          r.checked.end());
}

TEST_CASE("hostlend in-use: a mounted partition of an NVMe namespace, and / named as the root "
          "filesystem") {
    HostTree h;
    h.add_namespace("0000:01:00.0", "nvme0", 0);
    h.mount("259:1", "/data", "/dev/nvme0n1p1");
    auto r = in_use(h, "0000:01:00.0");
    REQUIRE(r.in_use());
    CHECK(r.reasons[0].kind == "mount");
    CHECK(r.summary() == "in use (mounted /data (nvme0n1p1))");
    h.mount("259:0", "/", "/dev/nvme0n1");
    r = in_use(h, "0000:01:00.0");
    REQUIRE(r.reasons.size() == 2);
    CHECK(r.reasons[1].message == "mounted / (nvme0n1), the root filesystem");
    // The edu device is elsewhere: not in use.
    CHECK_FALSE(in_use(h, "0000:02:00.0").in_use());
}

TEST_CASE("hostlend in-use: swap on a dm device over the namespace, found through its slaves") {
    HostTree h;
    auto ns = h.add_namespace("0000:01:00.0", "nvme0", 0);
    h.add_dm(ns / "nvme0n1p1", "dm-0", "vg-swap", "254:0");
    h.swap("/dev/mapper/vg-swap");
    auto r = in_use(h, "0000:01:00.0");
    REQUIRE(r.in_use());
    CHECK(r.reasons[0].kind == "swap");
    CHECK(r.reasons[0].message == "active swap /dev/mapper/vg-swap");
    // A dm device mounted: also found.
    HostTree h2;
    auto ns2 = h2.add_namespace("0000:01:00.0", "nvme0", 0);
    h2.add_dm(ns2, "dm-1", "vg-root", "254:1");
    h2.mount("254:1", "/srv", "/dev/mapper/vg-root");
    CHECK(in_use(h2, "0000:01:00.0").summary() == "in use (mounted /srv (dm-1))");
}

TEST_CASE("hostlend in-use: an NVMe multipath head (nvme-subsystem) counts for its controller") {
    HostTree h;
    auto sub = h.sys / "devices/virtual/nvme-subsystem/nvme-subsys0";
    std::filesystem::create_directories(h.dev("0000:01:00.0") / "nvme/nvme0");
    std::filesystem::create_directories(sub);
    std::filesystem::create_symlink(
        std::filesystem::relative(h.dev("0000:01:00.0") / "nvme/nvme0", sub), sub / "nvme0");
    h.add_block(sub, "nvme0n1", "259:5");
    h.mount("259:5", "/mnt", "/dev/nvme0n1");
    auto r = in_use(h, "0000:01:00.0");
    REQUIRE(r.in_use());
    CHECK(r.reasons[0].message == "mounted /mnt (nvme0n1)");
    CHECK_FALSE(in_use(h, "0000:03:00.0").in_use());
}

TEST_CASE("hostlend in-use: an interface that is up, on a member of the IOMMU group, blocks the "
          "NVMe, one that is down does not") {
    HostTree h;
    h.add_interface("0000:01:00.1", "eth0", false);
    CHECK_FALSE(in_use(h, "0000:01:00.0").in_use());
    std::ofstream(h.sys / "class/net/eth0/flags") << "0x1003\n";
    auto r = in_use(h, "0000:01:00.0");
    REQUIRE(r.in_use());
    CHECK(r.reasons[0].bdf == pci::Bdf::parse("0000:01:00.1"));
    CHECK(r.reasons[0].message == "0000:01:00.1 (IOMMU group): network interface eth0 is up");
}

TEST_CASE("hostlend in-use: the boot VGA device and the console tty's device") {
    HostTree h;
    write_text(h.dev("0000:02:00.0") / "boot_vga", "1\n");
    CHECK(in_use(h, "0000:02:00.0").reasons.at(0).kind == "boot_vga");
    HostTree h2;
    auto tty = h2.dev("0000:02:00.0") / "tty/ttyS4";
    std::filesystem::create_directories(tty);
    std::filesystem::create_directories(h2.sys / "class/tty/ttyS4");
    std::filesystem::create_symlink(std::filesystem::relative(tty, h2.sys / "class/tty/ttyS4"),
                                    h2.sys / "class/tty/ttyS4/device");
    write_text(h2.sys / "class/tty/console/active", "tty0 ttyS4\n");
    auto r = in_use(h2, "0000:02:00.0");
    REQUIRE(r.in_use());
    CHECK(r.reasons[0].message == "console ttyS4");
}

TEST_CASE("hostlend in-use: a host whose mounts cannot be read is refused, not called idle") {
    HostTree h;
    std::filesystem::remove(h.proc / "self/mountinfo");
    auto topo = pci::scan(pci::Source::sysfs(h.sys_root()));
    CHECK_THROWS_AS(hl::check_in_use(topo, k_nvme, h.proc_root()), Error);
    try {
        hl::check_in_use(topo, k_nvme, h.proc_root());
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("cannot prove") != std::string::npos);
        CHECK(e.kind() == ErrorKind::os);
    }
}

TEST_CASE("hostlend in-use: device check's row fails the verdict") {
    HostTree h;
    h.add_namespace("0000:01:00.0", "nvme0", 0);
    h.mount("259:1", "/", "/dev/nvme0n1p1");
    auto topo = pci::scan(pci::Source::sysfs(h.sys_root()));
    auto report = pci::check_readiness(topo, k_nvme);
    hl::add_in_use_finding(report, hl::check_in_use(topo, k_nvme, h.proc_root()));
    CHECK(report.verdict == pci::Verdict::not_ready);
    CHECK(report.findings.back().check == "in_use");
    CHECK(report.findings.back().severity == pci::Severity::error);
    CHECK(report.findings.back().message ==
          "not ready: in use (mounted / (nvme0n1p1), the root filesystem)");
}

TEST_CASE("hostlend plan: lend records the binding, then override, unbind, probe, verify, reset") {
    HostTree h;
    auto p = hl::lend_plan(h.sys_root(), k_nvme);
    CHECK(p.original.driver == std::optional<std::string>("nvme"));
    CHECK_FALSE(p.original.driver_override);
    CHECK(p.reset_methods == std::vector<std::string>{"flr", "bus"});
    CHECK(paths(p) ==
          std::vector<std::string>{"bus/pci/devices/0000:01:00.0/driver_override=vfio-pci",
                                   "bus/pci/devices/0000:01:00.0/driver/unbind=0000:01:00.0",
                                   "bus/pci/drivers_probe=0000:01:00.0",
                                   "bus/pci/devices/0000:01:00.0/driver?vfio-pci",
                                   "bus/pci/devices/0000:01:00.0/reset=1"});
    // The dry-run rendering: each write as a shell command, in order, under the root.
    CHECK(hl::describe(p.steps[0], h.sys_root()) ==
          "echo 'vfio-pci' > " + h.sys_root() + "/bus/pci/devices/0000:01:00.0/driver_override");
    auto j = hl::to_json(p, h.sys_root());
    CHECK(j["steps"].size() == 5);
    CHECK(j["steps"][2]["command"] ==
          "echo '0000:01:00.0' > " + h.sys_root() + "/bus/pci/drivers_probe");
    // No driver: nothing to unbind; no reset_method file: no reset.
    auto e = hl::lend_plan(h.sys_root(), k_edu);
    CHECK(paths(e).size() == 4);
    CHECK(paths(e)[1] == "bus/pci/drivers_probe=0000:02:00.0");
}

TEST_CASE("hostlend execute: lend then unlend on a simulated kernel restores driver and "
          "driver_override exactly") {
    HostTree h;
    write_text(h.dev("0000:01:00.0") / "driver_override", "nvme\n"); // an admin's own override
    SimKernel k(h);
    auto plan = hl::lend_plan(h.sys_root(), k_nvme);
    CHECK(plan.original.driver_override == std::optional<std::string>("nvme"));
    std::vector<std::string> seen;
    hl::ExecOptions eo;
    eo.on_step = [&](const std::string& phase, const hl::StepResult& r) {
        seen.push_back(phase + std::to_string(r.number) + (r.ok ? "ok" : "failed"));
    };
    auto res = hl::execute(plan, k, eo);
    INFO(nlohmann::json(hl::to_json(res)).dump());
    REQUIRE(res.ok);
    CHECK(h.driver("0000:01:00.0") == std::optional<std::string>("vfio-pci"));
    CHECK(k.resets["0000:01:00.0"] == 1);
    CHECK(seen == std::vector<std::string>{"step1ok", "step2ok", "step3ok", "step4ok", "step5ok"});

    auto back = hl::unlend_plan(h.sys_root(), k_nvme, plan.original);
    auto r2 = hl::execute(back, k);
    REQUIRE(r2.ok);
    CHECK(h.driver("0000:01:00.0") == std::optional<std::string>("nvme"));
    CHECK(read_text(h.dev("0000:01:00.0") / "driver_override") == "nvme\n");
    CHECK(r2.after == plan.original);
    // Lending a device bound to vfio-pci already is refused.
    hl::execute(hl::lend_plan(h.sys_root(), k_nvme), k);
    CHECK_THROWS_AS(hl::lend_plan(h.sys_root(), k_nvme), Error);
}

TEST_CASE("hostlend execute: a write failing half-way rolls back to the recorded binding and "
          "names the step") {
    for (int fail = 1; fail <= 5; ++fail) {
        HostTree h;
        SimKernel k(h);
        k.fail_write = fail; // writes: override, unbind, probe, reset (the 4th step verifies)
        auto plan = hl::lend_plan(h.sys_root(), k_nvme);
        auto res = hl::execute(plan, k);
        INFO("failing write " << fail << ": " << nlohmann::json(hl::to_json(res)).dump());
        if (fail == 5) {
            CHECK(res.ok); // only four writes in the plan
            continue;
        }
        REQUIRE_FALSE(res.ok);
        const std::size_t step = fail <= 3 ? static_cast<std::size_t>(fail) : 5;
        CHECK(res.failed_step == step);
        CHECK(res.error.find("Input/output error") != std::string::npos);
        CHECK(res.rolled_back);
        CHECK(h.driver("0000:01:00.0") == std::optional<std::string>("nvme"));
        CHECK(read_text(h.dev("0000:01:00.0") / "driver_override") == "(null)\n");
        CHECK(res.after == plan.original);
        CHECK_FALSE(res.rollback.empty());
    }
}

TEST_CASE("hostlend execute: vfio-pci missing, the verify step fails and the device goes back to "
          "its driver") {
    HostTree h;
    std::filesystem::remove_all(h.sys / "bus/pci/drivers/vfio-pci");
    SimKernel k(h);
    auto plan = hl::lend_plan(h.sys_root(), k_nvme);
    hl::ExecOptions eo;
    eo.verify_timeout = std::chrono::milliseconds(100);
    auto res = hl::execute(plan, k, eo);
    REQUIRE_FALSE(res.ok);
    CHECK(res.failed_step == 4u);
    CHECK(res.error.find("no driver") != std::string::npos);
    CHECK(res.rolled_back);
    CHECK(h.driver("0000:01:00.0") == std::optional<std::string>("nvme"));
    // The rollback bound it through the recorded driver's bind file.
    CHECK(std::find(k.log.begin(), k.log.end(), "bus/pci/drivers/nvme/bind=0000:01:00.0") !=
          k.log.end());
}

TEST_CASE("hostlend vfs: a nonzero count is set to 0 first, then to the new count") {
    HostTree h;
    SimKernel k(h);
    auto p = hl::vfs_plan(h.sys_root(), k_pf, 2);
    CHECK(paths(p) == std::vector<std::string>{"bus/pci/devices/0000:03:00.0/sriov_numvfs=2",
                                               "bus/pci/devices/0000:03:00.0/sriov_numvfs?2"});
    REQUIRE(hl::execute(p, k).ok);
    auto p1 = hl::vfs_plan(h.sys_root(), k_pf, 1);
    CHECK(p1.original_vfs == 2);
    CHECK(paths(p1) == std::vector<std::string>{"bus/pci/devices/0000:03:00.0/sriov_numvfs=0",
                                                "bus/pci/devices/0000:03:00.0/sriov_numvfs=1",
                                                "bus/pci/devices/0000:03:00.0/sriov_numvfs?1"});
    REQUIRE(hl::execute(p1, k).ok);
    CHECK(read_text(h.dev("0000:03:00.0") / "sriov_numvfs") == "1\n");
    // A failure after disabling goes back to the count before.
    k.fail_write = k.writes + 2;
    auto r = hl::execute(hl::vfs_plan(h.sys_root(), k_pf, 2), k);
    CHECK_FALSE(r.ok);
    CHECK(r.failed_step == 2u);
    CHECK(r.rolled_back);
    CHECK(read_text(h.dev("0000:03:00.0") / "sriov_numvfs") == "1\n");
    CHECK_THROWS_AS(hl::vfs_plan(h.sys_root(), k_pf, 3), Error);  // over sriov_totalvfs
    CHECK_THROWS_AS(hl::vfs_plan(h.sys_root(), k_edu, 1), Error); // no SR-IOV
}

TEST_CASE("hostlend record: written atomically, read back by a new reader, malformed refused") {
    HostTree h;
    hl::Record r;
    r.bdf = k_nvme;
    r.original = {std::string("nvme"), std::nullopt};
    r.reset_methods = {"flr", "bus"};
    r.name = "nvme0";
    r.node_id = 4;
    r.fabric_dir = "/run/dis";
    r.fdid = 0x40001;
    r.lent_ms = 1234;
    const std::string dir = h.state.string();
    CHECK_FALSE(hl::load_record(dir, k_nvme));
    hl::save_record(dir, r);
    auto back = hl::load_record(dir, k_nvme);
    REQUIRE(back);
    CHECK(back->original == r.original);
    CHECK(back->fdid == r.fdid);
    CHECK(back->reset_methods == r.reset_methods);
    CHECK(hl::to_json(*back) == hl::to_json(r));
    // Nothing but the record in the directory (the temp file was renamed).
    int files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir))
        ++files;
    CHECK(files == 1);
    write_text(hl::record_path(dir, k_nvme), "{\"bdf\": 3}");
    CHECK_THROWS_AS(hl::load_record(dir, k_nvme), Error);
    hl::remove_record(dir, k_nvme);
    CHECK_FALSE(hl::load_record(dir, k_nvme));
}
