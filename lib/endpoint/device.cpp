// One emulated function: its BARs (sealed memfds), its registers, reset and fault behaviour, and
// pci-epf-test's command handler (pci_epf_test_cmd_handler() of Linux 6.x) with its own "DMA
// engine" moving data through the IO space.
#include "dis/endpoint.hpp"

#include "dis/error.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

namespace dis::endpoint {
namespace {

// A WRITE whose destination is invalid still sets CHECKSUM (the kernel computes it before
// mapping); past this size the kernel's buffer allocation would fail first: WRITE_FAIL alone.
constexpr std::uint64_t k_max_unmapped_write = 64ull << 20;
constexpr std::size_t k_chunk = 64 << 10; // the CPU path's bounce buffer, WRITE's random block

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

UniqueFd make_bar_memfd(const std::string& name, std::uint64_t size) {
    UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        throw os_error("memfd_create for " + name, errno);
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        throw os_error("ftruncate for " + name, errno);
    }
    // The size is part of the contract with every borrower that maps it.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        throw os_error("sealing " + name, errno);
    }
    return fd;
}

// A 64-bit address register pair: LOWER at `lower`, UPPER after it.
std::uint64_t read_address(const Device& dev, std::uint32_t lower) {
    return (std::uint64_t{dev.read_register(lower + 4)} << 32) | dev.read_register(lower);
}

} // namespace

Device::Device(DeviceSpec spec)
    : m_spec(std::move(spec)), m_random_state(std::random_device{}()),
      m_fail_reset(m_spec.fail_reset), m_hang_reset(m_spec.hang_reset),
      m_unresponsive(m_spec.unresponsive) {
    if (m_spec.kind == Kind::vfio) {
        throw Error(ErrorKind::invalid_input,
                    "device " + m_spec.name + ": a vfio device is opened with vfio::Device");
    }
    if (m_spec.bars.empty() || m_spec.bars.size() > 6) {
        throw Error(ErrorKind::invalid_input, "device " + m_spec.name + ": 1 to 6 BARs");
    }
    if (m_spec.kind == Kind::epf_test && m_spec.bars[0] < epf::k_register_bytes) {
        throw Error(ErrorKind::invalid_input,
                    "device " + m_spec.name + ": BAR0 too small for the registers");
    }
    m_random_state = (m_random_state << 32) ^ static_cast<std::uint64_t>(now_ns());
    for (std::size_t b = 0; b < m_spec.bars.size(); ++b) {
        std::uint64_t size = m_spec.bars[b];
        if (size == 0) {
            throw Error(ErrorKind::invalid_input,
                        "device " + m_spec.name + ": BAR" + std::to_string(b) + " of size 0");
        }
        Bar bar;
        bar.fd = make_bar_memfd("dis-" + m_spec.name + "-bar" + std::to_string(b), size);
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, bar.fd.get(), 0);
        if (p == MAP_FAILED) {
            int e = errno;
            for (Bar& done : m_bars) {
                ::munmap(done.memory, done.size);
            }
            throw os_error("mapping BAR" + std::to_string(b) + " of " + m_spec.name, e);
        }
        bar.memory = static_cast<std::byte*>(p);
        bar.size = size;
        m_bars.push_back(std::move(bar));
    }
    init_registers();
}

Device::~Device() {
    for (Bar& bar : m_bars) {
        ::munmap(bar.memory, bar.size);
    }
}

std::uint64_t Device::bar_size(int bar) const {
    return bar >= 0 && bar < bar_count() ? m_bars[static_cast<std::size_t>(bar)].size : 0;
}

int Device::bar_fd(int bar) const {
    return bar >= 0 && bar < bar_count() ? m_bars[static_cast<std::size_t>(bar)].fd.get() : -1;
}

std::span<std::byte> Device::bar_memory(int bar) const {
    if (bar < 0 || bar >= bar_count()) {
        return {};
    }
    const Bar& b = m_bars[static_cast<std::size_t>(bar)];
    return {b.memory, b.size};
}

