// The pcitest suite's TestTarget over the SISCI SmartIO API (dis/lending_test.hpp), built on
// the RAII wrappers of lib/fabric/sci.hpp: a borrowed device, its BARs as connected device
// segments, buffers as local segments mapped for the device, interrupts from the device.
#include "dis/lending_test.hpp"

#include "../fabric/sci.hpp"
#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/lending_client.hpp"

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>

namespace dis::lending {

namespace {

constexpr std::uint32_t k_adapter = 0;

// Segment ids for the suite's buffers: a range of this process's own (by pid), so that two
// tests on one node do not collide; a collision anyway is retried with the next id.
std::uint32_t buffer_segment_id(std::uint32_t n) {
    return 0x50000000u | ((static_cast<std::uint32_t>(::getpid()) & 0x3ffffu) << 10) | (n & 0x3ffu);
}

endpoint::IrqType irq_type(unsigned int sci_type) {
#ifdef SCI_DIS_DEVICE_IRQ_INTX
    switch (sci_type) {
    case SCI_DIS_DEVICE_IRQ_MSI:
        return endpoint::IrqType::msi;
    case SCI_DIS_DEVICE_IRQ_MSIX:
        return endpoint::IrqType::msix;
    default:
        return endpoint::IrqType::intx;
    }
#else
    (void)sci_type;
    return endpoint::IrqType::intx;
#endif
}

class SmartioTarget final : public endpoint::TestTarget {
public:
    SmartioTarget(sci_desc_t sd, sci::Device& device, std::uint32_t num_bars)
        : m_sd(sd), m_device(device), m_num_bars(num_bars) {}
    // Buffers (their device mappings first) and BAR segments go before the device is returned.
    ~SmartioTarget() override {
        m_buffers.clear();
        m_bars.clear();
    }

    const std::string& lost() const { return m_lost; }

    std::uint64_t bar_size(int bar) override {
        const sci::DeviceSegment* s = segment(bar);
        return s ? s->size() : 0;
    }

    volatile void* bar(int bar) override {
        const sci::DeviceSegment* s = segment(bar);
        return s ? static_cast<volatile void*>(s->bytes()) : nullptr;
    }

    endpoint::HostBuffer alloc_buffer(std::size_t size) override {
        auto buffer = std::make_unique<Buffer>();
        for (int attempt = 0;; ++attempt) {
            try {
                buffer->segment = std::make_unique<sci::LocalSegment>(
                    m_sd, buffer_segment_id(m_next_id++), size, k_adapter);
                break;
            } catch (const Error&) {
                if (attempt >= 8)
                    throw;
            }
        }
        buffer->mapping = std::make_unique<sci::DeviceMapping>(m_device, buffer->segment->handle());
        endpoint::HostBuffer out;
        out.data = reinterpret_cast<std::byte*>(buffer->segment->bytes());
        out.io_addr = buffer->mapping->io_addr();
        out.size = size;
        out.handle = m_next_handle++;
        m_buffers.emplace(out.handle, std::move(buffer));
        return out;
    }

    void free_buffer(const endpoint::HostBuffer& buffer) override {
        m_buffers.erase(buffer.handle);
    }

    std::optional<endpoint::Interrupt> wait_irq(std::chrono::milliseconds timeout) override {
        try {
            auto irq = m_device.wait_interrupt(timeout);
            if (!irq)
                return std::nullopt;
            return endpoint::Interrupt{irq_type(irq->type), irq->number};
        } catch (const Error& e) {
            // Not a timeout: the lease is gone (reclaimed, a device fault, the lender lost).
            // Waiting on for every remaining test would only take long; stop the suite.
            m_lost = e.what();
            throw;
        }
    }

private:
    struct Buffer {
        std::unique_ptr<sci::LocalSegment> segment;
        std::unique_ptr<sci::DeviceMapping> mapping; // destroyed first
        ~Buffer() { mapping.reset(); }
    };

    const sci::DeviceSegment* segment(int bar) {
        if (bar < 0 || static_cast<std::uint32_t>(bar) >= m_num_bars)
            return nullptr;
        auto it = m_bars.find(bar);
        if (it == m_bars.end())
            it = m_bars
                     .emplace(bar, std::make_unique<sci::DeviceSegment>(
                                       m_device, SCI_MEMTYPE_BAR, static_cast<std::uint32_t>(bar)))
                     .first;
        return it->second.get();
    }

