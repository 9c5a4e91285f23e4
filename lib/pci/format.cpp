// Names and number formats shared by every rendering of PCI facts (JSON, tables, checks).
#include "dis/pci.hpp"

#include <algorithm>

namespace dis::pci {

const char* acs_name(bool AcsBits::*bit) noexcept {
    for (const auto& f : k_acs_flags)
        if (f.bit == bit)
            return f.name;
    return "?";
}

std::string acs_text(const AcsBits& bits) {
    std::string s;
    for (const auto& f : k_acs_flags)
        s += (s.empty() ? "" : " ") + std::string(f.name) + (bits.*f.bit ? "+" : "-");
    return s;
}

// By hand, not snprintf: an exporter scrape formats ten of these per device.
std::string to_hex(std::uint64_t value, int digits) {
    char buf[16];
    char* end = buf + sizeof buf;
    char* p = end;
    do {
        *--p = "0123456789abcdef"[value & 0xf];
        value >>= 4;
    } while (value != 0);
    const int width = std::min(digits, static_cast<int>(sizeof buf));
    while (end - p < width)
        *--p = '0';
    return std::string(p, end);
}

} // namespace dis::pci
