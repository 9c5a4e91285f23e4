// dis_bench_sysfs ROOT COUNT: writes a fake /sys with COUNT PCIe functions under ROOT for
// scripts/bench-exporter.sh: root ports, each with an 8-function endpoint behind it, over as
// many PCI domains as needed; every function has AER counters, every eighth root port's link
// is trained below its maximum (a downgrade the exporter reports).
#include "sysfs_tree.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <string>

using dis::test::ConfigSpace;
using dis::test::FakeDevice;
using dis::test::PcieType;

namespace {

std::string bdf(int domain, int bus, int dev, int fn) {
    char text[40];
    std::snprintf(text, sizeof text, "%04x:%02x:%02x.%d", domain, bus, dev, fn);
    return text;
}

std::map<std::string, std::string> aer_files(int seed) {
    return {{"aer_dev_correctable", "RxErr " + std::to_string(seed % 3) +
                                        "\nBadTLP 0\nTOTAL_ERR_COR " + std::to_string(seed % 3) +
                                        "\n"},
            {"aer_dev_nonfatal", "Undefined 0\nDLP 0\nTOTAL_ERR_NONFATAL 0\n"},
            {"aer_dev_fatal", "Undefined 0\nDLP 0\nTOTAL_ERR_FATAL 0\n"}};
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: dis_bench_sysfs ROOT COUNT\n";
        return 2;
    }
    const int count = std::atoi(argv[2]);
    if (count <= 0) {
        std::cerr << "dis_bench_sysfs: COUNT must be a positive number\n";
        return 2;
    }
    try {
        dis::test::SysfsTree tree(argv[1]);
        int made = 0;
        for (int domain = 0; made < count; ++domain) {
            // 31 root ports per domain (devices 1..31 of bus 0), endpoint on bus port+0.
            for (int port = 1; port <= 31 && made < count; ++port) {
                const int bus = port;
                const bool downgraded = port % 8 == 0;
                FakeDevice rp{bdf(domain, 0, port, 0),
                              "",
                              ConfigSpace(0x8086, 0x1901, 0x060400, 1)
                                  .bus_numbers(0, bus, bus)
                                  .pcie(PcieType::root_port, false, 4, 16, downgraded ? 3 : 4,
                                        downgraded ? 8 : 16)
                                  .aer(0, 0),
                              "pcieport",
                              {},
                              0,
                              {},
                              aer_files(made)};
                rp.files["aer_rootport_total_err_cor"] = std::to_string(made % 5) + "\n";
                rp.files["aer_rootport_total_err_nonfatal"] = "0\n";
                rp.files["aer_rootport_total_err_fatal"] = "0\n";
                tree.add(rp);
                ++made;
                for (int fn = 0; fn < 8 && made < count; ++fn) {
                    FakeDevice ep{
                        bdf(domain, bus, 0, fn),
                        rp.bdf,
                        ConfigSpace(0x15b3, 0x101b, 0x020000)
                            .multifunction(true)
                            .memory_bar(0, 0xe0000000ULL + (fn << 20), 1 << 20, true, true)
                            .pcie(PcieType::endpoint, true, 4, 16, downgraded ? 3 : 4,
                                  downgraded ? 8 : 16)
                            .aer(0, 0),
                        "mlx5_core",
                        {},
                        0,
                        {"flr", "bus"},
                        aer_files(made)};
                    tree.add(ep);
                    ++made;
                }
            }
        }
        std::cout << made << "\n";
    } catch (const std::exception& e) {
        std::cerr << "dis_bench_sysfs: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
