// Reading a Topology through libpci (live sysfs, a copied sysfs tree, or an lspci dump) plus
// the sysfs attributes libpci does not decode. This is the only file that talks to libpci.
#include "decode.hpp"
#include "dump_check.hpp"

#include "dis/error.hpp"
#include "dis/pci.hpp"
#include "dis/unique_fd.hpp"

extern "C" {
#include <pci/pci.h>
}

#include <algorithm>
#include <array>
#include <cerrno>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace dis::pci {

namespace fs = std::filesystem;

namespace {

// ---- libpci with its fatal error hook turned into an error return ----------------------
//
// libpci's error callback must not return (the default one calls exit()). Inputs are
// validated before libpci sees them, so it should never fire; if it does anyway, the hook
// longjmps back to the guarded call. Only C frames lie between setjmp and longjmp, and the
// access object is abandoned afterwards because libpci's state is then undefined.

thread_local std::jmp_buf* t_jump = nullptr;
thread_local char t_message[512];

// GNU noreturn, not [[noreturn]]: it is part of the function type libpci's hook has, and
// clang refuses to assign a [[noreturn]] function to it.
__attribute__((noreturn)) void on_libpci_error(char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(t_message, sizeof t_message, fmt, ap);
    va_end(ap);
    if (t_jump)
        std::longjmp(*t_jump, 1);
    std::abort(); // unreachable: every libpci call that can fail runs guarded
}

// Warnings (e.g. an unreadable config file) show up as missing data instead.
void on_libpci_quiet(char*, ...) {}

// Runs `fn(a)`; false when libpci reported a fatal error (message in t_message).
bool run_guarded(void (*fn)(pci_access*), pci_access* a) {
    std::jmp_buf env;
    std::jmp_buf* previous = t_jump;
    t_jump = &env;
    if (setjmp(env) != 0) {
        t_jump = previous;
        return false;
    }
    fn(a);
    t_jump = previous;
    return true;
}

class PciAccess {
public:
    PciAccess() : m_access(pci_alloc()) {
        m_access->error = on_libpci_error;
        m_access->warning = on_libpci_quiet;
        m_access->debug = on_libpci_quiet;
    }
    ~PciAccess() {
        if (m_access)
            pci_cleanup(m_access);
    }
    PciAccess(const PciAccess&) = delete;
    PciAccess& operator=(const PciAccess&) = delete;

