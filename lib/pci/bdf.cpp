// PCI addresses and the names of PCIe port types.
#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <cstdio>

namespace dis::pci {

namespace {

// Parses exactly `digits_max` or fewer hex digits (at least one) at the front of `text`.
bool take_hex(std::string_view& text, std::size_t digits_max, std::uint32_t& value) {
    std::size_t n = 0;
    value = 0;
    while (n < text.size() && n < digits_max) {
        char c = text[n];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            break;
        value = value * 16 + static_cast<std::uint32_t>(v);
        ++n;
    }
    text.remove_prefix(n);
    return n > 0;
}

bool take_char(std::string_view& text, char c) {
    if (text.empty() || text.front() != c)
        return false;
    text.remove_prefix(1);
    return true;
}

} // namespace

std::optional<Bdf> Bdf::try_parse(std::string_view text) {
    // [domain:]bus:device.function; domain up to 8 hex digits, bus 2, device 2, function 1.
    std::uint32_t a = 0, b = 0, dev = 0, fn = 0, domain = 0;
    std::string_view rest = text;
    if (!take_hex(rest, 8, a) || !take_char(rest, ':'))
        return std::nullopt;
    std::string_view after_first = rest;
    if (take_hex(rest, 2, b) && take_char(rest, ':')) {
        domain = a;
    } else {
        rest = after_first;
        if (a > 0xff)
            return std::nullopt;
        b = a;
    }
    if (!take_hex(rest, 2, dev) || !take_char(rest, '.') || !take_hex(rest, 1, fn) || !rest.empty())
        return std::nullopt;
    if (b > 0xff || dev > 0x1f || fn > 7)
        return std::nullopt;
    return Bdf{domain, static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(dev),
               static_cast<std::uint8_t>(fn)};
}

Bdf Bdf::parse(std::string_view text) {
    if (auto bdf = try_parse(text))
        return *bdf;
    throw Error(ErrorKind::invalid_input,
                "invalid PCI address '" + std::string(text) +
                    "' (expected [DOMAIN:]BUS:DEVICE.FUNCTION, e.g. 0000:03:00.0)");
}

std::string Bdf::to_string() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", static_cast<unsigned>(domain),
                  static_cast<unsigned>(bus), static_cast<unsigned>(device),
                  static_cast<unsigned>(function));
    return buf;
}

const char* to_string(PortType type) noexcept {
    switch (type) {
    case PortType::endpoint:
        return "endpoint";
    case PortType::legacy_endpoint:
        return "legacy_endpoint";
    case PortType::root_port:
        return "root_port";
    case PortType::upstream_port:
        return "upstream_port";
    case PortType::downstream_port:
        return "downstream_port";
    case PortType::pcie_to_pci_bridge:
        return "pcie_to_pci_bridge";
    case PortType::pci_to_pcie_bridge:
        return "pci_to_pcie_bridge";
    case PortType::rc_integrated_endpoint:
        return "rc_integrated_endpoint";
    case PortType::rc_event_collector:
        return "rc_event_collector";
    case PortType::unknown:
        break;
    }
    return "unknown";
}

const char* describe(PortType type) noexcept {
    switch (type) {
    case PortType::endpoint:
        return "Endpoint";
    case PortType::legacy_endpoint:
        return "Legacy Endpoint";
    case PortType::root_port:
        return "Root Port";
    case PortType::upstream_port:
        return "Upstream Port";
    case PortType::downstream_port:
        return "Downstream Port";
    case PortType::pcie_to_pci_bridge:
        return "PCI-Express to PCI/PCI-X Bridge";
    case PortType::pci_to_pcie_bridge:
        return "PCI/PCI-X to PCI-Express Bridge";
    case PortType::rc_integrated_endpoint:
        return "Root Complex Integrated Endpoint";
    case PortType::rc_event_collector:
        return "Root Complex Event Collector";
    case PortType::unknown:
        break;
    }
    return "Unknown type";
}

} // namespace dis::pci
