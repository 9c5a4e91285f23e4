// Device lending tests (issue 9): the cost of one borrow cycle of a lent device, and the
// emulated pci-epf-test's DMA COPY against memcpy. Only the SISCI SmartIO API is used, so the
// same code measures a vendor fabric's SmartIO; no responder is needed (the lender node's
// daemon, or its device, is the other side).
#include "families.hpp"
#include "process.hpp"
#include "rounds.hpp"

#include "dis/lending_fdid.hpp"
#include "dis/lending_test.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <immintrin.h>
#include <memory>

namespace dis::bench::detail {

namespace {

// pci-epf-test's register BAR (Linux 6.x drivers/pci/endpoint/functions/pci-epf-test.c).
constexpr std::size_t k_reg_command = 0x04;
constexpr std::size_t k_reg_status = 0x08;
constexpr std::size_t k_reg_src_lower = 0x0c;
constexpr std::size_t k_reg_src_upper = 0x10;
constexpr std::size_t k_reg_dst_lower = 0x14;
constexpr std::size_t k_reg_dst_upper = 0x18;
constexpr std::size_t k_reg_size = 0x1c;
constexpr std::size_t k_reg_irq_type = 0x24;
constexpr std::size_t k_reg_irq_number = 0x28;
constexpr std::size_t k_reg_flags = 0x2c;
constexpr std::uint32_t k_command_copy = 1u << 5;
constexpr std::uint32_t k_status_copy_success = 1u << 4;
constexpr std::uint32_t k_status_copy_fail = 1u << 5;
constexpr std::uint32_t k_status_src_invalid = 1u << 7;
constexpr std::uint32_t k_status_dst_invalid = 1u << 8;
constexpr std::uint32_t k_flag_use_dma = 1u << 0;
constexpr std::uint32_t k_irq_type_msi = 1; // pci_endpoint_test's IRQ_TYPE_MSI

// STATUS reads with `pause` before the waiter starts yielding its CPU between reads (a few
// microseconds: a COPY that is still running then, or whose engine has not seen it yet, may be
// waiting for this CPU on a loaded host).
constexpr unsigned k_spins_before_yield = 2000;

// Local segments of device-copy: 0xD15E0000 | pid bits | src/dst.
constexpr std::uint32_t k_copy_segment_base = 0xD15E0000u;

std::string fdid_text(std::uint32_t fdid) {
    return lending::to_string(lending::Fdid{fdid});
}

// Borrows `fdid` exclusively; a device still being reset after the previous return refuses
// the borrow as busy (SCI_ERR_NOT_AVAILABLE) and is retried until `timeout`; `retries`
// counts those attempts.
std::unique_ptr<sci::Device> borrow_when_reset(sci_desc_t sd, std::uint32_t fdid,
                                               std::chrono::milliseconds timeout,
                                               std::uint64_t& retries) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        try {
            return std::make_unique<sci::Device>(sd, fdid, true);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::busy || Clock::now() > deadline)
                throw;
        }
        ++retries;
        _mm_pause();
    }
}

constexpr const char* k_cycle_wait =
    "each call waits for the lender's reply, sleeping in the kernel; a borrow that finds the "
    "device still resetting is retried at once";
constexpr const char* k_copy_sleep =
    "sleeps until the device's MSI (SCIDisWaitForDeviceInterrupt), as pci_endpoint_test waits "
    "for its completion, then reads STATUS";
constexpr const char* k_copy_poll =
    "spins on the STATUS register until COPY_SUCCESS or COPY_FAIL (pause, then sched_yield "
    "between reads after a few microseconds); the device raises no interrupt (IRQ_NUMBER 0)";

} // namespace

