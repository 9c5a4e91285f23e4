// Issue 9, item 5: lending faults with real daemons. A borrower killed with SIGKILL, a
// borrower node whose daemon dies (its leases run out), a lender daemon killed while devices
// are borrowed (borrowers see the loss, the restarted pool is consistent and its history says
// what happened), resets that fail or hang (quarantine), and a device that stops responding
// (quarantine, then an admin reset that succeeds restores it). Borrowers speak the wire raw
// where that is the most direct way to hold a lease, and the SISCI SmartIO API where the test
// is about what libsisci does (renewal, SCI_CB_LOST). Every wait is bounded.
#include "lending_support.hpp"

#include "dis/fabric_admin.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <iostream>

using namespace dis::test;
using namespace dis::test::lending;

namespace {

constexpr std::uint32_t k_lender = 4;

// pci-epf-test registers (Linux 6.x drivers/pci/endpoint/functions/pci-epf-test.c).
constexpr std::size_t k_reg_command = 0x4;
constexpr std::size_t k_reg_status = 0x8;
constexpr std::size_t k_reg_size = 0x1c;
constexpr std::size_t k_reg_irq_type = 0x24;
constexpr std::size_t k_reg_irq_number = 0x28;
constexpr std::uint32_t k_command_read = 1u << 3;

// A child on `node` that borrows `fdid` exclusively over the wire, connects and maps BAR0,
// opens `ready` and then waits to be killed. Returns its pid.
pid_t holding_child(const LocalFabric& fabric, std::uint32_t node, std::uint32_t fdid,
                    Gate& ready) {
    std::cout.flush();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid != 0)
        return pid;
    int rc = 0;
    try {
        Borrower b(fabric, k_lender, node);
        auto lease = b.borrow(fdid, true);
        MappedBar bar;
        if (!b.ok() || !lease ||
            !b.connect_bar(lease->value("id", std::int64_t{-1}), 0, bar, 4096)) {
            std::cerr << "holding child: " << b.error() << "\n";
            ::_exit(1);
        }
        *bar.word(0) = 0x5eed;
        ready.open();
        ::pause(); // killed by the test
    } catch (...) {
        rc = 2;
    }
    ::_exit(rc);
}

} // namespace

TEST_CASE("lending: a borrower killed with SIGKILL loses its lease and the device is reset "
          "and available again within 1 s",
          "[lending][faults]") {
    LocalFabric fabric({8});
    fabric.start(k_lender, {"--device", "memory name=victim reset_ms=5"});
    const std::uint32_t fdid = fdid_of(k_lender, 0);
    LenderView view(fabric, k_lender, k_lender);
    const std::size_t rows_before = view.history(fdid).size();

    Gate ready;
    pid_t child = holding_child(fabric, 8, fdid, ready);
    REQUIRE(ready.wait(10000));
    auto dev = view.device(fdid);
    REQUIRE(dev.value("state", "") == "borrowed");
    REQUIRE(dev.at("leases").size() == 1);
    CHECK(dev.at("leases")[0].value("pid", std::int64_t{0}) == child);
    CHECK(dev.at("leases")[0].value("node_id", 0u) == 8u);

    const auto t0 = Clock::now();
    ::kill(child, SIGKILL);
    // Reaped at once: a zombie's descriptors are already closed, so the daemon sees EOF.
    CHECK(wait_child(child, 5000) == 128 + SIGKILL);
    const bool back = view.wait_available(fdid, milliseconds(5000));
    const double took = ms_since(t0);
    std::cout << "lending: device " << fdid_text(fdid) << " available again " << took
              << " ms after its borrower was killed (reset_ms=5)\n";
    REQUIRE(back);
    CHECK(took <= 1000.0);

    // The history: the connection's close released the lease, the device was reset.
    auto rows = view.history(fdid);
    REQUIRE(rows.size() == rows_before + 4);
    CHECK(rows[rows_before].value("event", "") == "borrow");
    CHECK(rows[rows_before].value("pid", std::int64_t{0}) == child);
    CHECK(rows[rows_before + 1].value("event", "") == "release");
    CHECK(rows[rows_before + 1].value("actor", "") == "connection closed");
    CHECK(rows[rows_before + 2].value("event", "") == "quiesced");
    CHECK(rows[rows_before + 3].value("event", "") == "reset_ok");
    CHECK(rows.back().value("to", "") == "available");

    // And it is lendable: the next borrower finds the BAR cleared by the reset.
    Borrower next(fabric, k_lender, 8);
    auto lease = next.borrow(fdid, true);
    REQUIRE(lease);
    MappedBar bar;
    REQUIRE(next.connect_bar(lease->value("id", std::int64_t{-1}), 0, bar, 4096));
    CHECK(*bar.word(0) == 0);
}

