// Device declarations: "KIND [key=value ...]", the text of a fabric config `device` line after
// NODE and of `disd --device`. Every error names the key and what it takes.
#include "dis/endpoint.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"
#include "dis/vfio.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <sstream>

namespace dis::endpoint {
namespace {

constexpr std::uint64_t k_max_bar = 1ull << 30; // 1 GiB: memory the lender really commits
constexpr std::uint32_t k_max_vfs = 64;
constexpr std::int64_t k_max_reset_ms = 600'000;

[[noreturn]] void refuse(const std::string& message) {
    throw Error(ErrorKind::invalid_input, "device spec: " + message);
}

std::uint64_t parse_number(std::string_view key, std::string_view text, std::uint64_t max) {
    int base = 10;
    std::string_view digits = text;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        base = 16;
        digits.remove_prefix(2);
    }
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
        refuse(std::string(key) + "=" + std::string(text) + ": not a number (decimal or 0x-hex)");
    }
    if (value > max) {
        std::ostringstream os;
        os << key << "=" << text << ": at most " << max << " (0x" << std::hex << max << ")";
        refuse(os.str());
    }
    return value;
}

bool parse_flag(std::string_view key, std::string_view text) {
    if (text == "1" || text == "true" || text == "yes") {
        return true;
    }
    if (text == "0" || text == "false" || text == "no") {
        return false;
    }
    refuse(std::string(key) + "=" + std::string(text) + ": takes 0 or 1");
}

// "512", "16K", "1M", "0x1000": binary suffixes K, M, G.
std::uint64_t parse_size(std::string_view text) {
    std::uint64_t scale = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 'K':
        case 'k':
            scale = 1ull << 10;
            break;
        case 'M':
        case 'm':
            scale = 1ull << 20;
            break;
        case 'G':
        case 'g':
            scale = 1ull << 30;
            break;
        default:
            break;
        }
        if (scale != 1) {
            digits.remove_suffix(1);
        }
    }
    std::uint64_t n = parse_number("bars", digits, k_max_bar / scale);
    std::uint64_t size = n * scale;
    if (size < 16 || (size & (size - 1)) != 0) {
        refuse("bars: " + std::string(text) +
               ": a BAR size is a power of two of at least 16 bytes (PCI)");
    }
    if (size > k_max_bar) {
        refuse("bars: " + std::string(text) + ": at most 1G");
    }
    return size;
}

std::vector<std::uint64_t> parse_bars(std::string_view text) {
    std::vector<std::uint64_t> bars;
    std::size_t start = 0;
    while (true) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (item.empty()) {
            refuse("bars=" + std::string(text) + ": an empty size (sizes are separated by ',')");
        }
        bars.push_back(parse_size(item));
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    if (bars.size() > 6) {
        refuse("bars=" + std::string(text) + ": a function has at most 6 BARs");
    }
    return bars;
}

std::string size_text(std::uint64_t size) {
    if (size % (1ull << 30) == 0) {
        return std::to_string(size >> 30) + "G";
    }
    if (size % (1ull << 20) == 0) {
        return std::to_string(size >> 20) + "M";
    }
    if (size % (1ull << 10) == 0) {
        return std::to_string(size >> 10) + "K";
    }
    return std::to_string(size);
}

} // namespace

const char* to_string(Kind kind) noexcept {
    switch (kind) {
    case Kind::epf_test:
        return "epf-test";
    case Kind::memory:
        return "memory";
    case Kind::vfio:
        return "vfio";
    }
    return "?";
}

std::optional<Kind> kind_from_string(std::string_view text) noexcept {
    if (text == "epf-test") {
        return Kind::epf_test;
    }
    if (text == "memory") {
        return Kind::memory;
    }
    if (text == "vfio") {
        return Kind::vfio;
    }
    return std::nullopt;
}

const char* to_string(IrqType type) noexcept {
    switch (type) {
    case IrqType::intx:
        return "INTX";
    case IrqType::msi:
        return "MSI";
    case IrqType::msix:
        return "MSI-X";
    }
    return "?";
}

