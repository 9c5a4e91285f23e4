// Helpers for the endpoint tests: borrower memory in a sealed memfd, mapped whole by the test so
// that bytes around the part the device may reach serve as guards.
#pragma once

#include "dis/endpoint.hpp"
#include "dis/unique_fd.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace endpoint_test {

inline constexpr std::byte k_guard{0xee};

// A memory file of `size` bytes filled with guard bytes, mapped whole by the test.
class HostMemory {
public:
    explicit HostMemory(std::size_t size) : m_size(size) {
        m_fd = dis::UniqueFd(::memfd_create("endpoint-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!m_fd.valid() || ::ftruncate(m_fd.get(), static_cast<off_t>(size)) != 0 ||
            ::fcntl(m_fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
            throw std::runtime_error("memfd");
        }
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m_fd.get(), 0);
        if (p == MAP_FAILED) {
            throw std::runtime_error("mmap");
        }
        m_bytes = static_cast<std::byte*>(p);
        std::fill(m_bytes, m_bytes + size, k_guard);
    }
    ~HostMemory() { ::munmap(m_bytes, m_size); }
    HostMemory(const HostMemory&) = delete;
    HostMemory& operator=(const HostMemory&) = delete;

    int fd() const { return m_fd.get(); }
    std::span<std::byte> bytes() const { return {m_bytes, m_size}; }
    std::span<std::byte> range(std::size_t offset, std::size_t len) const {
        return {m_bytes + offset, len};
    }
    // True if every byte outside [offset, offset + len) still holds the guard value.
    bool guards_intact(std::size_t offset, std::size_t len) const {
        for (std::size_t i = 0; i < m_size; ++i) {
            if ((i < offset || i >= offset + len) && m_bytes[i] != k_guard) {
                return false;
            }
        }
        return true;
    }

private:
    dis::UniqueFd m_fd;
    std::byte* m_bytes = nullptr;
    std::size_t m_size;
};

inline void fill_pattern(std::span<std::byte> out, unsigned seed) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
    }
}

// The register writes a host does before a transfer command.
inline void program(dis::endpoint::Device& dev, std::uint32_t command, std::uint64_t src,
                    std::uint64_t dst, std::uint32_t size, std::uint32_t flags = 0,
                    dis::endpoint::IrqType type = dis::endpoint::IrqType::msi,
                    std::uint32_t number = 1) {
    namespace epf = dis::endpoint::epf;
    dev.write_register(epf::k_lower_src_addr, static_cast<std::uint32_t>(src));
    dev.write_register(epf::k_upper_src_addr, static_cast<std::uint32_t>(src >> 32));
    dev.write_register(epf::k_lower_dst_addr, static_cast<std::uint32_t>(dst));
    dev.write_register(epf::k_upper_dst_addr, static_cast<std::uint32_t>(dst >> 32));
    dev.write_register(epf::k_size, size);
    dev.write_register(epf::k_flags, flags);
    dev.write_register(epf::k_irq_type, static_cast<std::uint32_t>(type));
    dev.write_register(epf::k_irq_number, number);
    dev.write_register(epf::k_command, command);
}

struct Irq {
    int type;
    int number;
    bool operator==(const Irq&) const = default;
};

// Polls once and returns the interrupts raised.
inline std::vector<Irq> poll_once(dis::endpoint::Device& dev, bool* did_work = nullptr) {
    std::vector<Irq> irqs;
    bool work = dev.poll([&](int type, int number) { irqs.push_back({type, number}); });
    if (did_work != nullptr) {
        *did_work = work;
    }
    return irqs;
}

} // namespace endpoint_test
