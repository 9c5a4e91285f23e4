// The pcitest suite (pci_endpoint_test's host side) against the in-process target: it passes on
// a sound epf-test device, and specific tests fail on broken ones.
#include "dis/endpoint.hpp"
#include "dis/endpoint_pcitest.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace dis::endpoint;
using namespace std::chrono_literals;

namespace {

std::map<std::string, TestResult> by_name(const std::vector<TestResult>& results) {
    std::map<std::string, TestResult> m;
    for (const auto& r : results) {
        m.emplace(r.name, r);
    }
    return m;
}

DeviceSpec quick(std::string text = "epf-test reset_ms=0") {
    return parse_device_spec(text);
}

// Options for a device expected to stay silent: short waits, one size.
TestOptions impatient() {
    TestOptions o;
    o.irq_timeout = 30ms;
    o.transfer_timeout = 30ms;
    o.sizes = {1, 1025};
    return o;
}

// A target whose BAR3 is BAR2's memory: an endpoint address translation fault.
class AliasedBars : public LocalTarget {
public:
    using LocalTarget::LocalTarget;
    std::uint64_t bar_size(int bar) override { return LocalTarget::bar_size(bar == 3 ? 2 : bar); }
    volatile void* bar(int bar) override { return LocalTarget::bar(bar == 3 ? 2 : bar); }
};

// A target that reports the MSI vector after the one raised.
class OffByOneMsi : public LocalTarget {
public:
    using LocalTarget::LocalTarget;
    std::optional<Interrupt> wait_irq(std::chrono::milliseconds t) override {
        auto irq = LocalTarget::wait_irq(t);
        if (irq && irq->type == IrqType::msi) {
            ++irq->number;
        }
        return irq;
    }
};

} // namespace

TEST_CASE("endpoint pcitest: the whole suite passes on an epf-test device", "[endpoint]") {
    Device dev(quick());
    LocalTarget target(dev);
    std::vector<std::string> streamed;
    TestOptions options;
    options.on_result = [&](const TestResult& r) { streamed.push_back(r.name); };
    auto results = run_pcitest(target, options);

    REQUIRE(results.size() == 6 + 1 + 3 + 2 * 3 * 5);
    for (const auto& r : results) {
        INFO(r.name << ": " << to_string(r.outcome) << " " << r.detail);
        CHECK(r.outcome == Outcome::okay);
    }
    CHECK(all_passed(results));
    CHECK(streamed.size() == results.size());
    CHECK(streamed.front() == "BAR_TEST.BAR0");
    auto m = by_name(results);
    for (const char* name :
         {"BAR_TEST.BAR5", "CONSECUTIVE_BAR_TEST", "LEGACY_IRQ_TEST", "MSI_TEST", "MSIX_TEST",
          "READ_TEST.memcpy.1", "WRITE_TEST.memcpy.1025", "COPY_TEST.memcpy.1024000",
          "READ_TEST.dma.1024001", "WRITE_TEST.dma.1024", "COPY_TEST.dma.1024001"}) {
        CHECK(m.count(name) == 1);
    }
    CHECK(m["MSI_TEST"].detail == "32 vectors");
    CHECK(m["MSIX_TEST"].detail == "2048 vectors");
    CHECK(m["BAR_TEST.BAR5"].detail == "1048576 bytes written and read back");
    CHECK(m["BAR_TEST.BAR0"].detail == "4 bytes written and read back"); // register BAR: 4
    // The device is left with no borrower memory mapped.
    CHECK(dev.io().mapping_count() == 0);
}

TEST_CASE("endpoint pcitest: BARs the device lacks are skipped, not passed", "[endpoint]") {
    Device dev(quick("epf-test reset_ms=0 bars=512,512,1K"));
    LocalTarget target(dev);
    TestOptions options;
    options.irq_tests = false;
    options.transfer_tests = false;
    auto m = by_name(run_pcitest(target, options));
    CHECK(m["BAR_TEST.BAR2"].outcome == Outcome::okay);
    for (const char* name : {"BAR_TEST.BAR3", "BAR_TEST.BAR4", "BAR_TEST.BAR5"}) {
        CHECK(m[name].outcome == Outcome::skipped);
        CHECK(m[name].detail == "BAR is disabled");
    }
    CHECK(m["CONSECUTIVE_BAR_TEST"].outcome == Outcome::okay);
    CHECK(m["CONSECUTIVE_BAR_TEST"].detail == "3 BARs written, then read back");
}

TEST_CASE("endpoint pcitest: a COPY that corrupts one byte fails every COPY_TEST", "[endpoint]") {
    Device dev(quick());
    dev.set_command_hook([](std::uint32_t command, std::span<std::byte> dst) {
        if (command == epf::k_command_copy && !dst.empty()) {
            dst[dst.size() - 1] ^= std::byte{0x80};
        }
    });
    LocalTarget target(dev);
    TestOptions options;
    options.bar_tests = options.consecutive_bars = options.irq_tests = false;
    auto results = run_pcitest(target, options);
    CHECK_FALSE(all_passed(results));
    for (const auto& r : results) {
        INFO(r.name << ": " << r.detail);
        bool copy = r.name.rfind("COPY_TEST", 0) == 0;
        CHECK(r.outcome == (copy ? Outcome::failed : Outcome::okay));
        if (copy) {
            CHECK(r.detail.find("crc of the copy") != std::string::npos);
            CHECK(r.detail.find("STATUS 0x50") != std::string::npos); // COPY_SUCCESS|IRQ_RAISED
        }
    }
}