DeviceSpec default_spec(Kind kind) {
    DeviceSpec spec;
    spec.kind = kind;
    spec.name = to_string(kind);
    if (kind == Kind::epf_test) {
        spec.vendor_id = 0x104c; // Texas Instruments
        spec.device_id = 0xb500; // DRA74x: pci_endpoint_test binds it with register BAR 0
        spec.class_code = 0xff0000;
        spec.bars = {512, 512, 1024, 16 << 10, 128 << 10, 1 << 20};
    } else if (kind == Kind::vfio) {
        spec.msi_vectors = 0; // all read from the device when it is opened
        spec.msix_vectors = 0;
        spec.reset_time = std::chrono::milliseconds(0);
    } else {
        spec.vendor_id = 0x1af4; // Red Hat (virtio range): QEMU's ivshmem, plain shared memory
        spec.device_id = 0x1110;
        spec.class_code = 0x050000; // memory controller: RAM
        spec.bars = {1 << 20};
        spec.msi_vectors = 0;
        spec.msix_vectors = 0;
    }
    return spec;
}

namespace {

// "vfio:BDF[,name=NAME]": a real function; the rest is read from it.
DeviceSpec parse_vfio_spec(std::string_view text) {
    std::string_view rest = text.substr(5);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) {
        rest.remove_suffix(1);
    }
    std::vector<std::string_view> items;
    std::size_t start = 0;
    while (true) {
        std::size_t comma = rest.find(',', start);
        items.push_back(rest.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                           : comma - start));
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    DeviceSpec spec = default_spec(Kind::vfio);
    auto bdf = vfio::normalize_bdf(items[0]);
    if (!bdf) {
        refuse("vfio:" + std::string(items[0]) +
               ": not a PCI address (expected vfio:DOMAIN:BUS:DEV.FN, e.g. vfio:0000:04:00.0)");
    }
    spec.bdf = *bdf;
    spec.name = *bdf;
    std::replace(spec.name.begin(), spec.name.end(), ':', '-');
    bool named = false;
    for (std::size_t i = 1; i < items.size(); ++i) {
        std::string_view item = items[i];
        std::size_t eq = item.find('=');
        std::string_view key = item.substr(0, eq);
        std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        if (key != "name" || eq == std::string_view::npos) {
            refuse("vfio: '" + std::string(item) +
                   "': the only option is name=NAME (ids, class and BARs come from the device)");
        }
        if (named) {
            refuse("name: given twice");
        }
        named = true;
        bool plain = !value.empty() && value.size() <= 64 &&
                     std::all_of(value.begin(), value.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                c == '_' || c == '-';
                     });
        if (!plain) {
            refuse("name=" + std::string(value) + ": at most 64 letters, digits, '.', '_' or '-'");
        }
        spec.name = std::string(value);
    }
    return spec;
}

} // namespace

