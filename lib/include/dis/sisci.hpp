// The fabric commands' view of the SISCI C API, a thin front over libdis's one RAII layer
// (lib/fabric/sci.hpp, internal, shared with the benchmarks). This header does not include
// sisci_api.h, so front ends compile the same against the software fabric and a vendor SISCI.
// Failures throw dis::Error carrying SCIGetErrorString's text, their kind from the one
// sci_error_t -> ErrorKind table of lib/fabric/sci.cpp.
#pragma once

#include "dis/fabric_admin.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace dis::sci {
class Library;
class Descriptor;
} // namespace dis::sci

namespace dis::fabric::sisci {

// True when libdis was built against the software fabric (lib/sisci, disd), false with
// -DDIS_SISCI_ROOT (a vendor SISCI, where the admin interface is unavailable).
bool software_fabric() noexcept;

// "SCI_ERR_..." text for a sci_error_t value, from SCIGetErrorString.
std::string error_string(unsigned int sci_error);

// Throws dis::Error for a failed call: `what` names the call, the kind follows the one table
// (no such node or segment: not_found; argument errors: invalid_input; in use: busy; an
// unreachable node: fabric_down; timeouts: timeout; access: permission; no space or a failed
// system call: os; a code the table does not know: internal).
[[noreturn]] void throw_sci_error(const std::string& what, unsigned int sci_error);

// SCIInitialize on construction, SCITerminate on destruction. One per process is enough.
// Failing to initialize (no daemon for this process's node) throws Error(fabric_down).
class Library {
public:
    Library();
    ~Library();
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    const sci::Library& get() const { return *m_library; }

private:
    std::unique_ptr<sci::Library> m_library;
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
    std::unique_ptr<sci::Descriptor> m_sd;
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
