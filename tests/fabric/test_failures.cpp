// Node and client failures: daemon death, client death, restart, and waiters that must wake.
#include "fabric_support.hpp"

#include "dis/fabric_admin.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace dis::test;
using Clock = std::chrono::steady_clock;

namespace {

pid_t owner_process(const LocalFabric& fabric, std::uint32_t node, unsigned seg_id, unsigned int_no,
                    Gate& ready, Gate& done) {
    return spawn_node_process(fabric, node, [&, seg_id, int_no](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, seg_id, 65536, nullptr, nullptr, 0, &e);
        SCIPrepareSegment(seg, 0, 0, &e);
        SCISetSegmentAvailable(seg, 0, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        sci_local_interrupt_t irq;
        unsigned no = int_no;
        SCICreateInterrupt(sd, &irq, 0, &no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &e);
        if (e != SCI_ERR_OK) {
            return 2;
        }
        ready.open();
        done.wait(60000);
        return 0;
    });
}

} // namespace

TEST_CASE("a killed daemon is seen as lost within one second and a restarted one serves again",
          "[fabric][failure]") {
    LocalFabric fabric({4, 8});
    Gate ready;
    Gate done;
    pid_t owner = owner_process(fabric, 8, 60, 61, ready, done);
    REQUIRE(ready.wait(10000));

    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_remote_segment_t waited;
    SCIConnectSegment(s.sd, &waited, 8, 60, 0, nullptr, nullptr, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    struct CbState {
        std::atomic<int> reason{0};
        std::atomic<Clock::rep> at{0};
    } cbs;
    auto cb = [](void* arg, sci_remote_segment_t, sci_segment_cb_reason_t reason,
                 sci_error_t) -> sci_callback_action_t {
        auto* st = static_cast<CbState*>(arg);
        st->at = Clock::now().time_since_epoch().count();
        st->reason = reason;
        return SCI_CALLBACK_CANCEL;
    };
    sci_remote_segment_t with_cb;
    SCIConnectSegment(s.sd, &with_cb, 8, 60, 0, cb, &cbs, 5000, SCI_FLAG_USE_CALLBACK, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t map;
    SCIMapRemoteSegment(waited, &map, 0, 65536, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_sequence_t seq;
    SCICreateMapSequence(map, &seq, 0, &err);
    REQUIRE(SCIStartSequence(seq, 0, &err) == SCI_SEQ_OK);
    sci_remote_interrupt_t rirq;
    SCIConnectInterrupt(s.sd, &rirq, 8, 0, 61, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_local_segment_t local;
    SCICreateSegment(s.sd, &local, 1, 65536, nullptr, nullptr, 0, &err);
    SCIPrepareSegment(local, 0, 0, &err);
    sci_dma_queue_t dq;
    SCICreateDMAQueue(s.sd, &dq, 0, 4, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(SCIProbeNode(s.sd, 0, 8, 0, &err) == 1);

    auto killed_at = Clock::now();
    fabric.signal(8, SIGKILL);
    sci_error_t status = SCI_ERR_OK;
    auto reason = SCIWaitForRemoteSegmentEvent(waited, &status, 1000, 0, &err);
    auto seen = Clock::now() - killed_at;
    CHECK(err == SCI_ERR_OK);
    CHECK(reason == SCI_CB_LOST);
    CHECK(status != SCI_ERR_OK);
    CHECK(seen < std::chrono::seconds(1));
    auto deadline = Clock::now() + std::chrono::seconds(1);
    while (cbs.reason.load() == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(cbs.reason.load() == SCI_CB_LOST);
    CHECK(Clock::time_point(Clock::duration(cbs.at.load())) - killed_at < std::chrono::seconds(1));
    WARN("loss seen after " << std::chrono::duration_cast<std::chrono::microseconds>(seen).count()
                            << " us");

    // Everything aimed at the dead node now fails instead of hanging.
    CHECK(SCIProbeNode(s.sd, 0, 8, 0, &err) == 0);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);
    SCITriggerInterrupt(rirq, 0, &err);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);
    SCIStartDmaTransfer(dq, local, waited, 0, 4096, 0, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);
    CHECK(SCICheckSequence(seq, 0, &err) == SCI_SEQ_NOT_RETRIABLE);
    sci_remote_segment_t again;
    SCIConnectSegment(s.sd, &again, 8, 60, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_NODE_NOT_RESPONDING);

    // Handles to the lost node can still be released.
    SCIRemoveSequence(seq, 0, &err);
    SCIUnmapSegment(map, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(waited, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(with_cb, 0, &err);
    SCIDisconnectInterrupt(rirq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    done.open();
    wait_child(owner);

    // Restart: the node serves again.
    fabric.start(8);
    CHECK(SCIProbeNode(s.sd, 0, 8, 0, &err) == 1);
    Gate ready2;
    Gate done2;
    pid_t owner2 = owner_process(fabric, 8, 60, 61, ready2, done2);
    REQUIRE(ready2.wait(10000));
    SCIConnectSegment(s.sd, &again, 8, 60, 0, nullptr, nullptr, 5000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(again, 0, &err);
    done2.open();
    CHECK(wait_child(owner2) == 0);
    SCIRemoveDMAQueue(dq, 0, &err);
    SCIRemoveSegment(local, 0, &err);
}

TEST_CASE("waiters on a node whose daemon dies wake up with an error", "[fabric][failure]") {
    LocalFabric fabric({4});
    Gate waiting;
    pid_t waiter = spawn_node_process(fabric, 4, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_local_interrupt_t irq;
        unsigned no = 0;
        SCICreateInterrupt(sd, &irq, 0, &no, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        waiting.open();
        SCIWaitForInterrupt(irq, SCI_INFINITE_TIMEOUT, 0, &e);
        return e == SCI_ERR_NODE_NOT_RESPONDING ? 0 : 2;
    });
    // A data interrupt waited for without a timeout, and one with a callback.
    Gate data_waiting;
    pid_t data_waiter = spawn_node_process(fabric, 4, [&](sci_desc_t sd) {
        sci_error_t e;
        struct Seen {
            std::atomic<int> status{-1};
        } seen;
        sci_local_data_interrupt_t with_cb;
        unsigned cb_no = 0;
        SCICreateDataInterrupt(
            sd, &with_cb, 0, &cb_no,
            [](void* arg, sci_local_data_interrupt_t, void*, unsigned int, sci_error_t status) {
                static_cast<Seen*>(arg)->status.store(static_cast<int>(status));
                return SCI_CALLBACK_CANCEL;
            },
            &seen, SCI_FLAG_USE_CALLBACK, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        sci_local_data_interrupt_t irq;
        unsigned no = 0;
        SCICreateDataInterrupt(sd, &irq, 0, &no, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        data_waiting.open();
        std::vector<unsigned char> buf(64);
        unsigned int len = static_cast<unsigned int>(buf.size());
        SCIWaitForDataInterrupt(irq, buf.data(), &len, SCI_INFINITE_TIMEOUT, 0, &e);
        if (e != SCI_ERR_NODE_NOT_RESPONDING) {
            return 2;
        }
        for (int i = 0; i < 500 && seen.status.load() < 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return seen.status.load() == SCI_ERR_NODE_NOT_RESPONDING ? 0 : 3;
    });
    REQUIRE(waiting.wait(10000));
    REQUIRE(data_waiting.wait(10000));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto t0 = Clock::now();
    fabric.signal(4, SIGKILL);
    CHECK(wait_child(waiter, 5000) == 0);
    CHECK(wait_child(data_waiter, 5000) == 0);
    CHECK(Clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("a killed client's resources are released and its peers see DISCONNECT",
          "[fabric][failure]") {
    LocalFabric fabric({4, 8});
    Gate ready;
    Gate never;
    pid_t owner = owner_process(fabric, 8, 70, 71, ready, never);
    REQUIRE(ready.wait(10000));
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_remote_segment_t rs;
    SCIConnectSegment(s.sd, &rs, 8, 70, 0, nullptr, nullptr, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_remote_interrupt_t rirq;
    SCIConnectInterrupt(s.sd, &rirq, 8, 0, 71, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    dis::fabric::AdminClient admin(fabric.dir(), 8);
    REQUIRE(admin.segments().size() == 1);

    auto t0 = Clock::now();
    ::kill(owner, SIGKILL);
    CHECK(wait_child(owner) == 128 + SIGKILL);
    sci_error_t status;
    CHECK(SCIWaitForRemoteSegmentEvent(rs, &status, 1000, 0, &err) == SCI_CB_DISCONNECT);
    CHECK(err == SCI_ERR_OK);
    CHECK(Clock::now() - t0 < std::chrono::seconds(1));
    CHECK(admin.segments().empty());
    auto info = admin.node_info();
    CHECK(info.counters.at("interrupts") == 0);
    // The interrupt went with its owner.
    auto deadline = Clock::now() + std::chrono::seconds(1);
    do {
        SCITriggerInterrupt(rirq, 0, &err);
    } while (err == SCI_ERR_OK && Clock::now() < deadline);
    CHECK(err == SCI_ERR_NOT_CONNECTED);
    sci_map_t map;
    SCIMapRemoteSegment(rs, &map, 0, 4096, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NOT_CONNECTED);
    SCIDisconnectSegment(rs, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectInterrupt(rirq, 0, &err);
    CHECK(err == SCI_ERR_OK);
}