TEST_CASE("lending: a reset that fails or hangs quarantines the device and admin resets cannot "
          "clear it while the reset keeps failing",
          "[lending][faults]") {
    LocalFabric fabric({8});
    fabric.start(k_lender, {"--reset-timeout", "300", "--device",
                            "memory name=broken reset_ms=1 fail_reset=1", "--device",
                            "memory name=stuck hang_reset=1"});
    const std::uint32_t broken = fdid_of(k_lender, 0);
    const std::uint32_t stuck = fdid_of(k_lender, 1);
    LenderView view(fabric, k_lender, k_lender);

    Borrower b(fabric, k_lender, 8);
    REQUIRE(b.ok());
    for (auto fdid : {broken, stuck}) {
        INFO("device " << fdid_text(fdid));
        auto lease = b.borrow(fdid, true);
        REQUIRE(lease);
        // The return's reset fails (broken) or outlasts --reset-timeout (stuck).
        b.give_back(lease->value("id", std::int64_t{-1}));
        REQUIRE(view.wait_state(fdid, "failed", milliseconds(10000)));
        auto rows = view.history(fdid);
        REQUIRE(!rows.empty());
        CHECK(rows.back().value("event", "") ==
              (fdid == broken ? std::string("reset_failed") : std::string("reset_timeout")));
        CHECK(rows.back().value("from", "") == "resetting");
        CHECK(rows.back().value("to", "") == "failed");
        std::string why;
        const bool chained = history_chains(rows, why);
        INFO(why);
        CHECK(chained);

        // Quarantined: a borrow is refused and the refusal names the state.
        int err = 0;
        CHECK_FALSE(b.borrow(fdid, true, std::nullopt, milliseconds(0), &err));
        CHECK(err != 0);
        CHECK(b.error().find("failed") != std::string::npos);
    }
    // An admin reset of a device whose reset cannot succeed leaves it quarantined.
    CHECK(view.reset(broken) == "failed");
    CHECK(view.state(broken) == "failed");
    CHECK(view.reset(stuck) == "timed_out");
    CHECK(view.state(stuck) == "failed");
    auto rows = view.history(broken);
    REQUIRE(rows.size() >= 2);
    CHECK(rows[rows.size() - 2].value("event", "") == "reset");
    CHECK(rows.back().value("event", "") == "reset_failed");
}

TEST_CASE("lending: a device that stops responding is quarantined and its borrower told, and an "
          "admin reset that succeeds restores it to service",
          "[lending][faults]") {
    LocalFabric fabric({8});
    fabric.start(k_lender, {"--command-timeout", "300", "--device",
                            "epf-test name=mute reset_ms=1 unresponsive=1"});
    const std::uint32_t fdid = fdid_of(k_lender, 0);
    LenderView view(fabric, k_lender, k_lender);

    Borrower b(fabric, k_lender, 8);
    auto lease = b.borrow(fdid, true);
    REQUIRE(lease);
    const auto lease_id = lease->value("id", std::int64_t{-1});
    MappedBar regs;
    REQUIRE(b.connect_bar(lease_id, 0, regs, 512));
    // A READ of 4 bytes from IO address 0: the device never executes it.
    *regs.reg(k_reg_size) = 4;
    *regs.reg(k_reg_irq_type) = 1;
    *regs.reg(k_reg_irq_number) = 1;
    *regs.reg(k_reg_status) = 0;
    *regs.reg(k_reg_command) = k_command_read;
    const auto t0 = Clock::now();
    auto lost = b.wait_event("dev_lost", milliseconds(10000));
    REQUIRE(lost);
    std::cout << "lending: unresponsive device " << fdid_text(fdid) << " faulted " << ms_since(t0)
              << " ms after the command (--command-timeout 300)\n";
    INFO(lost->dump());
    CHECK(lost->value("lease_id", std::int64_t{-1}) == lease_id);
    CHECK(lost->value("reason", "").find("fault") != std::string::npos);
    CHECK(*regs.reg(k_reg_status) == 0); // nothing was executed
    {
        const auto counters = dis::fabric::AdminClient(fabric.dir(), k_lender).node_info().counters;
        CHECK(counters.at("faults_total") == 1);
        CHECK(counters.at("reclaims_device_fault_total") == 1);
        CHECK(counters.at("reclaims_admin_total") == 0);
    }
    auto dev = view.device(fdid);
    CHECK(dev.value("state", "") == "failed");
    CHECK(dev.value("leases", nlohmann::json::array()).empty());
    // The lease is gone: returning it again is refused.
    CHECK_FALSE(b.give_back(lease_id));

    // The reset itself works on this device: the admin reset restores it to service.
    CHECK(view.reset(fdid) == "ok");
    CHECK(view.state(fdid) == "available");
    auto rows = view.history(fdid);
    REQUIRE(rows.size() >= 3);
    CHECK(rows[rows.size() - 3].value("event", "") == "fault");
    CHECK(rows[rows.size() - 2].value("event", "") == "reset");
    CHECK(rows[rows.size() - 2].value("from", "") == "failed");
    CHECK(rows.back().value("event", "") == "reset_ok");
    std::string why;
    const bool chained = history_chains(rows, why);
    INFO(why);
    CHECK(chained);
    Borrower again(fabric, k_lender, 8);
    CHECK(again.borrow(fdid, true));
}

