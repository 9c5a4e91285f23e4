// Emulated PCIe endpoints that a lender node offers for lending (issue 9): the Linux pci-epf-test
// function and a plain-memory device, each with BARs in sealed memfds and an IO address space
// through which its "DMA engine" reaches borrower memory. Transport independent: no sockets and
// no threads of its own; disd drives it (lib/endpoint/README.md). The pcitest suite that tests
// such a device from the borrower's side is in dis/endpoint_pcitest.hpp.
#pragma once

#include "dis/unique_fd.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dis::endpoint {

// vfio: a real function bound to vfio-pci on the lender's host (dis/vfio.hpp), not emulated.
enum class Kind { epf_test, memory, vfio };
const char* to_string(Kind kind) noexcept; // "epf-test", "memory", "vfio"
std::optional<Kind> kind_from_string(std::string_view text) noexcept;

// The registers of pci-epf-test in its register BAR (BAR0), as Linux 6.x defines them in
// drivers/pci/endpoint/functions/pci-epf-test.c and drivers/misc/pci_endpoint_test.c.
namespace epf {
inline constexpr std::uint32_t k_magic = 0x00;
inline constexpr std::uint32_t k_command = 0x04;
inline constexpr std::uint32_t k_status = 0x08;
inline constexpr std::uint32_t k_lower_src_addr = 0x0c;
inline constexpr std::uint32_t k_upper_src_addr = 0x10;
inline constexpr std::uint32_t k_lower_dst_addr = 0x14;
inline constexpr std::uint32_t k_upper_dst_addr = 0x18;
inline constexpr std::uint32_t k_size = 0x1c;
inline constexpr std::uint32_t k_checksum = 0x20;
inline constexpr std::uint32_t k_irq_type = 0x24;
inline constexpr std::uint32_t k_irq_number = 0x28;
inline constexpr std::uint32_t k_flags = 0x2c;
inline constexpr std::uint32_t k_caps = 0x30;
inline constexpr std::uint32_t k_register_bytes = 0x34; // the block the function owns

// COMMAND: exactly one bit per command (6.x dispatches on the whole value).
inline constexpr std::uint32_t k_command_raise_intx_irq = 1u << 0;
inline constexpr std::uint32_t k_command_raise_msi_irq = 1u << 1;
inline constexpr std::uint32_t k_command_raise_msix_irq = 1u << 2;
inline constexpr std::uint32_t k_command_read = 1u << 3;  // the device reads SRC, checks CHECKSUM
inline constexpr std::uint32_t k_command_write = 1u << 4; // the device writes DST, sets CHECKSUM
inline constexpr std::uint32_t k_command_copy = 1u << 5;  // SRC -> DST

inline constexpr std::uint32_t k_status_read_success = 1u << 0;
inline constexpr std::uint32_t k_status_read_fail = 1u << 1;
inline constexpr std::uint32_t k_status_write_success = 1u << 2;
inline constexpr std::uint32_t k_status_write_fail = 1u << 3;
inline constexpr std::uint32_t k_status_copy_success = 1u << 4;
inline constexpr std::uint32_t k_status_copy_fail = 1u << 5;
inline constexpr std::uint32_t k_status_irq_raised = 1u << 6;
inline constexpr std::uint32_t k_status_src_addr_invalid = 1u << 7;
inline constexpr std::uint32_t k_status_dst_addr_invalid = 1u << 8;

inline constexpr std::uint32_t k_flag_use_dma = 1u << 0;

inline constexpr std::uint32_t k_cap_unaligned_access = 1u << 0;
inline constexpr std::uint32_t k_cap_msi = 1u << 1;
inline constexpr std::uint32_t k_cap_msix = 1u << 2;
inline constexpr std::uint32_t k_cap_intx = 1u << 3;
} // namespace epf

// IRQ_TYPE register values (and PCITEST_IRQ_TYPE_* of include/uapi/linux/pcitest.h).
enum class IrqType : int { intx = 0, msi = 1, msix = 2 };
const char* to_string(IrqType type) noexcept; // "INTX", "MSI", "MSI-X"

// One declared device: the text after NODE of a fabric config `device` line, or `disd --device`.
struct DeviceSpec {
    Kind kind = Kind::epf_test;
    std::string name; // default: the kind's name (vfio: the address, ':' as '-')
    std::string bdf;  // vfio: the function's PCI address "0000:04:00.0"; ids, class and BARs
                      // are read from the device when disd opens it
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::uint32_t class_code = 0;    // 24 bits: base class, subclass, prog-if
    std::vector<std::uint64_t> bars; // sizes in bytes, BAR0 first (1..6 of them)
    std::uint32_t vfs = 0;           // SR-IOV VFs: each its own device right after its PF
    int vf_index = -1;               // -1: a physical function; else this VF's number from 0
    std::chrono::milliseconds reset_time{20};
    bool fail_reset = false;           // every reset reports failure (memory is still cleared)
    bool hang_reset = false;           // a reset never finishes: reset() returns timed_out
    bool unresponsive = false;         // commands are never executed
    std::uint32_t msi_vectors = 32;    // MSI interrupts the function offers (pci-epf-test: 1..32)
    std::uint32_t msix_vectors = 2048; // MSI-X interrupts (1..2048)
};

