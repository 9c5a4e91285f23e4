// CRC32 as the kernel computes it, and the IO address space every device transfer goes through.
#include "test_endpoint_support.hpp"

#include "dis/endpoint.hpp"
#include "dis/error.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string_view>

using namespace dis::endpoint;
using endpoint_test::HostMemory;

namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// The textbook bit-at-a-time CRC, as crc32_le() defines it (no table, no final inversion).
std::uint32_t reference_crc(std::uint32_t crc, std::span<const std::byte> data) {
    for (std::byte b : data) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc & 1u) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        }
    }
    return crc;
}

std::vector<std::byte> pattern_bytes(std::size_t n) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<std::byte>((i * 7 + 3) & 0xff);
    }
    return v;
}

} // namespace

TEST_CASE("endpoint crc32: known values of the kernel crc32_le with seed ~0", "[endpoint]") {
    // The CRC-32 check value of "123456789" is 0xcbf43926 with the final inversion; the
    // kernel's crc32_le(~0, ...) leaves it out. The others: ~zlib.crc32() of the same bytes.
    CHECK(kernel_crc32(as_bytes("123456789")) == 0x340bc6d9u);
    CHECK(kernel_crc32(as_bytes("")) == 0xffffffffu);
    CHECK(kernel_crc32(as_bytes("a")) == 0x174841bcu);
    CHECK(kernel_crc32(as_bytes("The quick brown fox jumps over the lazy dog")) == 0xbeb05cc6u);
    CHECK(kernel_crc32(pattern_bytes(1025)) == 0x6a12e2e5u);
    CHECK(kernel_crc32(pattern_bytes(1024001)) == 0xe5d82819u);
}

TEST_CASE("endpoint crc32: matches the bitwise definition at every length and alignment",
          "[endpoint]") {
    std::mt19937 rng(12345);
    std::vector<std::byte> data(600);
    for (auto& b : data) {
        b = static_cast<std::byte>(rng() & 0xff);
    }
    for (std::size_t start = 0; start < 9; ++start) {
        for (std::size_t len = 0; len + start <= 300; ++len) {
            std::span<const std::byte> s(data.data() + start, len);
            REQUIRE(kernel_crc32(s) == reference_crc(~0u, s));
        }
    }
    // Chaining: the crc of a whole equals the crc continued over its parts.
    std::span<const std::byte> all(data);
    CHECK(kernel_crc32(kernel_crc32(all.first(123)), all.subspan(123)) == kernel_crc32(all));
}

TEST_CASE("endpoint IO space: page-aligned addresses above 4 GiB with unmapped guard gaps",
          "[endpoint]") {
    HostMemory a(3 * 4096);
    HostMemory b(4096);
    IoSpace io;
    std::uint64_t addr_a = io.map_fd(a.fd(), 0, 2 * 4096 + 100);
    std::uint64_t addr_b = io.map_fd(b.fd(), 0, 4096);
    CHECK(addr_a >= IoSpace::k_base);
    CHECK(addr_a % 4096 == 0);
    CHECK(addr_b % 4096 == 0);
    CHECK(addr_b >= addr_a + 3 * 4096 + 4096); // a's last page, then a whole guard page
    CHECK(io.mapping_count() == 2);

    auto whole = io.translate(addr_a, 2 * 4096 + 100);
    REQUIRE(whole);
    CHECK(whole->bytes.data() != nullptr);
    CHECK(whole->bytes.size() == 2 * 4096 + 100);
    whole->bytes[0] = std::byte{1};
    CHECK(a.bytes()[0] == std::byte{1}); // the same memory, shared

    auto tail = io.translate(addr_a + 2 * 4096 + 99, 1);
    REQUIRE(tail);
    tail->bytes[0] = std::byte{2};
    CHECK(a.bytes()[2 * 4096 + 99] == std::byte{2}); // the last byte of the mapping

    // One byte past, a range running past the end, the guard gap, before the first mapping,
    // and a range spanning two mappings are all refused.
    CHECK_FALSE(io.translate(addr_a + 2 * 4096 + 100, 1));
    CHECK_FALSE(io.translate(addr_a + 4096, 2 * 4096));
    CHECK_FALSE(io.translate(addr_b - 1, 1));
    CHECK_FALSE(io.translate(addr_a - 1, 1));
    CHECK_FALSE(io.translate(0, 1));
    CHECK_FALSE(io.translate(addr_a, addr_b - addr_a + 1));
    CHECK_FALSE(io.translate(addr_a, ~0ull));
    CHECK_FALSE(io.translate(~0ull, 2));
    CHECK(io.translate(addr_b + 4095, 1));

    CHECK(io.unmap(addr_a));
    CHECK_FALSE(io.unmap(addr_a));
    CHECK_FALSE(io.translate(addr_a, 1));
    CHECK(io.translate(addr_b, 4096));

    io.clear();
    CHECK(io.mapping_count() == 0);
    CHECK_FALSE(io.translate(addr_b, 1));
    // Addresses are not handed out again after clear(): a stale one reaches nothing.
    std::uint64_t addr_c = io.map_fd(b.fd(), 0, 4096);
    CHECK(addr_c > addr_b);
}