TEST_CASE("endpoint pcitest: a device WRITE that corrupts its data fails READ_TEST", "[endpoint]") {
    Device dev(quick());
    dev.set_command_hook([](std::uint32_t command, std::span<std::byte> dst) {
        if (command == epf::k_command_write && !dst.empty()) {
            dst[0] ^= std::byte{1};
        }
    });
    LocalTarget target(dev);
    TestOptions options;
    options.bar_tests = options.consecutive_bars = options.irq_tests = false;
    options.sizes = {1, 1024001};
    auto m = by_name(run_pcitest(target, options));
    CHECK(m["READ_TEST.memcpy.1"].outcome == Outcome::failed);
    CHECK(m["READ_TEST.dma.1024001"].outcome == Outcome::failed);
    CHECK(m["WRITE_TEST.dma.1"].outcome == Outcome::okay);
    CHECK(m["COPY_TEST.memcpy.1024001"].outcome == Outcome::okay);
}

TEST_CASE("endpoint pcitest: aliased BARs pass alone and fail the consecutive BARs test",
          "[endpoint]") {
    Device dev(quick());
    AliasedBars target(dev);
    TestOptions options;
    options.irq_tests = options.transfer_tests = false;
    auto m = by_name(run_pcitest(target, options));
    CHECK(m["BAR_TEST.BAR2"].outcome == Outcome::okay);
    CHECK(m["BAR_TEST.BAR3"].outcome == Outcome::okay);
    CHECK(m["CONSECUTIVE_BAR_TEST"].outcome == Outcome::failed);
    CHECK(m["CONSECUTIVE_BAR_TEST"].detail ==
          "BAR2 incorrect data at offset 0x0, got 0xa3000000 expected 0xa2000000");
}

TEST_CASE("endpoint pcitest: a device with fewer MSI vectors fails MSI_TEST", "[endpoint]") {
    Device dev(quick("epf-test reset_ms=0 msi=4 msix=0"));
    LocalTarget target(dev);
    TestOptions options = impatient();
    options.bar_tests = options.consecutive_bars = options.transfer_tests = false;
    auto m = by_name(run_pcitest(target, options));
    CHECK(m["LEGACY_IRQ_TEST"].outcome == Outcome::okay);
    CHECK(m["MSI_TEST"].outcome == Outcome::failed);
    CHECK(m["MSI_TEST"].detail == "MSI 5: no interrupt within 30 ms; vectors 6..32 not tried");
    CHECK(m["MSIX_TEST"].outcome == Outcome::skipped); // CAPS lists no MSI-X
}

TEST_CASE("endpoint pcitest: the wrong vector arriving fails MSI_TEST", "[endpoint]") {
    Device dev(quick());
    OffByOneMsi target(dev);
    TestOptions options;
    options.bar_tests = options.consecutive_bars = options.transfer_tests = false;
    options.msi_vectors = 3;
    options.msix_vectors = 3;
    auto m = by_name(run_pcitest(target, options));
    CHECK(m["MSI_TEST"].outcome == Outcome::failed);
    CHECK(m["MSI_TEST"].detail ==
          "MSI 1: MSI 2 arrived; MSI 2: MSI 3 arrived; MSI 3: MSI 4 arrived");
    CHECK(m["MSIX_TEST"].outcome == Outcome::okay);
    CHECK(m["MSIX_TEST"].detail == "3 vectors");
}

TEST_CASE("endpoint pcitest: an unresponsive device fails every command test", "[endpoint]") {
    Device dev(quick("epf-test reset_ms=0 unresponsive=1"));
    LocalTarget target(dev);
    auto results = run_pcitest(target, impatient());
    for (const auto& r : results) {
        INFO(r.name << ": " << r.detail);
        bool memory_only = r.name.find("BAR") != std::string::npos;
        CHECK(r.outcome == (memory_only ? Outcome::okay : Outcome::failed));
    }
    auto m = by_name(results);
    CHECK(m["COPY_TEST.dma.1025"].detail == "no completion interrupt within 30 ms");
    CHECK(m["LEGACY_IRQ_TEST"].detail == "INTX: no interrupt within 30 ms");
}

TEST_CASE("endpoint pcitest: transfers complete with the interrupt type asked for", "[endpoint]") {
    Device dev(quick());
    LocalTarget target(dev);
    TestOptions options;
    options.bar_tests = options.consecutive_bars = options.irq_tests = false;
    options.sizes = {1024};
    for (IrqType type : {IrqType::intx, IrqType::msix}) {
        options.transfer_irq = type;
        auto results = run_pcitest(target, options);
        CHECK(all_passed(results));
        CHECK(results.size() == 6);
        CHECK(dev.read_register(epf::k_irq_type) == static_cast<std::uint32_t>(type));
    }
}
