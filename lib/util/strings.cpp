#include "dis/strings.hpp"

#include <cinttypes>
#include <cstdio>

namespace dis {

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (const auto& part : parts) {
        if (!out.empty())
            out += separator;
        out += part;
    }
    return out;
}

std::string hex(std::uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, value);
    return buf;
}

} // namespace dis