    pci_access* get() const { return m_access; }
    void set_param(const char* name, const std::string& value) {
        std::string n = name, v = value;
        pci_set_param(m_access, n.data(), v.data());
    }
    // After a libpci fatal error its state is undefined: leak it rather than clean up.
    void abandon() { m_access = nullptr; }

private:
    pci_access* m_access;
};

// ---- small sysfs readers ------------------------------------------------------------------
//
// A scrape reads a dozen attributes of each of 1,000+ devices: each is opened relative to the
// device directory's descriptor (one path component to resolve, not the whole path through
// the bus/pci/devices link) and read with plain read(2) into a stack buffer, since a stream
// per attribute cost more than the file system did.

// The device directory, as an O_PATH descriptor (invalid when it does not exist).
dis::UniqueFd open_dir(const fs::path& dir) {
    return dis::UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

// An attribute's text without trailing white space; nullopt when it cannot be read.
std::optional<std::string> read_text_at(int dirfd, const char* name) {
    dis::UniqueFd f(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
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
        if (n == 0)
            break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    return s;
}

// The last component of a symbolic link's target ("driver" -> "nvme").
std::optional<std::string> link_basename_at(int dirfd, const char* name) {
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

std::optional<long long> to_integer(const std::string& s) {
    if (s.empty())
        return std::nullopt;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 0);
    if (errno != 0 || end == s.c_str() || *end != '\0')
        return std::nullopt;
    return v;
}

// "RxErr 0\nBadTLP 3\n...TOTAL_ERR_COR 3" -> map; malformed lines are skipped.
std::map<std::string, std::uint64_t> parse_counters(const std::string& text) {
    std::map<std::string, std::uint64_t> out;
    std::istringstream in(text);
    std::string name, value;
    while (in >> name >> value)
        if (auto v = to_integer(value); v && *v >= 0)
            out[name] = static_cast<std::uint64_t>(*v);
    return out;
}

// The directory a /sys/bus/pci/devices entry points to (nullopt when it is not a link).
std::optional<fs::path> device_target(const fs::path& entry) {
    char buf[4096];
    ssize_t n = ::readlink(entry.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
        return std::nullopt;
    fs::path target(std::string(buf, static_cast<std::size_t>(n)));
    if (target.is_absolute())
        return target.lexically_normal();
    return (entry.parent_path() / target).lexically_normal();
}

std::optional<std::uint32_t> read_number_at(int dirfd, const char* name, long long max) {
    if (auto text = read_text_at(dirfd, name))
        if (auto v = to_integer(*text); v && *v >= 0 && *v <= max)
            return static_cast<std::uint32_t>(*v);
    return std::nullopt;
}

// Ids and class as the kernel holds them, which is what libpci's sysfs method (and so lspci)
// shows: an SR-IOV VF's own Vendor and Device ID registers read 0xffff (the kernel takes the
// PF's vendor and the VF Device ID of the PF's SR-IOV capability), and quirks may fix up ids
// and classes of broken devices.
// `ident_known`: libpci's sysfs method has read vendor and device already (the same files).
void read_sysfs_ids(int dir, Device& dev, bool ident_known) {
    if (!ident_known) {
        if (auto v = read_number_at(dir, "vendor", 0xffff))
            dev.vendor_id = static_cast<std::uint16_t>(*v);
        if (auto v = read_number_at(dir, "device", 0xffff))
            dev.device_id = static_cast<std::uint16_t>(*v);
    }
    if (auto v = read_number_at(dir, "class", 0xffffff)) {
        dev.class_id = static_cast<std::uint16_t>(*v >> 8);
        dev.prog_if = static_cast<std::uint8_t>(*v & 0xff);
    }
    if (dev.subsystem_vendor_id == 0xffff && dev.subsystem_device_id == 0xffff) {
        auto sv = read_number_at(dir, "subsystem_vendor", 0xffff);
        auto sd = read_number_at(dir, "subsystem_device", 0xffff);
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
    auto text = read_text_at(dir, "resource");
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

void read_sysfs_attributes(const fs::path& root, const ScanOptions& options, bool ident_known,
                           Device& dev, bool& parent_known) {
    const fs::path entry = root / "bus/pci/devices" / dev.bdf.to_string();
    const dis::UniqueFd dir_fd = open_dir(entry);
    if (!dir_fd.valid())
        return;
    const int dir = dir_fd.get();
    read_sysfs_ids(dir, dev, ident_known);
    if (auto driver = link_basename_at(dir, "driver"))
        dev.driver = *driver;
    for (const char* file : {"aer_dev_correctable", "aer_dev_nonfatal", "aer_dev_fatal"}) {
        if (auto text = read_text_at(dir, file)) {
            if (!dev.aer) {
                dev.aer = Aer{};
                dev.aer->counters_only = true;
            }
            dev.aer->counters[file] = parse_counters(*text);
        }
    }
    if (options.placement) {
        if (auto numa = read_text_at(dir, "numa_node"))
            if (auto v = to_integer(*numa); v && *v >= 0)
                dev.numa_node = static_cast<int>(*v);
        if (auto group = link_basename_at(dir, "iommu_group"))
            if (auto v = to_integer(*group); v && *v >= 0)
                dev.iommu_group = static_cast<int>(*v);
        if (auto methods = read_text_at(dir, "reset_method")) {
            std::istringstream in(*methods);
            std::string m;
            while (in >> m)
                dev.reset_methods.push_back(m);
        }
        read_sysfs_bars(dir, dev);
        if (auto physfn = link_basename_at(dir, "physfn"))
            dev.physfn = Bdf::try_parse(*physfn);
    }
    // Parent: the directory holding this device's directory, when it is a PCI device.
    if (auto target = device_target(entry)) {
        parent_known = true;
        if (auto parent = Bdf::try_parse(target->parent_path().filename().string()))
            dev.parent = *parent;
    }
}

// ---- parents from bridge bus ranges (dumps, or sysfs entries that are not links) -----------

bool is_tree_bridge(const Device& d) {
    return (d.class_id >> 8) == 0x06 && (d.header_type == 1 || d.header_type == 2);
}

// lspci -t's rule (ls-tree.c): bus 0000:00 hangs off the host; any other bus belongs to
// the last bridge, in address order and in the same domain, whose secondary..subordinate
// range contains it; a bus no bridge claims is a top-level bus of its own.
void assign_parents_by_bus(std::vector<Device>& devices, const std::vector<bool>& skip) {
    std::map<std::uint32_t, std::vector<std::size_t>> bridges_by_domain;
    for (std::size_t i = 0; i < devices.size(); ++i)
        if (is_tree_bridge(devices[i]))
            bridges_by_domain[devices[i].bdf.domain].push_back(i);
    for (std::size_t i = 0; i < devices.size(); ++i) {
        if (skip[i])
            continue;
        Device& d = devices[i];
        d.parent.reset();
        if (d.bdf.domain == 0 && d.bdf.bus == 0)
            continue;
        auto it = bridges_by_domain.find(d.bdf.domain);
        if (it == bridges_by_domain.end())
            continue;
        for (auto b = it->second.rbegin(); b != it->second.rend(); ++b) {
            const Device& br = devices[*b];
            if (*b != i && *br.secondary_bus <= d.bdf.bus && d.bdf.bus <= *br.subordinate_bus) {
                d.parent = br.bdf;
                break;
            }
        }
    }
}

// A corrupt hierarchy (bridges claiming each other's buses) must not make a cycle that
// tree walks would follow forever: the device closing a cycle becomes a root.
void break_parent_cycles(std::vector<Device>& devices) {
    std::map<Bdf, std::size_t> index;
    for (std::size_t i = 0; i < devices.size(); ++i)
        index.emplace(devices[i].bdf, i);
    // 0 unvisited, 1 on the current path, 2 done
    std::vector<int> state(devices.size(), 0);
    for (std::size_t start = 0; start < devices.size(); ++start) {
        std::vector<std::size_t> path;
        std::size_t i = start;
        while (state[i] == 0) {
            state[i] = 1;
            path.push_back(i);
            if (!devices[i].parent)
                break;
            auto it = index.find(*devices[i].parent);
            if (it == index.end())
                break;
            if (state[it->second] == 1) {
                devices[i].parent.reset();
                break;
            }
            i = it->second;
        }
        for (auto p : path)
            state[p] = 2;
    }
}

// ---- link training -----------------------------------------------------------------------

bool faces_downstream(PortType t) {
    return t == PortType::root_port || t == PortType::downstream_port ||
           t == PortType::pci_to_pcie_bridge;
}

void mark_downgraded_links(std::vector<Device>& devices) {
    std::map<Bdf, std::size_t> index;
    for (std::size_t i = 0; i < devices.size(); ++i)
        index.emplace(devices[i].bdf, i);
    // The device across each downstream-facing port's link: the lowest-addressed child
    // with a link that faces upstream.
    std::map<Bdf, std::size_t> downstream_partner;
    for (std::size_t i = 0; i < devices.size(); ++i) {
        const Device& d = devices[i];
        if (!d.parent || !d.link || !d.port_type || faces_downstream(*d.port_type))
            continue;
        downstream_partner.emplace(*d.parent, i); // devices are sorted: first child wins
    }
    for (auto& d : devices) {
        if (!d.link)
            continue;
        Link& l = *d.link;
        l.downgraded = false;
        if (l.width == 0 || l.dl_active == false)
            continue; // link down, nothing trained
        int cap_speed = detail::speed_rank(l.max_speed);
        int cap_width = l.max_width;
        const Device* partner = nullptr;
        if (d.port_type && faces_downstream(*d.port_type)) {
            if (auto it = downstream_partner.find(d.bdf); it != downstream_partner.end())
                partner = &devices[it->second];
        } else if (d.parent) {
            if (auto it = index.find(*d.parent); it != index.end()) {
                const Device& p = devices[it->second];
                if (p.link && p.port_type && faces_downstream(*p.port_type))
                    partner = &p;
            }
        }
        if (partner) {
            int ps = detail::speed_rank(partner->link->max_speed);
            if (ps && cap_speed)
                cap_speed = std::min(cap_speed, ps);
            if (partner->link->max_width > 0)
                cap_width = std::min(cap_width, partner->link->max_width);
        }
        int speed = detail::speed_rank(l.speed);
        bool slower = speed && cap_speed && speed < cap_speed;
        bool narrower = l.width < cap_width;
        l.downgraded = slower || narrower;
    }
}

// ---- the scan ----------------------------------------------------------------------------

// The directory `p` leads to with every link followed. One path walk (an O_PATH open read
// back through /proc/self/fd) where weakly_canonical walks the path again for each of its
// components: on a 1,000-device tree that was half of an exporter scrape's system time.
fs::path resolved_path(const fs::path& p) {
    UniqueFd fd(::open(p.c_str(), O_PATH | O_CLOEXEC));
    if (fd.valid()) {
        char buf[4096];
        const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
        ssize_t n = ::readlink(self.c_str(), buf, sizeof buf);
        if (n > 0 && static_cast<std::size_t>(n) < sizeof buf && buf[0] == '/')
            return fs::path(std::string(buf, static_cast<std::size_t>(n)));
    }
    std::error_code ec; // a dangling link, or no /proc
    return fs::weakly_canonical(p, ec);
}

void check_sysfs_root(const std::string& root) {
    fs::path devices = fs::path(root) / "bus/pci/devices";
    std::error_code ec;
    if (!fs::exists(root, ec))
        throw Error(ErrorKind::not_found, "sysfs root '" + root + "' does not exist");
    if (!fs::is_directory(devices, ec))
        throw Error(ErrorKind::not_found,
                    "sysfs root '" + root + "' has no bus/pci/devices directory");
    if (::access(devices.c_str(), R_OK | X_OK) != 0)
        throw os_error("cannot read '" + devices.string() + "'", errno);
    // libpci treats an entry it cannot parse as fatal; sysfs holds nothing but addresses.
    const fs::path base = root == "/sys" ? fs::path() : resolved_path(root);
    for (const auto& entry : fs::directory_iterator(devices, ec)) {
        std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.')
            continue;
        if (!Bdf::try_parse(name))
            throw Error(ErrorKind::invalid_input, "unexpected entry '" + name + "' in " +
                                                      devices.string() +
                                                      " (expected PCI addresses)");
        // libpci follows the links; one leaving a copied tree (an absolute /sys/... link)
        // would silently read this machine's devices instead of the copy's.
        if (auto target = device_target(entry.path()); target && root != "/sys") {
            auto rel = resolved_path(*target).lexically_relative(base);
            if (rel.empty() || *rel.begin() == "..")
                throw Error(ErrorKind::invalid_input,
                            "sysfs entry '" + entry.path().string() + "' links outside '" + root +
                                "' (to " + target->string() + "); copy /sys with relative links");
        }
    }
    if (ec)
        throw os_error("cannot list '" + devices.string() + "'", ec.value());
}

// Bytes of config space the source provides for `d`, read into `buf`. libpci reads fail
// past the end of a dump or a short sysfs config file, so the end is found by bisection.
std::size_t read_config(pci_dev* d, std::array<std::uint8_t, 4096>& buf) {
    auto readable = [&](std::size_t n) {
        return pci_read_block(d, 0, buf.data(), static_cast<int>(n)) != 0;
    };
    if (readable(4096))
        return 4096;
    std::size_t lo = 0, hi = 4096; // readable(lo), !readable(hi), in dwords
    while (hi - lo > 4) {
        std::size_t mid = (lo + hi) / 2 & ~std::size_t{3};
        if (mid == lo)
            break;
        (readable(mid) ? lo : hi) = mid;
    }
    if (lo > 0)
        readable(lo);
    return lo;
}

class Names {
public:
    explicit Names(pci_access* a) : m_access(a) {
        // A corrupt pci.ids is a libpci fatal error: treat it as "no names".
        m_ok = run_guarded([](pci_access* acc) { pci_load_name_list(acc); }, a);
    }
    std::string vendor(std::uint16_t v) const { return lookup(PCI_LOOKUP_VENDOR, v, 0); }
    std::string device(std::uint16_t v, std::uint16_t d) const {
        return lookup(PCI_LOOKUP_DEVICE, v, d);
    }
    std::string klass(std::uint16_t c) const { return lookup(PCI_LOOKUP_CLASS, c, 0); }

private:
    std::string lookup(int what, unsigned a, unsigned b) const {
        if (!m_ok)
            return {};
        char buf[256];
        const char* r =
            pci_lookup_name(m_access, buf, sizeof buf, what | PCI_LOOKUP_NO_NUMBERS, a, b);
        return r ? std::string(r) : std::string();
    }
    pci_access* m_access;
    bool m_ok = false;
};

} // namespace

Topology scan(const Source& source, const ScanOptions& options) {
    PciAccess access;
    pci_access* a = access.get();
    std::size_t expected_devices = 0;
    switch (source.kind) {
    case Source::Kind::dump:
        expected_devices = detail::validate_dump(source.path);
        a->method = PCI_ACCESS_DUMP;
        access.set_param("dump.name", source.path);
        break;
    case Source::Kind::sysfs:
    case Source::Kind::live:
        check_sysfs_root(source.path);
        a->method = PCI_ACCESS_SYS_BUS_PCI;
        access.set_param("sysfs.path", (fs::path(source.path) / "bus/pci").string());
        break;
    }

    // Names come from pci.ids alone: libpci's udev hwdb fallback leaks its udev handle and
    // makes names depend on the machine's hwdb rather than the id file.
    access.set_param("hwdb.disable", "1");

    bool ok = run_guarded(
        [](pci_access* acc) {
            pci_init(acc);
            pci_scan_bus(acc);
        },
        a);
    if (!ok) {
        access.abandon();
        throw Error(ErrorKind::invalid_input,
                    "cannot read '" + source.path + "': libpci: " + std::string(t_message));
    }

    Names names(a);
    std::vector<Device> devices;
    std::set<Bdf> ident_known; // vendor and device as libpci read them from sysfs
    std::array<std::uint8_t, 4096> buf{};
    for (pci_dev* p = a->devices; p; p = p->next) {
        Device dev;
        dev.bdf.domain = static_cast<std::uint32_t>(p->domain);
        dev.bdf.bus = p->bus;
        dev.bdf.device = p->dev;
        dev.bdf.function = p->func;
        std::size_t len = read_config(p, buf);
        detail::decode_config(std::span<const std::uint8_t>(buf.data(), len), dev);
        if (len == 0) {
            // Nothing readable (e.g. a sysfs entry without a config file).
            dev.vendor_id = dev.device_id = 0xffff;
            dev.class_id = 0xffff;
        }
        if (source.kind != Source::Kind::dump && (p->known_fields & PCI_FILL_IDENT) != 0) {
            dev.vendor_id = static_cast<std::uint16_t>(p->vendor_id);
            dev.device_id = static_cast<std::uint16_t>(p->device_id);
            ident_known.insert(dev.bdf);
        }
        devices.push_back(std::move(dev));
    }
    if (source.kind == Source::Kind::dump && devices.size() != expected_devices)
        throw Error(ErrorKind::invalid_input,
                    "dump '" + source.path + "': libpci read " + std::to_string(devices.size()) +
                        " devices, expected " + std::to_string(expected_devices));

    std::sort(devices.begin(), devices.end(),
              [](const Device& x, const Device& y) { return x.bdf < y.bdf; });
    std::vector<bool> parent_known(devices.size(), false);
    if (auto root = source.sysfs_root()) {
        // Each device's attributes are a dozen small files: on a large machine, two threads
        // halve the wall time of a scan (an exporter scrape), the work being all system calls.
        std::vector<char> known(devices.size(), 0);
        auto read_range = [&](std::size_t from, std::size_t to) {
            for (std::size_t i = from; i < to; ++i) {
                bool k = false;
                read_sysfs_attributes(*root, options, ident_known.count(devices[i].bdf) != 0,
                                      devices[i], k);
                known[i] = k;
            }
        };
        constexpr std::size_t k_parallel_from = 256;
        if (devices.size() >= k_parallel_from && std::thread::hardware_concurrency() > 1) {
            const std::size_t half = devices.size() / 2;
            std::exception_ptr failed;
            std::thread other([&] {
                try {
                    read_range(half, devices.size());
                } catch (...) {
                    failed = std::current_exception();
                }
            });
            try {
                read_range(0, half);
            } catch (...) {
                other.join();
                throw;
            }
            other.join();
            if (failed)
                std::rethrow_exception(failed);
        } else {
            read_range(0, devices.size());
        }
        for (std::size_t i = 0; i < devices.size(); ++i)
            parent_known[i] = known[i] != 0;
    }
    for (auto& dev : devices) {
        dev.vendor_name = names.vendor(dev.vendor_id);
        dev.device_name = names.device(dev.vendor_id, dev.device_id);
        dev.class_name = names.klass(dev.class_id);
    }
    assign_parents_by_bus(devices, parent_known);
    break_parent_cycles(devices);
    mark_downgraded_links(devices);
    return Topology(source, std::move(devices));
}

} // namespace dis::pci
