// The epf-test function's commands and status bits (pci-epf-test of Linux 6.x), its "DMA
// engine" through the IO space (guard bytes around every mapping), and the memory kind.
#include "test_endpoint_support.hpp"

#include "dis/endpoint.hpp"
#include "dis/error.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

using namespace dis::endpoint;
using namespace endpoint_test;

namespace {

DeviceSpec small_epf() {
    DeviceSpec spec = default_spec(Kind::epf_test);
    spec.reset_time = std::chrono::milliseconds(0);
    return spec;
}

constexpr std::uint32_t k_irq_raised = epf::k_status_irq_raised;

// Borrower memory: a memory file of 4 pages; the device may reach [k_off, k_off + k_len).
constexpr std::size_t k_off = 4096 + 16;
constexpr std::size_t k_len = 2 * 4096;

struct Fixture {
    Device dev{small_epf()};
    HostMemory mem{4 * 4096};
    std::uint64_t addr = dev.io().map_fd(mem.fd(), k_off, k_len);
    std::span<std::byte> window() const { return mem.range(k_off, k_len); }
};

} // namespace

TEST_CASE("endpoint device: BARs are sealed memfds of the declared sizes", "[endpoint]") {
    Device dev(default_spec(Kind::epf_test));
    REQUIRE(dev.bar_count() == 6);
    const std::uint64_t sizes[] = {512, 512, 1024, 16384, 131072, 1048576};
    for (int b = 0; b < 6; ++b) {
        CHECK(dev.bar_size(b) == sizes[b]);
        int fd = dev.bar_fd(b);
        REQUIRE(fd >= 0);
        struct stat st {};
        REQUIRE(::fstat(fd, &st) == 0);
        CHECK(static_cast<std::uint64_t>(st.st_size) == sizes[b]);
        int seals = ::fcntl(fd, F_GET_SEALS);
        CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW));
        CHECK(dev.bar_memory(b).size() == sizes[b]);
    }
    CHECK(dev.bar_size(6) == 0);
    CHECK(dev.bar_fd(-1) == -1);
    // After bind: registers zero but CAPS.
    CHECK(dev.read_register(epf::k_magic) == 0);
    CHECK(dev.read_register(epf::k_command) == 0);
    CHECK(dev.read_register(epf::k_status) == 0);
    CHECK(dev.read_register(epf::k_caps) ==
          (epf::k_cap_unaligned_access | epf::k_cap_msi | epf::k_cap_msix | epf::k_cap_intx));
    CHECK(dev.registers() != nullptr);
    CHECK(dev.registers()[epf::k_caps / 4] == dev.read_register(epf::k_caps));
    CHECK_THROWS_AS(dev.read_register(510), dis::Error);
    CHECK_THROWS_AS(dev.read_register(2), dis::Error);
}

TEST_CASE("endpoint device: no command, no work", "[endpoint]") {
    Device dev(small_epf());
    bool work = true;
    CHECK(poll_once(dev, &work).empty());
    CHECK_FALSE(work);
    CHECK_FALSE(dev.command_pending());
    CHECK_FALSE(dev.command_pending_since());
    CHECK_FALSE(dev.last_transfer());
}

TEST_CASE("endpoint device: READ checks the host data's crc against CHECKSUM", "[endpoint]") {
    Fixture f;
    auto data = f.window().subspan(100, 1025);
    fill_pattern(data, 1);
    f.dev.write_register(epf::k_checksum, kernel_crc32(data));
    program(f.dev, epf::k_command_read, f.addr + 100, 0, 1025, 0, IrqType::msi, 3);
    bool work = false;
    auto irqs = poll_once(f.dev, &work);
    CHECK(work);
    CHECK(irqs == std::vector<Irq>{{1, 3}});
    CHECK(f.dev.read_register(epf::k_command) == 0);
    CHECK(f.dev.read_register(epf::k_status) == (epf::k_status_read_success | k_irq_raised));

    SECTION("a wrong checksum fails, with DMA too") {
        f.dev.write_register(epf::k_checksum, kernel_crc32(data) ^ 1);
        program(f.dev, epf::k_command_read, f.addr + 100, 0, 1025, epf::k_flag_use_dma);
        CHECK(poll_once(f.dev) == std::vector<Irq>{{1, 1}});
        CHECK(f.dev.read_register(epf::k_status) == (epf::k_status_read_fail | k_irq_raised));
    }
    SECTION("a source outside the mapping fails as SRC_ADDR_INVALID") {
        program(f.dev, epf::k_command_read, f.addr + k_len - 10, 0, 11);
        CHECK(poll_once(f.dev) == std::vector<Irq>{{1, 1}});
        CHECK(f.dev.read_register(epf::k_status) ==
              (epf::k_status_src_addr_invalid | epf::k_status_read_fail | k_irq_raised));
    }
    SECTION("size 0 maps nothing: crc32_le(~0, buf, 0) is ~0") {
        f.dev.write_register(epf::k_checksum, 0xffffffffu);
        program(f.dev, epf::k_command_read, 0xdead0000, 0, 0);
        poll_once(f.dev);
        CHECK(f.dev.read_register(epf::k_status) == (epf::k_status_read_success | k_irq_raised));
    }
}