// Defaults per kind. epf-test: TI 0x104c:0xb500 (DRA74x, the first entry of pci_endpoint_test's
// id table, register BAR 0), class 0xff0000, BARs 512, 512, 1K, 16K, 128K, 1M. memory: the ids of
// QEMU's ivshmem 0x1af4:0x1110 (a device whose BAR is plain shared memory), class 0x050000
// (memory controller, RAM), one BAR of 1M.
DeviceSpec default_spec(Kind kind);

// Parses "vfio:BDF[,name=NAME]" (a real function bound to vfio-pci), or "epf-test name=ep0
// vendor=0x104c device=0xb500 class=0xff0000 bars=512,512,1K vfs=2 reset_ms=5 fail_reset=1
// hang_reset=1 unresponsive=1 msi=32 msix=2048". Numbers are decimal or 0x-hex; sizes take K, M or
// G (binary). Throws dis::Error(invalid_input) naming the key.
DeviceSpec parse_device_spec(std::string_view text);
// The spec in the form parse_device_spec() reads (every key written).
std::string format_device_spec(const DeviceSpec& spec);
// The functions a spec declares: the PF, then its VFs (vf_index 0.., vfs 0, name "NAME-vfN").
std::vector<DeviceSpec> expand_functions(const DeviceSpec& spec);

// crc32_le(~0, buf, len) as the kernel computes it: reflected CRC-32 (polynomial 0xedb88320),
// initial value ~0, no final inversion (= ~zlib's crc32(0, buf, len)).
std::uint32_t kernel_crc32(std::span<const std::byte> data) noexcept;
std::uint32_t kernel_crc32(std::uint32_t crc, std::span<const std::byte> data) noexcept;

// Memory the device can reach: a mapping of borrower memory, kept alive while the device uses it.
class Mapping {
public:
    // Maps `size` bytes at `offset` of a memory file (MAP_SHARED, read-write). The file must be
    // sealed against shrinking (else the owner could shrink it under the device: SIGBUS) and hold
    // offset + size bytes; throws dis::Error(invalid_input) otherwise, os if mmap fails.
    static std::shared_ptr<Mapping> map_fd(int fd, std::uint64_t offset, std::uint64_t size);
    // Memory mapped elsewhere (tests, in-process targets); `owner` is kept alive with it.
    static std::shared_ptr<Mapping> external(std::span<std::byte> memory,
                                             std::shared_ptr<void> owner = {});
    ~Mapping();
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;

    std::span<std::byte> bytes() const { return m_bytes; }

private:
    Mapping() = default;
    std::span<std::byte> m_bytes;
    void* m_map_base = nullptr; // what to munmap (page aligned), null for external memory
    std::size_t m_map_length = 0;
    std::shared_ptr<void> m_owner;
};

// A range of IO space the device may touch; holds its mapping so that an unmap meanwhile cannot
// pull the memory away under a transfer.
struct IoSpan {
    std::span<std::byte> bytes;
    std::shared_ptr<Mapping> mapping;
};

// The device's IO address space: borrower memory mapped "for the device" (what
// SCIMap{Local,Remote}SegmentForDevice return). Each mapping starts on a fresh page, with at least
// one unmapped guard page after the previous one; the in-page offset of the memory is kept.
// Addresses are never reused, not even after clear(), so a stale address cannot reach new
// memory. Thread safe.
class IoSpace {
public:
    static constexpr std::uint64_t k_base = 0x1'0000'0000; // above 4 GiB: both halves matter
    static constexpr std::uint64_t k_page = 4096;

    std::uint64_t map(std::shared_ptr<Mapping> mapping);
    std::uint64_t map_fd(int fd, std::uint64_t offset, std::uint64_t size) {
        return map(Mapping::map_fd(fd, offset, size));
    }
    // Removes the mapping that starts at io_addr; false if none does.
    bool unmap(std::uint64_t io_addr);
    // The memory behind [addr, addr + len) if that range lies wholly inside one mapping.
    std::optional<IoSpan> translate(std::uint64_t addr, std::uint64_t len) const;
    void clear();
    std::size_t mapping_count() const;

private:
    mutable std::mutex m_mutex;
    std::map<std::uint64_t, std::shared_ptr<Mapping>> m_mappings; // by first IO address
    std::uint64_t m_next = k_base;
};

enum class ResetResult { ok, failed, timed_out };
const char* to_string(ResetResult result) noexcept; // "ok", "failed", "timed_out"

