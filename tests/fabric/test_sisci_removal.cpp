// The teardown rules of SCIRemoveSegment, as on vendor hardware: remote connections do not
// hold a segment, mapped or not (each connector is told, SCI_CB_DISCONNECT, and its later
// accesses fail cleanly); local mappings and attachments do (SCI_ERR_BUSY).
#include "fabric_support.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace dis::test;

namespace {

sci_local_segment_t offer(sci_desc_t sd, unsigned id, size_t size) {
    sci_local_segment_t seg = nullptr;
    sci_error_t err;
    SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    return seg;
}

std::atomic<int> g_reason{0};

sci_callback_action_t on_remote(void*, sci_remote_segment_t, sci_segment_cb_reason_t reason,
                                sci_error_t) {
    g_reason = reason;
    return SCI_CALLBACK_CONTINUE;
}

} // namespace

TEST_CASE("SCIRemoveSegment succeeds while a remote node is connected (unmapped), the "
          "connector is told and its later accesses fail cleanly",
          "[fabric][segment][removal]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_local_segment_t seg = offer(s.sd, 7, 1 << 16);
    sci_local_segment_t seg_cb = offer(s.sd, 8, 4096);
    Gate connected;
    Gate removed;
    pid_t child = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_remote_segment_t rs;
        sci_remote_segment_t rs_cb;
        SCIConnectSegment(sd, &rs, 4, 7, 0, nullptr, nullptr, 5000, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        SCIConnectSegment(sd, &rs_cb, 4, 8, 0, on_remote, nullptr, 5000, SCI_FLAG_USE_CALLBACK, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        // Mapped and written once, then unmapped: still connected (the benchmark's pattern).
        sci_map_t map;
        auto* p =
            static_cast<volatile int*>(SCIMapRemoteSegment(rs, &map, 0, 4096, nullptr, 0, &e));
        if (e != SCI_ERR_OK) {
            return 2;
        }
        p[0] = 42;
        SCIUnmapSegment(map, 0, &e);
        // Something to DMA from afterwards.
        sci_local_segment_t local;
        SCICreateSegment(sd, &local, 70, 4096, nullptr, nullptr, 0, &e);
        sci_dma_queue_t dq;
        SCICreateDMAQueue(sd, &dq, 0, 1, 0, &e);
        if (e != SCI_ERR_OK) {
            return 3;
        }
        connected.open();
        if (!removed.wait(20000)) {
            return 4;
        }
        sci_error_t status;
        if (SCIWaitForRemoteSegmentEvent(rs, &status, 10000, 0, &e) != SCI_CB_DISCONNECT ||
            e != SCI_ERR_OK) {
            return 5;
        }
        for (int i = 0; i < 1000 && g_reason.load() != SCI_CB_DISCONNECT; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (g_reason.load() != SCI_CB_DISCONNECT) {
            return 6;
        }
        // Later accesses fail, with an error, not a crash or a hang.
        SCIMapRemoteSegment(rs, &map, 0, 4096, nullptr, 0, &e);
        if (e != SCI_ERR_NOT_CONNECTED) {
            return 7;
        }
        SCIStartDmaTransfer(dq, local, rs, 0, 4096, 0, nullptr, nullptr, SCI_FLAG_DMA_WAIT, &e);
        if (e != SCI_ERR_NOT_CONNECTED) {
            return 8;
        }
        // And the handles still come apart.
        SCIDisconnectSegment(rs, 0, &e);
        if (e != SCI_ERR_OK) {
            return 9;
        }
        SCIDisconnectSegment(rs_cb, 0, &e);
        SCIRemoveDMAQueue(dq, 0, &e);
        SCIRemoveSegment(local, 0, &e);
        return e == SCI_ERR_OK ? 0 : 10;
    });
    REQUIRE(connected.wait(10000));
    sci_error_t err;
    sci_map_t map;
    auto* p = static_cast<volatile int*>(SCIMapLocalSegment(seg, &map, 0, 4096, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    CHECK(p[0] == 42);
    SCIUnmapSegment(map, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIRemoveSegment(seg_cb, 0, &err);
    CHECK(err == SCI_ERR_OK);
    removed.open();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("local mappings and attachments refuse SCIRemoveSegment, a remote mapping does not",
          "[fabric][segment][removal]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg = offer(s.sd, 9, 4096);

    // A local mapping.
    sci_map_t map;
    SCIMapLocalSegment(seg, &map, 0, 4096, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_BUSY);
    SCIUnmapSegment(map, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // An attachment by another process of the node.
    SCIShareSegment(seg, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    {
        Gate attached;
        Gate release;
        pid_t child = spawn_node_process(fabric, 4, [&](sci_desc_t sd) {
            sci_error_t e;
            sci_local_segment_t a;
            size_t size = 0;
            SCIAttachLocalSegment(sd, &a, 9, &size, nullptr, nullptr, 0, &e);
            if (e != SCI_ERR_OK) {
                return 1;
            }
            attached.open();
            if (!release.wait(20000)) {
                return 2;
            }
            SCIRemoveSegment(a, 0, &e); // detaches
            return e == SCI_ERR_OK ? 0 : 3;
        });
        REQUIRE(attached.wait(10000));
        SCIRemoveSegment(seg, 0, &err);
        CHECK(err == SCI_ERR_BUSY);
        release.open();
        REQUIRE(wait_child(child) == 0);
    }

    // A remote mapping does not hold it (the mapping is part of a remote connection): the
    // removal succeeds, the connector is told, and its handles still come apart.
    {
        Gate mapped;
        Gate removed;
        pid_t child = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
            sci_error_t e;
            sci_remote_segment_t rs;
            SCIConnectSegment(sd, &rs, 4, 9, 0, nullptr, nullptr, 5000, 0, &e);
            if (e != SCI_ERR_OK) {
                return 1;
            }
            sci_map_t m;
            SCIMapRemoteSegment(rs, &m, 0, 4096, nullptr, 0, &e);
            if (e != SCI_ERR_OK) {
                return 2;
            }
            mapped.open();
            if (!removed.wait(20000)) {
                return 3;
            }
            sci_error_t status = SCI_ERR_OK;
            sci_segment_cb_reason_t reason = SCIWaitForRemoteSegmentEvent(rs, &status, 5000, 0, &e);
            if (e != SCI_ERR_OK || reason != SCI_CB_DISCONNECT) {
                return 4;
            }
            SCIUnmapSegment(m, 0, &e);
            if (e != SCI_ERR_OK) {
                return 5;
            }
            SCIDisconnectSegment(rs, 0, &e);
            return e == SCI_ERR_OK ? 0 : 6;
        });
        REQUIRE(mapped.wait(10000));
        SCIRemoveSegment(seg, 0, &err);
        CHECK(err == SCI_ERR_OK);
        removed.open();
        REQUIRE(wait_child(child) == 0);
    }
}