TEST_CASE("endpoint device: WRITE fills DST with random data and its crc", "[endpoint]") {
    Fixture f;
    for (std::uint32_t flags : {0u, epf::k_flag_use_dma}) {
        for (std::uint32_t size : {1u, 1024u, 1025u, 8000u}) {
            std::fill(f.window().begin(), f.window().end(), k_guard);
            program(f.dev, epf::k_command_write, 0, f.addr + 5, size, flags, IrqType::msix, 7);
            CHECK(poll_once(f.dev) == std::vector<Irq>{{2, 7}});
            CHECK(f.dev.read_register(epf::k_status) ==
                  (epf::k_status_write_success | k_irq_raised));
            auto written = f.window().subspan(5, size);
            CHECK(kernel_crc32(written) == f.dev.read_register(epf::k_checksum));
            CHECK(f.mem.guards_intact(k_off + 5, size));
        }
    }
    // Two WRITEs give different data (random, not a fixed pattern).
    program(f.dev, epf::k_command_write, 0, f.addr, 64);
    poll_once(f.dev);
    std::uint32_t first = f.dev.read_register(epf::k_checksum);
    program(f.dev, epf::k_command_write, 0, f.addr, 64);
    poll_once(f.dev);
    CHECK(f.dev.read_register(epf::k_checksum) != first);
}

TEST_CASE("endpoint device: WRITE to an invalid address touches nothing", "[endpoint]") {
    Fixture f;
    std::fill(f.window().begin(), f.window().end(), k_guard);
    // Running one byte past the mapping's end, inside the memory file: refused whole.
    program(f.dev, epf::k_command_write, 0, f.addr + k_len - 100, 101);
    CHECK(poll_once(f.dev) == std::vector<Irq>{{1, 1}});
    CHECK(f.dev.read_register(epf::k_status) ==
          (epf::k_status_dst_addr_invalid | epf::k_status_write_fail | k_irq_raised));
    CHECK(f.mem.guards_intact(0, 0)); // not one byte of the file changed
    // As the kernel, CHECKSUM was computed and written before the address was checked.
    CHECK(f.dev.read_register(epf::k_checksum) != 0);
    // Only the lower half of the address given: it lies below 4 GiB, where nothing is mapped.
    program(f.dev, epf::k_command_write, 0, f.addr & 0xffffffffu, 16);
    poll_once(f.dev);
    CHECK((f.dev.read_register(epf::k_status) & epf::k_status_dst_addr_invalid) != 0);
    CHECK(f.mem.guards_intact(0, 0));
}

TEST_CASE("endpoint device: COPY moves SRC to DST, with and without DMA", "[endpoint]") {
    Fixture f;
    HostMemory other(3 * 4096);
    std::uint64_t dst = f.dev.io().map_fd(other.fd(), 4096, 4096);
    for (std::uint32_t flags : {0u, epf::k_flag_use_dma}) {
        std::fill(other.bytes().begin(), other.bytes().end(), k_guard);
        auto src = f.window().subspan(3, 4000);
        fill_pattern(src, flags + 5);
        f.dev.write_register(epf::k_checksum, 0x12345678);
        program(f.dev, epf::k_command_copy, f.addr + 3, dst + 10, 4000, flags, IrqType::intx, 0);
        CHECK(poll_once(f.dev) == std::vector<Irq>{{0, 0}});
        CHECK(f.dev.read_register(epf::k_status) == (epf::k_status_copy_success | k_irq_raised));
        CHECK(std::equal(src.begin(), src.end(), other.bytes().begin() + 4096 + 10));
        CHECK(other.guards_intact(4096 + 10, 4000));
        CHECK(f.dev.read_register(epf::k_checksum) == 0x12345678); // COPY computes no crc
        auto stats = f.dev.last_transfer();
        REQUIRE(stats);
        CHECK(stats->command == epf::k_command_copy);
        CHECK(stats->bytes == 4000);
        CHECK(stats->dma == (flags != 0));
        CHECK(stats->ok);
    }
}

