// A fake /sys holding an SR-IOV physical function with two enabled virtual functions, laid out
// as Linux 6.1 shows QEMU's NVMe controller with sriov_numvfs=2 (tests/vm saw it so):
//
//   0000:00:00.0  host bridge
//   0000:00:01.0  root port, ACS as the test asks (none by default), bus 01
//   0000:01:00.0  PF 1b36:0010, 64-bit BAR 0 of 16K, SR-IOV capability (2 VFs enabled)
//   0000:01:00.1  VF 0  \  own config space: Vendor/Device ID 0xffff, no BAR registers set;
//   0000:01:00.2  VF 1  /  sysfs vendor/device/resource/physfn carry the kernel's view
//
// A VF's id registers read 0xFFFF by the SR-IOV specification and its BARs are programmed in
// the PF's SR-IOV capability, so only sysfs (the kernel) knows its ids and regions.
#pragma once

#include "sysfs_tree.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace dis::test {

struct SriovTreeOptions {
    std::optional<std::uint16_t> root_port_acs_ctl; // ACS capability (all flags) with this control
    bool iommu_groups = true; // kernel/iommu_groups as the kernel makes them for this tree
    bool physfn_links = true; // the VFs' physfn links (without them they look like functions)
};

inline void build_sriov_tree(SysfsTree& tree, const SriovTreeOptions& options = {}) {
    namespace fs = std::filesystem;
    if (options.iommu_groups)
        tree.enable_iommu();
    bool acs = options.root_port_acs_ctl.has_value();
    // With the root port's ACS enabled, every function gets its own group (pci_device_group:
    // VFs are single-function endpoints); without it all of bus 01 joins the root port's.
    auto group = [&](int own) -> std::optional<int> {
        if (!options.iommu_groups)
            return std::nullopt;
        return acs && *options.root_port_acs_ctl == acs::required ? own : 1;
    };
    std::optional<int> host_group;
    if (options.iommu_groups)
        host_group = 0;
    tree.add(
        {"0000:00:00.0", "", ConfigSpace(0x8086, 0x29c0, 0x060000), {}, host_group, -1, {}, {}});
    ConfigSpace port = ConfigSpace(0x1b36, 0x000c, 0x060400, 1)
                           .bus_numbers(0, 1, 1)
                           .pcie(PcieType::root_port, false, 1, 1, 1, 1);
    if (acs)
        port.acs(acs::required, *options.root_port_acs_ctl);
    tree.add({"0000:00:01.0", "", port, {"pcieport"}, group(1), -1, {}, {}});
    tree.add({"0000:01:00.0",
              "0000:00:01.0",
              ConfigSpace(0x1b36, 0x0010, 0x010802)
                  .memory_bar(0, 0xfe000000, 16 * 1024, true, false)
                  .pcie(PcieType::endpoint, true, 1, 1, 1, 1)
                  .sriov(2, 2, 2, 0x0010),
              {"nvme"},
              group(2),
              -1,
              {"flr", "bus"},
              {}});
    for (int vf = 0; vf < 2; ++vf) {
        std::string bdf = "0000:01:00." + std::to_string(vf + 1);
        // BAR 0: 16K at the PF's VF BAR 0 base + vf * 16K; 64-bit, non-prefetchable memory
        // (IORESOURCE_MEM | MEM_64 | SIZEALIGN and the BAR's low bits, as the kernel shows).
        std::string resource = vf == 0 ? "0x00000000fe004000 0x00000000fe007fff "
                                       : "0x00000000fe008000 0x00000000fe00bfff ";
        resource += "0x0000000000140204\n";
        for (int line = 1; line < 7; ++line)
            resource += "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
        tree.add({bdf,
                  "0000:00:01.0",
                  ConfigSpace(0xffff, 0xffff, 0x010802).pcie(PcieType::endpoint, true, 1, 1, 1, 1),
                  {},
                  group(3 + vf),
                  -1,
                  {"flr"},
                  {{"vendor", "0x1b36\n"},
                   {"device", "0x0010\n"},
                   {"subsystem_vendor", "0x1af4\n"},
                   {"subsystem_device", "0x1100\n"},
                   {"resource", resource}}});
        fs::path dir = tree.device_dir(bdf);
        if (options.physfn_links) {
            fs::create_symlink("../0000:01:00.0", dir / "physfn");
            fs::create_symlink("../" + bdf,
                               tree.device_dir("0000:01:00.0") / ("virtfn" + std::to_string(vf)));
        }
    }
}

} // namespace dis::test
