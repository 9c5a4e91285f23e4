// dis-tool monitor's collector and snapshot on a fake /sys: downgraded links and AER errors
// counted from the monitor's start, fetched only when shown; the JSON and text snapshots.
#include "dis/monitor.hpp"

#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace dis::monitor;
using dis::test::ConfigSpace;
using dis::test::PcieType;

namespace {

// A root port at 8GT/s x8 and below it an endpoint trained at 2.5GT/s (downgraded) whose
// correctable-error counter file says `rx_err` RxErr errors.
struct HostTree {
    dis::test::TempDir tmp;
    dis::test::SysfsTree tree{tmp.path() / "sys"};

    HostTree() {
        tree.add({"0000:00:01.0",
                  "",
                  ConfigSpace(0x8086, 0x2030, 0x060400, 1)
                      .bus_numbers(0, 1, 1)
                      .pcie(PcieType::root_port, false, 3, 8, 3, 8),
                  {"pcieport"},
                  {},
                  0,
                  {},
                  {}});
        tree.add({"0000:01:00.0",
                  "0000:00:01.0",
                  ConfigSpace(0x15b3, 0x1017, 0x020000)
                      .pcie(PcieType::endpoint, false, 3, 8, 1, 8)
                      .aer(0, 1u << 0),
                  {"mlx5_core"},
                  {},
                  0,
                  {},
                  {{"aer_dev_correctable", counters(5)},
                   {"aer_dev_fatal", "DLP 0\nTOTAL_ERR_FATAL 0\n"}}});
    }
    static std::string counters(int rx_err) {
        return "RxErr " + std::to_string(rx_err) + "\nBadTLP 1\nTOTAL_ERR_COR " +
               std::to_string(rx_err + 1) + "\n";
    }
    void set_rx_err(int n) {
        dis::test::write_file(tree.device_dir("0000:01:00.0") / "aer_dev_correctable", counters(n));
    }
    dis::pci::Source source() const { return dis::pci::Source::sysfs(tree.root().string()); }
};

CollectorOptions host_only(const HostTree& h, std::chrono::milliseconds interval) {
    CollectorOptions o;
    o.fabric_note = "no fabric in this test";
    o.pci = h.source();
    o.pcie_interval = interval;
    return o;
}

const PcieRow& row(const Snapshot& s, const std::string& bdf) {
    for (const auto& r : s.pcie.rows)
        if (r.bdf == bdf)
            return r;
    FAIL("no PCIe row " << bdf);
    throw;
}

} // namespace

TEST_CASE("monitor collector: AER errors are counted from the monitor's start", "[monitor]") {
    HostTree h;
    Collector c(host_only(h, std::chrono::milliseconds(0)));
    auto s = c.sample(Demand{});
    REQUIRE(s.pcie.available);
    REQUIRE(s.pcie.rows.size() == 2);
    const auto& ep = row(s, "0000:01:00.0");
    CHECK(ep.downgraded);
    CHECK(ep.speed == "2.5GT/s");
    CHECK(ep.max_speed == "8GT/s");
    CHECK(ep.has_aer_counters);
    CHECK(ep.correctable == 0); // 6 before the start do not count
    CHECK_FALSE(row(s, "0000:00:01.0").downgraded);
    CHECK_FALSE(row(s, "0000:00:01.0").has_aer_counters);

    h.set_rx_err(9); // 4 more
    s = c.sample(Demand{});
    CHECK(row(s, "0000:01:00.0").correctable == 4);
    CHECK(row(s, "0000:01:00.0").fatal == 0);
    const auto pane = build_pane(PaneId::pcie, s, ViewState().panes[3].sort);
    CHECK(pane.rows[0][0].text == "0000:01:00.0");
    CHECK(pane.rows[0][5].text == "downgraded");
    CHECK(pane.rows[0][6].text == "4");

    // A counter that went back (the device was reset) counts again from there.
    h.set_rx_err(2);
    s = c.sample(Demand{});
    CHECK(row(s, "0000:01:00.0").correctable == 0);
    h.set_rx_err(3);
    CHECK(row(c.sample(Demand{}), "0000:01:00.0").correctable == 1);
}

