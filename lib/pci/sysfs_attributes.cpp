// One device directory's attributes (sysfs_attributes.hpp): opened relative to a directory
// descriptor (one or two path components to resolve, not the whole path through the
// bus/pci/devices link) and read with one read(2) each into a stack buffer.
#include "sysfs_attributes.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string_view>

namespace dis::pci::detail {

namespace {

// O_NONBLOCK: a FIFO planted in a copied tree must not hang the scan in open(2); regular
// files and sysfs attributes ignore the flag.
constexpr int k_read_flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;

// Whether this kernel resolves paths with openat2(2) (Linux 5.6); cleared at the first sign
// that it does not (ENOSYS, or a filter that refuses the call).
std::atomic<bool> g_openat2{true};

// A link's target, an attribute's path: "BDF/" and the name, or the name alone.
bool join(const std::string& prefix, const char* attr, char (&path)[PATH_MAX]) {
    const std::size_t n = std::strlen(attr);
    if (prefix.size() + n >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return false;
    }
    std::memcpy(path, prefix.data(), prefix.size());
    std::memcpy(path + prefix.size(), attr, n + 1);
    return true;
}

} // namespace

int DeviceDir::open(const char* attr) const {
    char path[PATH_MAX];
    if (!join(m_prefix, attr, path))
        return -1;
    if (!beneath())
        return ::openat(m_fd, path, k_read_flags);
    open_how how{};
    how.flags = k_read_flags;
    how.resolve = RESOLVE_NO_SYMLINKS;
    return static_cast<int>(::syscall(SYS_openat2, m_fd, path, &how, sizeof how));
}

ssize_t DeviceDir::readlink(const char* attr, char* buf, std::size_t size) const {
    char path[PATH_MAX];
    return join(m_prefix, attr, path) ? ::readlinkat(m_fd, path, buf, size) : -1;
}

bool DeviceDir::openat2_usable() {
    return g_openat2;
}

void DeviceDir::check_openat2(int errno_of_open) {
    if (errno_of_open == ENOSYS || errno_of_open == EPERM || errno_of_open == EINVAL ||
        errno_of_open == E2BIG)
        g_openat2 = false;
}

std::optional<long long> sysfs_integer(const std::string& s) {
    if (s.empty())
        return std::nullopt;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 0);
    if (errno != 0 || end == s.c_str() || *end != '\0')
        return std::nullopt;
    return v;
}

