// Fabric device ids: (node_id << 16) | index, printed in hex like the vendor's "0x80000".
// The one parser and formatter for fdids; the CLI, the daemon and the policy file use it.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace dis::lending {

struct Fdid {
    std::uint32_t value = 0;

    static constexpr Fdid make(std::uint32_t node_id, std::uint32_t index) {
        return Fdid{(node_id << 16) | (index & 0xffffu)};
    }
    constexpr std::uint32_t node_id() const { return value >> 16; }
    constexpr std::uint32_t index() const { return value & 0xffffu; }
    auto operator<=>(const Fdid&) const = default;
};

// Accepts "0x80000" (hex, any case, the form printed) or a decimal number; throws
// dis::Error(invalid_input) naming the text otherwise (empty, junk, over 32 bits).
Fdid parse_fdid(std::string_view text);
// Builds an fdid from node id and index, refusing values that do not fit 16 bits each.
Fdid make_fdid(std::uint64_t node_id, std::uint64_t index);
// "0x80000": lower-case hex with a 0x prefix.
std::string to_string(Fdid fdid);

} // namespace dis::lending
