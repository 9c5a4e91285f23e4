// SCI_FLAG_DIS_SLEEP_WAIT: SCIWaitForDMAQueue sleeps in the kernel at once instead of spinning
// first, so a waiter spends almost no CPU time while a long transfer runs. The benchmark's
// `dma-latency --mode sleep` relies on it to measure a sleeping wait.
#include "fabric_support.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <cstring>
#include <ctime>

using namespace dis::test;

namespace {

double thread_cpu_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

} // namespace

TEST_CASE("SCI_FLAG_DIS_SLEEP_WAIT waits for DMA without spinning", "[fabric][dma][sleep]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    const size_t size = 32u << 20; // long enough that a spinning waiter would burn its spin

    sci_local_segment_t src;
    SCICreateSegment(s.sd, &src, 810, size, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(src, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(src, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t smap;
    auto* sp = static_cast<unsigned char*>(
        const_cast<void*>(SCIMapLocalSegment(src, &smap, 0, size, nullptr, 0, &err)));
    REQUIRE(err == SCI_ERR_OK);
    for (size_t i = 0; i < size; i += 4096) {
        sp[i] = static_cast<unsigned char>(i >> 12);
    }
    sci_local_segment_t dst;
    SCICreateSegment(s.sd, &dst, 811, size, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(dst, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(dst, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t dmap;
    auto* dp = static_cast<volatile unsigned char*>(
        SCIMapLocalSegment(dst, &dmap, 0, size, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    sci_remote_segment_t rdst;
    SCIConnectSegment(s.sd, &rdst, 4, 811, 0, nullptr, nullptr, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_dma_queue_t dq;
    SCICreateDMAQueue(s.sd, &dq, 0, 4, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // Several rounds: the sum of the waiter's CPU time stays a small part of the time it
    // waited (a spinning waiter would spend up to 5 ms of CPU per transfer).
    double cpu = 0;
    double waited = 0;
    for (int round = 0; round < 8; ++round) {
        std::memset(const_cast<unsigned char*>(dp), 0, 4096);
        SCIStartDmaTransfer(dq, src, rdst, 0, size, 0, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        const double c0 = thread_cpu_s();
        const double w0 = wall_s();
        auto st = SCIWaitForDMAQueue(dq, 10000, SCI_FLAG_DIS_SLEEP_WAIT, &err);
        waited += wall_s() - w0;
        cpu += thread_cpu_s() - c0;
        REQUIRE(err == SCI_ERR_OK);
        REQUIRE(st == SCI_DMAQUEUE_DONE);
        size_t bad = 0;
        for (size_t i = 0; i < size; i += 4096) {
            bad += dp[i] != static_cast<unsigned char>(i >> 12) ? 1 : 0;
        }
        REQUIRE(bad == 0);
    }
    INFO("waiter CPU " << cpu * 1e3 << " ms over " << waited * 1e3 << " ms of waiting");
    CHECK(waited > 0.004); // 8 transfers of 32 MiB take milliseconds: the wait was real
    CHECK(cpu < 0.25 * waited);

    SCIRemoveDMAQueue(dq, 0, &err);
    SCIDisconnectSegment(rdst, 0, &err);
    SCIUnmapSegment(dmap, 0, &err);
    SCIUnmapSegment(smap, 0, &err);
    SCIRemoveSegment(dst, 0, &err);
    SCIRemoveSegment(src, 0, &err);
}
