// The host side of pci_endpoint_test (Linux 6.x drivers/misc/pci_endpoint_test.c) as the
// kselftest tools/testing/selftests/pci_endpoint runs it: BAR_TEST per BAR, CONSECUTIVE_BAR_TEST,
// LEGACY_IRQ_TEST, MSI_TEST, MSIX_TEST, and READ/WRITE/COPY_TEST at each size, memcpy and dma.
// Note the kernel's naming: the host's READ test has the device WRITE, its WRITE test READ.
#include "dis/endpoint_pcitest.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <algorithm>
#include <cstring>
#include <random>
#include <sstream>

namespace dis::endpoint {
namespace {

using Clock = std::chrono::steady_clock;

// pci_endpoint_test's bar_test_pattern[]: one pattern per BAR.
constexpr std::uint32_t k_bar_pattern[6] = {0xA0A0A0A0, 0xA1A1A1A1, 0xA2A2A2A2,
                                            0xA3A3A3A3, 0xA4A4A4A4, 0xA5A5A5A5};
constexpr std::uint64_t k_bar_chunk = 1 << 20; // the kernel's buffer: at most 1 MiB at a time

// The pattern of the consecutive BARs test: the BAR's pattern in the top byte, the offset below.
std::uint32_t pattern_with_offset(int bar, std::uint64_t offset) {
    return (k_bar_pattern[bar] & 0xff000000u) | static_cast<std::uint32_t>(offset & 0x00ffffffu);
}

class Suite {
public:
    Suite(TestTarget& target, const TestOptions& options)
        : m_target(target), m_options(options), m_rng(std::random_device{}()) {}

    std::vector<TestResult> run() {
        m_regs = static_cast<volatile std::uint32_t*>(m_target.bar(m_options.test_reg_bar));
        if (m_regs != nullptr &&
            m_target.bar_size(m_options.test_reg_bar) >= epf::k_register_bytes) {
            m_caps = readl(epf::k_caps);
        } else {
            m_regs = nullptr;
        }
        if (m_options.bar_tests) {
            for (int bar = 0; bar < 6; ++bar) {
                timed("BAR_TEST.BAR" + std::to_string(bar), [&] { return bar_test(bar); });
            }
        }
        if (m_options.consecutive_bars) {
            timed("CONSECUTIVE_BAR_TEST", [&] { return consecutive_bars(); });
        }
        if (m_options.irq_tests) {
            timed("LEGACY_IRQ_TEST", [&] { return irq_test(IrqType::intx, 1); });
            timed("MSI_TEST", [&] { return irq_test(IrqType::msi, m_options.msi_vectors); });
            timed("MSIX_TEST", [&] { return irq_test(IrqType::msix, m_options.msix_vectors); });
        }
        if (m_options.transfer_tests) {
            for (bool dma : {false, true}) {
                for (const char* op : {"READ_TEST", "WRITE_TEST", "COPY_TEST"}) {
                    for (std::uint32_t size : m_options.sizes) {
                        std::string name =
                            std::string(op) + (dma ? ".dma." : ".memcpy.") + std::to_string(size);
                        timed(name, [&] { return transfer(op[0], dma, size); });
                    }
                }
            }
        }
        return std::move(m_results);
    }

private:
    struct Verdict {
        Outcome outcome;
        std::string detail;
    };
    static Verdict okay(std::string d) { return {Outcome::okay, std::move(d)}; }
    static Verdict failed(std::string d) { return {Outcome::failed, std::move(d)}; }
    static Verdict skipped(std::string d) { return {Outcome::skipped, std::move(d)}; }

    template <typename F> void timed(std::string name, F&& body) {
        auto start = Clock::now();
        Verdict v = body();
        TestResult r{std::move(name), v.outcome, std::move(v.detail),
                     std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start)};
        if (m_options.on_result) {
            m_options.on_result(r);
        }
        m_results.push_back(std::move(r));
    }