TEST_CASE("endpoint device: COPY with an invalid address touches nothing", "[endpoint]") {
    Fixture f;
    std::fill(f.window().begin(), f.window().end(), k_guard);
    SECTION("invalid source") {
        program(f.dev, epf::k_command_copy, f.addr + k_len, f.addr, 16, epf::k_flag_use_dma);
        poll_once(f.dev);
        CHECK(f.dev.read_register(epf::k_status) ==
              (epf::k_status_src_addr_invalid | epf::k_status_copy_fail | k_irq_raised));
    }
    SECTION("invalid destination (in the guard gap)") {
        program(f.dev, epf::k_command_copy, f.addr, f.addr + k_len + 4096, 16);
        poll_once(f.dev);
        CHECK(f.dev.read_register(epf::k_status) ==
              (epf::k_status_dst_addr_invalid | epf::k_status_copy_fail | k_irq_raised));
    }
    SECTION("destination running past the end") {
        program(f.dev, epf::k_command_copy, f.addr, f.addr + 10, k_len - 9);
        poll_once(f.dev);
        CHECK(f.dev.read_register(epf::k_status) ==
              (epf::k_status_dst_addr_invalid | epf::k_status_copy_fail | k_irq_raised));
    }
    CHECK(f.mem.guards_intact(0, 0));
    REQUIRE(f.dev.last_transfer());
    CHECK_FALSE(f.dev.last_transfer()->ok);
}

TEST_CASE("endpoint device: overlapping COPY behaves as memmove", "[endpoint]") {
    Fixture f;
    auto w = f.window();
    fill_pattern(w.first(1000), 9);
    std::vector<std::byte> expect(w.begin(), w.begin() + 1000);
    program(f.dev, epf::k_command_copy, f.addr, f.addr + 10, 1000);
    poll_once(f.dev);
    CHECK(f.dev.read_register(epf::k_status) == (epf::k_status_copy_success | k_irq_raised));
    CHECK(std::equal(expect.begin(), expect.end(), w.begin() + 10));
}

TEST_CASE("endpoint device: RAISE_* raise the interrupt IRQ_TYPE and IRQ_NUMBER name",
          "[endpoint]") {
    DeviceSpec spec = small_epf();
    spec.msi_vectors = 32;
    spec.msix_vectors = 2048;
    Device dev(spec);
    auto raise = [&](std::uint32_t cmd, IrqType type, std::uint32_t n) {
        dev.write_register(epf::k_status, 0xffff);
        program(dev, cmd, 0, 0, 0, 0, type, n);
        auto irqs = poll_once(dev);
        CHECK(dev.read_register(epf::k_command) == 0);
        return irqs;
    };
    CHECK(raise(epf::k_command_raise_intx_irq, IrqType::intx, 0) == std::vector<Irq>{{0, 0}});
    CHECK(dev.read_register(epf::k_status) == k_irq_raised);
    CHECK(raise(epf::k_command_raise_msi_irq, IrqType::msi, 1) == std::vector<Irq>{{1, 1}});
    CHECK(raise(epf::k_command_raise_msi_irq, IrqType::msi, 32) == std::vector<Irq>{{1, 32}});
    CHECK(raise(epf::k_command_raise_msix_irq, IrqType::msix, 2048) == std::vector<Irq>{{2, 2048}});
    // Past the vectors the function has, or 0: STATUS says IRQ_RAISED, no interrupt comes.
    CHECK(raise(epf::k_command_raise_msi_irq, IrqType::msi, 33).empty());
    CHECK(dev.read_register(epf::k_status) == k_irq_raised);
    CHECK(raise(epf::k_command_raise_msi_irq, IrqType::msi, 0).empty());
    CHECK(raise(epf::k_command_raise_msix_irq, IrqType::msix, 2049).empty());
    // An IRQ_TYPE past MSI-X: COMMAND and STATUS cleared, nothing else.
    CHECK(raise(epf::k_command_raise_msi_irq, static_cast<IrqType>(3), 1).empty());
    CHECK(dev.read_register(epf::k_status) == 0);
    // Not one command bit (two at once, or an unknown one): "Invalid command", nothing done.
    CHECK(raise(epf::k_command_read | epf::k_command_copy, IrqType::msi, 1).empty());
    CHECK(dev.read_register(epf::k_status) == 0);
    CHECK(raise(1u << 12, IrqType::msi, 1).empty());
    CHECK(dev.read_register(epf::k_status) == 0);
}