TEST_CASE("endpoint IO space: an offset inside a page keeps its in-page offset", "[endpoint]") {
    HostMemory mem(3 * 4096);
    IoSpace io;
    std::uint64_t addr = io.map_fd(mem.fd(), 4096 + 24, 1000);
    CHECK(addr % 4096 == 24);
    auto span = io.translate(addr, 1000);
    REQUIRE(span);
    CHECK(span->bytes.data() != nullptr);
    span->bytes[0] = std::byte{7};
    CHECK(mem.bytes()[4096 + 24] == std::byte{7});
    CHECK_FALSE(io.translate(addr - 1, 1));
    CHECK_FALSE(io.translate(addr + 1000, 1));
}

TEST_CASE("endpoint IO space: refuses memory that is not sealed or too small", "[endpoint]") {
    IoSpace io;
    dis::UniqueFd plain(::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(::ftruncate(plain.get(), 4096) == 0);
    try {
        io.map_fd(plain.get(), 0, 4096);
        FAIL("an unsealed memfd was mapped");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::invalid_input);
        CHECK(std::string(e.what()).find("F_SEAL_SHRINK") != std::string::npos);
    }
    HostMemory mem(4096);
    CHECK_THROWS_AS(io.map_fd(mem.fd(), 0, 4097), dis::Error);
    CHECK_THROWS_AS(io.map_fd(mem.fd(), 4096, 1), dis::Error);
    CHECK_THROWS_AS(io.map_fd(mem.fd(), 0, 0), dis::Error);
    CHECK(io.mapping_count() == 0);
}

TEST_CASE("endpoint IO space: a span taken keeps its memory while it is unmapped", "[endpoint]") {
    IoSpace io;
    std::uint64_t addr = 0;
    {
        HostMemory mem(4096);
        addr = io.map_fd(mem.fd(), 0, 4096);
    } // the test's own mapping and fd are gone; the IO space holds its mapping
    auto span = io.translate(addr, 4096);
    REQUIRE(span);
    CHECK(io.unmap(addr));
    span->bytes[4095] = std::byte{9}; // still mapped: the span holds it
    CHECK(span->bytes[4095] == std::byte{9});
    CHECK_FALSE(io.translate(addr, 1));
}

TEST_CASE("endpoint IO space: external memory", "[endpoint]") {
    auto owner = std::make_shared<std::vector<std::byte>>(5000, std::byte{0});
    IoSpace io;
    std::uint64_t addr = io.map(Mapping::external(*owner, owner));
    auto span = io.translate(addr, 5000);
    REQUIRE(span);
    CHECK(span->bytes.data() == owner->data());
    CHECK_THROWS_AS(io.map(nullptr), dis::Error);
}
