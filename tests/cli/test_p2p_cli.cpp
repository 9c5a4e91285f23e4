// `dis-tool p2p` on fixture dumps (verdicts derived by hand from `lspci -F FILE -vvv -t`
// and the kernel's calc_map_type_and_dist()) and on synthesised sysfs trees.
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;

namespace {

json pair_of(const json& doc, const std::string& a, const std::string& b) {
    for (const auto& p : doc["pairs"])
        if ((p["a"] == a && p["b"] == b) || (p["a"] == b && p["b"] == a))
            return p;
    FAIL("no pair " << a << " " << b << " in " << doc.dump());
    return {};
}

// A Skylake-SP style host: root ports 8086:2030 (on the kernel's allow-list) on bus 00,
// a PLX switch below 00:01.0 with two downstream ports, and a second root bus on node 1.
void build_switch_tree(SysfsTree& tree, bool redirect_at_dsp) {
    std::uint16_t dsp_ctl = redirect_at_dsp ? acs::required : acs::src_valid | acs::upstream_fwd;
    tree.add({"0000:00:01.0",
              "",
              ConfigSpace(0x8086, 0x2030, 0x060400, 1)
                  .bus_numbers(0, 1, 4)
                  .pcie(PcieType::root_port)
                  .acs(acs::required, acs::required),
              {"pcieport"},
              {},
              0,
              {},
              {}});
    tree.add({"0000:00:02.0",
              "",
              ConfigSpace(0x8086, 0x2031, 0x060400, 1)
                  .bus_numbers(0, 5, 5)
                  .pcie(PcieType::root_port)
                  .acs(acs::required, acs::required),
              {"pcieport"},
              {},
              0,
              {},
              {}});
    tree.add({"0000:01:00.0",
              "0000:00:01.0",
              ConfigSpace(0x10b5, 0x8747, 0x060400, 1)
                  .bus_numbers(1, 2, 4)
                  .pcie(PcieType::upstream_port),
              {"pcieport"},
              {},
              0,
              {},
              {}});
    for (int port : {2, 3}) {
        std::string bdf = "0000:02:0" + std::to_string(port) + ".0";
        tree.add({bdf,
                  "0000:01:00.0",
                  ConfigSpace(0x10b5, 0x8747, 0x060400, 1)
                      .bus_numbers(2, static_cast<std::uint8_t>(port + 1),
                                   static_cast<std::uint8_t>(port + 1))
                      .pcie(PcieType::downstream_port)
                      .acs(acs::required | acs::egress_ctrl, dsp_ctl),
                  {"pcieport"},
                  {},
                  0,
                  {},
                  {}});
    }
    tree.add({"0000:03:00.0",
              "0000:02:02.0",
              ConfigSpace(0x10de, 0x1db6, 0x030200)
                  .memory_bar(0, 0xd0000000, 16u << 20, false, false)
                  .pcie(PcieType::endpoint),
              {"nvidia"},
              {},
              0,
              {},
              {}});
    tree.add({"0000:04:00.0",
              "0000:02:03.0",
              ConfigSpace(0x144d, 0xa808, 0x010802)
                  .memory_bar(0, 0xd1000000, 16384, true, false)
                  .pcie(PcieType::endpoint),
              {"nvme"},
              {},
              0,
              {},
              {}});
    tree.add({"0000:05:00.0",
              "0000:00:02.0",
              ConfigSpace(0x15b3, 0x1017, 0x020000)
                  .memory_bar(0, 0xd2000000, 32u << 20, true, true)
                  .pcie(PcieType::endpoint),
              {"mlx5_core"},
              {},
              0,
              {},
              {}});
    tree.add({"0000:80:01.0",
              "",
              ConfigSpace(0x8086, 0x2030, 0x060400, 1)
                  .bus_numbers(0x80, 0x81, 0x81)
                  .pcie(PcieType::root_port)
                  .acs(acs::required, acs::required),
              {"pcieport"},
              {},
              1,
              {},
              {}});
    tree.add({"0000:81:00.0",
              "0000:80:01.0",
              ConfigSpace(0x15b3, 0x1017, 0x020000)
                  .memory_bar(0, 0xe0000000, 32u << 20, true, true)
                  .pcie(PcieType::endpoint),
              {"mlx5_core"},
              {},
              1,
              {},
              {}});
}

} // namespace