// One emulated function. Thread safe: disd's engine thread polls it while its lending worker
// resets or quiesces it and its main thread maps borrower memory.
class Device {
public:
    // Creates the BARs (sealed memfds, zeroed, mapped once here) and initialises the registers as
    // pci-epf-test has them after bind. Throws dis::Error(os) if memory cannot be had.
    explicit Device(DeviceSpec spec);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    const DeviceSpec& spec() const { return m_spec; }
    int bar_count() const { return static_cast<int>(m_bars.size()); }
    std::uint64_t bar_size(int bar) const; // 0 for a BAR the device does not have
    int bar_fd(int bar) const;             // the memfd (owned here; dup it to hand it out)
    std::span<std::byte> bar_memory(int bar) const;
    // epf-test: the register block (BAR0's mapping); nullptr for the memory kind.
    volatile std::uint32_t* registers();
    std::uint32_t read_register(std::uint32_t offset) const;
    void write_register(std::uint32_t offset, std::uint32_t value);
    IoSpace& io() { return m_io; }

    using RaiseIrq = std::function<void(int irq_type, int irq_number)>;
    // Looks at COMMAND once; executes a pending command as pci-epf-test does (clears COMMAND and
    // STATUS, runs READ/WRITE/COPY through io().translate with its own "DMA engine", sets
    // *_SUCCESS/*_FAIL and SRC/DST_ADDR_INVALID, sets IRQ_RAISED and calls raise(IRQ_TYPE,
    // IRQ_NUMBER)). Returns true if it did work. Never blocks on a reset in progress.
    bool poll(const RaiseIrq& raise);
    bool command_pending() const; // COMMAND is not zero
    // When poll() first saw the command that is still pending (an unresponsive device, or one
    // in reset); nullopt if none is. disd's watchdog: pending longer than --command-timeout.
    std::optional<std::chrono::steady_clock::time_point> command_pending_since() const;

    // The last READ/WRITE/COPY: what pci_epf_test_print_rate() logs (the device's own time for
    // the data, without the interrupt's way to the host).
    struct TransferStats {
        std::uint32_t command = 0;
        std::uint64_t bytes = 0;
        bool dma = false;
        bool ok = false;
        std::chrono::nanoseconds elapsed{0};
    };
    std::optional<TransferStats> last_transfer() const;

    // Clears the IO space (the borrower's memory is out of the device's reach once it returns;
    // a command in progress finishes first).
    void quiesce();
    // Reset: clears every BAR and the IO space, re-initialises the registers; takes
    // reset_time; with fail_reset reports failed, with hang_reset (or a reset_time past
    // `timeout`) returns timed_out after `timeout` and the device stays in reset (commands
    // are not executed) until a later reset completes. Blocking.
    ResetResult reset(std::chrono::milliseconds timeout);
    bool in_reset() const { return m_in_reset.load(); }

    // Fault switches for tests and admin (the spec's initial values).
    void set_fail_reset(bool on) { m_fail_reset = on; }
    void set_hang_reset(bool on) { m_hang_reset = on; }
    void set_unresponsive(bool on) { m_unresponsive = on; }

    // Test hook: called after a READ/WRITE/COPY moved its data and before STATUS is written,
    // with the command and the destination bytes (empty for READ or a failed command); a test
    // corrupts them to show that a suite can fail.
    using CommandHook = std::function<void(std::uint32_t command, std::span<std::byte> dst)>;
    void set_command_hook(CommandHook hook);

private:
    struct Bar {
        UniqueFd fd;
        std::byte* memory = nullptr;
        std::uint64_t size = 0;
    };
    void init_registers();
    void clear_bars();
    // Runs one command; returns the interrupt to raise (type, number), if any.
    std::optional<std::pair<int, int>> execute(std::uint32_t command);
    std::uint32_t do_read();
    std::uint32_t do_write();
    std::uint32_t do_copy(std::uint32_t flags);
    std::optional<std::pair<int, int>> irq_to_raise() const;
    std::uint32_t caps() const;
    void fill_random(std::span<std::byte> out);
    void note_pending();

    DeviceSpec m_spec;
    std::vector<Bar> m_bars;
    IoSpace m_io;
    mutable std::mutex m_mutex; // command execution, register init, scratch, m_last
    std::mutex m_reset_mutex;   // one reset at a time
    std::vector<std::byte> m_scratch;
    std::uint64_t m_random_state;
    CommandHook m_hook;
    std::optional<TransferStats> m_last;
    std::atomic<bool> m_in_reset{false};
    std::atomic<bool> m_fail_reset;
    std::atomic<bool> m_hang_reset;
    std::atomic<bool> m_unresponsive;
    std::atomic<std::int64_t> m_pending_since_ns{0}; // steady_clock; 0: nothing pending
};

} // namespace dis::endpoint
