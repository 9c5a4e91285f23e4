// Small RAII wrappers over the SISCI C API, shared by every fabric command. This header does
// not include sisci_api.h, so front ends compile the same against the software fabric and a
// vendor SISCI; only lib/fabric/sisci.cpp sees the C API. Failures throw dis::Error carrying
// SCIGetErrorString's text.
#pragma once

#include "dis/fabric_admin.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace dis::fabric::sisci {

// True when libdis was built against the software fabric (lib/sisci, disd), false with
// -DDIS_SISCI_ROOT (a vendor SISCI, where the admin interface is unavailable).
bool software_fabric() noexcept;

// "SCI_ERR_..." text for a sci_error_t value, from SCIGetErrorString.
std::string error_string(unsigned int sci_error);

// Throws dis::Error for a failed call: `what` names the call, the kind follows the error
// (no such node: not_found; argument errors: invalid_input; access: permission; timeouts:
// timeout; anything else: fabric_down, the fabric did not do what was asked).
[[noreturn]] void throw_sci_error(const std::string& what, unsigned int sci_error);

// SCIInitialize on construction, SCITerminate on destruction. One per process is enough.
// Failing to initialize (no daemon for this process's node) throws Error(fabric_down).
class Library {
public:
    Library();
    ~Library();
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
};

// An open SISCI descriptor (SCIOpen / SCIClose).
class Descriptor {
public:
    explicit Descriptor(const Library& library);
    ~Descriptor();
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;

    // SCIGetLocalNodeId of `adapter_no`.
    std::uint32_t local_node_id(std::uint32_t adapter_no = 0) const;
    // SCIProbeNode: true when `node_id` is reachable through `adapter_no`. An unknown node id
    // is reported as unreachable, not as an error.
    bool probe_node(std::uint32_t node_id, std::uint32_t adapter_no = 0) const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// SCIQuery(SCI_Q_ADAPTER, ...) of a local adapter: node id, card type, serial, links and the
// state, width and speed of link 0, DMA offset alignment. Optional fields a SISCI does not
// answer stay 0 / empty. Throws when the adapter does not exist.
AdapterInfo query_adapter(const Library& library, std::uint32_t adapter_no);

// The lspci spelling of a SCI_Q_ADAPTER_LINK_SPEED value: a PCIe generation as the vendor
// reports it (1 -> "2.5GT/s", 3 -> "8GT/s") or MT/s as the software fabric does
// (8000 -> "8GT/s"); empty for 0 or an unknown generation.
std::string link_speed_name(std::uint32_t value);

} // namespace dis::fabric::sisci
