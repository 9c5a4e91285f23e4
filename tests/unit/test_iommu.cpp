// IOMMU grouping and isolation verdicts on hand-built topologies whose expected groups were
// worked out from the kernel's pci_device_group() rules.
#include "support.hpp"
#include "test_iommu_topology.hpp"

#include "dis/iommu.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace dis::pci;
using namespace dis::test;

namespace {

std::vector<std::string> names(const std::vector<Bdf>& bdfs) {
    std::vector<std::string> out;
    for (const auto& b : bdfs)
        out.push_back(b.to_string());
    return out;
}

const IommuGroup& group_with(const std::vector<IommuGroup>& groups, const std::string& bdf) {
    auto b = bdf_of(bdf);
    for (const auto& g : groups)
        if (std::find(g.devices.begin(), g.devices.end(), b) != g.devices.end())
            return g;
    FAIL("no group holds " << bdf);
    throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("check_acs follows pci_acs_enabled for each port type", "[iommu]") {
    SECTION("root port without an ACS capability misses all four required flags") {
        auto rp = root_port("00:01.0", 1, std::nullopt);
        auto c = check_acs(rp);
        CHECK_FALSE(c.enabled);
        CHECK_FALSE(c.has_capability);
        CHECK(c.missing ==
              std::vector<std::string>{"SrcValid", "ReqRedir", "CmpltRedir", "UpstreamFwd"});
    }
    SECTION("a capable but disabled flag is missing") {
        Acs acs = full_acs();
        acs.ctl.req_redir = false;
        auto c = check_acs(root_port("00:01.0", 1, acs));
        CHECK_FALSE(c.enabled);
        CHECK(c.has_capability);
        CHECK(c.missing == std::vector<std::string>{"ReqRedir"});
    }
    SECTION("a flag the port does not implement counts as hard-wired") {
        Acs acs = full_acs();
        acs.cap.upstream_fwd = false;
        acs.ctl.upstream_fwd = false;
        CHECK(check_acs(downstream_port("03:00.0", "02:00.0", 4, acs)).enabled);
    }
    SECTION("single-function endpoints need no ACS, multifunction ones do") {
        auto ep = endpoint("01:00.0", "00:01.0");
        CHECK(check_acs(ep).enabled);
        ep.multifunction = true;
        CHECK_FALSE(check_acs(ep).enabled);
        ep.acs = full_acs();
        CHECK(check_acs(ep).enabled);
        // The kernel treats every function above 0 as multifunction (pci_scan_slot), even
        // when its header type lacks the bit, as on ICH10's 00:1a.1.
        auto fn1 = endpoint("01:00.1", "00:01.0");
        REQUIRE_FALSE(fn1.multifunction);
        CHECK_FALSE(check_acs(fn1).enabled);
    }
    SECTION("conventional PCI and PCIe-to-PCI bridges cannot provide ACS") {
        auto conv = endpoint("05:00.0", "00:1e.0");
        conv.port_type.reset();
        CHECK_FALSE(check_acs(conv).enabled);
        CHECK_FALSE(check_acs(conv).applicable);
        auto br = pcie_to_pci_bridge("04:00.0", "00:1c.0", 5);
        CHECK_FALSE(check_acs(br).applicable);
    }
}

TEST_CASE("predicted groups follow ACS, aliases and multifunction rules", "[iommu]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto groups = predict_iommu_groups(topo);

    // Root port with full ACS: the endpoint below it is alone.
    CHECK(names(group_with(groups, "0000:01:00.0").devices) ==
          std::vector<std::string>{"0000:01:00.0"});
    // Root port without ACS: the endpoint joins the port's group.
    CHECK(names(group_with(groups, "0000:02:00.0").devices) ==
          std::vector<std::string>{"0000:00:02.0", "0000:02:00.0"});
    // Switch downstream port without ReqRedir/CmpltRedir: its multifunction endpoint's functions
    // share.
    CHECK(names(group_with(groups, "0000:06:00.0").devices) ==
          std::vector<std::string>{"0000:05:02.0", "0000:06:00.0", "0000:06:00.1"});
    // Downstream port with full ACS: alone.
    CHECK(names(group_with(groups, "0000:05:01.0").devices) ==
          std::vector<std::string>{"0000:05:01.0"});
    // Everything behind a PCIe-to-PCI bridge aliases to it.
    CHECK(names(group_with(groups, "0000:08:01.0").devices) ==
          std::vector<std::string>{"0000:07:00.0", "0000:08:01.0", "0000:08:02.0"});
    // Numbered in BDF order of the first member.
    CHECK(groups.front().id == 0);
    CHECK(names(groups.front().devices).front() == "0000:00:00.0");
}

TEST_CASE("isolation verdicts name the group, the sharing devices and the ACS gap", "[iommu]") {
    Topology topo = sample_topology(Source::dump("sample"));
    IommuReport report = analyze_iommu(topo);
    CHECK_FALSE(report.iommu_present);
    CHECK(report.predicted);
    CHECK(report.note.find("predicted") != std::string::npos);

    const auto* alone = report.find(bdf_of("0000:01:00.0"));
    REQUIRE(alone);
    CHECK(alone->isolated);
    CHECK(alone->reasons.empty());

    // Only a bridge shares the group: still assignable alone.
    const auto* with_port = report.find(bdf_of("0000:02:00.0"));
    REQUIRE(with_port);
    CHECK(with_port->isolated);
    CHECK(names(with_port->shares_with) == std::vector<std::string>{"0000:00:02.0"});
    REQUIRE(with_port->acs_gaps.size() == 1);
    CHECK(with_port->acs_gaps[0].bridge.to_string() == "0000:00:02.0");
    CHECK_FALSE(with_port->acs_gaps[0].has_capability);

    const auto* shared = report.find(bdf_of("0000:06:00.0"));
    REQUIRE(shared);
    CHECK_FALSE(shared->isolated);
    CHECK(names(shared->shares_with) == std::vector<std::string>{"0000:05:02.0", "0000:06:00.1"});
    REQUIRE(shared->acs_gaps.size() == 1);
    CHECK(shared->acs_gaps[0].bridge.to_string() == "0000:05:02.0");
    CHECK(shared->acs_gaps[0].missing == std::vector<std::string>{"ReqRedir", "CmpltRedir"});
    REQUIRE(shared->reasons.size() >= 2);
    CHECK(shared->reasons[0].find("shares group") != std::string::npos);
    CHECK(shared->reasons[0].find("0000:06:00.1") != std::string::npos);
    bool names_gap = std::any_of(shared->reasons.begin(), shared->reasons.end(), [](auto& r) {
        return r.find("ACS missing at bridge 0000:05:02.0 (ReqRedir, CmpltRedir not enabled)") !=
               std::string::npos;
    });
    CHECK(names_gap);

    const auto* aliased = report.find(bdf_of("0000:08:02.0"));
    REQUIRE(aliased);
    CHECK_FALSE(aliased->isolated);
    REQUIRE(aliased->alias_bridge);
    CHECK(aliased->alias_bridge->to_string() == "0000:07:00.0");

    auto doc = to_json(report);
    CHECK(doc["iommu_present"] == false);
    CHECK(doc["groups_predicted"] == true);
    CHECK(doc["devices"].size() == topo.devices().size());
}

TEST_CASE("kernel groups from sysfs are used as they are", "[iommu]") {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "kernel/iommu_groups/7");
    auto devices = sample_devices();
    // The kernel (with quirks we do not model) split what we would predict as one group.
    int next = 1;
    for (auto& d : devices)
        d.iommu_group = next++;
    Topology topo(Source::sysfs(tmp.path().string()), devices);
    IommuReport report = analyze_iommu(topo);
    CHECK(report.iommu_present);
    CHECK_FALSE(report.predicted);
    CHECK(report.groups.size() == devices.size());
    const auto* d = report.find(bdf_of("0000:06:00.0"));
    REQUIRE(d);
    CHECK(d->isolated);
    CHECK(d->shares_with.empty());
}

TEST_CASE("a sysfs tree without iommu_groups says there is no IOMMU", "[iommu]") {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "kernel");
    Topology topo(Source::sysfs(tmp.path().string()), sample_devices());
    IommuReport report = analyze_iommu(topo);
    CHECK_FALSE(report.iommu_present);
    CHECK(report.predicted);
    CHECK(report.note.rfind("no IOMMU", 0) == 0);
}
