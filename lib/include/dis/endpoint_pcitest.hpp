// The kernel's pci_endpoint_test suite (drivers/misc/pci_endpoint_test.c driven by
// tools/testing/selftests/pci_endpoint of Linux 6.x), run from the host's side against an
// abstract target: in-process for unit tests (LocalTarget), over the SISCI SmartIO API for
// `dis-tool device test`. Transport independent; lib/endpoint/README.md lists the tests.
#pragma once

#include "dis/endpoint.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::endpoint {

// Host memory the device can reach: `data` for the CPU, `io_addr` for the device's registers.
struct HostBuffer {
    std::byte* data = nullptr;
    std::uint64_t io_addr = 0;
    std::size_t size = 0;
    std::uint64_t handle = 0; // the target's own
};

struct Interrupt {
    IrqType type = IrqType::intx;
    std::uint32_t number = 0; // MSI/MSI-X vectors count from 1; INTX is 0
    bool operator==(const Interrupt&) const = default;
};

// What the suite needs of a device under test.
class TestTarget {
public:
    virtual ~TestTarget() = default;
    // Size of BAR `bar` (0..5); 0 if the device does not have it.
    virtual std::uint64_t bar_size(int bar) = 0;
    // The BAR mapped for the CPU (accessed in 32-bit words); nullptr if it cannot be mapped.
    virtual volatile void* bar(int bar) = 0;
    // At least `size` bytes the device can reach. Throws dis::Error if it cannot.
    virtual HostBuffer alloc_buffer(std::size_t size) = 0;
    virtual void free_buffer(const HostBuffer& buffer) = 0;
    // The next interrupt the device raised, waiting at most `timeout`; nullopt if none came.
    virtual std::optional<Interrupt> wait_irq(std::chrono::milliseconds timeout) = 0;
};

enum class Outcome { okay, failed, skipped };
const char* to_string(Outcome outcome) noexcept; // "OKAY", "FAILED", "SKIPPED"

struct TestResult {
    std::string name; // "BAR_TEST.BAR0", "MSI_TEST", "COPY_TEST.dma.1024001", ...
    Outcome outcome = Outcome::okay;
    std::string detail; // why it failed or was skipped; what was checked when it passed
    std::chrono::microseconds elapsed{0};
};

struct TestOptions {
    bool bar_tests = true;             // BAR_TEST for each BAR
    bool consecutive_bars = true;      // CONSECUTIVE_BAR_TEST
    bool irq_tests = true;             // LEGACY_IRQ_TEST, MSI_TEST, MSIX_TEST
    bool transfer_tests = true;        // READ_TEST, WRITE_TEST, COPY_TEST, memcpy and dma
    int test_reg_bar = 0;              // the register BAR (0 for the default 0x104c:0xb500)
    std::uint32_t msi_vectors = 32;    // MSI 1..N, as the selftest
    std::uint32_t msix_vectors = 2048; // MSI-X 1..N, as the selftest
    // The interrupt transfers complete with; nullopt: the kernel's AUTO (MSI, else MSI-X, else
    // INTX, as CAPS says).
    std::optional<IrqType> transfer_irq;
    std::vector<std::uint32_t> sizes{1, 1024, 1025, 1024000, 1024001};
    // Buffer alignment for a device without CAP_UNALIGNED_ACCESS (pci_endpoint_test's default).
    std::size_t alignment = 4096;
    std::chrono::milliseconds irq_timeout{1000}; // as the kernel's interrupt tests
    std::chrono::milliseconds transfer_timeout{10000};
    std::function<void(const TestResult&)> on_result; // each result as it is known
};

// Runs the suite. A test that cannot run on this device (a BAR it does not have, an interrupt
// type CAPS does not list) is SKIPPED, never OKAY. Never throws for a device fault; throws
// dis::Error only if the target itself fails (e.g. alloc_buffer).
std::vector<TestResult> run_pcitest(TestTarget& target, const TestOptions& options = {});
// True if no result FAILED.
bool all_passed(const std::vector<TestResult>& results) noexcept;

// An in-process target: the device's own BAR memory and an IO space holding memfd buffers;
// wait_irq() polls the device inline (no thread), so a test is deterministic.
class LocalTarget : public TestTarget {
public:
    explicit LocalTarget(Device& device);
    ~LocalTarget() override;
    LocalTarget(const LocalTarget&) = delete;
    LocalTarget& operator=(const LocalTarget&) = delete;

    std::uint64_t bar_size(int bar) override;
    volatile void* bar(int bar) override;
    HostBuffer alloc_buffer(std::size_t size) override;
    void free_buffer(const HostBuffer& buffer) override;
    std::optional<Interrupt> wait_irq(std::chrono::milliseconds timeout) override;

private:
    Device& m_device;
    std::deque<Interrupt> m_irqs;
    std::map<std::uint64_t, std::pair<std::uint64_t, std::shared_ptr<Mapping>>> m_buffers;
    std::uint64_t m_next_handle = 1;
};

} // namespace dis::endpoint