    std::uint32_t readl(std::uint32_t offset) const { return m_regs[offset / 4]; }
    void writel(std::uint32_t offset, std::uint32_t value) { m_regs[offset / 4] = value; }

    // Interrupts left over from an earlier test must not complete this one.
    void drain_irqs() {
        for (int i = 0; i < 100000 && m_target.wait_irq(std::chrono::milliseconds(0)); ++i) {
        }
    }

    Verdict bar_test(int bar) {
        std::uint64_t size = m_target.bar_size(bar);
        if (size == 0) {
            return skipped("BAR is disabled");
        }
        auto* base = static_cast<volatile std::uint32_t*>(m_target.bar(bar));
        if (base == nullptr) {
            return failed("BAR" + std::to_string(bar) + " cannot be mapped");
        }
        if (bar == m_options.test_reg_bar) {
            size = 4; // only the first register of the register BAR
        }
        std::uint64_t chunk = std::min(size, k_bar_chunk);
        for (std::uint64_t offset = 0; offset < size; offset += chunk) {
            std::uint64_t n = std::min(chunk, size - offset) / 4;
            volatile std::uint32_t* words = base + offset / 4;
            for (std::uint64_t w = 0; w < n; ++w) {
                words[w] = k_bar_pattern[bar];
            }
            for (std::uint64_t w = 0; w < n; ++w) {
                std::uint32_t got = words[w];
                if (got != k_bar_pattern[bar]) {
                    return failed("BAR" + std::to_string(bar) + " offset " + hex(offset + w * 4) +
                                  ": read " + hex(got) + ", wrote " + hex(k_bar_pattern[bar]));
                }
            }
        }
        return okay(std::to_string(size) + " bytes written and read back");
    }

    std::uint64_t consecutive_size(int bar) {
        return bar == m_options.test_reg_bar ? 4 : m_target.bar_size(bar);
    }

    Verdict consecutive_bars() {
        // Write all BARs first, then read them all: an address translation fault in the
        // endpoint that lets one BAR overwrite another shows only this way.
        int tested = 0;
        for (int bar = 0; bar < 6; ++bar) {
            auto* base = static_cast<volatile std::uint32_t*>(m_target.bar(bar));
            if (m_target.bar_size(bar) == 0 || base == nullptr) {
                continue;
            }
            ++tested;
            for (std::uint64_t j = 0; j < consecutive_size(bar); j += 4) {
                base[j / 4] = pattern_with_offset(bar, j);
            }
        }
        if (tested == 0) {
            return failed("no BAR to test");
        }
        for (int bar = 0; bar < 6; ++bar) {
            auto* base = static_cast<volatile std::uint32_t*>(m_target.bar(bar));
            if (m_target.bar_size(bar) == 0 || base == nullptr) {
                continue;
            }
            for (std::uint64_t j = 0; j < consecutive_size(bar); j += 4) {
                std::uint32_t expected = pattern_with_offset(bar, j);
                std::uint32_t got = base[j / 4];
                if (got != expected) {
                    return failed("BAR" + std::to_string(bar) + " incorrect data at offset " +
                                  hex(j) + ", got " + hex(got) + " expected " + hex(expected));
                }
            }
        }
        return okay(std::to_string(tested) + " BARs written, then read back");
    }

    bool advertised(IrqType type) const {
        std::uint32_t irq_caps = m_caps & (epf::k_cap_msi | epf::k_cap_msix | epf::k_cap_intx);
        if (irq_caps == 0) {
            return true; // a function older than CAPS: assume every type, as the kernel does
        }
        switch (type) {
        case IrqType::intx:
            return (m_caps & epf::k_cap_intx) != 0;
        case IrqType::msi:
            return (m_caps & epf::k_cap_msi) != 0;
        case IrqType::msix:
            return (m_caps & epf::k_cap_msix) != 0;
        }
        return false;
    }

