// dis-tool on SR-IOV virtual functions in a fake /sys (tests/support/sriov_tree.hpp): pci list
// shows the kernel's ids and [virtual] BARs, device check maps the VF's BAR and does not call
// it a multifunction device.
#include "sriov_tree.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;

namespace {

json by_bdf(const json& list, const std::string& bdf) {
    for (const auto& d : list)
        if (d["bdf"] == bdf)
            return d;
    FAIL("no device " << bdf << " in " << list.dump());
    return {};
}

} // namespace

TEST_CASE("pci list on a sysfs tree: VF ids, names and virtual BARs from sysfs", "[cli][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree);
    auto r = run_tool({"-o", "json", "pci", "list", "--sysfs-root", tree.root().string()});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto list = json::parse(r.out);
    auto pf = by_bdf(list, "0000:01:00.0");
    auto vf = by_bdf(list, "0000:01:00.2");
    CHECK(vf["vendor_id"] == "1b36");
    CHECK(vf["device_id"] == "0010");
    CHECK(vf["vendor_name"] == pf["vendor_name"]);
    CHECK(vf["device_name"] == pf["device_name"]);
    CHECK(vf["physfn"] == "0000:01:00.0");
    REQUIRE(vf["bars"].size() == 1);
    CHECK(vf["bars"][0] == json({{"index", 0},
                                 {"type", "memory"},
                                 {"base", 0xfe008000},
                                 {"size", 16384},
                                 {"is_64bit", true},
                                 {"prefetchable", false},
                                 {"virtual", true}}));
    CHECK(pf["bars"][0]["virtual"] == false);
    CHECK(pf["physfn"].is_null());

    auto text = run_tool({"pci", "list", "--sysfs-root", tree.root().string()});
    REQUIRE(text.exit_code == 0);
    CHECK(text.out.find("ffff") == std::string::npos);
}

TEST_CASE("pci show on a VF: the virtual BAR and the physical function", "[cli][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree);
    auto r = run_tool({"pci", "show", "--sysfs-root", tree.root().string(), "01:00.1"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("Memory at fe004000 (64-bit, non-prefetchable) [virtual]") !=
          std::string::npos);
    CHECK(r.out.find("Physical function") != std::string::npos);
    CHECK(r.out.find("0000:01:00.0") != std::string::npos);
    auto pf = run_tool({"pci", "show", "--sysfs-root", tree.root().string(), "01:00.0"});
    REQUIRE(pf.exit_code == 0);
    CHECK(pf.out.find("[virtual]") == std::string::npos);
    CHECK(pf.out.find("Physical function") == std::string::npos);
}

TEST_CASE("device check on a VF: its virtual BAR is mapped, no multifunction reason",
          "[cli][sriov]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_sriov_tree(tree);
    auto r = run_tool(
        {"-o", "json", "device", "check", "--sysfs-root", tree.root().string(), "01:00.1"});
    INFO(r.out << r.err);
    // Not ready (it shares the root port's group); exit 1 or 2 by the verdict contract.
    REQUIRE((r.exit_code == 1 || r.exit_code == 2));
    auto doc = json::parse(r.out);
    CHECK(doc["verdict"] == "not_ready");
    bool bars_ok = false;
    for (const auto& f : doc["findings"]) {
        if (f["check"] == "bars") {
            CHECK(f["message"].get<std::string>().find("no memory BARs") == std::string::npos);
            bars_ok = bars_ok || f["severity"] == "ok";
        }
    }
    CHECK(bars_ok);
    CHECK(r.out.find("multifunction") == std::string::npos);
    CHECK_FALSE(doc["isolation"]["reasons"].empty()); // it does share the root port's group
    REQUIRE(doc["bars"].size() == 1);
    CHECK(doc["bars"][0]["size"] == 16384);
    CHECK(doc["bars"][0]["virtual"] == true);
}
