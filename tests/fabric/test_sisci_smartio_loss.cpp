// libsisci SmartIO when leases end: a reclaim (dev_lost -> SCI_CB_LOST, later calls fail, never
// hang), the lender killed, the lease renewal keeping a short lease alive, a borrower node that
// is lost letting its lease run out, and a lease joined through $DIS_SMARTIO_JOIN.
#include "test_sisci_smartio_support.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>

using namespace dis::test;
using namespace dis::test::smartio;

namespace {

std::atomic<int> g_lost_calls{0};
std::atomic<int> g_lost_status{0};

sci_callback_action_t on_segment_event(void*, sci_remote_segment_t, sci_segment_cb_reason_t reason,
                                       sci_error_t status) {
    if (reason == SCI_CB_LOST) {
        g_lost_status = static_cast<int>(status);
        ++g_lost_calls;
    }
    return SCI_CALLBACK_CONTINUE;
}

std::string hex(unsigned fdid) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", fdid);
    return buf;
}

} // namespace

TEST_CASE("sisci smartio: a reclaimed device: SCI_CB_LOST to callbacks and waiters, later calls "
          "fail with SCI_ERR_NOT_AVAILABLE, nothing hangs") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    REQUIRE(err == SCI_ERR_OK);
    g_lost_calls = 0;
    DevSeg with_cb(dev, 0, SCI_MEMTYPE_BAR, on_segment_event, nullptr);
    REQUIRE(with_cb.err == SCI_ERR_OK);
    DevSeg waited(dev, 1);
    REQUIRE(waited.err == SCI_ERR_OK);
    LocalSeg local(s.sd, 0x44, 4096);
    sci_ioaddr_t io = 0;
    SCIMapLocalSegmentForDevice(local.seg, 0, dev, &io, 0, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // A waiter for an interrupt that never comes is woken by the loss.
    std::atomic<int> irq_err{-1};
    std::thread waiter([&] {
        sci_error_t e;
        SCIDisWaitForDeviceInterrupt(dev, nullptr, nullptr, SCI_INFINITE_TIMEOUT, 0, &e);
        irq_err = static_cast<int>(e);
    });

    LendingClient admin(lf.fabric, k_lender, 0);
    auto r = admin.must({{"op", "dev_reclaim"}, {"fdid", hex(k_epf)}, {"reason", "test"}});
    REQUIRE(r.err() == 0);

    sci_error_t status = SCI_ERR_OK;
    auto reason = SCIWaitForRemoteSegmentEvent(waited.seg, &status, 10000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(reason == SCI_CB_LOST);
    CHECK(status == SCI_ERR_NOT_AVAILABLE);
    CHECK(eventually_true([] { return g_lost_calls.load() == 1; }, milliseconds(10000)));
    CHECK(g_lost_status == static_cast<int>(SCI_ERR_NOT_AVAILABLE));
    waiter.join();
    CHECK(irq_err == static_cast<int>(SCI_ERR_NOT_AVAILABLE));

    // Later calls fail at once.
    auto t0 = std::chrono::steady_clock::now();
    sci_remote_segment_t seg;
    SCIConnectDeviceSegment(dev, &seg, 2, SCI_MEMTYPE_BAR, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    SCICreateDeviceSegment(dev, 1, 4096, SCI_MEMTYPE_PRIVATE, 0, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    sci_ioaddr_t io2;
    SCIMapRemoteSegmentForDevice(waited.seg, dev, &io2, 0, 0, 0, &err);
    CHECK(err != SCI_ERR_OK);
    SCIDisWaitForDeviceInterrupt(dev, nullptr, nullptr, SCI_INFINITE_TIMEOUT, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    sci_sequence_t seq;
    SCICreateMapSequence(waited.map, &seq, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(SCICheckSequence(seq, 0, &err) == SCI_SEQ_NOT_RETRIABLE);
    SCIRemoveSequence(seq, 0, &err);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));

    // Teardown after a loss: unmapping for the device and returning succeed (nothing is left
    // on the lender), the segments still disconnect.
    SCIUnmapLocalSegmentForDevice(local.seg, 0, dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    with_cb.release();
    waited.release();
    // The lender reset it and lends it again.
    CHECK(eventually_true([&] { return state_of(admin, hex(k_epf)) == "available"; },
                          milliseconds(10000)));
}

TEST_CASE("sisci smartio: a device that stops responding is quarantined: its borrower gets "
          "SCI_CB_LOST and later calls fail") {
    LendingFabric lf({"--command-timeout", "300"}, "epf-test name=ep0 unresponsive=1 reset_ms=1");
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    REQUIRE(err == SCI_ERR_OK);
    DevSeg bar(dev, 0);
    REQUIRE(bar.err == SCI_ERR_OK);
    *reg(bar.addr, k_reg_command) = k_cmd_raise_msi; // never executed
    sci_error_t status = SCI_ERR_OK;
    auto reason = SCIWaitForRemoteSegmentEvent(bar.seg, &status, 15000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(reason == SCI_CB_LOST);
    CHECK(status == SCI_ERR_NOT_AVAILABLE);
    unsigned type;
    SCIDisWaitForDeviceInterrupt(dev, &type, nullptr, 1000, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    bar.release();
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    LendingClient admin(lf.fabric, k_lender, 0);
    CHECK(state_of(admin, hex(k_epf)) == "failed");
    sci_smartio_device_t again;
    SCIBorrowDevice(s.sd, &again, k_epf, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
}

TEST_CASE("sisci smartio: the lender killed: SCI_CB_LOST, device calls fail with "
          "SCI_ERR_NODE_NOT_RESPONDING, nothing hangs") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_mem, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    DevSeg bar(dev, 0);
    REQUIRE(bar.err == SCI_ERR_OK);
    lf.fabric.signal(k_lender, SIGKILL);
    sci_error_t status = SCI_ERR_OK;
    auto reason = SCIWaitForRemoteSegmentEvent(bar.seg, &status, 10000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(reason == SCI_CB_LOST);
    CHECK(status == SCI_ERR_NODE_NOT_RESPONDING);
    auto t0 = std::chrono::steady_clock::now();
    sci_remote_segment_t seg;
    SCIConnectDeviceSegment(dev, &seg, 0, SCI_MEMTYPE_BAR, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);
    SCIDisWaitForDeviceInterrupt(dev, nullptr, nullptr, SCI_INFINITE_TIMEOUT, 0, &err);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);
    unsigned ids[4];
    CHECK(SCIGetDeviceList(s.sd, ids, 4, nullptr, 0, &err) == 0); // nobody lends now
    CHECK(err == SCI_ERR_OK);
    sci_smartio_device_t again;
    SCIBorrowDevice(s.sd, &again, k_mem, 0, &err);
    CHECK(err != SCI_ERR_OK);
    bar.release();
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("sisci smartio: the library renews a 1 s lease: the device stays borrowed for 3 s") {
    LendingFabric lf;
    ::setenv("DIS_SMARTIO_LEASE_MS", "1000", 1);
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    ::unsetenv("DIS_SMARTIO_LEASE_MS");
    REQUIRE(err == SCI_ERR_OK);
    LendingClient admin(lf.fabric, k_lender, 0);
    auto show = admin.must({{"op", "dev_show"}, {"fdid", hex(k_epf)}});
    REQUIRE(show.body["device"]["leases"].size() == 1);
    CHECK(show.body["device"]["leases"][0]["ttl_ms"] == 1000);
    // Three times the lease: it would have expired twice over without renewal.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    CHECK(state_of(admin, hex(k_epf)) == "borrowed");
    DevSeg bar(dev, 0);
    CHECK(bar.err == SCI_ERR_OK);
    bar.release();
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("sisci smartio: a borrower whose own node is lost stops renewing: its lease runs out "
          "and its segments get SCI_CB_LOST") {
    LendingFabric lf;
    Gate borrowed;
    pid_t child = spawn_node_process(lf.fabric, k_borrower, [&](sci_desc_t sd) {
        ::setenv("DIS_SMARTIO_LEASE_MS", "1000", 1);
        sci_error_t e;
        sci_smartio_device_t d;
        SCIBorrowDevice(sd, &d, k_epf, SCI_FLAG_EXCLUSIVE, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        DevSeg bar(d, 0);
        CHILD_CHECK(bar.err == SCI_ERR_OK);
        borrowed.open();
        sci_error_t status;
        auto reason = SCIWaitForRemoteSegmentEvent(bar.seg, &status, 15000, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        CHILD_CHECK(reason == SCI_CB_LOST);
        CHILD_CHECK(status == SCI_ERR_NOT_AVAILABLE);
        bar.release();
        SCIReturnDevice(d, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        return 0;
    });
    REQUIRE(borrowed.wait(20000));
    auto t0 = std::chrono::steady_clock::now();
    lf.fabric.signal(k_borrower, SIGKILL);
    CHECK(wait_child(child, 30000) == 0);
    // Lost within the lease time and the lender's 250 ms clock, with room for a loaded machine.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8));
    LendingClient admin(lf.fabric, k_lender, 0);
    CHECK(has_row(history(admin, hex(k_epf)), "expire"));
}

TEST_CASE("sisci smartio: $DIS_SMARTIO_JOIN joins a lease another process holds, and returning "
          "leaves the holder's lease") {
    LendingFabric lf;
    LendingClient holder(lf.fabric, k_lender, k_borrower);
    auto lease = borrow(holder, hex(k_epf), true);
    REQUIRE(lease["err"] == 0);
    std::string join = hex(k_epf) + ":" + std::to_string(lease["lease"]["id"].get<long long>()) +
                       ":" + lease["lease"]["token"].get<std::string>();
    CHECK(run_node_process(lf.fabric, k_borrower, [join](sci_desc_t sd) {
              sci_error_t e;
              sci_smartio_device_t d;
              // Without the token it is just busy.
              SCIBorrowDevice(sd, &d, k_epf, 0, &e);
              CHILD_CHECK(e == SCI_ERR_NOT_AVAILABLE);
              ::setenv("DIS_SMARTIO_JOIN", ("0x80001:1:bad," + join).c_str(), 1);
              SCIBorrowDevice(sd, &d, k_epf, SCI_FLAG_EXCLUSIVE, &e);
              CHILD_CHECK(e == SCI_ERR_OK);
              {
                  DevSeg bar(d, 0);
                  CHILD_CHECK(bar.err == SCI_ERR_OK);
                  *reg(bar.addr, 0x100) = 0x77;
              }
              SCIReturnDevice(d, 0, &e);
              CHILD_CHECK(e == SCI_ERR_OK);
              return 0;
          }) == 0);
    CHECK(state_of(holder, hex(k_epf)) == "borrowed");
    auto show = holder.must({{"op", "dev_show"}, {"fdid", hex(k_epf)}});
    CHECK(show.body["device"]["leases"].size() == 1);
    auto ret = holder.must({{"op", "dev_return"}, {"lease_id", lease["lease"]["id"]}});
    CHECK(ret.err() == 0);
}