TEST_CASE("p2p on the ASUS P6T6 dump: same port by bus address, X58 host bridge refuses",
          "[cli][p2p]") {
    auto doc = run_json({"p2p", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0", "06:00.1",
                         "04:00.0", "07:00.0", "-o", "json"});
    CHECK(doc["devices"].size() == 4);
    CHECK(doc["pairs"].size() == 6);

    // GPU and its audio function below root port 00:07.0, whose ACS control is all off.
    auto same_port = pair_of(doc, "0000:06:00.0", "0000:06:00.1");
    CHECK(same_port["map_type"] == "bus_address");
    CHECK(same_port["distance"] == 2);
    CHECK(same_port["common_bridge"] == "0000:00:07.0");
    CHECK(same_port["topology"] == "PIX");

    // SAS behind the NF200 switch vs GPU: no common bridge; 04:00.0 has 4 devices on its
    // chain (itself, 03:00.0, 02:00.0, 00:03.0), 06:00.0 two. 00:00.0 is 8086:3405, not on
    // the kernel's allow-list.
    auto across = pair_of(doc, "0000:04:00.0", "0000:06:00.0");
    CHECK(across["map_type"] == "not_supported");
    CHECK(across["distance"] == -1);
    CHECK(across["hops"] == 6);
    CHECK(across["common_bridge"].is_null());
    CHECK(across["topology"] == "PHB");
    CHECK(across["reason"].get<std::string>().find("0000:00:00.0 [8086:3405]") !=
          std::string::npos);

    auto text = run_tool(
        {"p2p", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0", "06:00.1", "04:00.0"});
    CHECK(text.exit_code == 0);
    CHECK(text.out.find("PIX ok") != std::string::npos);
    CHECK(text.out.find("PHB no") != std::string::npos);
    CHECK(text.out.find("Legend:") != std::string::npos);
}

TEST_CASE("p2p defaults to endpoints with memory BARs", "[cli][p2p]") {
    // cap-exp-lnkcap2: GPU 02:00.0 below root port 00:1c.0, Thunderbolt NHI 09:00.0 below
    // 08:00.0 on a second root bus. Different host bridges, NUMA unknown: NODE.
    auto doc = run_json({"-o", "json", "p2p", "--dump", fixture("pci/cap-exp-lnkcap2.txt")});
    CHECK(doc["devices"] == json({"0000:02:00.0", "0000:09:00.0"}));
    auto p = pair_of(doc, "0000:02:00.0", "0000:09:00.0");
    CHECK(p["map_type"] == "not_supported");
    CHECK(p["topology"] == "NODE");
    CHECK(p["hops"] == 4);

    // The PLX port dump has no endpoint at all.
    auto none = run_tool({"p2p", "--dump", fixture("pci/cap-dpc.txt")});
    CHECK(none.exit_code == 0);
    CHECK(none.out.find("Fewer than two devices") != std::string::npos);
}

TEST_CASE("p2p on a sysfs tree: switch by bus address, ACS redirect via allow-listed host",
          "[cli][p2p]") {
    SECTION("no redirect at the switch ports") {
        TempDir tmp;
        SysfsTree tree(tmp.path() / "sys");
        build_switch_tree(tree, false);
        auto doc = run_json({"p2p", "--sysfs-root", tree.root().string(), "-o", "json"});
        CHECK(doc["devices"] ==
              json({"0000:03:00.0", "0000:04:00.0", "0000:05:00.0", "0000:81:00.0"}));
        auto sw = pair_of(doc, "0000:03:00.0", "0000:04:00.0");
        CHECK(sw["map_type"] == "bus_address");
        CHECK(sw["distance"] == 4);
        CHECK(sw["common_bridge"] == "0000:01:00.0");
        CHECK(sw["topology"] == "PIX");
        // Two root ports of one Skylake host bridge (first device 00:01.0 is 8086:2030).
        auto rp = pair_of(doc, "0000:03:00.0", "0000:05:00.0");
        CHECK(rp["map_type"] == "host_bridge");
        CHECK(rp["distance"] == 6);
        CHECK(rp["topology"] == "PHB");
        // Other root bus on NUMA node 1.
        auto far = pair_of(doc, "0000:05:00.0", "0000:81:00.0");
        CHECK(far["topology"] == "SYS");
        CHECK(far["map_type"] == "host_bridge");
    }
    SECTION("redirect enabled at the downstream ports") {
        TempDir tmp;
        SysfsTree tree(tmp.path() / "sys");
        build_switch_tree(tree, true);
        auto doc = run_json(
            {"p2p", "--sysfs-root", tree.root().string(), "-o", "json", "03:00.0", "04:00.0"});
        auto sw = pair_of(doc, "0000:03:00.0", "0000:04:00.0");
        CHECK(sw["map_type"] == "host_bridge");
        CHECK(sw["distance"] == 4);
        CHECK(sw["acs_redirects"] ==
              json::parse(R"([{"device":"0000:02:02.0","bits":["ReqRedir","CmpltRedir"]},
                              {"device":"0000:02:03.0","bits":["ReqRedir","CmpltRedir"]}])"));
        CHECK(sw["reason"].get<std::string>().find("ACS redirect at 0000:02:02.0") !=
              std::string::npos);
    }
}

TEST_CASE("p2p input errors", "[cli][p2p]") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"p2p", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0"},
             {"p2p", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0", "0:0:0:0"},
             {"p2p", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0", "42:00.0"},
             {"p2p", "--dump", "/nonexistent/dump.txt"},
             {"p2p", "--sysfs-root", "/nonexistent/sys"}}) {
        auto r = run_tool(args);
        INFO(args.back() << " err: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        check_one_error_line(r);
    }
    auto r = run_tool({"p2p", "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("--amd-zen") != std::string::npos);
    check_man_page("dis-tool-p2p.1");
}
