// `dis-tool iommu` against the real fixture dumps and sysfs trees built by the test.
// Expected groups were derived by hand from `lspci -F FILE -vvv` (ACS, port types) and
// the header type bytes (multifunction), following the kernel's pci_device_group().
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;

namespace {

json device_entry(const json& doc, const std::string& bdf) {
    for (const auto& d : doc["devices"])
        if (d["bdf"] == bdf)
            return d;
    FAIL("no device " << bdf << " in " << doc.dump());
    return {};
}

std::vector<std::string> group_members(const json& doc, const std::string& bdf) {
    auto group = device_entry(doc, bdf)["group"];
    for (const auto& g : doc["groups"])
        if (g["group"] == group)
            return g["devices"].get<std::vector<std::string>>();
    FAIL("no group for " << bdf);
    return {};
}

} // namespace

TEST_CASE("iommu on the ASUS P6T6 dump predicts groups from ACS and says there is no IOMMU",
          "[cli][iommu]") {
    auto doc = run_json({"iommu", "--dump", fixture("pci/tree-asus-p6t6.txt"), "-o", "json"});
    CHECK(doc["iommu_present"] == false);
    CHECK(doc["groups_predicted"] == true);

    // 04:00.0 (SAS) sits behind NF200 DSP 03:00.0 (no ACS) and root port 00:03.0 (ACS
    // capability, every control bit off): its group is the whole branch, but the only
    // other members are bridges, so it can still be assigned alone.
    CHECK(group_members(doc, "0000:04:00.0") ==
          std::vector<std::string>{"0000:00:03.0", "0000:02:00.0", "0000:03:00.0", "0000:03:02.0",
                                   "0000:04:00.0"});
    auto sas = device_entry(doc, "0000:04:00.0");
    CHECK(sas["isolated"] == true);
    REQUIRE(sas["acs_gaps"].size() == 2);
    CHECK(sas["acs_gaps"][0]["bridge"] == "0000:03:00.0");
    CHECK(sas["acs_gaps"][0]["acs_capability"] == false);
    CHECK(sas["acs_gaps"][1]["bridge"] == "0000:00:03.0");
    CHECK(sas["acs_gaps"][1]["acs_capability"] == true);
    CHECK(sas["acs_gaps"][1]["missing"] ==
          json({"SrcValid", "ReqRedir", "CmpltRedir", "UpstreamFwd"}));

    // The GeForce 210 shares root port 00:07.0's group with its audio function.
    auto gpu = device_entry(doc, "0000:06:00.0");
    CHECK(gpu["isolated"] == false);
    CHECK(gpu["shares_with"] == json({"0000:00:07.0", "0000:06:00.1"}));
    std::string reasons = gpu["reasons"].dump();
    CHECK(reasons.find("ACS missing at bridge 0000:00:07.0 (SrcValid, ReqRedir, CmpltRedir, "
                       "UpstreamFwd not enabled)") != std::string::npos);

    // ICH10 root ports 00:1c.0-2 are one multifunction slot without ACS: both Realteks
    // end up in one group with all three ports.
    CHECK(group_members(doc, "0000:07:00.0") ==
          std::vector<std::string>{"0000:00:1c.0", "0000:00:1c.1", "0000:00:1c.2", "0000:07:00.0",
                                   "0000:08:00.0"});
    CHECK(device_entry(doc, "0000:08:00.0")["isolated"] == false);

    // ICH10 UHCI/EHCI functions: conventional PCI in one slot. Only 00:1a.0 has the
    // multifunction bit, but the kernel marks functions above 0 multifunction too.
    CHECK(group_members(doc, "0000:00:1a.7") ==
          std::vector<std::string>{"0000:00:1a.0", "0000:00:1a.1", "0000:00:1a.2", "0000:00:1a.7"});
    CHECK(device_entry(doc, "0000:00:1a.7")["reasons"].dump().find(
              "multifunction device without ACS") != std::string::npos);
    // The HD audio controller is a single-function root-complex integrated endpoint.
    CHECK(group_members(doc, "0000:00:1b.0") == std::vector<std::string>{"0000:00:1b.0"});

    // Text mode says it plainly.
    auto text = run_tool({"iommu", "--dump", fixture("pci/tree-asus-p6t6.txt")});
    CHECK(text.exit_code == 0);
    CHECK(text.out.rfind("IOMMU: none;", 0) == 0);
    CHECK(text.out.find("PREDICTED") != std::string::npos);
    CHECK(text.out.find("0000:06:00.0") != std::string::npos);
}

