// What the device lending commands share (declared in lending_cli.hpp): the fabric and node
// options, durations and times as the user writes and reads them, and lease texts.
#include "lending_cli.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/lending_states.hpp"
#include "dis/lending_test.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <ostream>

namespace dis::cli {

namespace lend {

using nlohmann::json;

void add_fabric_option(CLI::App* cmd, LendingOptions& opts) {
    cmd->add_option("--fabric", opts.fabric_dir,
                    "Fabric directory (default: $DIS_FABRIC, /run/dis as root, else "
                    "$XDG_RUNTIME_DIR/dis)")
        ->type_name("DIR");
}

void add_local_node_option(CLI::App* cmd, LendingOptions& opts) {
    cmd->add_option("--local-node", opts.local_node,
                    "Borrow as this node (default: $DIS_NODE_ID, else the lowest local node)");
}

std::string fabric_dir(const LendingOptions& opts) {
    return fabric::resolve_fabric_dir(
        opts.fabric_dir.empty() ? std::nullopt : std::optional<std::string>(opts.fabric_dir));
}

std::uint32_t local_node(const std::string& dir, const LendingOptions& opts) {
    if (opts.local_node)
        return *opts.local_node;
    if (const char* env = std::getenv("DIS_NODE_ID"); env && *env) {
        char* end = nullptr;
        unsigned long v = std::strtoul(env, &end, 10);
        if (*end != '\0' || v == 0 || v > UINT32_MAX)
            throw Error(ErrorKind::invalid_input,
                        std::string("DIS_NODE_ID '") + env + "' is not a node id");
        return static_cast<std::uint32_t>(v);
    }
    auto nodes = fabric::discover_nodes(dir);
    if (nodes.empty())
        throw Error(ErrorKind::fabric_down,
                    "no fabric nodes in " + dir + " (start one with: dis-tool fabric start)");
    return nodes.front();
}

std::chrono::milliseconds parse_duration(const std::string& text, const std::string& what) {
    std::size_t pos = 0;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.'))
        ++pos;
    std::string number = text.substr(0, pos), unit = text.substr(pos);
    double scale = unit.empty() || unit == "s"    ? 1000.0
                   : unit == "ms"                 ? 1.0
                   : unit == "m" || unit == "min" ? 60e3
                   : unit == "h"                  ? 3600e3
                   : unit == "d"                  ? 86400e3
                                                  : -1.0;
    double value = -1;
    if (!number.empty() && std::count(number.begin(), number.end(), '.') <= 1 && number != ".") {
        try {
            value = std::stod(number);
        } catch (const std::exception&) {
        }
    }
    if (scale < 0 || value < 0 || !std::isfinite(value * scale) || value * scale > 1e15)
        throw Error(ErrorKind::invalid_input,
                    what + ": invalid duration '" + text +
                        "' (expected seconds, or a number with ms, s, m, h or d: 30, 500ms, 2m)");
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(value * scale)));
}

std::int64_t parse_since(const std::string& text, std::int64_t now) {
    // One message for both forms, whichever the text was taken for.
    auto bad = [&]() -> Error {
        return Error(ErrorKind::invalid_input,
                     "--since: invalid time '" + text +
                         "' (expected ISO 8601 like 2026-12-01T18:30:00Z, or a time ago: 10m, "
                         "2h, 1d)");
    };
    if (!text.empty() && text.find('-') == std::string::npos) {
        try {
            return now - parse_duration(text, "--since").count();
        } catch (const Error&) {
            throw bad();
        }
    }
    // ISO 8601: date, optional time, optional fraction, optional zone (none: UTC).
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, n = 0;
    double sec = 0;
    const char* s = text.c_str();
    if (std::sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        throw bad();
    s += n;
    if (*s == 'T' || *s == ' ') {
        ++s;
        if (std::sscanf(s, "%2d:%2d%n", &h, &mi, &n) != 2)
            throw bad();
        s += n;
        if (*s == ':') {
            ++s;
            char* end = nullptr;
            sec = std::strtod(s, &end);
            if (end == s)
                throw bad();
            s = end;
        }
    }
    int offset_min = 0;
    if (*s == 'Z') {
        ++s;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1, oh = 0, om = 0;
        ++s;
        if (std::sscanf(s, "%2d:%2d%n", &oh, &om, &n) != 2 &&
            std::sscanf(s, "%2d%2d%n", &oh, &om, &n) != 2)
            throw bad();
        s += n;
        offset_min = sign * (oh * 60 + om);
    }
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec >= 61)
        throw bad();
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    std::int64_t secs = ::timegm(&tm);
    return (secs - offset_min * 60) * 1000 + static_cast<std::int64_t>(std::llround(sec * 1000));
}

std::int64_t now_ms() {
    return lm::to_unix_ms(
        std::chrono::time_point_cast<lm::Millis>(std::chrono::system_clock::now()));
}

std::string format_time(lm::TimePoint t) {
    std::time_t secs = static_cast<std::time_t>(lm::to_unix_ms(t) / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string format_left(lm::TimePoint expires, std::int64_t now) {
    std::int64_t left = lm::to_unix_ms(expires) - now;
    if (left <= 0)
        return "expired";
    std::int64_t s = (left + 999) / 1000;
    char buf[48];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                      static_cast<long long>(s % 60));
    else
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                      static_cast<long long>(s / 60 % 60));
    return buf;
}

std::string borrower_text(const lm::Borrower& b) {
    return "node " + std::to_string(b.node_id) + " pid " + std::to_string(b.pid) + " uid " +
           std::to_string(b.uid);
}

std::string lease_text(const lm::Lease& l, std::int64_t now) {
    return "lease " + std::to_string(l.id) + " (" + lm::to_string(l.mode) + ", " +
           borrower_text(l.borrower) + ", expires in " + format_left(l.expires, now) + ")";
}

std::string ids_text(const lm::DeviceInfo& info) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04x:%04x", info.vendor_id, info.device_id);
    return buf;
}

} // namespace lend

} // namespace dis::cli
