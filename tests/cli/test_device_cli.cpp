// `dis-tool device check`: verdicts and exit codes on sysfs trees and fixture dumps.
#include "lending_host.hpp"
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;

namespace {

json finding(const json& doc, const std::string& check) {
    for (const auto& f : doc["findings"])
        if (f["check"] == check)
            return f;
    FAIL("no finding " << check << " in " << doc.dump());
    return {};
}

} // namespace

TEST_CASE("device check: an isolated, unbound NIC with FLR is ready (exit 0)", "[cli][device]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_lending_host(tree, {});
    auto r = run_tool(
        {"device", "check", "--sysfs-root", tree.root().string(), "01:00.0", "-o", "json"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["verdict"] == "ready");
    CHECK(doc["driver"].is_null());
    CHECK(doc["reset_methods"] == json({"flr", "bus"}));
    CHECK(doc["reset_methods_from_sysfs"] == true);
    CHECK(doc["iommu_present"] == true);
    CHECK(doc["isolation"]["group"] == 10);
    CHECK(doc["isolation"]["isolated"] == true);
    CHECK(doc["acs_path"].size() == 1);
    CHECK(doc["acs_path"][0]["acs_enabled"] == true);
    CHECK(doc["bars"][0]["size"] == 256u << 20);
    CHECK(doc["bars"][0]["fits_window"] == true);
    CHECK(doc["sriov"]["total_vfs"] == 64);
    CHECK(doc["p2p"].size() == 1);
    CHECK(doc["p2p"][0]["map_type"] == "host_bridge");

    auto text = run_tool({"device", "check", "--sysfs-root", tree.root().string(), "01:00.0"});
    CHECK(text.exit_code == 0);
    CHECK(text.out.find("Verdict: ready\n") != std::string::npos);
}

TEST_CASE("device check: bound driver and enabled VFs are warnings (exit 0, 1 with --strict)",
          "[cli][device]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    Lender l;
    l.driver = "i40e";
    l.num_vfs = 8;
    build_lending_host(tree, l);
    auto r = run_tool(
        {"-o", "json", "device", "check", "--sysfs-root", tree.root().string(), "0000:01:00.0"});
    CHECK(r.exit_code == 0);
    auto strict = run_tool({"-o", "json", "device", "check", "--strict", "--sysfs-root",
                            tree.root().string(), "0000:01:00.0"});
    CHECK(strict.exit_code == 1);
    CHECK(strict.out == r.out); // the same report, only the exit code differs
    auto doc = json::parse(r.out);
    CHECK(doc["verdict"] == "ready_with_warnings");
    CHECK(doc["driver"] == "i40e");
    CHECK(finding(doc, "driver")["severity"] == "warning");
    CHECK(finding(doc, "sriov")["severity"] == "warning");
    CHECK(finding(doc, "sriov")["message"].get<std::string>().find("8 of 64 VFs") !=
          std::string::npos);
}

TEST_CASE("device check: a BAR over the window or a shared group is not ready (exit 1)",
          "[cli][device]") {
    SECTION("1 GiB BAR against the default 512 MiB window") {
        TempDir tmp;
        SysfsTree tree(tmp.path() / "sys");
        Lender l;
        l.bar = 1ull << 30;
        build_lending_host(tree, l);
        auto r = run_tool(
            {"device", "check", "--sysfs-root", tree.root().string(), "01:00.0", "-o", "json"});
        CHECK(r.exit_code == 1);
        auto doc = json::parse(r.out);
        CHECK(doc["verdict"] == "not_ready");
        CHECK(finding(doc, "bars")["severity"] == "error");
        CHECK(doc["bars"][0]["fits_window"] == false);
        // A 2 GiB window takes it.
        auto wide = run_tool({"device", "check", "--sysfs-root", tree.root().string(), "01:00.0",
                              "--window-size", "2G"});
        CHECK(wide.exit_code == 0);
    }
    SECTION("kernel group shared with the NTB adapter") {
        TempDir tmp;
        SysfsTree tree(tmp.path() / "sys");
        Lender l;
        l.share_group = true;
        build_lending_host(tree, l);
        auto r = run_tool(
            {"device", "check", "--sysfs-root", tree.root().string(), "01:00.0", "-o", "json"});
        CHECK(r.exit_code == 1);
        auto doc = json::parse(r.out);
        CHECK(finding(doc, "iommu")["severity"] == "error");
        CHECK(finding(doc, "iommu")["message"].get<std::string>().find(
                  "shares group 10 with 0000:02:00.0") != std::string::npos);
    }
}

TEST_CASE("device check on fixture dumps", "[cli][device]") {
    // 04:00.0 (LSI SAS2008): DevCap FLReset+, alone below NF200 port 03:00.0, so FLR and
    // a bus reset; no IOMMU info, ACS gaps at 03:00.0 and 00:03.0, no P2P peer through
    // the X58, BAR sizes unknown: ready with warnings.
    auto r = run_tool(
        {"device", "check", "--dump", fixture("pci/tree-asus-p6t6.txt"), "04:00.0", "-o", "json"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["verdict"] == "ready_with_warnings");
    CHECK(doc["reset_methods"] == json({"flr", "bus"}));
    CHECK(doc["reset_methods_from_sysfs"] == false);
    CHECK(finding(doc, "iommu")["message"].get<std::string>().rfind("isolation unknown", 0) == 0);
    CHECK(finding(doc, "acs")["severity"] == "warning");
    CHECK(finding(doc, "p2p")["severity"] == "warning");
    CHECK(finding(doc, "bars")["message"].get<std::string>().find("sizes unknown") !=
          std::string::npos);
    CHECK(doc["acs_path"].size() == 3);

    // The GeForce 210 has no FLR and shares its port with its audio function: no reset.
    auto gpu = run_tool(
        {"-o", "json", "device", "check", "--dump", fixture("pci/tree-asus-p6t6.txt"), "06:00.0"});
    CHECK(gpu.exit_code == 0);
    auto g = json::parse(gpu.out);
    CHECK(g["reset_methods"] == json::array());
    CHECK(finding(g, "iommu")["message"].get<std::string>().find("predicted to share") !=
          std::string::npos);

    // The PLX downstream port is a bridge: not ready.
    auto plx = run_tool({"device", "check", "--dump", fixture("pci/cap-dpc.txt"), "05:01.0"});
    CHECK(plx.exit_code == 1);
    CHECK(plx.out.find("Verdict: not ready") != std::string::npos);
    CHECK(plx.err.empty());
}

TEST_CASE("device check input errors", "[cli][device]") {
    std::string dump = fixture("pci/tree-asus-p6t6.txt");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"device", "check", "--dump", dump, "nonsense"},
             {"device", "check", "--dump", dump, "42:00.0"},
             {"device", "check", "--dump", dump, "04:00.0", "--window-size", "12X"},
             {"device", "check", "--dump", dump, "04:00.0", "--window-size", "0"},
             {"device", "check", "--dump", "/nonexistent.txt", "04:00.0"},
             {"device", "check", "--dump", dump},
             {"device"}}) {
        auto r = run_tool(args);
        INFO(args.back() << " out: " << r.out << " err: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        check_one_error_line(r);
    }
    auto r = run_tool({"device", "check", "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("--window-size") != std::string::npos);
    check_man_page("dis-tool-device.1");
}
