// The one fdid parser and formatter.
#include "dis/lending_fdid.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <charconv>

namespace dis::lending {

Fdid parse_fdid(std::string_view text) {
    auto fail = [&](const char* why) {
        return Error(ErrorKind::invalid_input, "invalid fdid '" + std::string(text) + "': " + why +
                                                   " (expected a hex number like 0x80000)");
    };
    std::string_view digits = text;
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        digits.remove_prefix(2);
        base = 16;
    }
    if (digits.empty())
        throw fail("empty");
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && value > 0xffffffffu))
        throw fail("more than 32 bits");
    if (ec != std::errc() || end != digits.data() + digits.size())
        throw fail("not a number");
    return Fdid{static_cast<std::uint32_t>(value)};
}

Fdid make_fdid(std::uint64_t node_id, std::uint64_t index) {
    if (node_id > 0xffff || index > 0xffff)
        throw Error(ErrorKind::invalid_input, "fdid of node " + std::to_string(node_id) +
                                                  " index " + std::to_string(index) +
                                                  ": node id and index must each fit 16 bits");
    return Fdid::make(static_cast<std::uint32_t>(node_id), static_cast<std::uint32_t>(index));
}

std::string to_string(Fdid fdid) {
    return hex(fdid.value);
}

} // namespace dis::lending
