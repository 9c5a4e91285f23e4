// dis-tool exporter's lending series on a 2-node fabric whose node 8 lends one device, scraped
// by a real Prometheus 2.42: a device borrowed then reclaimed shows exactly those changes in
// its query API (borrows +1, reclaims{reason="admin"} +1, the state series flip borrowed ->
// available, the lease's seconds left there and then gone); every scrape passes promtool, and
// a frozen lender leaves its series out within the budget.
#include "lending_cli_support.hpp"
#include "test_exporter_support.hpp"

#include "dis/fabric_admin.hpp"

using namespace dis::test;
using namespace dis::test::exporter;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> k_devices = {"epf-test name=ep0 reset_ms=5"};

std::string state_series(const std::string& state) {
    return R"(dis_device_state{node="8",fdid="0x80000",state=")" + state + R"("})";
}

// One scrape passes promtool, and every dis_device_ family in it is in the man page.
void check_scrape(const TempDir& tmp, int port) {
    auto scrape = http_get(port, "/metrics");
    REQUIRE(scrape.status == 200);
    auto check = promtool_check(tmp, scrape.body);
    INFO(scrape.body << "\npromtool: " << check.out << check.err);
    CHECK(check.exit_code == 0);
    const auto man = read_file(std::string(DIS_SOURCE_DIR) + "/man/dis-tool-exporter.1");
    int families = 0;
    const std::string type = "# TYPE dis_device_";
    for (auto pos = scrape.body.find(type); pos != std::string::npos;
         pos = scrape.body.find(type, pos + 1)) {
        const auto start = pos + 7;
        const auto name = scrape.body.substr(start, scrape.body.find(' ', start) - start);
        INFO(name);
        CHECK(man.find(".B " + name + "{") != std::string::npos);
        ++families;
    }
    CHECK(families >= 10); // dis_device_lease_remaining_seconds only while a device is lent
}

} // namespace

