// SmartIO internals shared by sisci_smartio.cpp (borrowing, lists, queries, interrupts) and
// sisci_smartio_segments.cpp (device segments, mappings for devices).
#pragma once

#include "api_util.hpp"

#include <string>

namespace dis::sisci::smartio {

// The checks that open a device call: a live handle of a device that is not lost (its loss is
// reported with the error the loss gave: SCI_ERR_NOT_AVAILABLE after a reclaim or an expired
// lease, SCI_ERR_NODE_NOT_RESPONDING after the lender died).
inline bool usable(Check& c, sci_smartio_device_t device) {
    if (!c.handle(device, Magic::smartio_device)) {
        return false;
    }
    std::lock_guard lock(device->state->mutex);
    return static_cast<bool>(c.that(!device->state->lost, device->state->lost_err));
}

// The wire names of the SCI_MEMTYPE_* kinds; empty for anything else.
inline std::string memtype_name(unsigned int memtype) {
    switch (memtype) {
    case SCI_MEMTYPE_BAR:
        return "bar";
    case SCI_MEMTYPE_PRIVATE:
        return "private";
    case SCI_MEMTYPE_SHARED:
        return "shared";
    default:
        return {};
    }
}

} // namespace dis::sisci::smartio
