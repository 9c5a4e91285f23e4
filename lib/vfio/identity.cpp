// What VFIO needs to know of a function before it opens it (sysfs), and the bookkeeping of what
// it answers (regions as BARs, the interrupts to enable): no kernel interface here, so the unit
// tests cover it on a hand-made sysfs tree.
#include "dis/vfio.hpp"

#include "dis/error.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

namespace dis::vfio {
namespace {

bool hex_digits(std::string_view s, std::size_t n) {
    if (s.size() != n) {
        return false;
    }
    for (char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) {
        throw Error(ErrorKind::invalid_input, "cannot read " + path);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
        line.pop_back();
    }
    return line;
}

std::uint64_t read_hex(const std::string& path, std::uint64_t max) {
    std::string text = read_line(path);
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), &end, 16);
    if (text.empty() || errno != 0 || *end != '\0' || v > max) {
        throw Error(ErrorKind::invalid_input, path + ": '" + text + "' is not a hex number");
    }
    return v;
}

// The last component of a symlink's target; empty if there is no such link.
std::string link_name(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
    if (n <= 0) {
        return {};
    }
    std::string target(buf, static_cast<std::size_t>(n));
    auto slash = target.rfind('/');
    return slash == std::string::npos ? target : target.substr(slash + 1);
}

} // namespace

std::optional<std::string> normalize_bdf(std::string_view text) {
    std::string s(text);
    for (auto& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (s.size() == 7) {
        s = "0000:" + s;
    }
    // dddd:bb:dd.f
    if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' ||
        !hex_digits(std::string_view(s).substr(0, 4), 4) ||
        !hex_digits(std::string_view(s).substr(5, 2), 2) ||
        !hex_digits(std::string_view(s).substr(8, 2), 2) || s[11] < '0' || s[11] > '7') {
        return std::nullopt;
    }
    if (std::strtoul(s.substr(8, 2).c_str(), nullptr, 16) > 0x1f) {
        return std::nullopt; // device numbers are 5 bits
    }
    return s;
}

PciIdentity read_identity(const std::string& sysfs_root, const std::string& bdf) {
    PciIdentity id;
    id.bdf = bdf;
    std::string dir = sysfs_root + "/bus/pci/devices/" + bdf;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(ErrorKind::not_found, "no PCI device " + bdf + " (" + dir + ")");
    }
    id.vendor_id = static_cast<std::uint16_t>(read_hex(dir + "/vendor", 0xffff));
    id.device_id = static_cast<std::uint16_t>(read_hex(dir + "/device", 0xffff));
    id.class_code = static_cast<std::uint32_t>(read_hex(dir + "/class", 0xffffff));
    std::string group = link_name(dir + "/iommu_group");
    if (!group.empty()) {
        char* end = nullptr;
        long g = std::strtol(group.c_str(), &end, 10);
        if (*end != '\0' || g < 0) {
            throw Error(ErrorKind::invalid_input, dir + "/iommu_group: '" + group + "'");
        }
        id.iommu_group = static_cast<int>(g);
    }
    id.driver = link_name(dir + "/driver");
    return id;
}

int BarTable::count() const {
    int n = 0;
    for (std::size_t i = 0; i < bars.size(); ++i) {
        if (bars[i].size != 0) {
            n = static_cast<int>(i) + 1;
        }
    }
    return n;
}

const Region* BarTable::bar(int index) const {
    if (index < 0 || static_cast<std::size_t>(index) >= bars.size() ||
        bars[static_cast<std::size_t>(index)].size == 0) {
        return nullptr;
    }
    return &bars[static_cast<std::size_t>(index)];
}

BarTable bar_table(const std::vector<Region>& regions) {
    BarTable t;
    t.bars.resize(6);
    for (int i = 0; i < 6; ++i) {
        t.bars[static_cast<std::size_t>(i)].index = i;
    }
    for (const auto& r : regions) {
        if (r.index >= 0 && r.index < 6) {
            t.bars[static_cast<std::size_t>(r.index)] = r;
        }
    }
    return t;
}

IrqChoice choose_irqs(std::uint32_t msi_count, std::uint32_t msix_count) {
    if (msi_count > 0) {
        return {endpoint::IrqType::msi, msi_count};
    }
    if (msix_count > 0) {
        return {endpoint::IrqType::msix, msix_count};
    }
    return {endpoint::IrqType::msi, 0};
}

} // namespace dis::vfio
