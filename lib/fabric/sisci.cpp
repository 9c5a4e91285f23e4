// The fabric commands' SISCI front (dis/sisci.hpp) over libdis's one RAII layer (sci.hpp).
// Against the software fabric the SISCI headers come from lib/sisci, with -DDIS_SISCI_ROOT
// from the vendor's installation.
#include "dis/sisci.hpp"

#include "dis/error.hpp"

#include "sci.hpp"

namespace dis::fabric::sisci {

namespace {

constexpr unsigned int k_no_flags = 0;

// SCIQuery(SCI_Q_ADAPTER) of one unsigned value; false when not answered.
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
    return sci::error_string(static_cast<sci_error_t>(sci_error));
}

void throw_sci_error(const std::string& what, unsigned int code) {
    sci::throw_error(what, static_cast<sci_error_t>(code));
}

Library::Library() : m_library(std::make_unique<sci::Library>()) {}

Library::~Library() = default;

Descriptor::Descriptor(const Library& library)
    : m_sd(std::make_unique<sci::Descriptor>(library.get())) {}

Descriptor::~Descriptor() = default;

std::uint32_t Descriptor::local_node_id(std::uint32_t adapter_no) const {
    return sci::local_node_id(adapter_no);
}

bool Descriptor::probe_node(std::uint32_t node_id, std::uint32_t adapter_no) const {
    sci_error_t err = SCI_ERR_OK;
    int up = SCIProbeNode(m_sd->get(), adapter_no, node_id, k_no_flags, &err);
    if (err == SCI_ERR_OK)
        return up != 0;
    // A node that is not there, or not answering, is what a probe is for: not an error.
    if (err == SCI_ERR_NO_SUCH_NODEID || err == SCI_ERR_NODE_NOT_RESPONDING ||
        err == SCI_ERR_NO_REMOTE_LINK_ACCESS || err == SCI_ERR_NO_LINK_ACCESS ||
        err == SCI_ERR_CONNECTION_REFUSED || err == SCI_ERR_TIMEOUT)
        return false;
    sci::throw_error("SCIProbeNode(node " + std::to_string(node_id) + ")", err);
}
AdapterInfo query_adapter(const Library&, std::uint32_t adapter_no) {
    AdapterInfo info;
    info.adapter_no = adapter_no;
    unsigned int value = 0;
    sci_error_t err = SCI_ERR_OK;
    if (!query_adapter_value(SCI_Q_ADAPTER_NODEID, adapter_no, 0, value, err))
        sci::throw_error(
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