void device_cycle(const BenchOptions& o, sci_desc_t sd, Report& rep) {
    rep.mode = "exclusive";
    rep.completion = k_cycle_wait;
    const std::uint32_t fdid = *o.device;
    const pid_t lender = engine_pid(fdid >> 16);
    const auto lender0 = other_process_cpu_s(lender);
    std::uint64_t retries = 0;
    std::vector<double> samples;
    samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
    CpuMeter cpu;
    cpu.start();
    auto loop = timed_loop(o, [&](std::uint64_t i) {
        const auto t0 = Clock::now();
        auto device = borrow_when_reset(sd, fdid, o.timeout, retries);
        sci::DeviceSegment bar(*device, SCI_MEMTYPE_BAR, 0);
        [[maybe_unused]] const std::uint32_t first = *bar.reg(0); // the first register read
        bar.close();
        device->give_back();
        const auto t1 = Clock::now();
        if (i >= o.warmup)
            samples.push_back(elapsed_us(t0, t1));
    });
    cpu.stop();
    auto lender1 = other_process_cpu_s(lender);
    std::optional<double> remote;
    if (lender0 && lender1)
        remote = *lender1 - *lender0;
    auto result =
        latency_result(0, "smartio-cycle", Wait::sleep, std::move(samples),
                       {cpu.seconds(), remote, "disd node " + std::to_string(fdid >> 16)});
    set_payload(result, Payload::unchecked,
                std::to_string(loop.iterations) + " cycles of " + fdid_text(fdid) + " (" +
                    std::to_string(retries) +
                    " borrow retries while it was still resetting); a cycle moves no payload");
    rep.results.push_back(std::move(result));
}

