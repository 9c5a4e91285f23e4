// Small text helpers that many areas need (readiness reasons, metric labels, fdids); one copy
// here instead of one per file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dis {

// "a, b, c" (or with another separator).
std::string join(const std::vector<std::string>& parts, std::string_view separator = ", ");

// `text` without the blanks (spaces and tabs) at either end.
std::string_view trim(std::string_view text);

// "0x1f": lower-case hex with the 0x prefix and no padding (fdids, addresses).
std::string hex(std::uint64_t value);

} // namespace dis