TEST_CASE("exporter: Prometheus sees a device borrowed then reclaimed",
          "[cli][exporter][lending]") {
    TempDir tmp;
    LendingFabric fabric(k_devices);
    ExporterProcess ex(tmp, {"--fabric", fabric.dir(), "--sysfs-root", sysfs_without_pcie(tmp)});
    Prometheus prom(tmp, ex.port());

    CHECK(prom.wait_for(R"(dis_scrape_collector_success{collector="lending"})", 1) == 1);
    CHECK(prom.wait_for(state_series("available"), 1) == 1);
    CHECK(prom.query(state_series("borrowed")) == 0);
    // One series per state, exactly one of them 1.
    CHECK(prom.count(R"(dis_device_state{fdid="0x80000"})") == 7u);
    CHECK(prom.query(R"(sum(dis_device_state{fdid="0x80000"}))") == 1);
    CHECK(prom.query(R"(dis_device_info{fdid="0x80000",name="ep0",kind="epf-test"})") == 1);
    CHECK(prom.count(R"(dis_device_lease_remaining_seconds{fdid="0x80000"})") == 0u);
    const auto borrows0 = prom.query(R"(dis_device_borrows_total{node="8"})");
    const auto returns0 = prom.query(R"(dis_device_returns_total{node="8"})");
    const auto reclaims0 = prom.query(R"(dis_device_reclaims_total{node="8",reason="admin"})");
    REQUIRE(borrows0);
    REQUIRE(returns0);
    REQUIRE(reclaims0);
    for (const char* reason : {"lease_expired", "lender_restart", "device_fault"})
        CHECK(prom.query(std::string(R"(dis_device_reclaims_total{node="8",reason=")") + reason +
                         R"("})") == 0);
    // Node 4 lends nothing: its counters are there, at 0.
    CHECK(prom.query(R"(dis_device_borrows_total{node="4"})") == 0);

    // Borrowed: held with a 60 s lease (renewed by the holder while it runs).
    Background holder(fabric.with_fabric(
        {"device", "borrow", "0x80000", "--exclusive", "--lease", "60", "--hold"}));
    REQUIRE(fabric.wait_state("0x80000", "borrowed"));
    CHECK(prom.wait_for(R"(dis_device_borrows_total{node="8"})", *borrows0 + 1) == *borrows0 + 1);
    CHECK(prom.wait_for(state_series("borrowed"), 1) == 1);
    CHECK(prom.query(state_series("available")) == 0u);
    CHECK(prom.query(R"(dis_device_leases{fdid="0x80000"})") == 1);
    CHECK(poll_until(
        [&] { return prom.count(R"(dis_device_lease_remaining_seconds{fdid="0x80000"})") == 1u; },
        20000));
    const auto left = prom.query(R"(dis_device_lease_remaining_seconds{fdid="0x80000"})");
    REQUIRE(left);
    CHECK(*left > 0);
    CHECK(*left <= 60);
    check_scrape(tmp, ex.port());

    // Reclaimed by the admin: the holder is told, the device reset and available again.
    auto r = fabric.tool({"device", "reclaim", "0x80000", "--yes", "--reason", "maintenance"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(holder.wait(10s));
    CHECK(holder.exit_code() == 0);
    REQUIRE(fabric.wait_state("0x80000", "available"));
    CHECK(prom.wait_for(R"(dis_device_reclaims_total{node="8",reason="admin"})", *reclaims0 + 1) ==
          *reclaims0 + 1);
    CHECK(prom.wait_for(state_series("available"), 1) == 1);
    CHECK(prom.query(state_series("borrowed")) == 0u);
    CHECK(prom.query(R"(dis_device_leases{fdid="0x80000"})") == 0);
    // The lease's series is gone from the latest scrape (Prometheus marks it stale).
    CHECK(poll_until(
        [&] { return prom.count(R"(dis_device_lease_remaining_seconds{fdid="0x80000"})") == 0u; },
        20000));
    // Exactly those changes: one borrow, no return, one reclaim, nothing else reclaimed.
    CHECK(prom.query(R"(dis_device_borrows_total{node="8"})") == *borrows0 + 1);
    CHECK(prom.query(R"(dis_device_returns_total{node="8"})") == *returns0);
    CHECK(prom.query(R"(sum(dis_device_reclaims_total{node="8"}))") == *reclaims0 + 1);
    CHECK(prom.query(R"(dis_device_resets_total{node="8"})") >= 1);
    CHECK(prom.query(R"(dis_scrape_collector_success{collector="lending"})") == 1);
    check_scrape(tmp, ex.port());
}

TEST_CASE("exporter: a SIGSTOPped lender leaves its lending series out within the budget",
          "[cli][exporter][lending]") {
    TempDir tmp;
    LendingFabric fabric(k_devices);
    ExporterProcess ex(tmp, {"--fabric", fabric.dir(), "--sysfs-root", sysfs_without_pcie(tmp),
                             "--fabric-timeout", "500"});
    auto before = http_get(ex.port(), "/metrics");
    REQUIRE(before.status == 200);
    CHECK(sample(before.body, R"(dis_scrape_collector_success{collector="lending"})") == 1);
    CHECK(sample(before.body, R"(dis_device_borrows_total{node="8"})") == 0);

    const pid_t lender = dis::fabric::AdminClient(fabric.dir(), 8).node_info().pid;
    REQUIRE(::kill(lender, SIGSTOP) == 0);
    struct Resume {
        pid_t pid;
        ~Resume() { ::kill(pid, SIGCONT); }
    } resume{lender};
    for (int i = 0; i < 2; ++i) {
        const auto t0 = Clock::now();
        auto r = http_get(ex.port(), "/metrics");
        const double took = std::chrono::duration<double>(Clock::now() - t0).count();
        REQUIRE(r.status == 200);
        INFO(r.body);
        // The 500 ms budget plus 50 ms of grace; the rest is slack for a loaded machine.
        CHECK(took < 1.0);
        CHECK(sample(r.body, R"(dis_scrape_collector_success{collector="lending"})") == 0);
        CHECK(sample(r.body, R"(dis_scrape_duration_seconds{collector="lending"})") <= 0.6);
        CHECK_FALSE(sample(r.body, R"(dis_device_borrows_total{node="8"})"));
        CHECK(r.body.find(R"(fdid="0x80000")") == std::string::npos);
        CHECK(sample(r.body, R"(dis_device_borrows_total{node="4"})") == 0);
        auto check = promtool_check(tmp, r.body);
        CHECK(check.exit_code == 0);
    }
}
