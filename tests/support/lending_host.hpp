// A lending host as a fake /sys tree, shared by the device-check CLI tests: root port
// 00:01.0 (Skylake 8086:2030, full ACS) with a NIC at 01:00.0 (the device to lend), root port
// 00:02.0 with an NTB adapter at 02:00.0; IOMMU groups per port.
#pragma once

#include "sysfs_tree.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::test {

// What to vary about the NIC at 01:00.0.
struct Lender {
    std::optional<std::string> driver;
    std::vector<std::string> reset{"flr", "bus"};
    std::uint64_t bar = 256u << 20;
    bool share_group = false; // put the NIC in the NTB adapter's IOMMU group
    std::uint16_t num_vfs = 0;
};

void build_lending_host(SysfsTree& tree, const Lender& l);

} // namespace dis::test
