// The only translation unit that includes the SISCI C headers: against the software fabric
// they come from lib/sisci, with -DDIS_SISCI_ROOT from the vendor's installation.
#include "dis/sisci.hpp"

#include "dis/error.hpp"

#include <cstdio>

#include <sisci_api.h>
#include <sisci_error.h>
#include <sisci_types.h>

namespace dis::fabric::sisci {

namespace {

constexpr unsigned int k_no_flags = 0;

// SCIQuery(SCI_Q_ADAPTER) of one unsigned value; nullopt-like false when not answered.
bool query_adapter_value(unsigned int subcommand, std::uint32_t adapter_no, unsigned int port,
                         unsigned int& value, sci_error_t& error) {
    sci_query_adapter_t query{};
    query.subcommand = subcommand;
    query.localAdapterNo = adapter_no;
    query.portNo = port;
    query.data = &value;
    error = SCI_ERR_OK;
    SCIQuery(SCI_Q_ADAPTER, &query, k_no_flags, &error);
    return error == SCI_ERR_OK;
}

} // namespace

bool software_fabric() noexcept {
#ifdef DIS_VENDOR_SISCI
    return false;
#else
    return true;
#endif
}

std::string error_string(unsigned int sci_error) {
    const char* text = SCIGetErrorString(static_cast<sci_error_t>(sci_error));
    return text ? text : "unknown SISCI error";
}

namespace {

std::string failure_text(const std::string& what, unsigned int code) {
    char code_text[16];
    std::snprintf(code_text, sizeof code_text, "0x%x", code);
    return what + " failed: " + error_string(code) + " (" + code_text + ")";
}

// SCIInitialize and SCIOpen fail when this process's node has no daemon to talk to (on the
// software fabric an unknown DIS_NODE_ID): the fabric is unreachable, not the input wrong.
[[noreturn]] void throw_open_error(const std::string& what, unsigned int code) {
    auto err = static_cast<sci_error_t>(code);
    if (err == SCI_ERR_ACCESS)
        throw Error(ErrorKind::permission, failure_text(what, code));
    throw Error(ErrorKind::fabric_down, failure_text(what, code));
}

} // namespace

void throw_sci_error(const std::string& what, unsigned int code) {
    auto err = static_cast<sci_error_t>(code);
    ErrorKind kind = ErrorKind::fabric_down;
    if (err == SCI_ERR_NO_SUCH_NODEID || err == SCI_ERR_NO_SUCH_SEGMENT ||
        err == SCI_ERR_NO_SUCH_ADAPTERNO)
        kind = ErrorKind::not_found;
    else if (err == SCI_ERR_ILLEGAL_FLAG || err == SCI_ERR_ILLEGAL_PARAMETER ||
             err == SCI_ERR_OUT_OF_RANGE || err == SCI_ERR_ILLEGAL_NODEID ||
             err == SCI_ERR_ILLEGAL_ADAPTERNO || err == SCI_ERR_ILLEGAL_QUERY)
        kind = ErrorKind::invalid_input;
    else if (err == SCI_ERR_ACCESS)
        kind = ErrorKind::permission;
    else if (err == SCI_ERR_TIMEOUT)
        kind = ErrorKind::timeout;
    throw Error(kind, failure_text(what, code));
}

Library::Library() {
    sci_error_t err = SCI_ERR_OK;
    SCIInitialize(k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_open_error("SCIInitialize", err);
}

Library::~Library() {
    SCITerminate();
}

struct Descriptor::Impl {
    sci_desc_t sd{};
};

Descriptor::Descriptor(const Library&) : m_impl(std::make_unique<Impl>()) {
    sci_error_t err = SCI_ERR_OK;
    SCIOpen(&m_impl->sd, k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_open_error("SCIOpen", err);
}

Descriptor::~Descriptor() {
    sci_error_t err = SCI_ERR_OK;
    SCIClose(m_impl->sd, k_no_flags, &err); // nothing useful to do with a failure here
}

std::uint32_t Descriptor::local_node_id(std::uint32_t adapter_no) const {
    unsigned int node_id = 0;
    sci_error_t err = SCI_ERR_OK;
    SCIGetLocalNodeId(adapter_no, &node_id, k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_sci_error("SCIGetLocalNodeId(adapter " + std::to_string(adapter_no) + ")", err);
    return node_id;
}

bool Descriptor::probe_node(std::uint32_t node_id, std::uint32_t adapter_no) const {
    sci_error_t err = SCI_ERR_OK;
    int up = SCIProbeNode(m_impl->sd, adapter_no, node_id, k_no_flags, &err);
    if (err == SCI_ERR_OK)
        return up != 0;
    // A node that is not there, or not answering, is what a probe is for: not an error.
    if (err == SCI_ERR_NO_SUCH_NODEID || err == SCI_ERR_NODE_NOT_RESPONDING ||
        err == SCI_ERR_NO_REMOTE_LINK_ACCESS || err == SCI_ERR_NO_LINK_ACCESS ||
        err == SCI_ERR_CONNECTION_REFUSED || err == SCI_ERR_TIMEOUT)
        return false;
    throw_sci_error("SCIProbeNode(node " + std::to_string(node_id) + ")", err);
}

AdapterInfo query_adapter(const Library&, std::uint32_t adapter_no) {
    AdapterInfo info;
    info.adapter_no = adapter_no;
    unsigned int value = 0;
    sci_error_t err = SCI_ERR_OK;
    if (!query_adapter_value(SCI_Q_ADAPTER_NODEID, adapter_no, 0, value, err))
        throw_sci_error(
            "SCIQuery(SCI_Q_ADAPTER_NODEID, adapter " + std::to_string(adapter_no) + ")", err);
    info.node_id = value;
    // The rest is descriptive: a SISCI that does not answer leaves the field unknown.
    if (query_adapter_value(SCI_Q_ADAPTER_CARD_TYPE, adapter_no, 0, value, err)) {
#ifdef DIS_VENDOR_SISCI
        info.card_type = std::to_string(value); // the vendor API has no portable name for it
#else
        const char* name = SCIGetAdapterTypeString(value);
        info.card_type = name && *name ? name : std::to_string(value);
#endif
    }
    if (query_adapter_value(SCI_Q_ADAPTER_SERIAL_NUMBER, adapter_no, 0, value, err))
        info.serial = value;
    if (query_adapter_value(SCI_Q_ADAPTER_NUMBER_OF_LINKS, adapter_no, 0, value, err))
        info.links = value;
    if (query_adapter_value(SCI_Q_ADAPTER_LINK_OPERATIONAL, adapter_no, 0, value, err))
        info.link_operational = value != 0;
    if (query_adapter_value(SCI_Q_ADAPTER_LINK_WIDTH, adapter_no, 0, value, err))
        info.link_width = value;
    if (query_adapter_value(SCI_Q_ADAPTER_LINK_SPEED, adapter_no, 0, value, err))
        info.link_speed = link_speed_name(value);
    if (query_adapter_value(SCI_Q_ADAPTER_DMA_OFFSET_ALIGNMENT, adapter_no, 0, value, err))
        info.dma_alignment = value;
    return info;
}

std::string link_speed_name(std::uint32_t value) {
    // The vendor reports the PCIe generation; the software fabric reports MT/s.
    if (value >= 1000) {
        std::string gt = std::to_string(value / 1000);
        if (value % 1000)
            gt += "." + std::to_string(value % 1000 / 100);
        return gt + "GT/s";
    }
    switch (value) {
    case 1:
        return "2.5GT/s";
    case 2:
        return "5GT/s";
    case 3:
        return "8GT/s";
    case 4:
        return "16GT/s";
    case 5:
        return "32GT/s";
    case 6:
        return "64GT/s";
    default:
        return "";
    }
}

} // namespace dis::fabric::sisci
