// The fake sysfs builder is checked against the real lspci: its linux-sysfs access method
// must read our trees exactly as it reads /sys.
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace dis::test;
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

} // namespace

TEST_CASE("lspci reads a synthesised sysfs tree: tree, ACS, link, BAR sizes, driver",
          "[sysfs_tree]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    tree.enable_iommu();
    tree.add({"0000:00:00.0", "", ConfigSpace(0x8086, 0x2020, 0x060000), {}, 0, 0, {}, {}});
    tree.add({"0000:00:01.0",
              "",
              ConfigSpace(0x8086, 0x2030, 0x060400, 1)
                  .bus_numbers(0, 1, 1)
                  .pcie(PcieType::root_port, false, 3, 16, 3, 16)
                  .acs(acs::required | acs::trans_blk, acs::required),
              {"pcieport"},
              1,
              0,
              {},
              {}});
    tree.add({"0000:01:00.0",
              "0000:00:01.0",
              ConfigSpace(0x15b3, 0x1017, 0x020000)
                  .memory_bar(0, 0x3800000000, 32u << 20, true, true)
                  .pcie(PcieType::endpoint, true, 3, 16, 3, 8)
                  .aer(0, 1u << 0)
                  .sriov(8, 8, 0, 0x1018),
              {"mlx5_core"},
              2,
              0,
              {"flr", "bus"},
              {{"aer_dev_correctable", "RxErr 1\nTOTAL_ERR_COR 1\n"}}});

    auto tree_out = lspci_sysfs(tree.root(), {"-t"});
    CHECK(tree_out.exit_code == 0);
    CHECK(tree_out.out.find("01.0-[01]----00.0") != std::string::npos);

    auto v = lspci_sysfs(tree.root(), {"-vvv", "-s", "01:00.0"});
    INFO(v.out << v.err);
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("Region 0: Memory at 3800000000 (64-bit, prefetchable) [size=32M]") !=
          std::string::npos);
    CHECK(v.out.find("Kernel driver in use: mlx5_core") != std::string::npos);
    CHECK(v.out.find("FLReset+") != std::string::npos);
    CHECK(v.out.find("LnkSta:\tSpeed 8GT/s") != std::string::npos);
    CHECK(v.out.find("Width x8 (downgraded)") != std::string::npos);
    CHECK(v.out.find("Single Root I/O Virtualization (SR-IOV)") != std::string::npos);
    CHECK(v.out.find("CESta:\tRxErr+") != std::string::npos);

    auto rp = lspci_sysfs(tree.root(), {"-vvv", "-s", "00:01.0"});
    CHECK(rp.out.find("ACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+") !=
          std::string::npos);
    CHECK(rp.out.find("ACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+") !=
          std::string::npos);

    CHECK(fs::is_symlink(tree.root() / "kernel/iommu_groups/2/devices/0000:01:00.0"));
    CHECK(fs::canonical(tree.root() / "bus/pci/devices/0000:01:00.0/iommu_group") ==
          fs::canonical(tree.root() / "kernel/iommu_groups/2"));
    CHECK(read_file(tree.root() / "bus/pci/devices/0000:01:00.0/current_link_speed") ==
          "8.0 GT/s PCIe\n");
}

TEST_CASE("a dump converted to a sysfs tree reads back identically", "[sysfs_tree]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    std::string dump = fixture("pci/tree-asus-p6t6.txt");
    tree.add_dump(dump);
    auto from_tree = lspci_sysfs(tree.root(), {"-t"});
    auto from_dump = run({"/usr/bin/lspci", "-F", dump, "-t"});
    REQUIRE(from_dump.exit_code == 0);
    CHECK(from_tree.exit_code == 0);
    CHECK(from_tree.out == from_dump.out);
    // 03:00.0 sits below 00:03.0 -> 02:00.0 in the nested device directories.
    CHECK(fs::exists(tree.root() /
                     "devices/pci0000:00/0000:00:03.0/0000:02:00.0/0000:03:00.0/config"));
    auto x_tree = lspci_sysfs(tree.root(), {"-xxxx", "-s", "00:1c.0"});
    auto x_dump = run({"/usr/bin/lspci", "-F", dump, "-xxxx", "-s", "00:1c.0"});
    CHECK(x_tree.out == x_dump.out);
}
