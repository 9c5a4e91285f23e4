// SR-IOV virtual functions read from sysfs: ids, subsystem ids and BARs come from the kernel's
// files (as libpci's sysfs method takes them), not from the VF's own config space, whose id
// registers read 0xffff and whose BAR registers are unused. tests/vm found all three on
// Linux 6.1; here the same shapes are planted in a fake /sys, checked against the real lspci
// on that tree, and against dis-tool's IOMMU reasoning.
#include "sriov_tree.hpp"
#include "support.hpp"

#include "dis/iommu.hpp"
#include "dis/pci.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

using namespace dis::test;
using dis::pci::Bdf;
namespace fs = std::filesystem;

namespace {

RunResult lspci_sysfs(const fs::path& root, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"/usr/bin/lspci", "-A", "linux-sysfs", "-O",
                                  "sysfs.path=" + (root / "bus/pci").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    INFO("lspci must be installed (package pciutils)");
    REQUIRE(fs::exists(argv[0]));
    return run(argv);
}

const dis::pci::Device& device(const dis::pci::Topology& t, const char* bdf) {
    return t.get(Bdf::parse(bdf));
}

std::vector<std::vector<std::string>> group_lists(const std::vector<dis::pci::IommuGroup>& gs) {
    std::vector<std::vector<std::string>> out;
    for (const auto& g : gs) {
        std::vector<std::string> members;
        for (const auto& b : g.devices)
            members.push_back(b.to_string());
        out.push_back(members);
    }
    return out;
}

} // namespace

TEST_CASE("a VF's ids, subsystem ids and BARs come from sysfs, as lspci shows them",
          "[pci][sysfs][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree);

    // The oracle: lspci's sysfs method on the same tree.
    auto ls = lspci_sysfs(tree.root(), {"-nn", "-vvv", "-s", "01:00.1"});
    INFO(ls.out << ls.err);
    REQUIRE(ls.exit_code == 0);
    REQUIRE(ls.out.find("[1b36:0010]") != std::string::npos);
    REQUIRE(ls.out.find("Region 0: Memory at fe004000 (64-bit, non-prefetchable) [virtual] "
                        "[size=16K]") != std::string::npos);

    auto topo = dis::pci::scan(dis::pci::Source::sysfs(tree.root().string()));
    const auto& pf = device(topo, "01:00.0");
    for (const char* bdf : {"01:00.1", "01:00.2"}) {
        INFO(bdf);
        const auto& vf = device(topo, bdf);
        CHECK(vf.vendor_id == 0x1b36);
        CHECK(vf.device_id == 0x0010);
        CHECK(vf.subsystem_vendor_id == 0x1af4);
        CHECK(vf.subsystem_device_id == 0x1100);
        CHECK(vf.class_id == 0x0108);
        CHECK(vf.prog_if == 0x02);
        CHECK_FALSE(vf.vendor_name.empty());
        CHECK(vf.vendor_name == pf.vendor_name);
        CHECK(vf.device_name == pf.device_name);
        REQUIRE(vf.physfn);
        CHECK(*vf.physfn == pf.bdf);
        REQUIRE(vf.bars.size() == 1);
        const auto& bar = vf.bars[0];
        CHECK(bar.index == 0);
        CHECK(bar.size == 16 * 1024);
        CHECK_FALSE(bar.io);
        CHECK(bar.is_64bit);
        CHECK_FALSE(bar.prefetchable);
        CHECK(bar.is_virtual);
    }
    CHECK(device(topo, "01:00.1").bars[0].base == 0xfe004000);
    CHECK(device(topo, "01:00.2").bars[0].base == 0xfe008000);

    // The PF keeps its config-space BAR (sized from resource) and is nobody's VF.
    CHECK_FALSE(pf.physfn);
    REQUIRE(pf.bars.size() == 1);
    CHECK(pf.bars[0].base == 0xfe000000);
    CHECK(pf.bars[0].size == 16 * 1024);
    CHECK_FALSE(pf.bars[0].is_virtual);

    auto j = dis::pci::to_json(device(topo, "01:00.1"));
    CHECK(j["vendor_id"] == "1b36");
    CHECK(j["physfn"] == "0000:01:00.0");
    CHECK(j["bars"][0]["virtual"] == true);
    auto jp = dis::pci::to_json(pf);
    CHECK(jp["physfn"].is_null());
    CHECK(jp["bars"][0]["virtual"] == false);
}

