#include "sysfs_tree.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace dis::test {

namespace {

// Free of Catch2, so that the benchmark generator (tests/bench) can use the tree too.
void write_file(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream f(path, std::ios::binary);
    f << content;
    if (!f.good())
        throw std::runtime_error("SysfsTree: cannot write " + path.string());
}

constexpr std::uint8_t k_cap_pcie = 0x10;
constexpr std::uint16_t k_ext_aer = 0x0001;
constexpr std::uint16_t k_ext_acs = 0x000d;
constexpr std::uint16_t k_ext_sriov = 0x0010;

// Kernel resource flags (include/linux/ioport.h) as sysfs `resource` shows them.
constexpr std::uint64_t k_ioresource_io = 0x100;
constexpr std::uint64_t k_ioresource_mem = 0x200;
constexpr std::uint64_t k_ioresource_prefetch = 0x2000;
constexpr std::uint64_t k_ioresource_mem_64 = 0x100000;

std::string hex(std::uint64_t v, int width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%0*llx", width, static_cast<unsigned long long>(v));
    return buf;
}

// What the kernel's modalias attribute prints: the same pci_dev fields as the vendor, device,
// subsystem_* and class attributes, so a device's `files` overriding those override it too.
std::string modalias(const FakeDevice& device) {
    const ConfigSpace& cs = device.config;
    auto attr = [&](const char* name, std::uint64_t fallback) {
        auto it = device.files.find(name);
        return it == device.files.end() ? fallback : std::stoull(it->second, nullptr, 0);
    };
    const bool normal = cs.header_type() == 0;
    const std::uint64_t klass = attr("class", cs.class_code());
    char buf[96];
    std::snprintf(
        buf, sizeof buf, "pci:v%08llXd%08llXsv%08llXsd%08llXbc%02llXsc%02llXi%02llX\n",
        static_cast<unsigned long long>(attr("vendor", cs.vendor())),
        static_cast<unsigned long long>(attr("device", cs.device())),
        static_cast<unsigned long long>(attr("subsystem_vendor", normal ? cs.read16(0x2c) : 0)),
        static_cast<unsigned long long>(attr("subsystem_device", normal ? cs.read16(0x2e) : 0)),
        (klass >> 16) & 0xffULL, (klass >> 8) & 0xffULL, klass & 0xffULL);
    return buf;
}

const char* sysfs_speed(int code) {
    switch (code) {
    case 1:
        return "2.5 GT/s PCIe";
    case 2:
        return "5.0 GT/s PCIe";
    case 3:
        return "8.0 GT/s PCIe";
    case 4:
        return "16.0 GT/s PCIe";
    case 5:
        return "32.0 GT/s PCIe";
    case 6:
        return "64.0 GT/s PCIe";
    default:
        return "Unknown";
    }
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// "NN: xx xx ..." (offset of 2 or 3 hex digits, then 1 to 16 bytes) -> offset and bytes.
// Hand-parsed: std::regex trips GCC 12's -Wmaybe-uninitialized under the sanitizers.
std::optional<std::pair<std::size_t, std::vector<std::uint8_t>>>
parse_hex_line(const std::string& line) {
    auto colon = line.find(':');
    if (colon != 2 && colon != 3)
        return std::nullopt;
    for (std::size_t i = 0; i < colon; ++i)
        if (!is_hex(line[i]))
            return std::nullopt;
    std::vector<std::uint8_t> bytes;
    std::istringstream rest(line.substr(colon + 1));
    std::string tok;
    while (rest >> tok) {
        if (tok.size() != 2 || !is_hex(tok[0]) || !is_hex(tok[1]))
            return std::nullopt;
        bytes.push_back(static_cast<std::uint8_t>(std::stoul(tok, nullptr, 16)));
    }
    if (bytes.empty() || bytes.size() > 16)
        return std::nullopt;
    return std::make_pair(std::stoul(line.substr(0, colon), nullptr, 16), bytes);
}

// The BDF that starts a device header line ("BB:DD.F ..." or "DDDD:BB:DD.F ...").
std::optional<std::string> header_bdf(const std::string& line) {
    auto space = line.find(' ');
    if (space == std::string::npos)
        return std::nullopt;
    std::string tok = line.substr(0, space);
    const std::string shape = tok.size() == 12 ? "hhhh:hh:hh.f" : "hh:hh.f";
    if (tok.size() != shape.size())
        return std::nullopt;
    for (std::size_t i = 0; i < tok.size(); ++i) {
        char want = shape[i];
        if ((want == 'h' && !is_hex(tok[i])) || (want == 'f' && (tok[i] < '0' || tok[i] > '7')) ||
            (want != 'h' && want != 'f' && tok[i] != want))
            return std::nullopt;
    }
    return tok;
}

} // namespace

std::string full_bdf(const std::string& bdf) {
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (std::sscanf(bdf.c_str(), "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) {
        dom = 0;
        if (std::sscanf(bdf.c_str(), "%x:%x.%x", &bus, &dev, &fn) != 3)
            throw std::invalid_argument("bad BDF " + bdf);
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    return buf;
}

ConfigSpace::ConfigSpace(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code,
                         std::uint8_t header_type) {
    write16(0x00, vendor);
    write16(0x02, device);
    write16(0x04, 0x0006); // Command: memory space, bus master
    m_bytes[0x08] = 0x01;  // revision
    m_bytes[0x09] = class_code & 0xff;
    m_bytes[0x0a] = (class_code >> 8) & 0xff;
    m_bytes[0x0b] = (class_code >> 16) & 0xff;
    m_bytes[0x0e] = header_type;
    if (header_type == 0) {
        write16(0x2c, vendor);
        write16(0x2e, device);
    }
}

ConfigSpace ConfigSpace::from_dump(const fs::path& dump, const std::string& bdf) {
    std::ifstream in(dump);
    if (!in)
        throw std::runtime_error("cannot read dump " + dump.string());
    const std::string want = full_bdf(bdf);
    ConfigSpace cs;
    cs.m_bytes.assign(0, 0);
    bool inside = false;
    bool found = false;
    std::string line;
    while (std::getline(in, line)) {
        if (auto hex_line = parse_hex_line(line)) {
            if (!inside)
                continue;
            std::size_t off = hex_line->first;
            for (auto b : hex_line->second) {
                if (cs.m_bytes.size() <= off)
                    cs.m_bytes.resize(off + 1, 0);
                cs.m_bytes[off++] = b;
            }
            continue;
        }
        auto bdf_text = header_bdf(line);
        if (!bdf_text)
            continue;
        bool is_header = full_bdf(*bdf_text) == want;
        if (inside && !is_header)
            break;
        inside = is_header;
        found |= is_header;
    }
    if (!found || cs.m_bytes.size() < 64)
        throw std::runtime_error("no config space for " + bdf + " in " + dump.string());
    return cs;
}

std::uint16_t ConfigSpace::read16(std::size_t off) const {
    return static_cast<std::uint16_t>(m_bytes.at(off) | m_bytes.at(off + 1) << 8);
}

std::uint32_t ConfigSpace::read32(std::size_t off) const {
    return static_cast<std::uint32_t>(read16(off)) | static_cast<std::uint32_t>(read16(off + 2))
                                                         << 16;
}

void ConfigSpace::write16(std::size_t off, std::uint16_t v) {
    m_bytes.at(off) = v & 0xff;
    m_bytes.at(off + 1) = v >> 8;
}

void ConfigSpace::write32(std::size_t off, std::uint32_t v) {
    write16(off, v & 0xffff);
    write16(off + 2, v >> 16);
}

std::uint32_t ConfigSpace::class_code() const {
    return static_cast<std::uint32_t>(m_bytes[0x0b]) << 16 |
           static_cast<std::uint32_t>(m_bytes[0x0a]) << 8 | m_bytes[0x09];
}

std::optional<std::uint8_t> ConfigSpace::secondary_bus() const {
    if (header_type() != 1)
        return std::nullopt;
    return m_bytes[0x19];
}

ConfigSpace& ConfigSpace::multifunction(bool on) {
    m_bytes[0x0e] = static_cast<std::uint8_t>((m_bytes[0x0e] & 0x7f) | (on ? 0x80 : 0));
    return *this;
}

ConfigSpace& ConfigSpace::bus_numbers(std::uint8_t primary, std::uint8_t secondary,
                                      std::uint8_t subordinate) {
    m_bytes[0x18] = primary;
    m_bytes[0x19] = secondary;
    m_bytes[0x1a] = subordinate;
    return *this;
}

ConfigSpace& ConfigSpace::memory_bar(int index, std::uint64_t base, std::uint64_t size,
                                     bool is_64bit, bool prefetchable) {
    std::uint32_t low = static_cast<std::uint32_t>(base & ~0xfull);
    low |= (is_64bit ? 0x4u : 0u) | (prefetchable ? 0x8u : 0u);
    write32(0x10 + 4 * static_cast<std::size_t>(index), low);
    if (is_64bit)
        write32(0x14 + 4 * static_cast<std::size_t>(index), static_cast<std::uint32_t>(base >> 32));
    m_bar_sizes.at(static_cast<std::size_t>(index)) = size;
    return *this;
}

ConfigSpace& ConfigSpace::io_bar(int index, std::uint32_t base, std::uint32_t size) {
    write32(0x10 + 4 * static_cast<std::size_t>(index), (base & ~0x3u) | 0x1u);
    m_bar_sizes.at(static_cast<std::size_t>(index)) = size;
    return *this;
}

ConfigSpace& ConfigSpace::bar_size(int index, std::uint64_t size) {
    m_bar_sizes.at(static_cast<std::size_t>(index)) = size;
    return *this;
}

std::size_t ConfigSpace::add_capability(std::uint8_t id, std::size_t length) {
    std::size_t off = m_next_cap;
    if (off + length > 0x100)
        throw std::logic_error("config space: no room for capability");
    m_bytes[0x06] |= 0x10; // Status: capabilities list
    if (m_last_cap == 0)
        m_bytes[0x34] = static_cast<std::uint8_t>(off);
    else
        m_bytes[m_last_cap + 1] = static_cast<std::uint8_t>(off);
    m_bytes[off] = id;
    m_bytes[off + 1] = 0;
    m_last_cap = off;
    m_next_cap = (off + length + 3) & ~std::size_t{3};
    return off;
}

std::size_t ConfigSpace::add_ext_capability(std::uint16_t id, std::uint8_t version,
                                            std::size_t length) {
    std::size_t off = m_next_ext;
    if (off + length > m_bytes.size())
        throw std::logic_error("config space: no room for extended capability");
    write32(off, static_cast<std::uint32_t>(id) | static_cast<std::uint32_t>(version) << 16);
    if (m_last_ext) {
        std::uint32_t hdr = read32(*m_last_ext);
        write32(*m_last_ext, (hdr & 0x000fffff) | static_cast<std::uint32_t>(off) << 20);
    }
    m_last_ext = off;
    m_next_ext = (off + length + 3) & ~std::size_t{3};
    return off;
}

std::optional<std::size_t> ConfigSpace::find_capability(std::uint8_t id) const {
    if (!(m_bytes[0x06] & 0x10))
        return std::nullopt;
    std::size_t off = m_bytes[0x34] & ~0x3u;
    for (int guard = 0; off && guard < 48; ++guard) {
        if (m_bytes[off] == id)
            return off;
        off = m_bytes[off + 1] & ~0x3u;
    }
    return std::nullopt;
}

ConfigSpace& ConfigSpace::pcie(PcieType type, bool flr, int max_speed, int max_width, int speed,
                               int width) {
    std::size_t c = add_capability(k_cap_pcie, 0x3c);
    write16(c + 0x02, static_cast<std::uint16_t>(0x2 | static_cast<unsigned>(type) << 4));
    write32(c + 0x04, flr ? 1u << 28 : 0u); // DevCap: FLReset+
    write32(c + 0x0c, static_cast<std::uint32_t>(max_speed | max_width << 4));
    write16(c + 0x12, static_cast<std::uint16_t>(speed | width << 4));
    std::uint32_t speeds = 0;
    for (int s = 1; s <= max_speed; ++s)
        speeds |= 1u << s;
    write32(c + 0x2c, speeds); // LnkCap2: supported link speeds vector
    return *this;
}

ConfigSpace& ConfigSpace::acs(std::uint16_t cap, std::uint16_t ctl) {
    std::size_t c = add_ext_capability(k_ext_acs, 1, 0x08);
    write16(c + 0x04, cap);
    write16(c + 0x06, ctl);
    return *this;
}

ConfigSpace& ConfigSpace::aer(std::uint32_t uncorrectable_status,
                              std::uint32_t correctable_status) {
    std::size_t c = add_ext_capability(k_ext_aer, 2, 0x48);
    write32(c + 0x04, uncorrectable_status);
    write32(c + 0x10, correctable_status);
    return *this;
}

ConfigSpace& ConfigSpace::sriov(std::uint16_t initial_vfs, std::uint16_t total_vfs,
                                std::uint16_t num_vfs, std::uint16_t vf_device) {
    std::size_t c = add_ext_capability(k_ext_sriov, 1, 0x40);
    write16(c + 0x08, num_vfs ? 0x1 : 0x0); // VF Enable
    write16(c + 0x0c, initial_vfs);
    write16(c + 0x0e, total_vfs);
    write16(c + 0x10, num_vfs);
    write16(c + 0x14, 0x80); // First VF offset
    write16(c + 0x16, 0x2);  // VF stride
    write16(c + 0x1a, vf_device);
    return *this;
}

std::optional<std::array<int, 4>> ConfigSpace::link() const {
    auto c = find_capability(k_cap_pcie);
    if (!c)
        return std::nullopt;
    std::uint32_t cap = read32(*c + 0x0c);
    std::uint16_t sta = read16(*c + 0x12);
    return std::array<int, 4>{static_cast<int>(cap & 0xf), static_cast<int>((cap >> 4) & 0x3f),
                              sta & 0xf, (sta >> 4) & 0x3f};
}

std::string ConfigSpace::resource_file() const {
    std::ostringstream out;
    const int bars = header_type() == 1 ? 2 : header_type() == 0 ? 6 : 0;
    int i = 0;
    auto zero_line = [&] { out << hex(0, 16) << ' ' << hex(0, 16) << ' ' << hex(0, 16) << '\n'; };
    while (i < bars) {
        std::uint32_t raw = read32(0x10 + 4 * static_cast<std::size_t>(i));
        std::uint64_t size = m_bar_sizes[static_cast<std::size_t>(i)];
        bool io = raw & 0x1;
        bool is_64 = !io && ((raw >> 1) & 0x3) == 0x2;
        std::uint64_t base = io ? (raw & ~0x3u) : (raw & ~0xfu);
        if (is_64 && i + 1 < bars)
            base |= static_cast<std::uint64_t>(read32(0x14 + 4 * static_cast<std::size_t>(i)))
                    << 32;
        if (size == 0 || (base == 0 && raw == 0)) {
            zero_line();
        } else {
            std::uint64_t flags = io ? k_ioresource_io | (raw & 0x3)
                                     : k_ioresource_mem | (raw & 0xf) |
                                           ((raw & 0x8) ? k_ioresource_prefetch : 0) |
                                           (is_64 ? k_ioresource_mem_64 : 0);
            out << hex(base, 16) << ' ' << hex(base + size - 1, 16) << ' ' << hex(flags, 16)
                << '\n';
        }
        if (is_64 && i + 1 < bars) {
            zero_line();
            ++i;
        }
        ++i;
    }
    for (; i < 13; ++i)
        zero_line();
    return out.str();
}

SysfsTree::SysfsTree(fs::path root) : m_root(std::move(root)) {
    fs::create_directories(m_root / "bus/pci/devices");
    fs::create_directories(m_root / "bus/pci/drivers");
    fs::create_directories(m_root / "devices");
    fs::create_directories(m_root / "kernel");
}

void SysfsTree::enable_iommu() {
    fs::create_directories(m_root / "kernel/iommu_groups");
    m_iommu = true;
}

fs::path SysfsTree::device_dir(const std::string& bdf) const {
    auto it = m_dirs.find(full_bdf(bdf));
    if (it == m_dirs.end())
        throw std::logic_error("sysfs tree: no device " + bdf);
    return it->second;
}

void SysfsTree::add(const FakeDevice& device) {
    const std::string bdf = full_bdf(device.bdf);
    fs::path dir;
    if (device.parent.empty())
        dir = m_root / "devices" / ("pci" + bdf.substr(0, 7)) / bdf;
    else
        dir = device_dir(device.parent) / bdf;
    fs::create_directories(dir);
    m_dirs[bdf] = dir;

    const ConfigSpace& cs = device.config;
    write_file(dir / "config", std::string(cs.bytes().begin(), cs.bytes().end()));
    write_file(dir / "vendor", hex(cs.vendor(), 4) + "\n");
    write_file(dir / "device", hex(cs.device(), 4) + "\n");
    write_file(dir / "class", hex(cs.class_code(), 6) + "\n");
    write_file(dir / "revision", hex(cs.bytes()[0x08], 2) + "\n");
    if (cs.header_type() == 0) {
        write_file(dir / "subsystem_vendor", hex(cs.read16(0x2c), 4) + "\n");
        write_file(dir / "subsystem_device", hex(cs.read16(0x2e), 4) + "\n");
    }
    write_file(dir / "irq", "0\n");
    write_file(dir / "enable", "1\n");
    write_file(dir / "resource", cs.resource_file());
    write_file(dir / "numa_node", std::to_string(device.numa_node) + "\n");
    if (!device.reset_methods.empty()) {
        std::string methods;
        for (const auto& m : device.reset_methods)
            methods += (methods.empty() ? "" : " ") + m;
        write_file(dir / "reset_method", methods + "\n");
    }
    if (auto link = cs.link()) {
        write_file(dir / "max_link_speed", std::string(sysfs_speed((*link)[0])) + "\n");
        write_file(dir / "max_link_width", std::to_string((*link)[1]) + "\n");
        write_file(dir / "current_link_speed", std::string(sysfs_speed((*link)[2])) + "\n");
        write_file(dir / "current_link_width", std::to_string((*link)[3]) + "\n");
    }
    for (const auto& [name, content] : device.files)
        write_file(dir / name, content);
    if (!device.files.count("modalias"))
        write_file(dir / "modalias", modalias(device));

    if (device.driver) {
        fs::path drv = m_root / "bus/pci/drivers" / *device.driver;
        fs::create_directories(drv);
        fs::create_symlink(fs::relative(drv, dir), dir / "driver");
        fs::create_symlink(fs::relative(dir, drv), drv / bdf);
    }
    if (device.iommu_group) {
        if (!m_iommu)
            throw std::logic_error("SysfsTree: enable_iommu() before adding a device with a group");
        fs::path group = m_root / "kernel/iommu_groups" / std::to_string(*device.iommu_group);
        fs::create_directories(group / "devices");
        fs::create_symlink(fs::relative(group, dir), dir / "iommu_group");
        fs::create_symlink(fs::relative(dir, group / "devices"), group / "devices" / bdf);
    }
    fs::create_symlink(fs::relative(dir, m_root / "bus/pci/devices"),
                       m_root / "bus/pci/devices" / bdf);
}

void SysfsTree::add_dump(const fs::path& dump, const std::function<void(FakeDevice&)>& customize) {
    // Every device header line ("BB:DD.F ..." or "DDDD:BB:DD.F ...") of the dump.
    std::ifstream in(dump);
    if (!in.good())
        throw std::runtime_error("SysfsTree: cannot read " + dump.string());
    std::vector<FakeDevice> devices;
    std::string line;
    while (std::getline(in, line)) {
        if (auto bdf = header_bdf(line)) {
            FakeDevice d{
                full_bdf(*bdf), "", ConfigSpace::from_dump(dump, *bdf), {}, {}, -1, {}, {}};
            devices.push_back(std::move(d));
        }
    }
    // Parent: the bridge whose secondary bus is the device's bus, in the same domain.
    for (auto& d : devices)
        for (const auto& b : devices)
            if (auto sec = b.config.secondary_bus();
                sec && b.bdf.substr(0, 4) == d.bdf.substr(0, 4) &&
                std::stoul(d.bdf.substr(5, 2), nullptr, 16) == *sec && b.bdf != d.bdf)
                d.parent = b.bdf;
    // Parents before children.
    std::vector<bool> added(devices.size(), false);
    for (std::size_t done = 0, pass = 0; done < devices.size() && pass <= devices.size(); ++pass) {
        for (std::size_t i = 0; i < devices.size(); ++i) {
            if (added[i] || (!devices[i].parent.empty() && !m_dirs.count(devices[i].parent)))
                continue;
            if (customize)
                customize(devices[i]);
            add(devices[i]);
            added[i] = true;
            ++done;
        }
    }
}

} // namespace dis::test
