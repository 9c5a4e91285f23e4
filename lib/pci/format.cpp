// Names and number formats shared by every rendering of PCI facts (JSON, tables, checks).
#include "dis/pci.hpp"

#include <cstdio>

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

std::string to_hex(std::uint64_t value, int digits) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(value));
    return buf;
}

} // namespace dis::pci