volatile std::uint32_t* Device::registers() {
    if (m_spec.kind != Kind::epf_test) {
        return nullptr;
    }
    return reinterpret_cast<volatile std::uint32_t*>(m_bars[0].memory);
}

// Registers are shared with other processes (the borrower maps BAR0): 32-bit atomic accesses.
std::uint32_t Device::read_register(std::uint32_t offset) const {
    if (offset % 4 != 0 || offset + 4 > m_bars[0].size) {
        throw Error(ErrorKind::invalid_input, "register offset " + std::to_string(offset));
    }
    auto* word = reinterpret_cast<std::uint32_t*>(m_bars[0].memory + offset);
    return std::atomic_ref<std::uint32_t>(*word).load(std::memory_order_acquire);
}

void Device::write_register(std::uint32_t offset, std::uint32_t value) {
    if (offset % 4 != 0 || offset + 4 > m_bars[0].size) {
        throw Error(ErrorKind::invalid_input, "register offset " + std::to_string(offset));
    }
    auto* word = reinterpret_cast<std::uint32_t*>(m_bars[0].memory + offset);
    std::atomic_ref<std::uint32_t>(*word).store(value, std::memory_order_release);
}

std::uint32_t Device::caps() const {
    // Our engine reaches any byte address (the kernel's CAP_UNALIGNED_ACCESS: no alignment
    // needed from the host); INTX always, MSI and MSI-X when the function has vectors.
    std::uint32_t caps = epf::k_cap_unaligned_access | epf::k_cap_intx;
    if (m_spec.msi_vectors > 0) {
        caps |= epf::k_cap_msi;
    }
    if (m_spec.msix_vectors > 0) {
        caps |= epf::k_cap_msix;
    }
    return caps;
}

// As after bind: the register block zeroed (pci_epf_alloc_space), CAPS written.
void Device::init_registers() {
    if (m_spec.kind != Kind::epf_test) {
        return;
    }
    for (std::uint32_t off = 0; off < epf::k_register_bytes; off += 4) {
        write_register(off, 0);
    }
    write_register(epf::k_caps, caps());
}

void Device::clear_bars() {
    for (Bar& bar : m_bars) {
        // Punching the whole file out zeroes it for every mapper and gives the memory back.
        if (::fallocate(bar.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                        static_cast<off_t>(bar.size)) != 0) {
            std::memset(bar.memory, 0, bar.size);
        }
    }
}

bool Device::command_pending() const {
    return m_spec.kind == Kind::epf_test && read_register(epf::k_command) != 0;
}