void device_copy(const BenchOptions& o, sci_desc_t sd, Report& rep) {
    const bool by_irq = o.dma_mode == DmaMode::sleep;
    rep.mode = by_irq ? "sleep" : "poll";
    rep.completion = by_irq ? k_copy_sleep : k_copy_poll;
    const std::uint32_t fdid = *o.device;
    std::uint64_t retries = 0;
    // Only an epf-test function has the COPY command: anything else would time out.
    lending::require_epf_test(lending::Fdid{fdid}, "",
                              "device-copy drives the epf-test COPY command, so it needs an "
                              "epf-test device");
    auto device = borrow_when_reset(sd, fdid, o.timeout, retries);
    sci::DeviceSegment regs(*device, SCI_MEMTYPE_BAR, 0);
    if (regs.size() < 0x40)
        throw Error(ErrorKind::invalid_input,
                    "device " + fdid_text(fdid) + ": BAR0 is too small for epf-test registers");
    const unsigned pid_bits = (static_cast<unsigned>(getpid()) & 0x7fff) << 1;
    for (auto size : o.sizes) {
        if (size > 0xffffffffull)
            throw Error(ErrorKind::invalid_input, "device-copy sizes must fit the SIZE register");
        // Two local segments mapped for the device: the COPY's source and destination.
        sci::LocalSegment src(sd, k_copy_segment_base | pid_bits, size, o.adapter);
        sci::LocalSegment dst(sd, k_copy_segment_base | pid_bits | 1, size, o.adapter);
        sci::DeviceMapping src_io(*device, src.handle(), 0, size, o.adapter);
        sci::DeviceMapping dst_io(*device, dst.handle(), 0, size, o.adapter);
        *regs.reg(k_reg_src_lower) = static_cast<std::uint32_t>(src_io.io_addr());
        *regs.reg(k_reg_src_upper) = static_cast<std::uint32_t>(src_io.io_addr() >> 32);
        *regs.reg(k_reg_dst_lower) = static_cast<std::uint32_t>(dst_io.io_addr());
        *regs.reg(k_reg_dst_upper) = static_cast<std::uint32_t>(dst_io.io_addr() >> 32);
        *regs.reg(k_reg_size) = static_cast<std::uint32_t>(size);
        *regs.reg(k_reg_flags) = k_flag_use_dma;
        *regs.reg(k_reg_irq_type) = k_irq_type_msi;
        // MSI vector 1 when sleeping; vector 0 raises nothing (as in the kernel's function).
        *regs.reg(k_reg_irq_number) = by_irq ? 1 : 0;
        auto* s = reinterpret_cast<volatile std::uint64_t*>(src.bytes());
        auto* d = reinterpret_cast<volatile std::uint64_t*>(dst.bytes());
        const std::size_t last = size / 8 ? size / 8 - 1 : 0;
        std::uint64_t stale = 0;
        std::string failure;
        // One COPY through the registers; every copy's first and last words carry a stamp
        // that must arrive.
        auto copy_once = [&](std::uint64_t stamp) {
            if (size >= 8) {
                s[0] = stamp;
                s[last] = ~stamp;
            }
            *regs.reg(k_reg_status) = 0;
            std::atomic_thread_fence(std::memory_order_seq_cst);
            *regs.reg(k_reg_command) = k_command_copy;
            const auto deadline = Clock::now() + o.timeout;
            if (by_irq) {
                if (!device->wait_interrupt(o.timeout))
                    throw Error(ErrorKind::timeout, "device " + fdid_text(fdid) +
                                                        ": no interrupt after COPY within " +
                                                        std::to_string(o.timeout.count()) + " ms");
            }
            // STATUS is written before the interrupt is raised: after one it is already there.
            std::uint32_t status = 0;
            for (unsigned spins = 1;; ++spins) {
                status = *regs.reg(k_reg_status);
                if (status & (k_status_copy_success | k_status_copy_fail))
                    break;
                _mm_pause();
                // Past a few microseconds the device's engine may need this CPU: yield it.
                if (spins > k_spins_before_yield)
                    sched_yield();
                if (spins % 4096 == 0 && Clock::now() > deadline)
                    throw Error(ErrorKind::timeout, "device " + fdid_text(fdid) +
                                                        ": COPY did not complete within " +
                                                        std::to_string(o.timeout.count()) + " ms");
            }
            std::atomic_thread_fence(std::memory_order_acquire);
            if (!(status & k_status_copy_success) && failure.empty())
                failure = "COPY failed, STATUS 0x" +
                          [&] {
                              char b[16];
                              std::snprintf(b, sizeof b, "%x", status);
                              return std::string(b);
                          }() +
                          (status & k_status_src_invalid ? " (SRC_ADDR_INVALID)" : "") +
                          (status & k_status_dst_invalid ? " (DST_ADDR_INVALID)" : "");
            if (size >= 8 && (d[0] != stamp || d[last] != ~stamp))
                ++stale;
        };
        MemcpyRounds yardstick(o, size);
        Totals totals;
        std::uint64_t stamp = 0, rounds_checked = 0, rounds_bad = 0;
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = round_options(o, r, rounds);
            fill_pattern(src.bytes(), size, size * 31 + r);
            std::memset(dst.bytes(), 0, size);
            auto loop = timed_loop(ro, [&](std::uint64_t) { copy_once(++stamp); });
            totals.add(loop);
            // The whole payload of the round's last copy.
            ++rounds_checked;
            if (checksum(dst.bytes(), size) != checksum(src.bytes(), size))
                ++rounds_bad;
            yardstick.round(ro, loop.iterations);
        }
        auto result = bandwidth_result(size, "epf-copy-dma", totals.loop());
        if (!failure.empty())
            set_payload(result, Payload::failed, failure);
        else if (stale || rounds_bad)
            set_payload(result, Payload::failed,
                        std::to_string(stale) + " copies without their stamp, " +
                            std::to_string(rounds_bad) + " of " + std::to_string(rounds_checked) +
                            " rounds with a wrong payload");
        else
            set_payload(result, Payload::verified,
                        "every copy's stamps and each round's checksum match");
        rep.results.push_back(std::move(result));
        yardstick.finish(rep);
    }
    regs.close();
    device->give_back();
}

void device_test(const BenchOptions& o, Report& rep) {
    if (!o.device)
        throw Error(ErrorKind::invalid_input, std::string(to_string(o.test)) + " needs --device");
    sci::Library library;
    sci::Descriptor sd(library);
    rep.local_node = sci::local_node_id(o.adapter);
    rep.remote_node = *o.device >> 16;
    if (o.test == TestKind::device_cycle)
        device_cycle(o, sd.get(), rep);
    else
        device_copy(o, sd.get(), rep);
}

} // namespace dis::bench::detail