namespace {

// An attribute's text without trailing white space; nullopt when it cannot be read. A sysfs
// attribute is produced whole by its first read (at most a page) and a regular file's short
// read is its end, so a read shorter than the buffer is the last one.
std::optional<std::string> sysfs_text_at(const DeviceDir& dir, const char* name) {
    UniqueFd f(dir.open(name));
    if (!f.valid())
        return std::nullopt;
    std::string s;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(f.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::nullopt;
        s.append(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf)
            break;
    }
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    return s;
}

// The last component of a symbolic link's target ("driver" -> "nvme").
std::optional<std::string> sysfs_link_name_at(const DeviceDir& dir, const char* name) {
    char buf[4096];
    ssize_t n = dir.readlink(name, buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
        return std::nullopt;
    std::string_view target(buf, static_cast<std::size_t>(n));
    while (!target.empty() && target.back() == '/')
        target.remove_suffix(1);
    if (auto slash = target.rfind('/'); slash != std::string_view::npos)
        target.remove_prefix(slash + 1);
    return std::string(target);
}

std::optional<std::uint32_t> sysfs_number_at(const DeviceDir& dir, const char* name,
                                             long long max) {
    if (auto text = sysfs_text_at(dir, name))
        if (auto v = sysfs_integer(*text); v && *v >= 0 && *v <= max)
            return static_cast<std::uint32_t>(*v);
    return std::nullopt;
}

// "RxErr 0\nBadTLP 3\n...TOTAL_ERR_COR 3" -> map: words taken in pairs, a pair whose second
// word is not a count skipped.
std::map<std::string, std::uint64_t> parse_counters(std::string_view text) {
    std::map<std::string, std::uint64_t> out;
    auto next_word = [&text]() -> std::string_view {
        const auto blank = [](char c) {
            return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
        };
        while (!text.empty() && blank(text.front()))
            text.remove_prefix(1);
        std::size_t n = 0;
        while (n < text.size() && !blank(text[n]))
            ++n;
        std::string_view word = text.substr(0, n);
        text.remove_prefix(n);
        return word;
    };
    for (;;) {
        const std::string_view name = next_word();
        const std::string_view value = next_word();
        if (value.empty())
            break;
        if (auto v = sysfs_integer(std::string(value)); v && *v >= 0)
            out[std::string(name)] = static_cast<std::uint64_t>(*v);
    }
    return out;
}

// The kernel's ids and class, from sysfs `modalias` ("pci:v00008086d0000A110sv00001028sd0000
// 085Cbc06sc04i00"), which prints the same fields of the kernel's pci_dev as the separate
// vendor, device, subsystem_* and class attributes do, in one read instead of five.
struct KernelIds {
    std::uint32_t vendor = 0, device = 0, subsystem_vendor = 0, subsystem_device = 0;
    std::uint32_t class_code = 0; // base class, subclass, programming interface
};

// Takes `tag` and then exactly `digits` hex digits from the front of `text`.
bool take_field(std::string_view& text, std::string_view tag, int digits, std::uint32_t& out) {
    if (text.substr(0, tag.size()) != tag)
        return false;
    text.remove_prefix(tag.size());
    const auto n = static_cast<std::size_t>(digits);
    if (text.size() < n)
        return false;
    // from_chars takes neither a sign nor 0x: hex digits only, every one of them.
    const auto end = text.data() + n;
    const auto [ptr, ec] = std::from_chars(text.data(), end, out, 16);
    if (ec != std::errc() || ptr != end)
        return false;
    text.remove_prefix(n);
    return true;
}

std::optional<KernelIds> parse_modalias(std::string_view text) {
    KernelIds ids;
    std::uint32_t base = 0, sub = 0, prog_if = 0;
    if (!take_field(text, "pci:v", 8, ids.vendor) || !take_field(text, "d", 8, ids.device) ||
        !take_field(text, "sv", 8, ids.subsystem_vendor) ||
        !take_field(text, "sd", 8, ids.subsystem_device) || !take_field(text, "bc", 2, base) ||
        !take_field(text, "sc", 2, sub) || !take_field(text, "i", 2, prog_if) || !text.empty())
        return std::nullopt;
    if (ids.vendor > 0xffff || ids.device > 0xffff || ids.subsystem_vendor > 0xffff ||
        ids.subsystem_device > 0xffff)
        return std::nullopt;
    ids.class_code = base << 16 | sub << 8 | prog_if;
    return ids;
}

} // namespace

// Ids and class as the kernel holds them, which is what lspci shows: an SR-IOV VF's own
// Vendor and Device ID registers read 0xffff (the kernel takes the PF's vendor and the VF
// Device ID of the PF's SR-IOV capability), and quirks may fix up ids and classes of broken
// devices. Subsystem ids come from config space unless it has none (a VF again).
void read_kernel_ids(const DeviceDir& dir, Device& dev) {
    const bool subsystem_missing =
        dev.subsystem_vendor_id == 0xffff && dev.subsystem_device_id == 0xffff;
    if (auto text = sysfs_text_at(dir, "modalias"))
        if (auto ids = parse_modalias(*text)) {
            dev.vendor_id = static_cast<std::uint16_t>(ids->vendor);
            dev.device_id = static_cast<std::uint16_t>(ids->device);
            dev.class_id = static_cast<std::uint16_t>(ids->class_code >> 8);
            dev.prog_if = static_cast<std::uint8_t>(ids->class_code & 0xff);
            if (subsystem_missing) {
                dev.subsystem_vendor_id = static_cast<std::uint16_t>(ids->subsystem_vendor);
                dev.subsystem_device_id = static_cast<std::uint16_t>(ids->subsystem_device);
            }
            return;
        }
    // No modalias (a hand-made tree): the separate attributes.
    if (auto v = sysfs_number_at(dir, "vendor", 0xffff))
        dev.vendor_id = static_cast<std::uint16_t>(*v);
    if (auto v = sysfs_number_at(dir, "device", 0xffff))
        dev.device_id = static_cast<std::uint16_t>(*v);
    if (auto v = sysfs_number_at(dir, "class", 0xffffff)) {
        dev.class_id = static_cast<std::uint16_t>(*v >> 8);
        dev.prog_if = static_cast<std::uint8_t>(*v & 0xff);
    }
    if (subsystem_missing) {
        auto sv = sysfs_number_at(dir, "subsystem_vendor", 0xffff);
        auto sd = sysfs_number_at(dir, "subsystem_device", 0xffff);
        if (sv && sd) {
            dev.subsystem_vendor_id = static_cast<std::uint16_t>(*sv);
            dev.subsystem_device_id = static_cast<std::uint16_t>(*sd);
        }
    }
}

namespace {

// Kernel resource flags (include/linux/ioport.h) in sysfs `resource`.
constexpr unsigned long long k_ioresource_io = 0x100;
constexpr unsigned long long k_ioresource_mem = 0x200;
constexpr unsigned long long k_ioresource_prefetch = 0x2000;
constexpr unsigned long long k_ioresource_mem_64 = 0x100000;
constexpr unsigned long long k_ioresource_pci_ea_bei = 0x20;

// sysfs `resource`: one "start end flags" line per BAR index. It gives the sizes of the BARs
// config space shows, and the BARs the kernel assigned while the function's own register
// reads zero, which lspci shows as "[virtual]": an SR-IOV VF's BARs are programmed in its
// PF's SR-IOV capability, so the VF's header has none.
void read_sysfs_bars(const DeviceDir& dir, Device& dev) {
    auto text = sysfs_text_at(dir, "resource");
    if (!text)
        return;
    // BAR registers per header layout: normal 6, PCI-to-PCI bridge 2, CardBus bridge 1.
    constexpr std::array<int, 3> k_bar_count = {6, 2, 1};
    const int count = dev.header_type < k_bar_count.size() ? k_bar_count[dev.header_type] : 0;
    std::istringstream in(*text);
    std::string line;
    for (int index = 0; index < count && std::getline(in, line); ++index) {
        unsigned long long start = 0, end = 0, flags = 0;
        if (std::sscanf(line.c_str(), "%llx %llx %llx", &start, &end, &flags) != 3)
            continue;
        if (end <= start)
            continue;
        bool in_config = false;
        for (auto& bar : dev.bars) {
            if (bar.index == index) {
                bar.size = end - start + 1;
                in_config = true;
            } else if (bar.is_64bit && bar.index + 1 == index) {
                in_config = true; // the upper half of a 64-bit BAR
            }
        }
        bool typed = flags & (k_ioresource_io | k_ioresource_mem);
        if (in_config || start == 0 || !typed || (flags & k_ioresource_pci_ea_bei))
            continue;
        Bar bar;
        bar.index = index;
        bar.base = start;
        bar.size = end - start + 1;
        bar.io = flags & k_ioresource_io;
        bar.is_64bit = !bar.io && (flags & k_ioresource_mem_64);
        bar.prefetchable = !bar.io && (flags & k_ioresource_prefetch);
        bar.is_virtual = true;
        dev.bars.push_back(bar);
    }
    std::sort(dev.bars.begin(), dev.bars.end(),
              [](const Bar& a, const Bar& b) { return a.index < b.index; });
}

} // namespace

void read_placement(const DeviceDir& dir, Device& dev) {
    if (auto numa = sysfs_text_at(dir, "numa_node"))
        if (auto v = sysfs_integer(*numa); v && *v >= 0)
            dev.numa_node = static_cast<int>(*v);
    if (auto group = sysfs_link_name_at(dir, "iommu_group"))
        if (auto v = sysfs_integer(*group); v && *v >= 0)
            dev.iommu_group = static_cast<int>(*v);
    if (auto methods = sysfs_text_at(dir, "reset_method")) {
        std::istringstream in(*methods);
        std::string m;
        while (in >> m)
            dev.reset_methods.push_back(m);
    }
    read_sysfs_bars(dir, dev);
    if (auto physfn = sysfs_link_name_at(dir, "physfn"))
        dev.physfn = Bdf::try_parse(*physfn);
}

// Bytes of config space the file gives (a whole number of dwords), read into `buf`. An
// unprivileged reader of the live /sys gets the first 64 bytes only: a short read is the end.
std::size_t read_config_file(const UniqueFd& f, std::array<std::uint8_t, 4096>& buf) {
    if (!f.valid())
        return 0;
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::pread(f.get(), buf.data() + got, buf.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += static_cast<std::size_t>(n);
        if (got < buf.size())
            break;
    }
    return got & ~std::size_t{3};
}

void read_driver_and_aer(const DeviceDir& dir, Device& dev) {
    if (auto driver = sysfs_link_name_at(dir, "driver"))
        dev.driver = *driver;
    auto aer = [&dev]() -> Aer& {
        if (!dev.aer) {
            dev.aer = Aer{};
            dev.aer->counters_only = true;
        }
        return *dev.aer;
    };
    for (const char* file : {"aer_dev_correctable", "aer_dev_nonfatal", "aer_dev_fatal"})
        if (auto text = sysfs_text_at(dir, file))
            aer().counters[file] = parse_counters(*text);
    // The kernel keeps these totals on root ports and event collectors only.
    if (dev.port_type == PortType::root_port || dev.port_type == PortType::rc_event_collector)
        for (const char* file : {"aer_rootport_total_err_cor", "aer_rootport_total_err_nonfatal",
                                 "aer_rootport_total_err_fatal"})
            if (auto text = sysfs_text_at(dir, file))
                if (auto v = sysfs_integer(*text); v && *v >= 0)
                    aer().rootport_totals[file] = static_cast<std::uint64_t>(*v);
}

} // namespace dis::pci::detail