namespace {

// What a SmartIO borrower child saw of its device segment.
struct LostFlag {
    std::atomic<int> lost{0};
};

sci_callback_action_t on_segment_event(void* arg, sci_remote_segment_t,
                                       sci_segment_cb_reason_t reason, sci_error_t) {
    if (reason == SCI_CB_LOST)
        static_cast<LostFlag*>(arg)->lost.store(1);
    return SCI_CALLBACK_CONTINUE;
}

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace

TEST_CASE("lending: a borrower node whose daemon dies stops renewing and its lease is gone "
          "within the TTL + 1 s",
          "[lending][faults][smartio]") {
    constexpr int k_ttl_ms = 2000;
    LocalFabric fabric({8});
    fabric.start(k_lender, {"--lease-ttl", std::to_string(k_ttl_ms), "--device",
                            "memory name=orphan reset_ms=5"});
    const std::uint32_t fdid = fdid_of(k_lender, 0);
    LenderView view(fabric, k_lender, k_lender);
    Gate ready;
    Gate done;
    pid_t child = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
        sci_smartio_device_t dev = nullptr;
        sci_error_t err = SCI_ERR_OK;
        SCIBorrowDevice(sd, &dev, fdid, SCI_FLAG_EXCLUSIVE, &err);
        if (err != SCI_ERR_OK) {
            std::cerr << "SCIBorrowDevice: " << SCIGetErrorString(err) << "\n";
            return 1;
        }
        ready.open();
        done.wait(60000); // the process lives on while its node's daemon is gone
        return 0;
    });
    REQUIRE(ready.wait(10000));
    auto dev = view.device(fdid);
    REQUIRE(dev.value("state", "") == "borrowed");
    const auto lease = dev.at("leases").at(0);
    const auto lease_id = lease.value("id", std::int64_t{-1});
    CHECK(lease.value("ttl_ms", 0) == k_ttl_ms);
    CHECK(lease.value("pid", std::int64_t{0}) == child);
    // While node 8's daemon is up, libsisci renews: the lease outlives its first expiry.
    const auto first_expiry = lease.value("expires_ms", std::int64_t{0});
    REQUIRE(poll_until(milliseconds(10000), [&] { return unix_ms_now() > first_expiry + 500; }));
    dev = view.device(fdid);
    REQUIRE(dev.value("state", "") == "borrowed");
    REQUIRE(dev.at("leases").at(0).value("id", std::int64_t{-1}) == lease_id);
    CHECK(dev.at("leases").at(0).value("expires_ms", std::int64_t{0}) > first_expiry);

    const auto t0 = Clock::now();
    fabric.signal(8, SIGKILL);
    const bool back = view.wait_available(fdid, milliseconds(k_ttl_ms + 5000));
    const double took = ms_since(t0);
    std::cout << "lending: lease of a borrower whose node daemon died gone, device available "
              << took << " ms after the kill (TTL " << k_ttl_ms << " ms)\n";
    REQUIRE(back);
    CHECK(took <= k_ttl_ms + 1000.0);
    auto rows = view.history(fdid);
    REQUIRE(rows.size() >= 3);
    CHECK(rows[rows.size() - 3].value("event", "") == "expire");
    CHECK(rows[rows.size() - 3].value("lease_id", std::int64_t{-1}) == lease_id);
    CHECK(rows[rows.size() - 2].value("event", "") == "quiesced");
    CHECK(rows.back().value("event", "") == "reset_ok");
    done.open();
    CHECK(wait_child(child, 10000) == 0);
}

