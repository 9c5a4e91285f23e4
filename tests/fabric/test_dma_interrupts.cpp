// DMA through the node daemon's engine, interrupts and data interrupts across nodes.
#include "fabric_support.hpp"

#include "dis/fabric_admin.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

using namespace dis::test;

namespace {

// A child on `node` that owns an available segment until `done` opens.
pid_t hold_segment(const LocalFabric& fabric, std::uint32_t node, unsigned id, size_t size,
                   Gate& ready, Gate& done) {
    return spawn_node_process(fabric, node, [&, id, size](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        SCIPrepareSegment(seg, 0, 0, &e);
        SCISetSegmentAvailable(seg, 0, 0, &e);
        if (e != SCI_ERR_OK) {
            return 2;
        }
        ready.open();
        done.wait(60000);
        for (int i = 0; i < 500; ++i) {
            SCIRemoveSegment(seg, 0, &e);
            if (e != SCI_ERR_BUSY) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return e == SCI_ERR_OK ? 0 : 3;
    });
}

unsigned char pattern(size_t i, unsigned seed) {
    return static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
}

// A node-4 process's side of a DMA test: its own segment `local_id`, node 8's segment
// `remote_id` connected, both mapped, and a DMA queue. release() takes it all down.
struct DmaSetup {
    sci_local_segment_t local = nullptr;
    sci_map_t lmap = nullptr;
    unsigned char* lp = nullptr;
    sci_remote_segment_t remote = nullptr;
    sci_map_t rmap = nullptr;
    unsigned char* rp = nullptr;
    sci_dma_queue_t dq = nullptr;

    DmaSetup(sci_desc_t sd, unsigned local_id, unsigned remote_id, size_t size) {
        sci_error_t err;
        SCICreateSegment(sd, &local, local_id, size, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIPrepareSegment(local, 0, 0, &err);
        lp = static_cast<unsigned char*>(
            const_cast<void*>(SCIMapLocalSegment(local, &lmap, 0, size, nullptr, 0, &err)));
        REQUIRE(err == SCI_ERR_OK);
        SCIConnectSegment(sd, &remote, 8, remote_id, 0, nullptr, nullptr, 5000, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        rp = static_cast<unsigned char*>(
            const_cast<void*>(SCIMapRemoteSegment(remote, &rmap, 0, size, nullptr, 0, &err)));
        REQUIRE(err == SCI_ERR_OK);
        SCICreateDMAQueue(sd, &dq, 0, 8, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
    }

    void release() {
        sci_error_t err;
        SCIRemoveDMAQueue(dq, 0, &err);
        CHECK(err == SCI_ERR_OK);
        SCIUnmapSegment(rmap, 0, &err);
        SCIDisconnectSegment(remote, 0, &err);
        SCIUnmapSegment(lmap, 0, &err);
        SCIRemoveSegment(local, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
};

} // namespace

TEST_CASE("DMA push, pull, offsets, vectors, callbacks and polling through the node engine",
          "[fabric][dma]") {
    LocalFabric fabric({4, 8});
    const size_t size = 4u << 20;
    Gate ready;
    Gate done;
    pid_t owner = hold_segment(fabric, 8, 500, size, ready, done);
    REQUIRE(ready.wait(10000));

    SisciSession s(fabric, 4);
    DmaSetup dma(s.sd, 1, 500, size);
    sci_error_t err;
    auto* lp = dma.lp;
    auto* rp = dma.rp;
    auto local = dma.local;
    auto remote = dma.remote;
    auto dq = dma.dq;
    CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_IDLE);
    std::uint64_t bytes = 0;
    std::uint64_t transfers = 0;

    SECTION("push of the whole segment, waited for") {
        for (size_t i = 0; i < size; ++i) {
            lp[i] = pattern(i, 1);
        }
        std::memset(rp, 0, size);
        SCIStartDmaTransfer(dq, local, remote, 0, size, 0, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK(SCIWaitForDMAQueue(dq, 10000, 0, &err) == SCI_DMAQUEUE_DONE);
        CHECK(err == SCI_ERR_OK);
        CHECK(std::memcmp(lp, rp, size) == 0);
        CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_DONE);
        bytes += size;
        transfers += 1;
    }
    SECTION("offsets touch exactly the requested bytes") {
        std::memset(rp, 0xEE, 32768);
        for (size_t i = 0; i < 32768; ++i) {
            lp[i] = pattern(i, 2);
        }
        SCIStartDmaTransfer(dq, local, remote, 123, 10001, 4567, nullptr, nullptr,
                            SCI_FLAG_DMA_WAIT, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK(std::memcmp(rp + 4567, lp + 123, 10001) == 0);
        CHECK(rp[4566] == 0xEE);
        CHECK(rp[4567 + 10001] == 0xEE);
        bytes += 10001;
        transfers += 1;
    }
    SECTION("pull with SCI_FLAG_DMA_READ") {
        for (size_t i = 0; i < 65536; ++i) {
            rp[1000 + i] = pattern(i, 3);
        }
        std::memset(lp, 0, 65536 + 8192);
        SCIStartDmaTransfer(dq, local, remote, 8192, 65536, 1000, nullptr, nullptr,
                            SCI_FLAG_DMA_READ, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK(SCIWaitForDMAQueue(dq, 10000, 0, &err) == SCI_DMAQUEUE_DONE);
        CHECK(std::memcmp(lp + 8192, rp + 1000, 65536) == 0);
        CHECK(lp[8191] == 0);
        bytes += 65536;
        transfers += 1;
    }
    SECTION("vectors") {
        for (size_t i = 0; i < 3 * 4096; ++i) {
            lp[i] = pattern(i, 4);
        }
        std::memset(rp, 0, 1u << 20);
        dis_dma_vec_t vec[3] = {{4096, 0, 100000, 0}, {100, 4096, 5, 0}, {4096, 8192, 700000, 0}};
        SCIStartDmaTransferVec(dq, local, remote, 3, vec, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK(SCIWaitForDMAQueue(dq, 10000, 0, &err) == SCI_DMAQUEUE_DONE);
        CHECK(std::memcmp(rp + 100000, lp, 4096) == 0);
        CHECK(std::memcmp(rp + 5, lp + 4096, 100) == 0);
        CHECK(std::memcmp(rp + 700000, lp + 8192, 4096) == 0);
        CHECK(rp[105] == 0);
        bytes += 4096 + 100 + 4096;
        transfers += 3;
        // More entries than one vector may have (DIS_DMA_MAX_VECLEN).
        std::vector<dis_dma_vec_t> many(DIS_DMA_MAX_VECLEN + 1, dis_dma_vec_t{8, 0, 0, 0});
        SCIStartDmaTransferVec(dq, local, remote, many.size(), many.data(), nullptr, nullptr, 0,
                               &err);
        CHECK(err == SCI_ERR_MAX_ENTRIES);
    }
    SECTION("completion callback and polling") {
        std::memset(lp, 0x42, 1u << 20);
        std::atomic<int> calls{0};
        std::atomic<int> status{-1};
        struct Ctx {
            std::atomic<int>* calls;
            std::atomic<int>* status;
        } ctx{&calls, &status};
        auto cb = [](void* arg, sci_dma_queue_t, sci_error_t st) -> sci_callback_action_t {
            auto* c = static_cast<Ctx*>(arg);
            c->status->store(st);
            c->calls->fetch_add(1);
            return SCI_CALLBACK_CONTINUE;
        };
        SCIStartDmaTransfer(dq, local, remote, 0, 1u << 20, 0, cb, &ctx, SCI_FLAG_USE_CALLBACK,
                            &err);
        REQUIRE(err == SCI_ERR_OK);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        CHECK(calls.load() == 1);
        CHECK(status.load() == SCI_ERR_OK);
        CHECK(rp[(1u << 20) - 1] == 0x42);
        // Polling mode: spin on the queue state.
        std::memset(lp, 0x43, 64);
        SCIStartDmaTransfer(dq, local, remote, 0, 64, 0, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        while (SCIDMAQueueState(dq) == SCI_DMAQUEUE_POSTED) {
        }
        CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_DONE);
        CHECK(rp[63] == 0x43);
        bytes += (1u << 20) + 64;
        transfers += 2;
    }
    SECTION("argument errors") {
        SCIStartDmaTransfer(dq, local, remote, 0, 16, size - 8, nullptr, nullptr, 0, &err);
        CHECK(err == SCI_ERR_OUT_OF_RANGE);
        SCIStartDmaTransfer(dq, local, remote, size, 1, 0, nullptr, nullptr, 0, &err);
        CHECK(err == SCI_ERR_OUT_OF_RANGE);
        SCIStartDmaTransfer(dq, local, remote, 0, 16, 0, nullptr, nullptr, SCI_FLAG_BROADCAST,
                            &err);
        CHECK(err == SCI_ERR_ILLEGAL_FLAG);
        SCIStartDmaTransfer(dq, local, remote, 0, 16, 0, nullptr, nullptr, SCI_FLAG_USE_CALLBACK,
                            &err);
        CHECK(err == SCI_ERR_ILLEGAL_FLAG); // callback flag without a callback
        SCIStartDmaTransfer(dq, local, remote, 0, 0, 0, nullptr, nullptr, 0, &err);
        CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
        sci_dma_queue_t bad;
        SCICreateDMAQueue(s.sd, &bad, 1, 8, 0, &err);
        CHECK(err == SCI_ERR_NO_SUCH_ADAPTERNO);
        SCICreateDMAQueue(s.sd, &bad, 0, 0, 0, &err);
        CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
        CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_IDLE);
    }

    // The engine of node 4 did the work and counted it.
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    auto info = admin.node_info();
    CHECK(info.counters.at("dma_bytes_total") == bytes);
    CHECK(info.counters.at("dma_transfers_total") == transfers);
    CHECK(dis::fabric::AdminClient(fabric.dir(), 8).node_info().counters.at("dma_bytes_total") ==
          0);

    dma.release();
    done.open();
    CHECK(wait_child(owner) == 0);
}

TEST_CASE("interrupts: trigger from another node, wait with timeout, callbacks",
          "[fabric][interrupt]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_interrupt_t irq;
    unsigned no = 0;
    SCICreateInterrupt(s.sd, &irq, 0, &no, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    auto trigger = [&](unsigned intno, int times) {
        return [intno, times](sci_desc_t sd) {
            sci_error_t e;
            sci_remote_interrupt_t r;
            SCIConnectInterrupt(sd, &r, 4, 0, intno, 5000, 0, &e);
            if (e != SCI_ERR_OK) {
                return 1;
            }
            for (int i = 0; i < times; ++i) {
                SCITriggerInterrupt(r, 0, &e);
                if (e != SCI_ERR_OK) {
                    return 2;
                }
            }
            SCIDisconnectInterrupt(r, 0, &e);
            return e == SCI_ERR_OK ? 0 : 3;
        };
    };
    CHECK(run_node_process(fabric, 8, trigger(no, 3)) == 0);
    for (int i = 0; i < 3; ++i) {
        SCIWaitForInterrupt(irq, 2000, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
    auto t0 = std::chrono::steady_clock::now();
    SCIWaitForInterrupt(irq, 150, 0, &err);
    CHECK(err == SCI_ERR_TIMEOUT);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(150));

    // Fixed numbers: taken numbers are refused.
    sci_local_interrupt_t fixed;
    unsigned fixed_no = 4242;
    SCICreateInterrupt(s.sd, &fixed, 0, &fixed_no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(fixed_no == 4242);
    sci_local_interrupt_t again;
    SCICreateInterrupt(s.sd, &again, 0, &fixed_no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &err);
    CHECK(err == SCI_ERR_BUSY);
    SCICreateInterrupt(s.sd, &again, 0, &fixed_no, nullptr, nullptr, SCI_FLAG_DMA_READ, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);

    // Connect errors.
    CHECK(run_node_process(fabric, 8, [](sci_desc_t sd) {
              sci_error_t e;
              sci_remote_interrupt_t r;
              SCIConnectInterrupt(sd, &r, 4, 0, 99999, 0, 0, &e);
              if (e != SCI_ERR_NO_SUCH_INTNO) {
                  return 1;
              }
              SCIConnectInterrupt(sd, &r, 20, 0, 1, 0, 0, &e);
              return e == SCI_ERR_NO_SUCH_NODEID ? 0 : 2;
          }) == 0);

    // Callback delivery.
    std::atomic<int> calls{0};
    auto cb = [](void* arg, sci_local_interrupt_t, sci_error_t st) -> sci_callback_action_t {
        if (st == SCI_ERR_OK) {
            static_cast<std::atomic<int>*>(arg)->fetch_add(1);
        }
        return SCI_CALLBACK_CONTINUE;
    };
    sci_local_interrupt_t cbirq;
    unsigned cbno = 0;
    SCICreateInterrupt(s.sd, &cbirq, 0, &cbno, cb, &calls, SCI_FLAG_USE_CALLBACK, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIWaitForInterrupt(cbirq, 10, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_OPERATION);
    CHECK(run_node_process(fabric, 8, trigger(cbno, 2)) == 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (calls.load() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(calls.load() == 2);

    for (auto* i : {irq, fixed, cbirq}) {
        SCIRemoveInterrupt(i, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
}

TEST_CASE("data interrupts carry their payload in order", "[fabric][interrupt]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_data_interrupt_t irq;
    unsigned no = 0;
    SCICreateDataInterrupt(s.sd, &irq, 0, &no, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    int rc = run_node_process(fabric, 8, [no](sci_desc_t sd) {
        sci_error_t e;
        sci_remote_data_interrupt_t r;
        SCIConnectDataInterrupt(sd, &r, 4, 0, no, 5000, 0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        std::vector<unsigned char> big(SCI_MAX_DATA_INTERRUPT_SIZE);
        for (size_t i = 0; i < big.size(); ++i) {
            big[i] = static_cast<unsigned char>(i * 3);
        }
        char hello[] = "hello";
        SCITriggerDataInterrupt(r, hello, 5, 0, &e);
        if (e != SCI_ERR_OK) {
            return 2;
        }
        SCITriggerDataInterrupt(r, nullptr, 0, 0, &e);
        if (e != SCI_ERR_OK) {
            return 3;
        }
        SCITriggerDataInterrupt(r, big.data(), static_cast<unsigned>(big.size()), 0, &e);
        if (e != SCI_ERR_OK) {
            return 4;
        }
        big.push_back(0);
        SCITriggerDataInterrupt(r, big.data(), static_cast<unsigned>(big.size()), 0, &e);
        if (e != SCI_ERR_OUT_OF_RANGE) {
            return 5;
        }
        SCIDisconnectDataInterrupt(r, 0, &e);
        return e == SCI_ERR_OK ? 0 : 6;
    });
    REQUIRE(rc == 0);
    std::vector<unsigned char> buf(SCI_MAX_DATA_INTERRUPT_SIZE);
    unsigned len = static_cast<unsigned>(buf.size());
    SCIWaitForDataInterrupt(irq, buf.data(), &len, 2000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(len == 5);
    CHECK(std::string(reinterpret_cast<char*>(buf.data()), len) == "hello");
    len = static_cast<unsigned>(buf.size());
    SCIWaitForDataInterrupt(irq, buf.data(), &len, 2000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(len == 0);
    // Too small a buffer: told the size, payload kept for the next call.
    len = 16;
    SCIWaitForDataInterrupt(irq, buf.data(), &len, 2000, 0, &err);
    CHECK(err == SCI_ERR_OUT_OF_RANGE);
    CHECK(len == SCI_MAX_DATA_INTERRUPT_SIZE);
    len = static_cast<unsigned>(buf.size());
    SCIWaitForDataInterrupt(irq, buf.data(), &len, 2000, 0, &err);
    CHECK(err == SCI_ERR_OK);
    REQUIRE(len == SCI_MAX_DATA_INTERRUPT_SIZE);
    bool same = true;
    for (size_t i = 0; i < len; ++i) {
        same = same && buf[i] == static_cast<unsigned char>(i * 3);
    }
    CHECK(same);
    len = static_cast<unsigned>(buf.size());
    SCIWaitForDataInterrupt(irq, buf.data(), &len, 100, 0, &err);
    CHECK(err == SCI_ERR_TIMEOUT);
    SCIRemoveDataInterrupt(irq, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("SCIAbortDMAQueue drops queued transfers and the queue works afterwards",
          "[fabric][dma]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    const size_t size = 8u << 20;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 5, size, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(seg, 0, 0, &err);
    SCISetSegmentAvailable(seg, 0, 0, &err);
    sci_remote_segment_t rs;
    SCIConnectSegment(s.sd, &rs, 4, 5, 0, nullptr, nullptr, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_dma_queue_t dq;
    SCICreateDMAQueue(s.sd, &dq, 0, 16, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    for (int i = 0; i < 12; ++i) {
        SCIStartDmaTransfer(dq, seg, rs, 0, size / 2, size / 2, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
    }
    SCIAbortDMAQueue(dq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_ABORTED);
    CHECK(SCIWaitForDMAQueue(dq, 0, 0, &err) == SCI_DMAQUEUE_ABORTED); // nothing pending
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    auto done = admin.node_info().counters.at("dma_transfers_total");
    SCIStartDmaTransfer(dq, seg, rs, 0, 4096, 4096, nullptr, nullptr, SCI_FLAG_DMA_WAIT, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(SCIDMAQueueState(dq) == SCI_DMAQUEUE_DONE);
    CHECK(admin.node_info().counters.at("dma_transfers_total") == done + 1);
    SCIRemoveDMAQueue(dq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(rs, 0, &err);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("long DMA transfers written past the caches arrive exactly, push and pull",
          "[fabric][dma]") {
    // A low streaming threshold, so that short copies at odd offsets take the non-temporal
    // path (its unaligned head and tail) as well as multi-chunk ones.
    LocalFabric fabric({4, 8}, {"--dma-streaming-bytes", "4096"});
    const size_t size = 6u << 20;
    Gate ready;
    Gate done;
    pid_t owner = hold_segment(fabric, 8, 510, size, ready, done);
    REQUIRE(ready.wait(10000));

    SisciSession s(fabric, 4);
    DmaSetup dma(s.sd, 11, 510, size);
    sci_error_t err;
    auto* lp = dma.lp;
    auto* rp = dma.rp;

    struct Case {
        size_t local_offset, size, remote_offset;
    };
    // Sizes below, at and above the threshold; offsets that leave the destination unaligned
    // by every residue class of a cache line; one transfer over several 1 MiB chunks.
    const Case cases[] = {{0, 4095, 0},      {1, 4096, 3},
                          {17, 4097, 63},    {4096, 65536 + 37, 129},
                          {333, 100000, 64}, {7, (2u << 20) + 13, 4099}};
    unsigned seed = 20;
    for (const bool pull : {false, true}) {
        for (const auto& c : cases) {
            ++seed;
            unsigned char* src = pull ? rp + c.remote_offset : lp + c.local_offset;
            unsigned char* dst = pull ? lp + c.local_offset : rp + c.remote_offset;
            for (size_t i = 0; i < c.size; ++i) {
                src[i] = pattern(i, seed);
            }
            // Guards on both sides of the destination.
            const size_t dst_offset = pull ? c.local_offset : c.remote_offset;
            std::memset(dst, 0, c.size);
            if (dst_offset > 0) {
                dst[-1] = 0xA5;
            }
            dst[c.size] = 0x5A;
            SCIStartDmaTransfer(dma.dq, dma.local, dma.remote, c.local_offset, c.size,
                                c.remote_offset, nullptr, nullptr,
                                (pull ? SCI_FLAG_DMA_READ : 0) | SCI_FLAG_DMA_WAIT, &err);
            INFO("pull " << pull << " size " << c.size << " local offset " << c.local_offset
                         << " remote offset " << c.remote_offset);
            REQUIRE(err == SCI_ERR_OK);
            CHECK(std::memcmp(dst, src, c.size) == 0);
            CHECK(dst[c.size] == 0x5A);
            if (dst_offset > 0) {
                CHECK(dst[-1] == 0xA5);
            }
        }
    }
    dma.release();
    done.open();
    CHECK(wait_child(owner) == 0);
}
