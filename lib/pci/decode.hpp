// Decoding of raw configuration space into the Device model (internal to libdis).
#pragma once

#include "dis/pci.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace dis::pci::detail {

// Fills the config-space facts of `dev` (ids, class, header, bridge buses, capabilities,
// BAR bases) from `cfg`; bytes beyond cfg.size() are treated as unreadable, as lspci does.
// Never throws on odd contents: broken or looping capability chains end the walk.
void decode_config(std::span<const std::uint8_t> cfg, Device& dev);

// 1 for "2.5GT/s" ... 6 for "64GT/s"; 0 for "unknown".
int speed_rank(const std::string& speed);

} // namespace dis::pci::detail
