// CRC-32 as the kernel's crc32_le(): reflected, polynomial 0xedb88320, the caller's initial value
// and no final inversion. Slicing by 8 (eight tables built at compile time) keeps a 1 MiB READ or
// WRITE check well under a millisecond.
#include "dis/endpoint.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace dis::endpoint {
namespace {

constexpr std::uint32_t k_polynomial = 0xedb88320u;
static_assert(std::endian::native == std::endian::little, "the slicing tables assume it");

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
    Tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int bit = 0; bit < 8; ++bit) {
            c = (c & 1u) ? (c >> 1) ^ k_polynomial : c >> 1;
        }
        t[0][i] = c;
    }
    for (std::size_t k = 1; k < 8; ++k) {
        for (std::uint32_t i = 0; i < 256; ++i) {
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xffu];
        }
    }
    return t;
}

constexpr Tables k_tables = make_tables();

} // namespace

std::uint32_t kernel_crc32(std::uint32_t crc, std::span<const std::byte> data) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    while (n >= 8) {
        std::uint32_t lo = 0;
        std::uint32_t hi = 0;
        std::memcpy(&lo, p, 4); // little endian, as the tables assume (x86-64, arm64)
        std::memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = k_tables[7][lo & 0xffu] ^ k_tables[6][(lo >> 8) & 0xffu] ^
              k_tables[5][(lo >> 16) & 0xffu] ^ k_tables[4][lo >> 24] ^ k_tables[3][hi & 0xffu] ^
              k_tables[2][(hi >> 8) & 0xffu] ^ k_tables[1][(hi >> 16) & 0xffu] ^
              k_tables[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) {
        crc = (crc >> 8) ^ k_tables[0][(crc ^ *p++) & 0xffu];
    }
    return crc;
}

std::uint32_t kernel_crc32(std::span<const std::byte> data) noexcept {
    return kernel_crc32(~0u, data);
}

} // namespace dis::endpoint