TEST_CASE("a VF's own config space is all a dump has: ffff ids and no BARs, as lspci -F",
          "[pci][sysfs][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree);
    auto dump = lspci_sysfs(tree.root(), {"-xxxx"});
    REQUIRE(dump.exit_code == 0);
    fs::path file = tmp.path() / "dump.txt";
    write_file(file, dump.out);

    auto ls = run({"/usr/bin/lspci", "-F", file.string(), "-nn", "-vvv", "-s", "01:00.1"});
    INFO(ls.out << ls.err);
    REQUIRE(ls.exit_code == 0);
    REQUIRE(ls.out.find("[ffff:ffff]") != std::string::npos);
    REQUIRE(ls.out.find("Region 0") == std::string::npos);

    auto topo = dis::pci::scan(dis::pci::Source::dump(file.string()));
    const auto& vf = device(topo, "01:00.1");
    CHECK(vf.vendor_id == 0xffff);
    CHECK(vf.device_id == 0xffff);
    CHECK(vf.bars.empty());
    CHECK_FALSE(vf.physfn);
}

TEST_CASE("a VF is not a multifunction device: no function-alias reason, own ACS not needed",
          "[iommu][sysfs][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree); // root port without ACS: bus 01 shares the root port's group
    auto topo = dis::pci::scan(dis::pci::Source::sysfs(tree.root().string()));
    auto report = dis::pci::analyze_iommu(topo);
    REQUIRE(report.iommu_present);
    const auto* vf = report.find(Bdf::parse("01:00.1"));
    REQUIRE(vf);
    CHECK(vf->group == 1);
    CHECK_FALSE(vf->isolated);
    std::string reasons;
    for (const auto& r : vf->reasons)
        reasons += r + "\n";
    INFO(reasons);
    CHECK(reasons.find("ACS missing at bridge 0000:00:01.0") != std::string::npos);
    CHECK(reasons.find("multifunction") == std::string::npos);
    CHECK(dis::pci::check_acs(device(topo, "01:00.1")).enabled);
}

TEST_CASE("predicted groups: VFs below an ACS root port get a group each, as the kernel forms",
          "[iommu][sysfs][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree, {dis::test::acs::required, false, true});
    auto topo = dis::pci::scan(dis::pci::Source::sysfs(tree.root().string()));
    auto report = dis::pci::analyze_iommu(topo);
    REQUIRE(report.predicted);
    auto groups = group_lists(report.groups);
    INFO(nlohmann::json(groups).dump());
    for (const char* bdf : {"0000:01:00.0", "0000:01:00.1", "0000:01:00.2"})
        CHECK(std::count(groups.begin(), groups.end(), std::vector<std::string>{bdf}) == 1);

    // The same functions without physfn links are ordinary functions 1 and 2 of one slot,
    // which pci_scan_slot marks multifunction: without ACS of their own they share a group.
    TempDir tmp2;
    SysfsTree plain(tmp2.path() / "sys");
    build_sriov_tree(plain, {dis::test::acs::required, false, false});
    auto plain_groups = group_lists(
        dis::pci::analyze_iommu(dis::pci::scan(dis::pci::Source::sysfs(plain.root().string())))
            .groups);
    INFO(nlohmann::json(plain_groups).dump());
    CHECK(std::count(plain_groups.begin(), plain_groups.end(),
                     std::vector<std::string>{"0000:01:00.1", "0000:01:00.2"}) == 1);
}
