// Validation of lspci dump files before libpci's dump reader sees them (internal).
#pragma once

#include <cstddef>
#include <string>

namespace dis::pci::detail {

// Checks that `path` is a readable dump libpci can parse without calling its fatal error
// hook: every line newline-terminated and short enough, hex lines well formed and inside
// 4 KiB, at least one device, each with at least the 64-byte header, no duplicate address.
// Returns the number of devices. Throws dis::Error (not_found, permission, invalid_input).
std::size_t validate_dump(const std::string& path);

} // namespace dis::pci::detail