    sci_desc_t m_sd;
    sci::Device& m_device;
    std::uint32_t m_num_bars;
    std::map<int, std::unique_ptr<sci::DeviceSegment>> m_bars;
    std::map<std::uint64_t, std::unique_ptr<Buffer>> m_buffers;
    std::uint32_t m_next_id = 0;
    std::uint64_t m_next_handle = 1;
    std::string m_lost;
};

// libsisci reads its fabric and node from the environment at SCIInitialize.
void select_fabric(const DeviceTestOptions& options) {
    if (!options.fabric_dir.empty())
        ::setenv("DIS_FABRIC", options.fabric_dir.c_str(), 1);
    if (options.local_node != 0)
        ::setenv("DIS_NODE_ID", std::to_string(options.local_node).c_str(), 1);
}

// A refused SCIBorrowDevice says only the SISCI code; the lender says whose it is.
[[noreturn]] void borrow_failed(const DeviceTestOptions& options, const Error& e) {
    std::string state;
#ifndef DIS_VENDOR_SISCI
    try {
        LenderClient lender(options.fabric_dir, options.fdid.node_id());
        auto d = lender.show(options.fdid);
        std::string holders;
        for (const auto& l : d.status.leases)
            holders += (holders.empty() ? "" : ", ") + std::string(to_string(l.mode)) +
                       " by node " + std::to_string(l.borrower.node_id) + " pid " +
                       std::to_string(l.borrower.pid) + " uid " + std::to_string(l.borrower.uid);
        state = std::string(to_string(d.status.state)) +
                (holders.empty() ? "" : " (held " + holders + ")");
    } catch (const Error&) {
        // The lender's view is a detail; the borrow's own error is the answer.
    }
#endif
    throw Error(e.kind(), "fdid " + to_string(options.fdid) +
                              (state.empty() ? std::string() : " is " + state) + ": " + e.what());
}

// What the lender says about a device lost mid-suite: "; fdid 0x80000 is now failed (command
// 0x1 pending for ...)". Empty with a vendor SISCI or when the lender does not answer.
std::string lender_says(const DeviceTestOptions& options) {
#ifndef DIS_VENDOR_SISCI
    try {
        LenderClient lender(options.fabric_dir, options.fdid.node_id());
        auto d = lender.show(options.fdid);
        return "; fdid " + to_string(options.fdid) + " is now " + to_string(d.status.state) +
               (d.status.reason.empty() ? "" : " (" + d.status.reason + ")");
    } catch (const Error&) {
    }
#endif
    (void)options;
    return {};
}

} // namespace

// Only epf-test functions run the suite: said by the lender (software fabric) or, with a
// vendor SISCI, by the ids pci_endpoint_test binds to (TI AM654 0x104c:0xb500).
void require_epf_test(Fdid fdid, const std::string& fabric_dir, std::string_view purpose) {
#ifdef DIS_VENDOR_SISCI
    (void)fabric_dir;
    auto info = sci::device_info(fdid.value);
    if (info.vendor_id != 0x104c || info.device_id != 0xb500)
        throw Error(
            ErrorKind::invalid_input,
            "fdid " + to_string(fdid) +
                " is not a pci-epf-test function (ids not 104c:b500): " + std::string(purpose));
#else
    LenderClient lender(fabric_dir.empty() ? fabric::resolve_fabric_dir() : fabric_dir,
                        fdid.node_id());
    auto device = lender.show(fdid);
    if (device.kind != "epf-test")
        throw Error(ErrorKind::invalid_input,
                    "fdid " + to_string(fdid) + " (" + device.status.info.name + ", " +
                        to_string(device.status.state) + ") is a " +
                        (device.kind.empty() ? std::string("device of no known kind")
                                             : device.kind + " device") +
                        ": " + std::string(purpose));
#endif
}

DeviceTestReport test_device(const DeviceTestOptions& given) {
    DeviceTestOptions options = given;
#ifndef DIS_VENDOR_SISCI
    if (options.fabric_dir.empty())
        options.fabric_dir = fabric::resolve_fabric_dir();
#endif
    select_fabric(options);
    require_epf_test(options.fdid, options.fabric_dir,
                     "device test runs the pci_endpoint_test suite on epf-test devices only");
    sci::Library library;
    sci::Descriptor sd(library);
    std::optional<sci::Device> device;
    try {
        device.emplace(sd.get(), options.fdid.value, true);
    } catch (const Error& e) {
        borrow_failed(options, e);
    }
    auto info = sci::device_info(options.fdid.value);
    DeviceTestReport report;
    std::vector<endpoint::TestResult> seen; // as far as the suite got
    endpoint::TestOptions suite = options.suite;
    suite.on_result = [&](const endpoint::TestResult& r) {
        seen.push_back(r);
        if (options.suite.on_result)
            options.suite.on_result(r);
    };
    SmartioTarget target(sd.get(), *device, info.num_bars);
    try {
        report.results = endpoint::run_pcitest(target, suite);
    } catch (const Error&) {
        if (target.lost().empty())
            throw;
        report.results = std::move(seen);
        report.lost = target.lost() + lender_says(options);
        endpoint::TestResult lost;
        lost.name = "DEVICE_LOST";
        lost.outcome = endpoint::Outcome::failed;
        lost.detail = report.lost;
        if (options.suite.on_result)
            options.suite.on_result(lost);
        report.results.push_back(std::move(lost));
    }
    return report;
}

} // namespace dis::lending
