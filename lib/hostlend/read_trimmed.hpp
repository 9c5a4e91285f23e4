// The text of a small sysfs or state file without its trailing newline and blanks; "" when it
// cannot be read (a missing attribute reads as empty, as the plans expect).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dis::hostlend::detail {

inline std::string read_trimmed(const std::filesystem::path& p) {
    std::ifstream in(p);
    if (!in)
        return {};
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    return s;
}

} // namespace dis::hostlend::detail