std::optional<std::chrono::steady_clock::time_point> Device::command_pending_since() const {
    std::int64_t ns = m_pending_since_ns.load();
    if (ns == 0) {
        return std::nullopt;
    }
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

void Device::note_pending() {
    std::int64_t expected = 0;
    m_pending_since_ns.compare_exchange_strong(expected, now_ns());
}

std::optional<Device::TransferStats> Device::last_transfer() const {
    std::lock_guard lock(m_mutex);
    return m_last;
}

void Device::set_command_hook(CommandHook hook) {
    std::lock_guard lock(m_mutex);
    m_hook = std::move(hook);
}

bool Device::poll(const RaiseIrq& raise) {
    if (m_spec.kind != Kind::epf_test) {
        return false;
    }
    if (read_register(epf::k_command) == 0) {
        m_pending_since_ns = 0;
        return false;
    }
    if (m_in_reset || m_unresponsive) {
        note_pending();
        return false;
    }
    std::optional<std::pair<int, int>> irq;
    {
        std::lock_guard lock(m_mutex);
        std::uint32_t command = read_register(epf::k_command);
        if (m_in_reset || command == 0) {
            return false;
        }
        m_pending_since_ns = 0;
        irq = execute(command);
    }
    if (irq && raise) {
        raise(irq->first, irq->second);
    }
    return true;
}

void Device::quiesce() {
    std::lock_guard lock(m_mutex); // a command in progress finishes first
    m_io.clear();
}

ResetResult Device::reset(std::chrono::milliseconds timeout) {
    std::lock_guard serial(m_reset_mutex);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    m_in_reset = true;
    {
        std::lock_guard lock(m_mutex);
        m_io.clear();
        clear_bars();
        m_last.reset();
    }
    m_pending_since_ns = 0;
    if (m_hang_reset || m_spec.reset_time > timeout) {
        std::this_thread::sleep_until(deadline); // the reset does not finish in time
        return ResetResult::timed_out;
    }
    std::this_thread::sleep_for(m_spec.reset_time);
    {
        std::lock_guard lock(m_mutex);
        init_registers();
    }
    m_in_reset = false;
    return m_fail_reset ? ResetResult::failed : ResetResult::ok;
}

const char* to_string(ResetResult result) noexcept {
    switch (result) {
    case ResetResult::ok:
        return "ok";
    case ResetResult::failed:
        return "failed";
    case ResetResult::timed_out:
        return "timed_out";
    }
    return "?";
}

// ---- pci-epf-test's command handler ----

std::optional<std::pair<int, int>> Device::execute(std::uint32_t command) {
    write_register(epf::k_command, 0);
    write_register(epf::k_status, 0);
    std::uint32_t irq_type = read_register(epf::k_irq_type);
    if (irq_type > static_cast<std::uint32_t>(IrqType::msix)) {
        return std::nullopt; // "Failed to detect IRQ type": nothing done, no interrupt
    }
    std::uint32_t status = 0;
    auto start = std::chrono::steady_clock::now();
    std::uint32_t flags = read_register(epf::k_flags);
    switch (command) {
    case epf::k_command_raise_intx_irq:
    case epf::k_command_raise_msi_irq:
    case epf::k_command_raise_msix_irq:
        break; // raised as IRQ_TYPE says, like pci_epf_test_raise_irq()
    case epf::k_command_read:
        status = do_read();
        break;
    case epf::k_command_write:
        status = do_write();
        break;
    case epf::k_command_copy:
        status = do_copy(flags);
        break;
    default:
        return std::nullopt; // "Invalid command": nothing done, no interrupt
    }
    if ((command & (epf::k_command_read | epf::k_command_write | epf::k_command_copy)) != 0) {
        constexpr std::uint32_t k_ok =
            epf::k_status_read_success | epf::k_status_write_success | epf::k_status_copy_success;
        m_last =
            TransferStats{command, read_register(epf::k_size), (flags & epf::k_flag_use_dma) != 0,
                          (status & k_ok) != 0, std::chrono::steady_clock::now() - start};
    }
    // STATUS before the interrupt, so that the host sees it when the interrupt arrives.
    write_register(epf::k_status, status | epf::k_status_irq_raised);
    return irq_to_raise();
}

std::optional<std::pair<int, int>> Device::irq_to_raise() const {
    auto type = static_cast<IrqType>(read_register(epf::k_irq_type));
    std::uint32_t number = read_register(epf::k_irq_number);
    switch (type) {
    case IrqType::intx:
        return std::pair{static_cast<int>(type), 0};
    case IrqType::msi:
    case IrqType::msix: {
        std::uint32_t count = type == IrqType::msi ? m_spec.msi_vectors : m_spec.msix_vectors;
        // "Invalid MSI IRQ number": past the vectors the function has (or 0: vectors count
        // from 1), no interrupt although STATUS says IRQ_RAISED, as in the kernel.
        if (count == 0 || number == 0 || number > count) {
            return std::nullopt;
        }
        return std::pair{static_cast<int>(type), static_cast<int>(number)};
    }
    }
    return std::nullopt;
}

void Device::fill_random(std::span<std::byte> out) {
    // splitmix64: fast, and random enough for test data (the kernel uses get_random_bytes).
    std::size_t i = 0;
    while (i < out.size()) {
        std::uint64_t z = (m_random_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        std::size_t n = std::min<std::size_t>(8, out.size() - i);
        std::memcpy(out.data() + i, &z, n);
        i += n;
    }
}

// READ: the device reads SIZE bytes of host memory at SRC and checks their CRC against
// CHECKSUM (the host's WRITE test).
std::uint32_t Device::do_read() {
    std::uint32_t size = read_register(epf::k_size);
    std::uint64_t src = read_address(*this, epf::k_lower_src_addr);
    std::uint32_t crc = ~0u;
    if (size > 0) {
        auto span = m_io.translate(src, size);
        if (!span) {
            return epf::k_status_src_addr_invalid | epf::k_status_read_fail;
        }
        crc = kernel_crc32(span->bytes);
    }
    if (m_hook) {
        m_hook(epf::k_command_read, {});
    }
    return crc == read_register(epf::k_checksum) ? epf::k_status_read_success
                                                 : epf::k_status_read_fail;
}

// WRITE: the device fills SIZE bytes at DST with random data and puts their CRC in CHECKSUM
// (the host's READ test). CHECKSUM is written before the address is checked, as in the kernel.
std::uint32_t Device::do_write() {
    std::uint32_t size = read_register(epf::k_size);
    std::uint64_t dst = read_address(*this, epf::k_lower_dst_addr);
    std::optional<IoSpan> span;
    if (size > 0) {
        span = m_io.translate(dst, size);
        if (!span && size > k_max_unmapped_write) {
            return epf::k_status_write_fail;
        }
    }
    m_scratch.resize(std::min<std::size_t>(size, k_chunk));
    std::uint32_t crc = ~0u;
    for (std::size_t done = 0; done < size;) {
        std::size_t n = std::min<std::size_t>(k_chunk, size - done);
        std::span<std::byte> block(m_scratch.data(), n);
        fill_random(block);
        crc = kernel_crc32(crc, block);
        if (span) {
            std::memcpy(span->bytes.data() + done, block.data(), n);
        }
        done += n;
    }
    write_register(epf::k_checksum, crc);
    if (size > 0 && !span) {
        return epf::k_status_dst_addr_invalid | epf::k_status_write_fail;
    }
    if (m_hook) {
        m_hook(epf::k_command_write, span ? span->bytes : std::span<std::byte>{});
    }
    return epf::k_status_write_success;
}

// COPY: SIZE bytes from SRC to DST; no checksum (the host compares CRCs). With FLAG_USE_DMA one
// straight copy between the two spans, as a DMA engine's memcpy; without, the CPU path of the
// kernel (memcpy_fromio into a buffer, memcpy_toio out of it).
std::uint32_t Device::do_copy(std::uint32_t flags) {
    std::uint32_t size = read_register(epf::k_size);
    std::uint64_t src_addr = read_address(*this, epf::k_lower_src_addr);
    std::uint64_t dst_addr = read_address(*this, epf::k_lower_dst_addr);
    std::optional<IoSpan> dst; // held until the hook is done: an unmap cannot pull it away
    if (size > 0) {
        auto src = m_io.translate(src_addr, size);
        if (!src) {
            return epf::k_status_src_addr_invalid | epf::k_status_copy_fail;
        }
        dst = m_io.translate(dst_addr, size);
        if (!dst) {
            return epf::k_status_dst_addr_invalid | epf::k_status_copy_fail;
        }
        std::byte* to = dst->bytes.data();
        const std::byte* from = src->bytes.data();
        bool overlap = to < from + size && from < to + size;
        if ((flags & epf::k_flag_use_dma) != 0 || overlap) {
            std::memmove(to, from, size);
        } else {
            m_scratch.resize(std::min<std::size_t>(size, k_chunk));
            for (std::size_t done = 0; done < size;) {
                std::size_t n = std::min<std::size_t>(k_chunk, size - done);
                std::memcpy(m_scratch.data(), from + done, n);
                std::memcpy(to + done, m_scratch.data(), n);
                done += n;
            }
        }
    }
    if (m_hook) {
        m_hook(epf::k_command_copy, dst ? dst->bytes : std::span<std::byte>{});
    }
    return epf::k_status_copy_success;
}

} // namespace dis::endpoint