TEST_CASE("endpoint device: fewer vectors declared, fewer raised", "[endpoint]") {
    DeviceSpec spec = small_epf();
    spec.msi_vectors = 4;
    spec.msix_vectors = 0;
    Device dev(spec);
    CHECK((dev.read_register(epf::k_caps) & epf::k_cap_msix) == 0);
    program(dev, epf::k_command_raise_msi_irq, 0, 0, 0, 0, IrqType::msi, 4);
    CHECK(poll_once(dev) == std::vector<Irq>{{1, 4}});
    program(dev, epf::k_command_raise_msi_irq, 0, 0, 0, 0, IrqType::msi, 5);
    CHECK(poll_once(dev).empty());
    program(dev, epf::k_command_raise_msix_irq, 0, 0, 0, 0, IrqType::msix, 1);
    CHECK(poll_once(dev).empty());
}

TEST_CASE("endpoint device: an unresponsive device leaves commands pending", "[endpoint]") {
    DeviceSpec spec = small_epf();
    spec.unresponsive = true;
    Device dev(spec);
    program(dev, epf::k_command_raise_intx_irq, 0, 0, 0, 0, IrqType::intx, 0);
    bool work = true;
    CHECK(poll_once(dev, &work).empty());
    CHECK_FALSE(work);
    CHECK(dev.command_pending());
    auto since = dev.command_pending_since();
    REQUIRE(since);
    CHECK(*since <= std::chrono::steady_clock::now());
    poll_once(dev);
    CHECK(dev.command_pending_since() == since); // the time it was first seen
    CHECK(dev.read_register(epf::k_command) == epf::k_command_raise_intx_irq);
    CHECK(dev.read_register(epf::k_status) == 0);

    dev.set_unresponsive(false);
    CHECK(poll_once(dev, &work) == std::vector<Irq>{{0, 0}});
    CHECK(work);
    CHECK_FALSE(dev.command_pending());
    CHECK_FALSE(dev.command_pending_since());
}

TEST_CASE("endpoint device: quiesce takes borrower memory out of reach", "[endpoint]") {
    Fixture f;
    f.dev.quiesce();
    CHECK(f.dev.io().mapping_count() == 0);
    std::fill(f.window().begin(), f.window().end(), k_guard);
    program(f.dev, epf::k_command_write, 0, f.addr, 16);
    poll_once(f.dev);
    CHECK((f.dev.read_register(epf::k_status) & epf::k_status_dst_addr_invalid) != 0);
    CHECK(f.mem.guards_intact(0, 0));
}

TEST_CASE("endpoint device: the command hook sees the destination", "[endpoint]") {
    Fixture f;
    f.dev.set_command_hook([](std::uint32_t command, std::span<std::byte> dst) {
        if (command == epf::k_command_copy && !dst.empty()) {
            dst[dst.size() / 2] ^= std::byte{0x01};
        }
    });
    auto src = f.window().first(100);
    fill_pattern(src, 3);
    program(f.dev, epf::k_command_copy, f.addr, f.addr + 1000, 100, epf::k_flag_use_dma);
    poll_once(f.dev);
    auto dst = f.window().subspan(1000, 100);
    CHECK_FALSE(std::equal(src.begin(), src.end(), dst.begin()));
    CHECK(std::mismatch(src.begin(), src.end(), dst.begin()).first - src.begin() == 50);
}

TEST_CASE("endpoint device: the memory kind is plain BAR memory", "[endpoint]") {
    Device dev(default_spec(Kind::memory));
    CHECK(dev.bar_count() == 1);
    CHECK(dev.bar_size(0) == 1 << 20);
    CHECK(dev.registers() == nullptr);
    auto bar = dev.bar_memory(0);
    bar[4] = std::byte{0x42}; // a command bit if this were an epf-test: nothing happens
    bool work = true;
    CHECK(poll_once(dev, &work).empty());
    CHECK_FALSE(work);
    CHECK_FALSE(dev.command_pending());
    CHECK(bar[4] == std::byte{0x42});
}
