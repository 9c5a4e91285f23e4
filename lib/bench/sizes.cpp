// Size lists for --sizes: "4..4M", "8,64,4K", "1M..16M,100".
#include "dis/bench.hpp"
#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <set>

namespace dis::bench {

std::uint64_t parse_size(const std::string& text) {
    const std::string t(trim(text));
    std::size_t digits = 0;
    while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits])))
        ++digits;
    if (digits == 0 || digits > 19)
        throw Error(ErrorKind::invalid_input, "invalid size '" + text + "'");
    std::uint64_t value = std::stoull(t.substr(0, digits));
    std::string suffix = t.substr(digits);
    if (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b'))
        suffix.pop_back(); // accept "4KB" / "4kb" as binary too
    int shift = 0;
    if (suffix.empty() || suffix == "B" || suffix == "b")
        shift = 0;
    else if (suffix == "K" || suffix == "k")
        shift = 10;
    else if (suffix == "M" || suffix == "m")
        shift = 20;
    else if (suffix == "G" || suffix == "g")
        shift = 30;
    else
        throw Error(ErrorKind::invalid_input, "invalid size suffix in '" + text + "'");
    if (value > (std::numeric_limits<std::uint64_t>::max() >> shift))
        throw Error(ErrorKind::invalid_input, "size too large: '" + text + "'");
    return value << shift;
}

std::vector<std::uint64_t> parse_sizes(const std::string& text) {
    std::set<std::uint64_t> sizes;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        if (comma == std::string::npos)
            comma = text.size();
        const std::string item(trim(text.substr(start, comma - start)));
        start = comma + 1;
        if (item.empty())
            throw Error(ErrorKind::invalid_input, "empty entry in size list '" + text + "'");
        auto dots = item.find("..");
        if (dots == std::string::npos) {
            auto v = parse_size(item);
            if (v == 0)
                throw Error(ErrorKind::invalid_input, "size 0 in '" + text + "'");
            sizes.insert(v);
            continue;
        }
        auto lo = parse_size(item.substr(0, dots));
        auto hi = parse_size(item.substr(dots + 2));
        if (lo == 0 || hi < lo)
            throw Error(ErrorKind::invalid_input, "invalid size range '" + item + "'");
        sizes.insert(lo);
        // Powers of two strictly above lo, up to hi.
        std::uint64_t p = 1;
        while (p <= lo)
            p <<= 1;
        for (; p <= hi && p != 0; p <<= 1)
            sizes.insert(p);
    }
    return {sizes.begin(), sizes.end()};
}

std::string format_size(std::uint64_t bytes) {
    static const char* const suffixes[] = {"", "K", "M", "G"};
    int i = 0;
    while (i < 3 && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++i;
    }
    return std::to_string(bytes) + suffixes[i];
}

} // namespace dis::bench