TEST_CASE("lending: a lender killed while its devices are borrowed: the borrower sees the loss "
          "without hanging, and the restarted pool is consistent and says what happened",
          "[lending][faults][smartio]") {
    LocalFabric fabric({8});
    const std::vector<std::string> lender_args = {"--device", "epf-test name=ep reset_ms=5",
                                                  "--device", "memory name=mem reset_ms=5"};
    fabric.start(k_lender, lender_args);
    const std::uint32_t fdids[2] = {fdid_of(k_lender, 0), fdid_of(k_lender, 1)};
    std::size_t rows_before[2];
    {
        LenderView view(fabric, k_lender, k_lender);
        for (int d = 0; d < 2; ++d)
            rows_before[d] = view.history(fdids[d]).size();
    }
    Gate ready;
    // The child's verdicts: 0 all seen, 10+ what went wrong (its stderr says more).
    pid_t child = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
        sci_smartio_device_t dev[2] = {nullptr, nullptr};
        sci_remote_segment_t seg[2] = {nullptr, nullptr};
        sci_map_t map[2] = {nullptr, nullptr};
        LostFlag lost[2];
        sci_error_t err = SCI_ERR_OK;
        for (int d = 0; d < 2; ++d) {
            SCIBorrowDevice(sd, &dev[d], fdids[d], SCI_FLAG_EXCLUSIVE, &err);
            if (err != SCI_ERR_OK)
                return 1;
            SCIConnectDeviceSegment(dev[d], &seg[d], 0, SCI_MEMTYPE_BAR, on_segment_event, &lost[d],
                                    SCI_FLAG_USE_CALLBACK, &err);
            if (err != SCI_ERR_OK)
                return 2;
            auto* p = static_cast<volatile std::uint32_t*>(SCIMapRemoteSegment(
                seg[d], &map[d], 0, 256, nullptr, SCI_FLAG_IO_MAP_IOSPACE, &err));
            if (err != SCI_ERR_OK)
                return 3;
            p[0x10 / 4] = 0xfeed; // a register write (epf-test SRC_ADDR upper; memory: a word)
        }
        ready.open();
        // The lender is killed now: every device segment gets SCI_CB_LOST.
        const auto t0 = Clock::now();
        if (!poll_until(milliseconds(10000), [&] { return lost[0].lost && lost[1].lost; })) {
            std::cerr << "no SCI_CB_LOST within 10 s\n";
            return 10;
        }
        std::cerr << "SCI_CB_LOST after " << ms_since(t0) << " ms\n";
        // Device calls fail, and return (bounded: a hang is a failure of the test's wait).
        for (int d = 0; d < 2; ++d) {
            const auto c0 = Clock::now();
            sci_remote_segment_t again = nullptr;
            SCIConnectDeviceSegment(dev[d], &again, 0, SCI_MEMTYPE_BAR, nullptr, nullptr, 0, &err);
            if (err == SCI_ERR_OK) {
                std::cerr << "SCIConnectDeviceSegment on a lost device succeeded\n";
                return 11;
            }
            SCIUnmapSegment(map[d], 0, &err);
            SCIDisconnectSegment(seg[d], 0, &err);
            SCIReturnDevice(dev[d], 0, &err);
            if (ms_since(c0) > 5000) {
                std::cerr << "device calls took " << ms_since(c0) << " ms\n";
                return 12;
            }
        }
        return 0;
    });
    REQUIRE(ready.wait(10000));
    {
        LenderView view(fabric, k_lender, k_lender);
        for (auto fdid : fdids)
            REQUIRE(view.state(fdid) == "borrowed");
    }
    fabric.signal(k_lender, SIGKILL);
    CHECK(wait_child(child, 30000) == 0);

    fabric.start(k_lender, lender_args);
    LenderView view(fabric, k_lender, k_lender);
    for (int d = 0; d < 2; ++d) {
        const auto fdid = fdids[d];
        INFO("device " << fdid_text(fdid));
        // Recovery reclaims the leases it cannot confirm and resets the devices.
        REQUIRE(view.wait_available(fdid, milliseconds(5000)));
        auto rows = view.history(fdid);
        REQUIRE(rows.size() > rows_before[d] + 1);
        CHECK(rows[rows_before[d]].value("event", "") == "borrow");
        std::size_t lost_at = rows.size();
        for (std::size_t i = rows_before[d]; i < rows.size(); ++i)
            if (rows[i].value("event", "") == "lease_lost") {
                lost_at = i;
                break;
            }
        REQUIRE(lost_at < rows.size());
        INFO(rows[lost_at].dump());
        CHECK(rows[lost_at].value("actor", "") == "recovery");
        CHECK(rows[lost_at].value("lease_id", std::int64_t{-1}) ==
              rows[rows_before[d]].value("lease_id", std::int64_t{-2}));
        CHECK(count_event(rows, "reset_ok", lost_at) == 1);
        CHECK(rows.back().value("event", "") == "reset_ok");
        std::string why;
        const bool chained = history_chains(rows, why);
        INFO(why);
        CHECK(chained);
    }
    for (const auto& d : view.devices()) {
        INFO(d.dump());
        CHECK(d.value("state", "") == "available");
        CHECK(d.value("leases", nlohmann::json::array()).empty());
    }
    // The restarted daemon counts the two leases it could not confirm, by that reason alone.
    const auto counters = dis::fabric::AdminClient(fabric.dir(), k_lender).node_info().counters;
    CHECK(counters.at("reclaims_lender_restart_total") == 2);
    CHECK(counters.at("reclaims_admin_total") == 0);
    CHECK(counters.at("reclaims_lease_expired_total") == 0);
}
