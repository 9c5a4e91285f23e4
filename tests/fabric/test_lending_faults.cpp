// Issue 9, item 5: lending faults with real daemons. A borrower killed with SIGKILL, a
// borrower node whose daemon dies (its leases run out), a lender daemon killed while devices
// are borrowed (borrowers see the loss, the restarted pool is consistent and its history says
// what happened), resets that fail or hang (quarantine), and a device that stops responding
// (quarantine, then an admin reset that succeeds restores it). Borrowers speak the wire raw
// where that is the most direct way to hold a lease, and the SISCI SmartIO API where the test
// is about what libsisci does (renewal, SCI_CB_LOST). Every wait is bounded.
#include "lending_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

TEST_CASE("lending: a reset that fails or hangs quarantines the device; admin resets cannot "
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

TEST_CASE("lending: a device that stops responding is quarantined, its borrower told; an admin "
          "reset that succeeds restores it to service",
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
