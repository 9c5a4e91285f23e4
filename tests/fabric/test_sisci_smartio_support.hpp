// Helpers of the libsisci SmartIO tests: a 2-node fabric whose node 8 lends an epf-test
// function (fdid 0x80000) and a memory device (0x80001), the pci-epf-test registers, and
// running a command through them.
#pragma once

#include "test_lending_disd_support.hpp"

#include <sisci_api.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace dis::test::smartio {

constexpr unsigned k_epf = 0x80000;
constexpr unsigned k_mem = 0x80001;
constexpr std::uint32_t k_lender = 8;
constexpr std::uint32_t k_borrower = 4;

// pci-epf-test registers and bits (Linux 6.x).
constexpr unsigned k_reg_command = 0x04, k_reg_status = 0x08, k_reg_lower_src = 0x0c,
                   k_reg_upper_src = 0x10, k_reg_lower_dst = 0x14, k_reg_upper_dst = 0x18,
                   k_reg_size = 0x1c, k_reg_irq_type = 0x24, k_reg_irq_number = 0x28,
                   k_reg_flags = 0x2c;
constexpr std::uint32_t k_cmd_raise_msi = 0x02, k_cmd_copy = 0x20;
constexpr std::uint32_t k_st_copy_success = 0x10, k_st_copy_fail = 0x20, k_st_src_invalid = 0x80;

// Node 4 (no devices) and node 8, the lender.
struct LendingFabric {
    LocalFabric fabric{{k_borrower}};
    // lender_extra: more disd options; epf_spec: the first device's spec.
    explicit LendingFabric(const std::vector<std::string>& lender_extra = {},
                           const std::string& epf_spec = "epf-test name=ep0 reset_ms=1") {
        std::vector<std::string> args{"--device", epf_spec, "--device",
                                      "memory name=mem0 reset_ms=1"};
        args.insert(args.end(), lender_extra.begin(), lender_extra.end());
        fabric.start(k_lender, args);
    }
};

inline volatile std::uint32_t* reg(volatile void* bar, unsigned offset) {
    return reinterpret_cast<volatile std::uint32_t*>(static_cast<volatile char*>(bar) + offset);
}

// Starts COPY src -> dst of `size` bytes with the DMA flag (MSI `irq` when done) and waits up
// to 10 s for STATUS; returns STATUS (0: the device never answered).
inline std::uint32_t copy(volatile void* bar, sci_ioaddr_t src, sci_ioaddr_t dst,
                          std::uint32_t size, unsigned irq = 1) {
    *reg(bar, k_reg_status) = 0;
    *reg(bar, k_reg_lower_src) = static_cast<std::uint32_t>(src);
    *reg(bar, k_reg_upper_src) = static_cast<std::uint32_t>(src >> 32);
    *reg(bar, k_reg_lower_dst) = static_cast<std::uint32_t>(dst);
    *reg(bar, k_reg_upper_dst) = static_cast<std::uint32_t>(dst >> 32);
    *reg(bar, k_reg_size) = size;
    *reg(bar, k_reg_flags) = 1; // FLAG_USE_DMA
    *reg(bar, k_reg_irq_type) = SCI_DIS_DEVICE_IRQ_MSI;
    *reg(bar, k_reg_irq_number) = irq;
    *reg(bar, k_reg_command) = k_cmd_copy;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        std::uint32_t st = *reg(bar, k_reg_status);
        if (st != 0 && *reg(bar, k_reg_command) == 0) {
            return st;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return 0;
}

// A child's check: prints and makes the child fail.
#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::cerr << __FILE__ << ":" << __LINE__ << ": child check failed: " #cond "\n";       \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

// A BAR (or device segment) connected and mapped, released in reverse order.
struct DevSeg {
    sci_remote_segment_t seg = nullptr;
    sci_map_t map = nullptr;
    volatile void* addr = nullptr;
    sci_error_t err = SCI_ERR_OK;
    DevSeg(sci_smartio_device_t dev, unsigned id, unsigned memtype = SCI_MEMTYPE_BAR,
           sci_cb_remote_segment_t cb = nullptr, void* arg = nullptr) {
        SCIConnectDeviceSegment(dev, &seg, id, memtype, cb, arg,
                                cb != nullptr ? SCI_FLAG_USE_CALLBACK : 0u, &err);
        if (err != SCI_ERR_OK) {
            seg = nullptr;
            return;
        }
        addr = SCIMapRemoteSegment(seg, &map, 0, SCIGetRemoteSegmentSize(seg), nullptr, 0, &err);
    }
    ~DevSeg() { release(); }
    void release() {
        sci_error_t e;
        if (map != nullptr) {
            SCIUnmapSegment(map, 0, &e);
            map = nullptr;
        }
        if (seg != nullptr) {
            SCIDisconnectSegment(seg, 0, &e);
            seg = nullptr;
        }
    }
};

// A created, prepared and mapped local segment.
struct LocalSeg {
    sci_local_segment_t seg = nullptr;
    sci_map_t map = nullptr;
    volatile unsigned char* mem = nullptr;
    LocalSeg(sci_desc_t sd, unsigned id, std::size_t size) {
        sci_error_t err;
        SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIPrepareSegment(seg, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        mem = static_cast<volatile unsigned char*>(
            SCIMapLocalSegment(seg, &map, 0, size, nullptr, 0, &err));
        REQUIRE(err == SCI_ERR_OK);
    }
    ~LocalSeg() {
        sci_error_t e;
        SCIUnmapSegment(map, 0, &e);
        SCIRemoveSegment(seg, 0, &e);
    }
};

} // namespace dis::test::smartio
