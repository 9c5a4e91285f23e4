// Lending-readiness verdicts on hand-built topologies.
#include "support.hpp"
#include "test_iommu_topology.hpp"

#include "dis/error.hpp"
#include "dis/readiness.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace dis::pci;
using namespace dis::test;

namespace {

const Finding& finding(const ReadinessReport& r, const std::string& check) {
    for (const auto& f : r.findings)
        if (f.check == check)
            return f;
    FAIL("no finding for " << check);
    throw std::logic_error("unreachable");
}

// A sysfs-sourced topology with an IOMMU: every device in its own kernel group, 01:00.0
// unbound with FLR.
Topology sysfs_topology(const TempDir& tmp, std::uint64_t bar_size = 256u << 20) {
    std::filesystem::create_directories(tmp.path() / "kernel/iommu_groups/0");
    auto devices = sample_devices(0x2020);
    int group = 0;
    for (auto& d : devices) {
        d.iommu_group = group++;
        if (d.bdf == bdf_of("01:00.0")) {
            d.reset_methods = {"flr", "bus"};
            d.bars[0].size = bar_size;
        }
    }
    return Topology(Source::sysfs(tmp.path().string()), devices);
}

} // namespace

TEST_CASE("an isolated, unbound endpoint with FLR and a fitting BAR is ready", "[readiness]") {
    TempDir tmp;
    auto topo = sysfs_topology(tmp);
    auto r = check_readiness(topo, bdf_of("01:00.0"));
    INFO(to_json(r).dump(2));
    CHECK(r.verdict == Verdict::ready);
    CHECK(exit_code_for(r.verdict) == 0);
    CHECK(exit_code_for(r.verdict, true) == 0);
    CHECK(r.reset_methods_known);
    CHECK(finding(r, "iommu").severity == Severity::ok);
    CHECK(finding(r, "acs").severity == Severity::ok);
    CHECK(finding(r, "bars").message.find("256 MiB") != std::string::npos);
    CHECK(r.acs_path.size() == 1);
    auto doc = to_json(r);
    CHECK(doc["verdict"] == "ready");
    CHECK(doc["window_size"] == 512ull << 20);
    CHECK(doc["bars"][0]["fits_window"] == true);
}

TEST_CASE("a BAR larger than the window makes the device not ready", "[readiness]") {
    TempDir tmp;
    auto topo = sysfs_topology(tmp, 1ull << 30);
    auto r = check_readiness(topo, bdf_of("01:00.0"));
    CHECK(r.verdict == Verdict::not_ready);
    CHECK(exit_code_for(r.verdict) == 1);
    CHECK(exit_code_for(r.verdict, true) == 1);
    CHECK(finding(r, "bars").severity == Severity::error);
    CHECK(finding(r, "bars").message.find("BAR 0 (1 GiB) is larger than the 512 MiB window") !=
          std::string::npos);

    ReadinessOptions wide;
    wide.window_size = 2ull << 30;
    CHECK(check_readiness(topo, bdf_of("01:00.0"), wide).verdict == Verdict::ready);
}

TEST_CASE("a bound driver, missing FLR and enabled VFs are warnings", "[readiness]") {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "kernel/iommu_groups/0");
    auto devices = sample_devices();
    int group = 0;
    for (auto& d : devices) {
        d.iommu_group = group++;
        if (d.bdf == bdf_of("01:00.0")) {
            d.driver = "ixgbe";
            d.reset_methods = {"bus"};
            d.sriov = Sriov{8, 64, 4, 0x10ed};
        }
    }
    Topology topo(Source::sysfs(tmp.path().string()), devices);
    auto r = check_readiness(topo, bdf_of("01:00.0"));
    CHECK(r.verdict == Verdict::ready_with_warnings);
    CHECK(exit_code_for(r.verdict) == 0); // warnings alone are not a failure
    CHECK(exit_code_for(r.verdict, true) == 1);
    CHECK(finding(r, "driver").message.find("ixgbe") != std::string::npos);
    CHECK(finding(r, "reset").severity == Severity::warning);
    CHECK(finding(r, "sriov").message.find("4 of 64 VFs enabled") != std::string::npos);
    // 8086:3405 is not on the allow-list, and the only candidates sharing a switch are
    // elsewhere: every P2P path from 01:00.0 is unsupported.
    CHECK(finding(r, "p2p").severity == Severity::warning);
}

TEST_CASE("sharing a kernel IOMMU group with another endpoint is not ready", "[readiness]") {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "kernel/iommu_groups/0");
    auto devices = sample_devices(0x2020);
    for (auto& d : devices) {
        d.iommu_group = d.bdf.bus == 6 || d.bdf == bdf_of("05:02.0") ? 1 : 2 + d.bdf.bus;
        d.reset_methods = {"flr"};
    }
    Topology topo(Source::sysfs(tmp.path().string()), devices);
    auto r = check_readiness(topo, bdf_of("06:00.0"));
    CHECK(r.verdict == Verdict::not_ready);
    CHECK(finding(r, "iommu").severity == Severity::error);
    CHECK(finding(r, "iommu").message.find("shares group 1 with 0000:05:02.0, 0000:06:00.1") !=
          std::string::npos);
    CHECK(finding(r, "acs").message.find("0000:05:02.0") != std::string::npos);
}

TEST_CASE("a dump gives unknown isolation and driver as warnings, bridges are not ready",
          "[readiness]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto r = check_readiness(topo, bdf_of("09:00.0"));
    CHECK(r.verdict == Verdict::ready_with_warnings);
    CHECK_FALSE(r.iommu_present);
    CHECK(finding(r, "iommu").message.rfind("isolation unknown", 0) == 0);
    CHECK(finding(r, "driver").severity == Severity::warning);
    CHECK(finding(r, "reset").message.find("derived from config space") != std::string::npos);

    auto br = check_readiness(topo, bdf_of("05:02.0"));
    CHECK(br.verdict == Verdict::not_ready);
    CHECK(finding(br, "class").severity == Severity::error);

    try {
        check_readiness(topo, bdf_of("0000:42:00.0"));
        FAIL("unknown BDF accepted");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::not_found);
    }
}
