#include "lending_host.hpp"

namespace dis::test {

void build_lending_host(SysfsTree& tree, const Lender& l) {
    tree.enable_iommu();
    for (int port : {1, 2}) {
        std::string rp = "0000:00:0" + std::to_string(port) + ".0";
        tree.add(
            {rp,
             "",
             ConfigSpace(0x8086, 0x2030, 0x060400, 1)
                 .bus_numbers(0, static_cast<std::uint8_t>(port), static_cast<std::uint8_t>(port))
                 .pcie(PcieType::root_port)
                 .acs(acs::required, acs::required),
             {"pcieport"},
             port,
             0,
             {},
             {}});
    }
    tree.add({"0000:01:00.0",
              "0000:00:01.0",
              ConfigSpace(0x8086, 0x1572, 0x020000)
                  .memory_bar(0, 0x3800000000, l.bar, true, true)
                  .pcie(PcieType::endpoint, true)
                  .aer(0, 0)
                  .sriov(64, 64, l.num_vfs, 0x154c),
              l.driver,
              10,
              0,
              l.reset,
              {{"aer_dev_correctable", "RxErr 0\nTOTAL_ERR_COR 0\n"}}});
    tree.add({"0000:02:00.0",
              "0000:00:02.0",
              ConfigSpace(0x1c7e, 0x0001, 0x068000)
                  .memory_bar(0, 0x3900000000, 1u << 30, true, true)
                  .pcie(PcieType::endpoint, true),
              {"dis_nt"},
              l.share_group ? 10 : 11,
              0,
              {"flr"},
              {}});
}

} // namespace dis::test