DeviceSpec parse_device_spec(std::string_view text) {
    {
        std::size_t lead = 0;
        while (lead < text.size() && (text[lead] == ' ' || text[lead] == '\t')) {
            ++lead;
        }
        if (text.substr(lead, 5) == "vfio:") {
            return parse_vfio_spec(text.substr(lead));
        }
    }
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
            ++i;
        }
        std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') {
            ++i;
        }
        if (i > start) {
            words.push_back(text.substr(start, i - start));
        }
    }
    if (words.empty()) {
        refuse("empty: expected KIND (epf-test or memory) and key=value options, or "
               "vfio:BDF[,name=NAME]");
    }
    auto kind = kind_from_string(words[0]);
    if (!kind) {
        refuse("unknown kind '" + std::string(words[0]) +
               "' (epf-test, memory, or vfio:BDF[,name=NAME])");
    }
    if (*kind == Kind::vfio) {
        refuse("a vfio device is written vfio:BDF[,name=NAME], e.g. vfio:0000:04:00.0,name=edu");
    }
    DeviceSpec spec = default_spec(*kind);
    std::set<std::string_view> seen;
    for (std::size_t w = 1; w < words.size(); ++w) {
        std::string_view word = words[w];
        std::size_t eq = word.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            refuse("'" + std::string(word) + "': expected key=value");
        }
        std::string_view key = word.substr(0, eq);
        std::string_view value = word.substr(eq + 1);
        if (!seen.insert(key).second) {
            refuse(std::string(key) + ": given twice");
        }
        if (value.empty()) {
            refuse(std::string(key) + ": empty value");
        }
        if (key == "name") {
            bool plain = value.size() <= 64 && std::all_of(value.begin(), value.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                    c == '_' || c == '-';
                         });
            if (!plain) {
                refuse("name=" + std::string(value) +
                       ": at most 64 letters, digits, '.', '_' or '-'");
            }
            spec.name = std::string(value);
        } else if (key == "vendor") {
            spec.vendor_id = static_cast<std::uint16_t>(parse_number(key, value, 0xffff));
        } else if (key == "device") {
            spec.device_id = static_cast<std::uint16_t>(parse_number(key, value, 0xffff));
        } else if (key == "class") {
            spec.class_code = static_cast<std::uint32_t>(parse_number(key, value, 0xffffff));
        } else if (key == "bars") {
            spec.bars = parse_bars(value);
        } else if (key == "vfs") {
            spec.vfs = static_cast<std::uint32_t>(parse_number(key, value, k_max_vfs));
        } else if (key == "reset_ms") {
            spec.reset_time = std::chrono::milliseconds(
                static_cast<std::int64_t>(parse_number(key, value, k_max_reset_ms)));
        } else if (key == "fail_reset") {
            spec.fail_reset = parse_flag(key, value);
        } else if (key == "hang_reset") {
            spec.hang_reset = parse_flag(key, value);
        } else if (key == "unresponsive") {
            spec.unresponsive = parse_flag(key, value);
        } else if (key == "msi") {
            spec.msi_vectors = static_cast<std::uint32_t>(parse_number(key, value, 32));
        } else if (key == "msix") {
            spec.msix_vectors = static_cast<std::uint32_t>(parse_number(key, value, 2048));
        } else {
            refuse("unknown key '" + std::string(key) +
                   "' (name, vendor, device, class, bars, vfs, reset_ms, fail_reset, "
                   "hang_reset, unresponsive, msi, msix)");
        }
    }
    if (spec.kind == Kind::epf_test && spec.bars[0] < 128) {
        refuse("bars: BAR0 of an epf-test holds its registers: at least 128 bytes");
    }
    if (spec.kind == Kind::memory && (spec.msi_vectors != 0 || spec.msix_vectors != 0)) {
        refuse("msi/msix: a memory device raises no interrupts");
    }
    return spec;
}

std::string format_device_spec(const DeviceSpec& spec) {
    if (spec.kind == Kind::vfio) {
        return "vfio:" + spec.bdf + ",name=" + spec.name;
    }
    std::ostringstream os;
    os << to_string(spec.kind) << " name=" << spec.name << " vendor=" << hex(spec.vendor_id)
       << " device=" << hex(spec.device_id) << " class=" << hex(spec.class_code) << " bars=";
    for (std::size_t b = 0; b < spec.bars.size(); ++b) {
        os << (b ? "," : "") << size_text(spec.bars[b]);
    }
    os << " vfs=" << spec.vfs << " reset_ms=" << spec.reset_time.count()
       << " fail_reset=" << int(spec.fail_reset) << " hang_reset=" << int(spec.hang_reset)
       << " unresponsive=" << int(spec.unresponsive);
    if (spec.kind == Kind::epf_test) {
        os << " msi=" << spec.msi_vectors << " msix=" << spec.msix_vectors;
    }
    return os.str();
}

std::vector<DeviceSpec> expand_functions(const DeviceSpec& spec) {
    std::vector<DeviceSpec> functions{spec};
    functions.front().vf_index = -1;
    for (std::uint32_t v = 0; v < spec.vfs; ++v) {
        DeviceSpec vf = spec;
        vf.vfs = 0;
        vf.vf_index = static_cast<int>(v);
        vf.name = spec.name + "-vf" + std::to_string(v);
        functions.push_back(std::move(vf));
    }
    return functions;
}

} // namespace dis::endpoint