    // Raises vector 1..count (INTX: once, number 0) and waits for each; as the kernel, an
    // MSI/MSI-X test also checks that the vector that arrived is the one asked for.
    Verdict irq_test(IrqType type, std::uint32_t count) {
        if (m_regs == nullptr) {
            return failed("no register BAR" + std::to_string(m_options.test_reg_bar));
        }
        if (!advertised(type)) {
            return skipped(std::string("the device does not advertise ") + to_string(type) +
                           " in CAPS");
        }
        if (count == 0) {
            return skipped("0 vectors asked for");
        }
        std::uint32_t command = type == IrqType::intx  ? epf::k_command_raise_intx_irq
                                : type == IrqType::msi ? epf::k_command_raise_msi_irq
                                                       : epf::k_command_raise_msix_irq;
        std::vector<std::string> problems;
        std::uint32_t ok = 0;
        for (std::uint32_t n = 1; n <= count; ++n) {
            std::uint32_t number = type == IrqType::intx ? 0 : n;
            std::string what = type == IrqType::intx
                                   ? std::string("INTX")
                                   : std::string(to_string(type)) + " " + std::to_string(n);
            drain_irqs();
            writel(epf::k_irq_type, static_cast<std::uint32_t>(type));
            writel(epf::k_irq_number, number);
            writel(epf::k_command, command);
            auto irq = m_target.wait_irq(m_options.irq_timeout);
            if (!irq) {
                problems.push_back(what + ": no interrupt within " +
                                   std::to_string(m_options.irq_timeout.count()) + " ms");
                if (n < count) {
                    problems.push_back("vectors " + std::to_string(n + 1) + ".." +
                                       std::to_string(count) + " not tried");
                }
                break; // a device that stopped raising would take count x timeout
            }
            std::uint32_t status = readl(epf::k_status);
            if (irq->type != type || irq->number != number) {
                problems.push_back(what + ": " + to_string(irq->type) + " " +
                                   std::to_string(irq->number) + " arrived");
            } else if ((status & epf::k_status_irq_raised) == 0) {
                problems.push_back(what + ": STATUS " + hex(status) + " lacks IRQ_RAISED");
            } else {
                ++ok;
            }
            if (problems.size() >= 8) {
                problems.push_back("...");
                break;
            }
        }
        if (!problems.empty()) {
            std::string detail;
            for (const auto& p : problems) {
                detail += (detail.empty() ? "" : "; ") + p;
            }
            return failed(detail);
        }
        return okay(std::to_string(ok) + (type == IrqType::intx ? " interrupt" : " vectors"));
    }

    std::optional<IrqType> transfer_irq() const {
        if (m_options.transfer_irq) {
            return m_options.transfer_irq;
        }
        if (m_caps & epf::k_cap_msi) {
            return IrqType::msi;
        }
        if (m_caps & epf::k_cap_msix) {
            return IrqType::msix;
        }
        if (m_caps & epf::k_cap_intx) {
            return IrqType::intx;
        }
        return IrqType::msi; // the kernel's fallback when CAPS names none
    }

    // A buffer of size + alignment, its device address aligned as the kernel aligns it.
    struct Aligned {
        HostBuffer raw;
        std::byte* data;
        std::uint64_t io_addr;
    };
    Aligned alloc(std::size_t size) {
        std::size_t align = (m_caps & epf::k_cap_unaligned_access) != 0 ? 0 : m_options.alignment;
        HostBuffer raw = m_target.alloc_buffer(size + align);
        std::uint64_t io = raw.io_addr;
        if (align != 0 && io % align != 0) {
            io += align - io % align;
        }
        return {raw, raw.data + (io - raw.io_addr), io};
    }

    void fill_random(std::byte* p, std::size_t n) {
        for (std::size_t i = 0; i < n; i += 8) {
            std::uint64_t v = m_rng();
            std::memcpy(p + i, &v, std::min<std::size_t>(8, n - i));
        }
    }

    void set_addr(std::uint32_t lower, std::uint64_t addr) {
        writel(lower, static_cast<std::uint32_t>(addr));
        writel(lower + 4, static_cast<std::uint32_t>(addr >> 32));
    }