TEST_CASE("iommu on the Thunderbolt dump names the root port's missing ACS flags", "[cli][iommu]") {
    // 00:1c.0 ACSCap SrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd-, ACSCtl all off:
    // UpstreamFwd is not implemented, so only three flags are missing.
    auto doc =
        run_json({"-o", "json", "iommu", "--dump", fixture("pci/cap-exp-lnkcap2.txt"), "02:00.0"});
    REQUIRE(doc["devices"].size() == 1);
    auto gpu = doc["devices"][0];
    CHECK(gpu["isolated"] == true);
    CHECK(gpu["shares_with"] == json({"0000:00:1c.0"}));
    REQUIRE(gpu["acs_gaps"].size() == 1);
    CHECK(gpu["acs_gaps"][0]["missing"] == json({"SrcValid", "ReqRedir", "CmpltRedir"}));
    REQUIRE(doc["groups"].size() == 1);
}

TEST_CASE("iommu reads the kernel's groups from a sysfs tree", "[cli][iommu]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    tree.enable_iommu();
    // Groups as a kernel with the ICH10 ports split would form them: the Realteks apart.
    tree.add_dump(fixture("pci/tree-asus-p6t6.txt"), [](FakeDevice& d) {
        if (d.bdf == "0000:07:00.0" || d.bdf == "0000:00:1c.2")
            d.iommu_group = 20;
        else if (d.bdf == "0000:08:00.0" || d.bdf == "0000:00:1c.1")
            d.iommu_group = 21;
        else if (d.bdf == "0000:06:00.0" || d.bdf == "0000:06:00.1" || d.bdf == "0000:00:07.0")
            d.iommu_group = 13;
        else
            d.iommu_group = 40 + std::stoi(d.bdf.substr(5, 2), nullptr, 16);
    });
    auto doc = run_json({"iommu", "--sysfs-root", tree.root().string(), "-o", "json"});
    CHECK(doc["iommu_present"] == true);
    CHECK(doc["groups_predicted"] == false);
    CHECK(group_members(doc, "0000:07:00.0") ==
          std::vector<std::string>{"0000:00:1c.2", "0000:07:00.0"});
    CHECK(device_entry(doc, "0000:07:00.0")["isolated"] == true);
    auto gpu = device_entry(doc, "0000:06:00.0");
    CHECK(gpu["group"] == 13);
    CHECK(gpu["isolated"] == false);
    CHECK(gpu["reasons"][0] == "shares group 13 with 0000:00:07.0, 0000:06:00.1");

    auto text = run_tool({"iommu", "--sysfs-root", tree.root().string()});
    CHECK(text.out.rfind("IOMMU: present;", 0) == 0);
    CHECK(text.out.find("PREDICTED") == std::string::npos);
}

TEST_CASE("iommu on a sysfs tree without iommu_groups says there is no IOMMU", "[cli][iommu]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    tree.add_dump(fixture("pci/cap-exp-lnkcap2.txt"));
    auto r = run_tool({"iommu", "--sysfs-root", tree.root().string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("IOMMU: none; no IOMMU:") == 0);
    CHECK(r.out.find("PREDICTED") != std::string::npos);
}

TEST_CASE("iommu input errors: one stderr line, exit 2, no partial output", "[cli][iommu]") {
    TempDir tmp;
    write_file(tmp.path() / "garbage.txt", "this is not\nan lspci dump\n");
    struct Case {
        std::vector<std::string> args;
        std::string needle;
    };
    std::vector<Case> cases = {
        {{"iommu", "--dump", (tmp.path() / "missing.txt").string()}, "missing.txt"},
        {{"iommu", "--dump", (tmp.path() / "garbage.txt").string()}, "garbage.txt"},
        {{"iommu", "--sysfs-root", (tmp.path() / "nosys").string()}, "nosys"},
        {{"iommu", "--dump", fixture("pci/cap-dpc.txt"), "zz:00.0"}, "zz:00.0"},
        {{"iommu", "--dump", fixture("pci/cap-dpc.txt"), "42:00.0"}, "0000:42:00.0"},
        {{"iommu", "--dump", "x", "--sysfs-root", "y"}, "excludes"},
    };
    for (const auto& c : cases) {
        auto r = run_tool(c.args);
        INFO(c.args.back() << " -> out: " << r.out << " err: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        check_one_error_line(r);
        CHECK(r.err.find(c.needle) != std::string::npos);
    }
    // In JSON mode the error is a complete JSON document.
    auto r = run_tool({"iommu", "-o", "json", "--dump", (tmp.path() / "missing.txt").string()});
    CHECK(r.exit_code == 2);
    auto doc = json::parse(r.out);
    CHECK(doc["error"]["kind"] == "not_found");
}

TEST_CASE("iommu --help and man page", "[cli][iommu]") {
    auto r = run_tool({"iommu", "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("--sysfs-root") != std::string::npos);
    check_man_page("dis-tool-iommu.1");
}
