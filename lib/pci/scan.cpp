// Reading a Topology: an lspci dump through libpci, a sysfs tree (live or copied) directly
// (sysfs_read.hpp), names from pci.ids through libpci; then parents, cycles and link training
// across the devices. This is the only file that talks to libpci.
#include "decode.hpp"
#include "dump_check.hpp"
#include "sysfs_read.hpp"

#include "dis/error.hpp"
#include "dis/parallel.hpp"
#include "dis/pci.hpp"

extern "C" {
#include <pci/pci.h>
}

#include <algorithm>
#include <array>
#include <atomic>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dis::pci {

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

// Bytes of config space the dump holds for `d`, read into `buf`. libpci's reads fail past
// the end of a device's dump, so the end is found by bisection.
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

// An lspci dump, through libpci: ids, class and config space as the dump holds them.
std::vector<Device> scan_dump(PciAccess& access, const std::string& path) {
    const std::size_t expected_devices = detail::validate_dump(path);
    pci_access* a = access.get();
    a->method = PCI_ACCESS_DUMP;
    access.set_param("dump.name", path);
    bool ok = run_guarded(
        [](pci_access* acc) {
            pci_init(acc);
            pci_scan_bus(acc);
        },
        a);
    if (!ok) {
        access.abandon();
        throw Error(ErrorKind::invalid_input,
                    "cannot read '" + path + "': libpci: " + std::string(t_message));
    }
    std::vector<Device> devices;
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
            dev.vendor_id = dev.device_id = 0xffff;
            dev.class_id = 0xffff;
        }
        devices.push_back(std::move(dev));
    }
    if (devices.size() != expected_devices)
        throw Error(ErrorKind::invalid_input,
                    "dump '" + path + "': libpci read " + std::to_string(devices.size()) +
                        " devices, expected " + std::to_string(expected_devices));
    std::sort(devices.begin(), devices.end(),
              [](const Device& x, const Device& y) { return x.bdf < y.bdf; });
    return devices;
}

// A sysfs tree, read directly (sysfs_read.hpp). Each device's directory holds a dozen small
// files: on a large machine, two threads halve the wall time of a scan (an exporter scrape),
// the work being all system calls.
std::vector<Device> scan_sysfs(const std::string& root, const ScanOptions& options,
                               std::vector<bool>& parent_known) {
    auto tree = detail::open_sysfs_tree(root);
    std::sort(tree.entries.begin(), tree.entries.end(),
              [](const auto& x, const auto& y) { return x.bdf < y.bdf; });
    std::vector<Device> devices(tree.entries.size());
    std::vector<char> known(devices.size(), 0);
    // Threads take chunks of devices in turn, so that one slowed down by other work on its
    // CPU (the exporter's other collectors, the daemons they ask) does not hold up the scan.
    constexpr std::size_t k_chunk = 32;
    std::atomic<std::size_t> next{0};
    auto read_chunks = [&] {
        detail::SysfsParentDirs dirs;
        for (;;) {
            const std::size_t from = next.fetch_add(k_chunk);
            if (from >= devices.size())
                return;
            const std::size_t to = std::min(from + k_chunk, devices.size());
            for (std::size_t i = from; i < to; ++i) {
                bool k = false;
                devices[i].bdf = tree.entries[i].bdf;
                detail::read_sysfs_device(tree, tree.entries[i], options, dirs, devices[i], k);
                known[i] = k;
            }
        }
    };
    run_on_threads(worker_count(devices.size()), [&](unsigned) {
        try {
            read_chunks();
        } catch (...) {
            next = devices.size(); // the other threads stop at their next chunk
            throw;
        }
    });
    parent_known.assign(devices.size(), false);
    for (std::size_t i = 0; i < devices.size(); ++i)
        parent_known[i] = known[i] != 0;
    return devices;
}

} // namespace

Topology scan(const Source& source, const ScanOptions& options) {
    PciAccess access;
    // Names come from pci.ids alone: libpci's udev hwdb fallback leaks its udev handle and
    // makes names depend on the machine's hwdb rather than the id file.
    access.set_param("hwdb.disable", "1");

    std::vector<Device> devices;
    std::vector<bool> parent_known;
    if (source.kind == Source::Kind::dump) {
        devices = scan_dump(access, source.path);
        parent_known.assign(devices.size(), false);
    } else {
        devices = scan_sysfs(source.path, options, parent_known);
    }
    if (options.names) {
        Names names(access.get());
        for (auto& dev : devices) {
            dev.vendor_name = names.vendor(dev.vendor_id);
            dev.device_name = names.device(dev.vendor_id, dev.device_id);
            dev.class_name = names.klass(dev.class_id);
        }
    }
    assign_parents_by_bus(devices, parent_known);
    break_parent_cycles(devices);
    mark_downgraded_links(devices);
    return Topology(source, std::move(devices));
}

} // namespace dis::pci