TEST_CASE("monitor collector: PCIe is rescanned only when shown and not too often", "[monitor]") {
    HostTree h;
    Collector c(host_only(h, std::chrono::hours(1)));
    h.set_rx_err(8);
    // Shown, but the last scan (the baseline at start) is fresh: no rescan.
    auto s = c.sample(Demand{});
    CHECK(row(s, "0000:01:00.0").correctable == 0);

    Collector hidden(host_only(h, std::chrono::milliseconds(0)));
    h.set_rx_err(12);
    Demand no_pcie;
    no_pcie.pcie = false;
    s = hidden.sample(no_pcie);
    CHECK(row(s, "0000:01:00.0").correctable == 0); // the start's scan, not a new one
    s = hidden.sample(Demand{});
    CHECK(row(s, "0000:01:00.0").correctable == 4);
}

TEST_CASE("monitor collector: no fabric and no lending data are said, not hidden", "[monitor]") {
    HostTree h;
    Collector c(host_only(h, std::chrono::milliseconds(0)));
    const auto s = c.sample(Demand{});
    CHECK(s.fabric_dir.empty());
    CHECK(s.fabric_note == "no fabric in this test");
    CHECK(s.nodes.empty());
    CHECK_FALSE(s.devices.available);
    CHECK(s.devices.note.rfind("no lending data", 0) == 0);

    const auto j = to_json(s);
    CHECK(j["fabric_dir"].is_null());
    CHECK(j["fabric_note"] == "no fabric in this test");
    CHECK(j["nodes"].empty());
    CHECK(j["devices"]["available"] == false);
    CHECK(j["devices"]["note"].get<std::string>().rfind("no lending data", 0) == 0);
    CHECK(j["pcie"]["available"] == true);
    CHECK(j["pcie"]["source"] == "sysfs " + h.tree.root().string());
    REQUIRE(j["pcie"]["functions"].size() == 2);
    const auto& ep = j["pcie"]["functions"][1];
    CHECK(ep["bdf"] == "0000:01:00.0");
    CHECK(ep["downgraded"] == true);
    CHECK(ep["speed"] == "2.5GT/s");
    CHECK(ep["aer_since_start"]["correctable"] == 0);
    CHECK(j["pcie"]["functions"][0]["aer_since_start"].is_null());

    std::ostringstream text;
    render_text(text, s);
    const auto t = text.str();
    INFO(t);
    CHECK(t.find("Nodes & links: 0 nodes, 0 up\n  no fabric in this test\n") != std::string::npos);
    CHECK(t.find("Devices & leases: no lending data") != std::string::npos);
    CHECK(t.find("PCIe health: 2 functions, 1 downgraded") != std::string::npos);
    // The table: header, then the downgraded link first.
    const auto header = t.find("BDF ");
    REQUIRE(header != std::string::npos);
    const auto next = t.find('\n', header) + 1;
    CHECK(t.compare(next, 12, "0000:01:00.0") == 0);
    CHECK(t.find("downgraded", next) < t.find("ok", next));
}

TEST_CASE("monitor collector: a fabric directory without daemons is an empty fabric", "[monitor]") {
    dis::test::TempDir tmp;
    CollectorOptions o;
    o.fabric_dir = tmp.path().string();
    Collector c(std::move(o));
    const auto s = c.sample(Demand{});
    CHECK(s.fabric_dir == tmp.path().string());
    CHECK(s.nodes.empty());
    CHECK(s.fabric_note == "no node daemon in " + tmp.path().string());
    CHECK(s.segments_fetched);
    CHECK(s.pcie.note == "no PCIe source");
    CHECK(to_json(s)["segments"].empty());
}
