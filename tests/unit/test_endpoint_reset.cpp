// Reset of an emulated endpoint: memory and IO space cleared, registers as after bind, and the
// configured faults (slow, failing, hanging resets).
#include "test_endpoint_support.hpp"

#include "dis/endpoint.hpp"

#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <atomic>
#include <thread>

using namespace dis::endpoint;
using namespace endpoint_test;
using namespace std::chrono_literals;

namespace {

bool all_zero(std::span<const std::byte> s) {
    return std::all_of(s.begin(), s.end(), [](std::byte b) { return b == std::byte{0}; });
}

// What a borrower sees: its own mapping of the BAR's memfd.
struct BorrowerView {
    BorrowerView(const Device& dev, int bar) : size(dev.bar_size(bar)) {
        p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, dev.bar_fd(bar), 0);
        REQUIRE(p != MAP_FAILED);
    }
    ~BorrowerView() { ::munmap(p, size); }
    std::span<std::byte> bytes() const { return {static_cast<std::byte*>(p), size}; }
    std::size_t size;
    void* p;
};

} // namespace

TEST_CASE("endpoint reset: clears every BAR and the IO space, registers as after bind",
          "[endpoint]") {
    DeviceSpec spec = default_spec(Kind::epf_test);
    spec.reset_time = 0ms;
    Device dev(spec);
    BorrowerView bar5(dev, 5);
    for (int b = 0; b < dev.bar_count(); ++b) {
        auto m = dev.bar_memory(b);
        std::fill(m.begin(), m.end(), std::byte{0x5a});
    }
    CHECK(bar5.bytes()[12345] == std::byte{0x5a}); // the borrower's view is the same memory
    HostMemory mem(4096);
    std::uint64_t addr = dev.io().map_fd(mem.fd(), 0, 4096);
    dev.write_register(epf::k_command, epf::k_command_copy);

    CHECK(dev.reset(5s) == ResetResult::ok);
    CHECK_FALSE(dev.in_reset());
    for (int b = 1; b < dev.bar_count(); ++b) {
        CHECK(all_zero(dev.bar_memory(b)));
    }
    CHECK(all_zero(bar5.bytes()));
    CHECK(all_zero(dev.bar_memory(0).subspan(epf::k_register_bytes)));
    CHECK(dev.read_register(epf::k_command) == 0);
    CHECK(dev.read_register(epf::k_caps) != 0);
    CHECK(dev.io().mapping_count() == 0);
    CHECK_FALSE(dev.io().translate(addr, 1));
    // The memory is still there and writable after the reset.
    bar5.bytes()[0] = std::byte{1};
    CHECK(dev.bar_memory(5)[0] == std::byte{1});
}

TEST_CASE("endpoint reset: takes reset_time", "[endpoint]") {
    DeviceSpec spec = default_spec(Kind::memory);
    spec.reset_time = 60ms;
    Device dev(spec);
    auto start = std::chrono::steady_clock::now();
    CHECK(dev.reset(10s) == ResetResult::ok);
    CHECK(std::chrono::steady_clock::now() - start >= 60ms);
}

TEST_CASE("endpoint reset: fail_reset reports failure, memory is cleared all the same",
          "[endpoint]") {
    DeviceSpec spec = parse_device_spec("epf-test reset_ms=0 fail_reset=1");
    Device dev(spec);
    dev.bar_memory(3)[7] = std::byte{3};
    CHECK(dev.reset(5s) == ResetResult::failed);
    CHECK(dev.bar_memory(3)[7] == std::byte{0});
    dev.set_fail_reset(false);
    CHECK(dev.reset(5s) == ResetResult::ok);
}

TEST_CASE("endpoint reset: hang_reset times out and leaves the device in reset", "[endpoint]") {
    Device dev(parse_device_spec("epf-test reset_ms=0 hang_reset=1"));
    auto start = std::chrono::steady_clock::now();
    CHECK(dev.reset(100ms) == ResetResult::timed_out);
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 100ms);
    CHECK(took < 30s);
    CHECK(dev.in_reset());
    // In reset: commands are not executed, and the watchdog sees them pending.
    program(dev, epf::k_command_raise_intx_irq, 0, 0, 0, 0, IrqType::intx, 0);
    CHECK(poll_once(dev).empty());
    CHECK(dev.command_pending_since());
    // A reset that completes brings it back.
    dev.set_hang_reset(false);
    CHECK(dev.reset(5s) == ResetResult::ok);
    CHECK_FALSE(dev.in_reset());
    program(dev, epf::k_command_raise_intx_irq, 0, 0, 0, 0, IrqType::intx, 0);
    CHECK(poll_once(dev) == std::vector<Irq>{{0, 0}});
}

TEST_CASE("endpoint reset: a reset_time longer than the timeout times out", "[endpoint]") {
    Device dev(parse_device_spec("memory reset_ms=5000"));
    auto start = std::chrono::steady_clock::now();
    CHECK(dev.reset(50ms) == ResetResult::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 4s);
}

TEST_CASE("endpoint reset: while polled from another thread", "[endpoint]") {
    Device dev(parse_device_spec("epf-test reset_ms=1"));
    HostMemory mem(64 * 1024);
    std::atomic<bool> stop{false};
    std::atomic<int> raised{0};
    std::thread engine([&] {
        while (!stop) {
            dev.poll([&](int, int) { ++raised; });
        }
    });
    for (int i = 0; i < 20; ++i) {
        std::uint64_t addr = dev.io().map_fd(mem.fd(), 0, 64 * 1024);
        program(dev, epf::k_command_write, 0, addr, 64 * 1024, epf::k_flag_use_dma);
        CHECK(dev.reset(5s) == ResetResult::ok);
    }
    stop = true;
    engine.join();
    CHECK(dev.io().mapping_count() == 0);
    CHECK(raised <= 20);
}

TEST_CASE("endpoint reset: poll() does not wait for a reset in progress", "[endpoint]") {
    Device dev(parse_device_spec("epf-test reset_ms=0 hang_reset=1"));
    std::atomic<int> result{-1}; // Catch's assertions are for the test's own thread
    std::thread worker([&] { result = static_cast<int>(dev.reset(2s)); });
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!dev.in_reset() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    REQUIRE(dev.in_reset());
    program(dev, epf::k_command_raise_intx_irq, 0, 0, 0, 0, IrqType::intx, 0);
    auto start = std::chrono::steady_clock::now();
    bool work = true;
    for (int i = 0; i < 100; ++i) {
        CHECK(poll_once(dev, &work).empty());
    }
    CHECK_FALSE(work);
    CHECK(std::chrono::steady_clock::now() - start < 1s); // the reset takes 2 s
    worker.join();
    CHECK(result == static_cast<int>(ResetResult::timed_out));
}