    // op: 'R' READ_TEST (device WRITE), 'W' WRITE_TEST (device READ), 'C' COPY_TEST.
    Verdict transfer(char op, bool dma, std::uint32_t size) {
        if (m_regs == nullptr) {
            return failed("no register BAR" + std::to_string(m_options.test_reg_bar));
        }
        IrqType irq = *transfer_irq();
        Aligned a = alloc(size);
        std::optional<Aligned> b;
        struct Free {
            TestTarget& t;
            std::vector<HostBuffer> bufs;
            ~Free() {
                for (auto& h : bufs) {
                    t.free_buffer(h);
                }
            }
        } free_all{m_target, {a.raw}};
        if (op == 'C') {
            b = alloc(size);
            free_all.bufs.push_back(b->raw);
        }
        std::uint32_t command = 0;
        std::uint32_t expect_crc = 0;
        if (op == 'R') {
            std::memset(a.data, 0, size);
            set_addr(epf::k_lower_dst_addr, a.io_addr);
            command = epf::k_command_write;
        } else if (op == 'W') {
            fill_random(a.data, size);
            writel(epf::k_checksum, kernel_crc32({a.data, size}));
            set_addr(epf::k_lower_src_addr, a.io_addr);
            command = epf::k_command_read;
        } else {
            fill_random(a.data, size);
            expect_crc = kernel_crc32({a.data, size});
            std::memset(b->data, 0, size);
            set_addr(epf::k_lower_src_addr, a.io_addr);
            set_addr(epf::k_lower_dst_addr, b->io_addr);
            command = epf::k_command_copy;
        }
        drain_irqs();
        writel(epf::k_size, size);
        writel(epf::k_flags, dma ? epf::k_flag_use_dma : 0);
        writel(epf::k_irq_type, static_cast<std::uint32_t>(irq));
        writel(epf::k_irq_number, 1);
        writel(epf::k_command, command);
        if (!m_target.wait_irq(m_options.transfer_timeout)) {
            return failed("no completion interrupt within " +
                          std::to_string(m_options.transfer_timeout.count()) + " ms");
        }
        std::uint32_t status = readl(epf::k_status);
        std::string st = " (STATUS " + hex(status) + ")";
        if (op == 'R') {
            std::uint32_t crc = kernel_crc32({a.data, size});
            std::uint32_t reported = readl(epf::k_checksum);
            if (crc != reported) {
                return failed("crc of the data written " + hex(crc) + ", CHECKSUM " +
                              hex(reported) + st);
            }
            return okay("device wrote " + std::to_string(size) + " bytes, crc " + hex(crc));
        }
        if (op == 'W') {
            if ((status & epf::k_status_read_success) == 0) {
                return failed("the device did not read the data back intact" + st);
            }
            return okay("device read " + std::to_string(size) + " bytes, crc matched");
        }
        std::uint32_t got = kernel_crc32({b->data, size});
        if (got != expect_crc) {
            return failed("crc of the copy " + hex(got) + ", of the source " + hex(expect_crc) +
                          st);
        }
        return okay("device copied " + std::to_string(size) + " bytes, crc " + hex(got));
    }

    TestTarget& m_target;
    const TestOptions& m_options;
    std::mt19937_64 m_rng;
    volatile std::uint32_t* m_regs = nullptr;
    std::uint32_t m_caps = 0;
    std::vector<TestResult> m_results;
};

} // namespace

const char* to_string(Outcome outcome) noexcept {
    switch (outcome) {
    case Outcome::okay:
        return "OKAY";
    case Outcome::failed:
        return "FAILED";
    case Outcome::skipped:
        return "SKIPPED";
    }
    return "?";
}

std::vector<TestResult> run_pcitest(TestTarget& target, const TestOptions& options) {
    return Suite(target, options).run();
}

bool all_passed(const std::vector<TestResult>& results) noexcept {
    return std::none_of(results.begin(), results.end(),
                        [](const TestResult& r) { return r.outcome == Outcome::failed; });
}

} // namespace dis::endpoint
