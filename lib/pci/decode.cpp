// Configuration-space decoding (PCI Local Bus 3.0 ch. 6, PCIe Base 6.0 ch. 7). The capability
// walks follow lspci's rules (ls-caps.c, ls-ecaps.c) so that our decode agrees with its text:
// same reachability, same loop handling, same register sizes required before decoding.
#include "decode.hpp"

#include <array>
#include <bitset>

namespace dis::pci::detail {

namespace {

constexpr std::size_t k_ext_start = 0x100;

class Config {
public:
    explicit Config(std::span<const std::uint8_t> bytes) : m_bytes(bytes) {}
    bool has(std::size_t pos, std::size_t len) const { return pos + len <= m_bytes.size(); }
    std::uint8_t u8(std::size_t pos) const { return has(pos, 1) ? m_bytes[pos] : 0xff; }
    std::uint16_t u16(std::size_t pos) const {
        return static_cast<std::uint16_t>(u8(pos) | (u8(pos + 1) << 8));
    }
    std::uint32_t u32(std::size_t pos) const {
        return static_cast<std::uint32_t>(u16(pos)) |
               (static_cast<std::uint32_t>(u16(pos + 2)) << 16);
    }

private:
    std::span<const std::uint8_t> m_bytes;
};

std::string speed_name(unsigned code) {
    static constexpr std::array<const char*, 7> k_names = {"unknown", "2.5GT/s", "5GT/s", "8GT/s",
                                                           "16GT/s",  "32GT/s",  "64GT/s"};
    return code < k_names.size() ? k_names[code] : "unknown";
}

// AER status bit names as lspci prints them (UESta/CESta); later spec bits use the names of
// newer lspci releases. Reserved bits have no name and are not listed.
constexpr std::array<const char*, 32> k_uncorrectable_names = {nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               "DLP",
                                                               "SDES",
                                                               nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               nullptr,
                                                               "TLP",
                                                               "FCP",
                                                               "CmpltTO",
                                                               "CmpltAbrt",
                                                               "UnxCmplt",
                                                               "RxOF",
                                                               "MalfTLP",
                                                               "ECRC",
                                                               "UnsupReq",
                                                               "ACSViol",
                                                               "UncorrIntErr",
                                                               "BlockedTLP",
                                                               "AtomicOpBlocked",
                                                               "TLPBlockedErr",
                                                               "PoisonTLPBlocked",
                                                               "DMWrReqBlocked",
                                                               "IDECheck",
                                                               "MisIDETLP",
                                                               "PCRC_CHECK",
                                                               "TLPXlatBlocked"};
constexpr std::array<const char*, 16> k_correctable_names = {
    "RxErr",    nullptr, nullptr, nullptr, nullptr,   nullptr,          "BadTLP",     "BadDLLP",
    "Rollover", nullptr, nullptr, nullptr, "Timeout", "AdvNonFatalErr", "CorrIntErr", "HeaderOF"};

template <std::size_t N>
std::vector<std::string> set_bits(std::uint32_t value, const std::array<const char*, N>& names) {
    std::vector<std::string> out;
    for (std::size_t bit = 0; bit < N; ++bit)
        if ((value >> bit) & 1u && names[bit])
            out.emplace_back(names[bit]);
    return out;
}

AcsBits acs_bits(std::uint16_t v) {
    AcsBits b;
    b.src_valid = v & 0x01;
    b.trans_blk = v & 0x02;
    b.req_redir = v & 0x04;
    b.cmplt_redir = v & 0x08;
    b.upstream_fwd = v & 0x10;
    b.egress_ctrl = v & 0x20;
    b.direct_trans = v & 0x40;
    return b;
}

PortType port_type(unsigned code) {
    switch (code) {
    case 0x0:
        return PortType::endpoint;
    case 0x1:
        return PortType::legacy_endpoint;
    case 0x4:
        return PortType::root_port;
    case 0x5:
        return PortType::upstream_port;
    case 0x6:
        return PortType::downstream_port;
    case 0x7:
        return PortType::pcie_to_pci_bridge;
    case 0x8:
        return PortType::pci_to_pcie_bridge;
    case 0x9:
        return PortType::rc_integrated_endpoint;
    case 0xa:
        return PortType::rc_event_collector;
    default:
        return PortType::unknown;
    }
}

// PCI Express capability (PCIe 6.0, 7.5.3): port type, DevCap FLR, link registers.
void decode_express(const Config& c, std::size_t where, Device& dev) {
    std::uint16_t flags = c.u16(where + 2);
    PortType type = port_type((flags >> 4) & 0xf);
    dev.port_type = type;
    dev.pcie_cap_offset = static_cast<std::uint8_t>(where);
    // lspci needs DevCap.. (16 bytes, 24 with a slot, 32 for root ports/RCECs) before it
    // decodes any register of the capability.
    std::size_t size = 16;
    if (flags & 0x0100)
        size = 24;
    if (type == PortType::root_port || type == PortType::rc_event_collector)
        size = 32;
    if (!c.has(where + 4, size))
        return;
    std::uint32_t devcap = c.u32(where + 4);
    if (devcap & (1u << 28))
        dev.flr_capable = true;
    // Root-complex integrated endpoints and event collectors have no link (lspci shows none).
    if (type == PortType::rc_integrated_endpoint || type == PortType::rc_event_collector)
        return;
    std::uint32_t lnkcap = c.u32(where + 0x0c);
    std::uint16_t lnksta = c.u16(where + 0x12);
    Link link;
    link.max_speed = speed_name(lnkcap & 0xf);
    link.max_width = static_cast<int>((lnkcap >> 4) & 0x3f);
    link.speed = speed_name(lnksta & 0xf);
    link.width = static_cast<int>((lnksta >> 4) & 0x3f);
    if (lnkcap & (1u << 20))
        link.dl_active = (lnksta & (1u << 13)) != 0;
    dev.link = link;
}

void decode_aer(const Config& c, std::size_t where, Device& dev) {
    // lspci reads UESta..(40 bytes) before decoding.
    if (!c.has(where + 4, 40))
        return;
    if (!dev.aer)
        dev.aer = Aer{};
    dev.aer->counters_only = false;
    dev.aer->uncorrectable_status = set_bits(c.u32(where + 0x04), k_uncorrectable_names);
    dev.aer->correctable_status = set_bits(c.u32(where + 0x10) & 0xffff, k_correctable_names);
}

void decode_ext_caps(const Config& c, Device& dev) {
    std::bitset<0x1000> been_there;
    std::size_t where = k_ext_start;
    bool seen_aer = false, seen_acs = false, seen_sriov = false;
    do {
        if (!c.has(where, 4))
            break;
        std::uint32_t header = c.u32(where);
        if (header == 0 || header == 0xffffffff)
            break;
        if (been_there[where])
            break;
        been_there[where] = true;
        unsigned id = header & 0xffff;
        if (id == 0x0001 && !seen_aer) {
            seen_aer = true;
            decode_aer(c, where, dev);
        } else if (id == 0x000d && !seen_acs) {
            seen_acs = true;
            if (c.has(where + 4, 4))
                dev.acs = Acs{acs_bits(c.u16(where + 4)), acs_bits(c.u16(where + 6))};
        } else if (id == 0x0010 && !seen_sriov) {
            seen_sriov = true;
            if (c.has(where + 4, 0x3c)) {
                Sriov s;
                s.initial_vfs = c.u16(where + 0x0c);
                s.total_vfs = c.u16(where + 0x0e);
                s.num_vfs = c.u16(where + 0x10);
                s.vf_device_id = c.u16(where + 0x1a);
                dev.sriov = s;
            }
        }
        where = (header >> 20) & ~3u;
    } while (where);
}

void decode_caps(const Config& c, std::size_t pointer_reg, Device& dev) {
    std::bitset<256> been_there;
    std::size_t where = c.u8(pointer_reg) & ~3u;
    bool ext_possible = false;
    bool seen_express = false;
    while (where) {
        if (!c.has(where, 4) || been_there[where])
            break;
        been_there[where] = true;
        unsigned id = c.u8(where);
        std::size_t next = c.u8(where + 1) & ~3u;
        if (id == 0xff)
            break;
        switch (id) {
        case 0x10: // PCI Express
            if (!seen_express) {
                seen_express = true;
                decode_express(c, where, dev);
            }
            ext_possible = true;
            break;
        case 0x07: // PCI-X: extended config space exists on PCI-X 2.0 devices
            ext_possible = true;
            break;
        case 0x0d: // bridge subsystem ids
            if (c.has(where + 4, 4)) {
                dev.subsystem_vendor_id = c.u16(where + 4);
                dev.subsystem_device_id = c.u16(where + 6);
            }
            break;
        case 0x13: // Advanced Features: FLR
            if (c.has(where + 3, 1) && (c.u8(where + 3) & 0x02))
                dev.flr_capable = true;
            break;
        default:
            break;
        }
        where = next;
    }
    if (ext_possible)
        decode_ext_caps(c, dev);
}

void decode_bars(const Config& c, int count, Device& dev) {
    for (int i = 0; i < count; ++i) {
        std::size_t reg = 0x10 + 4 * static_cast<std::size_t>(i);
        std::uint32_t v = c.u32(reg);
        if (v == 0xffffffff)
            v = 0;
        Bar bar;
        bar.index = i;
        if (v & 1) {
            bar.io = true;
            bar.base = v & ~0x3u;
        } else {
            unsigned type = (v >> 1) & 3;
            bar.prefetchable = v & 0x8;
            bar.base = v & ~0xfu;
            if (type == 2 && i + 1 < count) {
                bar.is_64bit = true;
                std::uint32_t hi = c.u32(reg + 4);
                if (hi != 0xffffffff)
                    bar.base |= static_cast<std::uint64_t>(hi) << 32;
                ++i;
            }
        }
        if (v != 0 || bar.base != 0)
            dev.bars.push_back(bar);
    }
}

} // namespace

int speed_rank(const std::string& speed) {
    for (unsigned code = 1; code <= 6; ++code)
        if (speed == speed_name(code))
            return static_cast<int>(code);
    return 0;
}

void decode_config(std::span<const std::uint8_t> cfg, Device& dev) {
    Config c(cfg);
    dev.config_size = cfg.size();
    dev.vendor_id = c.u16(0x00);
    dev.device_id = c.u16(0x02);
    dev.revision = c.u8(0x08);
    dev.prog_if = c.u8(0x09);
    dev.class_id = c.u16(0x0a);
    std::uint8_t ht = c.u8(0x0e);
    dev.header_type = ht & 0x7f;
    dev.multifunction = ht & 0x80;
    std::uint16_t status = c.u16(0x06);
    bool has_caps = status & 0x10;

    switch (dev.header_type) {
    case 0:
        decode_bars(c, 6, dev);
        dev.subsystem_vendor_id = c.u16(0x2c);
        dev.subsystem_device_id = c.u16(0x2e);
        if (has_caps)
            decode_caps(c, 0x34, dev);
        break;
    case 1:
    case 2:
        decode_bars(c, dev.header_type == 1 ? 2 : 1, dev);
        dev.primary_bus = c.u8(0x18);
        dev.secondary_bus = c.u8(0x19);
        dev.subordinate_bus = c.u8(0x1a);
        if (dev.header_type == 2 && c.has(0x40, 4)) {
            dev.subsystem_vendor_id = c.u16(0x40);
            dev.subsystem_device_id = c.u16(0x42);
        }
        if (has_caps)
            decode_caps(c, dev.header_type == 1 ? 0x34 : 0x14, dev);
        break;
    default:
        break; // unknown header layout: identity only, as lspci does
    }
}

} // namespace dis::pci::detail
