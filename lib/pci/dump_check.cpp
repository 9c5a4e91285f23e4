// The rules mirror libpci's dump reader (lib/dump.c): a device starts at a line
// "[DDDD[D]:]BB:DD.F " and ends at an empty line; "OFFS: xx xx ..." lines inside a device fill
// its config space; anything else is decoded text and ignored. libpci treats an overlong or
// unterminated line, a malformed hex line and offsets past 4 KiB as fatal (its error hook
// exits), so each of those is reported here as invalid input with the line number.
#include "dump_check.hpp"

#include "dis/error.hpp"
#include "dis/pci.hpp"
#include "dis/unique_fd.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <set>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace dis::pci::detail {

namespace {

// libpci reads lines with fgets into a 255-byte buffer: 253 characters plus the newline fit.
constexpr std::size_t k_max_line = 253;
constexpr std::size_t k_max_config = 4096;
constexpr off_t k_max_file = off_t{1} << 30;

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
unsigned hex_value(char c) {
    if (c <= '9')
        return static_cast<unsigned>(c - '0');
    return static_cast<unsigned>((c | 0x20) - 'a' + 10);
}

// Matches `n` hex digits at `pos` followed by `tail`.
bool hex_run(std::string_view s, std::size_t pos, std::size_t n, std::string_view tail) {
    if (s.size() < pos + n + tail.size())
        return false;
    for (std::size_t i = 0; i < n; ++i)
        if (!is_hex(s[pos + i]))
            return false;
    return s.substr(pos + n, tail.size()) == tail;
}

std::uint64_t hex_number(std::string_view s) {
    std::uint64_t v = 0;
    for (char c : s)
        v = v * 16 + hex_value(c);
    return v;
}

// A device header line as libpci recognises it, or nullopt. `bad` is set when it is one
// but names an impossible device or function number.
std::optional<Bdf> parse_header(std::string_view line, bool& bad) {
    std::size_t domain_digits = 0;
    if (hex_run(line, 0, 2, ":") && hex_run(line, 3, 2, ".") && line.size() >= 8 &&
        is_hex(line[6]) && line[7] == ' ')
        domain_digits = 0;
    else if (hex_run(line, 0, 4, ":") && hex_run(line, 5, 2, ":") && hex_run(line, 8, 2, ".") &&
             line.size() >= 13 && is_hex(line[11]) && line[12] == ' ')
        domain_digits = 4;
    else if (hex_run(line, 0, 5, ":") && hex_run(line, 6, 2, ":") && hex_run(line, 9, 2, ".") &&
             line.size() >= 14 && is_hex(line[12]) && line[13] == ' ')
        domain_digits = 5;
    else
        return std::nullopt;
    std::size_t p = domain_digits ? domain_digits + 1 : 0;
    char fn = line[p + 6];
    // libpci reads the function with %d: a hex letter there makes the line plain text.
    if (fn < '0' || fn > '9')
        return std::nullopt;
    Bdf bdf;
    bdf.domain = static_cast<std::uint32_t>(hex_number(line.substr(0, domain_digits)));
    auto dev = hex_number(line.substr(p + 3, 2));
    bdf.bus = static_cast<std::uint8_t>(hex_number(line.substr(p, 2)));
    bdf.device = static_cast<std::uint8_t>(dev);
    bdf.function = static_cast<std::uint8_t>(fn - '0');
    bad = dev > 0x1f || bdf.function > 7;
    return bdf;
}

std::string read_all(const std::string& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is rejected below.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0)
        throw os_error("cannot open dump '" + path + "'", errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw os_error("cannot stat dump '" + path + "'", errno);
    if (S_ISDIR(st.st_mode))
        throw Error(ErrorKind::invalid_input, "dump '" + path + "' is a directory, not a file");
    if (!S_ISREG(st.st_mode))
        throw Error(ErrorKind::invalid_input, "dump '" + path + "' is not a regular file");
    if (st.st_size > k_max_file)
        throw Error(ErrorKind::invalid_input, "dump '" + path + "' is too large");
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw os_error("cannot read dump '" + path + "'", errno);
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    data.resize(got);
    return data;
}

} // namespace

std::size_t validate_dump(const std::string& path) {
    const std::string data = read_all(path);
    auto fail = [&](std::size_t line_no, const std::string& what) -> Error {
        return Error(ErrorKind::invalid_input,
                     "malformed dump '" + path + "' line " + std::to_string(line_no) + ": " + what);
    };

    std::set<Bdf> seen;
    bool in_device = false;
    Bdf current;
    std::size_t current_len = 0, current_line = 0;
    auto finish_device = [&] {
        if (in_device && current_len < 64)
            throw fail(current_line, "device " + current.to_string() +
                                         " has fewer than 64 bytes of configuration space");
    };

    std::size_t pos = 0, line_no = 0;
    while (pos < data.size()) {
        ++line_no;
        std::size_t end = data.find('\n', pos);
        if (end == std::string::npos)
            throw fail(line_no, "last line is not terminated by a newline");
        std::string_view line(data.data() + pos, end - pos);
        pos = end + 1;
        if (line.size() > k_max_line)
            throw fail(line_no, "line longer than " + std::to_string(k_max_line) + " characters");
        if (line.find('\0') != std::string_view::npos)
            throw fail(line_no, "NUL byte (not a text dump)");
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);

        bool bad = false;
        if (auto bdf = parse_header(line, bad)) {
            if (bad)
                throw fail(line_no, "impossible device address '" +
                                        std::string(line.substr(0, line.find(' '))) + "'");
            finish_device();
            if (!seen.insert(*bdf).second)
                throw fail(line_no, "device " + bdf->to_string() + " appears twice");
            in_device = true;
            current = *bdf;
            current_len = 0;
            current_line = line_no;
            continue;
        }
        if (line.empty()) {
            finish_device();
            in_device = false;
            continue;
        }
        if (!in_device)
            continue;
        // "OFFS: " with 2..8 hex digits: a config-space line of the current device.
        std::size_t digits = 0;
        while (digits < line.size() && digits < 9 && is_hex(line[digits]))
            ++digits;
        if (digits < 2 || digits > 8 || !hex_run(line, 0, digits, ": "))
            continue;
        std::uint64_t offset = hex_number(line.substr(0, digits));
        std::size_t z = digits + 2;
        std::size_t count = 0;
        while (z + 2 <= line.size() && is_hex(line[z]) && is_hex(line[z + 1]) &&
               (z + 2 == line.size() || line[z + 2] == ' ')) {
            ++count;
            z += 2;
            if (z < line.size())
                ++z;
        }
        if (z != line.size())
            throw fail(line_no, "expected 'OFFSET: xx xx ...' hex bytes");
        if (offset + count > k_max_config)
            throw fail(line_no, "offset beyond the 4096 bytes of configuration space");
        if (count > 0)
            current_len = std::max<std::size_t>(current_len, offset + count);
    }
    finish_device();
    if (seen.empty())
        throw Error(ErrorKind::invalid_input,
                    "malformed dump '" + path + "': no device found (expected lspci -x output)");
    return seen.size();
}

} // namespace dis::pci::detail
