// A sysfs tree's devices read directly (sysfs_read.hpp). Each device's directory is opened
// once; its config space and attributes are opened relative to that descriptor (one path
// component to resolve, not the whole path through the bus/pci/devices link) and read with
// one read(2) each into a stack buffer. Where the directory really is (links followed) comes
// from the same descriptor, through /proc/self/fd: it gives both the copied-tree check and
// the parent directory.
#include "sysfs_read.hpp"

#include "decode.hpp"

#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace dis::pci::detail {

namespace fs = std::filesystem;

namespace {

// O_NONBLOCK: a FIFO planted in a copied tree must not hang the scan in open(2); regular
// files and sysfs attributes ignore the flag.
constexpr int k_read_flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;

// An attribute's text without trailing white space; nullopt when it cannot be read. A sysfs
// attribute is produced whole by its first read (at most a page) and a regular file's short
// read is its end, so a read shorter than the buffer is the last one.
std::optional<std::string> sysfs_text_at(int dirfd, const char* name) {
    UniqueFd f(::openat(dirfd, name, k_read_flags));
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
std::optional<std::string> sysfs_link_name_at(int dirfd, const char* name) {
    char buf[4096];
    ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
        return std::nullopt;
    std::string_view target(buf, static_cast<std::size_t>(n));
    while (!target.empty() && target.back() == '/')
        target.remove_suffix(1);
    if (auto slash = target.rfind('/'); slash != std::string_view::npos)
        target.remove_prefix(slash + 1);
    return std::string(target);
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

std::optional<std::uint32_t> sysfs_number_at(int dirfd, const char* name, long long max) {
    if (auto text = sysfs_text_at(dirfd, name))
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

// A /sys/bus/pci/devices entry's target, lexically (nullopt when it is not a link).
std::optional<fs::path> link_target(const std::string& entry) {
    char buf[4096];
    ssize_t n = ::readlink(entry.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
        return std::nullopt;
    fs::path target(std::string(buf, static_cast<std::size_t>(n)));
    if (target.is_absolute())
        return target.lexically_normal();
    return (fs::path(entry).parent_path() / target).lexically_normal();
}

// `base`/`target` (or `target` alone when absolute) with "." and ".." taken lexically, the
// way the kernel reads a link's words relative to the directory holding the link.
std::string lexical_join(const std::string& base, std::string_view target) {
    std::vector<std::string_view> parts;
    auto push = [&parts](std::string_view path) {
        while (!path.empty()) {
            const auto slash = path.find('/');
            const std::string_view part = path.substr(0, slash);
            path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
            if (part.empty() || part == ".")
                continue;
            if (part == "..") {
                if (!parts.empty())
                    parts.pop_back();
                continue;
            }
            parts.push_back(part);
        }
    };
    if (target.empty() || target.front() != '/')
        push(base);
    push(target);
    std::string out;
    for (auto part : parts) {
        out += '/';
        out += part;
    }
    return out.empty() ? "/" : out;
}

// Where an open descriptor's file is, every link followed (nullopt without /proc).
std::optional<std::string> descriptor_path(int fd) {
    char self[40];
    std::snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    char buf[4096];
    ssize_t n = ::readlink(self, buf, sizeof buf);
    if (n > 0 && static_cast<std::size_t>(n) < sizeof buf && buf[0] == '/')
        return std::string(buf, static_cast<std::size_t>(n));
    return std::nullopt;
}

// The path `p` leads to with every link followed: one path walk, where weakly_canonical
// walks the path again for each of its components. Falls back to weakly_canonical for a
// dangling link (which it resolves as far as it exists) or without /proc.
std::string resolved_path(const std::string& p) {
    UniqueFd fd(::open(p.c_str(), O_PATH | O_CLOEXEC));
    if (fd.valid())
        if (auto where = descriptor_path(fd.get()))
            return *where;
    std::error_code ec;
    return fs::weakly_canonical(p, ec).string();
}

bool is_inside(const std::string& path, const std::string& base) {
    if (base == "/")
        return !path.empty() && path[0] == '/';
    return path == base || (path.size() > base.size() && path.compare(0, base.size(), base) == 0 &&
                            path[base.size()] == '/');
}

// libpci-style readers and this one follow the links; one leaving a copied tree (an absolute
// /sys/... link) would silently read this machine's devices instead of the copy's.
void refuse_outside(const SysfsTree& tree, const std::string& entry, const std::string& where) {
    if (is_inside(where, tree.base))
        return;
    const auto target = link_target(entry);
    throw Error(ErrorKind::invalid_input,
                "sysfs entry '" + entry + "' links outside '" + tree.root + "' (to " +
                    (target ? target->string() : where) + "); copy /sys with relative links");
}

// Bytes of config space the file gives (a whole number of dwords), read into `buf`. An
// unprivileged reader of the live /sys gets the first 64 bytes only: a short read is the end.
std::size_t read_config_at(int dirfd, std::array<std::uint8_t, 4096>& buf) {
    UniqueFd f(::openat(dirfd, "config", k_read_flags));
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
    if (text.size() < static_cast<std::size_t>(digits))
        return false;
    out = 0;
    for (int i = 0; i < digits; ++i) {
        const char c = text[static_cast<std::size_t>(i)];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (v < 0)
            return false;
        out = out << 4 | static_cast<std::uint32_t>(v);
    }
    text.remove_prefix(static_cast<std::size_t>(digits));
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

// Ids and class as the kernel holds them, which is what lspci shows: an SR-IOV VF's own
// Vendor and Device ID registers read 0xffff (the kernel takes the PF's vendor and the VF
// Device ID of the PF's SR-IOV capability), and quirks may fix up ids and classes of broken
// devices. Subsystem ids come from config space unless it has none (a VF again).
void read_sysfs_ids(int dir, Device& dev) {
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
void read_sysfs_bars(int dir, Device& dev) {
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

void read_placement(int dir, Device& dev) {
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

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

} // namespace

SysfsTree open_sysfs_tree(const std::string& root) {
    SysfsTree tree;
    tree.root = root;
    tree.devices_dir = root + "/bus/pci/devices";
    std::error_code ec;
    if (!fs::exists(root, ec))
        throw Error(ErrorKind::not_found, "sysfs root '" + root + "' does not exist");
    if (!fs::is_directory(tree.devices_dir, ec))
        throw Error(ErrorKind::not_found,
                    "sysfs root '" + root + "' has no bus/pci/devices directory");
    std::unique_ptr<DIR, DirCloser> dir(::opendir(tree.devices_dir.c_str()));
    if (!dir)
        throw os_error("cannot read '" + tree.devices_dir + "'", errno);
    tree.copy = root != "/sys";
    if (tree.copy)
        tree.base = resolved_path(root);
    tree.devices_resolved = resolved_path(tree.devices_dir);
    tree.devices_fd = UniqueFd(::open(tree.devices_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!tree.devices_fd.valid())
        throw os_error("cannot open '" + tree.devices_dir + "'", errno);
    for (;;) {
        errno = 0;
        const dirent* d = ::readdir(dir.get());
        if (!d) {
            if (errno != 0)
                throw os_error("cannot list '" + tree.devices_dir + "'", errno);
            break;
        }
        const std::string name = d->d_name;
        if (name.empty() || name[0] == '.')
            continue;
        // The kernel's spelling alone (0000:00:1c.0): each device listed once, by one name.
        auto bdf = Bdf::try_parse(name);
        if (!bdf || bdf->to_string() != name)
            throw Error(ErrorKind::invalid_input, "unexpected entry '" + name + "' in " +
                                                      tree.devices_dir +
                                                      " (expected PCI addresses)");
        tree.entries.push_back({*bdf, name});
    }
    return tree;
}

const SysfsParentDirs::Dir& SysfsParentDirs::get(const SysfsTree& tree, const std::string& path) {
    auto it = m_dirs.find(path);
    if (it != m_dirs.end())
        return it->second;
    Dir dir;
    dir.fd = UniqueFd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd.valid() && tree.copy) {
        dir.resolved = descriptor_path(dir.fd.get()).value_or(resolved_path(path));
        dir.inside = is_inside(dir.resolved, tree.base);
    }
    return m_dirs.emplace(path, std::move(dir)).first->second;
}

namespace {

// The device's directory, opened; sets its parent (the directory its link points into, when
// that is a PCI device's) and `parent_known` when the entry is a link. Refuses an entry of a
// copied tree that leads outside it.
UniqueFd open_device_dir(const SysfsTree& tree, const SysfsTree::Entry& entry,
                         SysfsParentDirs& dirs, Device& dev, bool& parent_known) {
    const std::string path = tree.devices_dir + "/" + entry.name;
    char buf[4096];
    const ssize_t n = ::readlinkat(tree.devices_fd.get(), entry.name.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) {
        // Not a link: a directory of bus/pci/devices itself, inside the tree.
        return UniqueFd(::openat(tree.devices_fd.get(), entry.name.c_str(),
                                 O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    parent_known = true;
    const std::string target =
        lexical_join(tree.devices_resolved, std::string_view(buf, static_cast<std::size_t>(n)));
    const auto slash = target.rfind('/');
    const std::string parent_path = slash == 0 ? "/" : target.substr(0, slash);
    const std::string name = target.substr(slash + 1);
    if (auto parent = Bdf::try_parse(fs::path(parent_path).filename().string()))
        dev.parent = *parent;

    const auto& parent_dir = dirs.get(tree, parent_path);
    if (!parent_dir.fd.valid()) {
        // A dangling link: its words, resolved as far as they exist.
        if (tree.copy)
            refuse_outside(tree, path, resolved_path(target));
        return UniqueFd();
    }
    if (!parent_dir.inside)
        refuse_outside(tree, path, parent_dir.resolved + "/" + name);
    UniqueFd dir(
        ::openat(parent_dir.fd.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir.valid() || (errno != ENOTDIR && errno != ELOOP))
        return dir; // a directory inside its checked parent, or nothing (a dangling link)
    // The device's own directory is a link in turn: followed whole, then checked.
    dir = UniqueFd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (tree.copy) {
        const auto where = dir.valid() ? descriptor_path(dir.get()) : std::nullopt;
        refuse_outside(tree, path, where ? *where : resolved_path(path));
    }
    return dir;
}

} // namespace

void read_sysfs_device(const SysfsTree& tree, const SysfsTree::Entry& entry,
                       const ScanOptions& options, SysfsParentDirs& dirs, Device& dev,
                       bool& parent_known) {
    const UniqueFd dir_fd = open_device_dir(tree, entry, dirs, dev, parent_known);
    std::array<std::uint8_t, 4096> config;
    const std::size_t len = dir_fd.valid() ? read_config_at(dir_fd.get(), config) : 0;
    decode_config(std::span<const std::uint8_t>(config.data(), len), dev);
    if (len == 0) {
        // Nothing readable (e.g. a sysfs entry without a config file).
        dev.vendor_id = dev.device_id = 0xffff;
        dev.class_id = 0xffff;
    }
    if (!dir_fd.valid())
        return;
    const int dir = dir_fd.get();
    read_sysfs_ids(dir, dev);
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
    if (options.placement)
        read_placement(dir, dev);
}

} // namespace dis::pci::detail
