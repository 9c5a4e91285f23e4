// The SISCI API over the software fabric: the library, descriptors, nodes and queries. The
// other areas: segments (sisci_segment.cpp), maps and PIO (sisci_map.cpp), DMA
// (sisci_dma.cpp), interrupts (sisci_interrupt.cpp), error texts (sisci_errors.cpp).
#include "api_util.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// ============================== library and descriptors ==============================

SCI_API void SCIInitialize(unsigned int flags, sci_error_t* error) {
    if (!Check(error).flags(flags, 0)) {
        return;
    }
    set(error, Runtime::initialize());
}

SCI_API void SCITerminate(void) {
    Runtime::terminate();
}

SCI_API void SCIOpen(sci_desc_t* sd, unsigned int flags, sci_error_t* error) {
    if (!Check(error).runtime().param(sd != nullptr).flags(flags, 0).home()) {
        return;
    }
    *sd = new sci_desc();
    set(error, SCI_ERR_OK);
}

SCI_API void SCIClose(sci_desc_t sd, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(sd, Magic::desc).flags(flags, 0) ||
        !c.that(sd->objects.load() <= 0, SCI_ERR_BUSY)) {
        return;
    }
    destroy(sd);
    set(error, SCI_ERR_OK);
}

SCI_API const char* SCIGetAdapterTypeString(unsigned int adapterType) {
    return adapterType == DIS_ADAPTER_SOFTWARE_FABRIC ? "software fabric adapter"
                                                      : "unknown adapter";
}

// ======================================= nodes =======================================

SCI_API void SCIGetLocalNodeId(unsigned int adapterNo, unsigned int* nodeId, unsigned int flags,
                               sci_error_t* error) {
    Check c(error);
    if (!c.runtime().param(nodeId != nullptr).flags(flags, 0).adapter(adapterNo)) {
        return;
    }
    *nodeId = c.rt()->node_id();
    set(error, SCI_ERR_OK);
}

SCI_API int SCIProbeNode(sci_desc_t sd, unsigned int localAdapterNo, unsigned int nodeId,
                         unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime().handle(sd, Magic::desc).flags(flags, 0).adapter(localAdapterNo).node(nodeId)) {
        return 0;
    }
    Runtime* rt = c.rt();
    std::string path = wire::socket_path(rt->fabric_dir(), nodeId);
    if (!c.that(::access(path.c_str(), F_OK) == 0, SCI_ERR_NO_SUCH_NODEID)) {
        return 0;
    }
    try {
        wire::Channel ch(rt->fabric_dir(), nodeId, rt->node_id(), std::chrono::milliseconds(1000));
        ch.call({{"op", "ping"}});
    } catch (const wire::WireError&) {
        set(error, SCI_ERR_NODE_NOT_RESPONDING);
        return 0;
    }
    set(error, SCI_ERR_OK);
    return 1;
}

namespace {

// The live nodes whose configured name (node_info's "name") is `name`, ascending.
std::vector<std::uint32_t> nodes_named(Runtime* rt, const std::string& name) {
    std::vector<std::uint32_t> found;
    for (auto id : wire::list_node_sockets(rt->fabric_dir())) {
        sci_error_t err;
        auto conn = rt->conn(id, err);
        if (!conn) {
            continue; // a stale socket: that node is not live
        }
        Reply r = conn->call({{"op", "node_info"}});
        if (r.err == SCI_ERR_OK && r.body.contains("node") &&
            r.body["node"].value("name", std::string()) == name) {
            found.push_back(id);
        }
    }
    return found;
}

void node_info_by_name(const char* name, unsigned int* adapters, dis_nodeId_list_t* list,
                       dis_adapter_type_t* type, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime().param(name != nullptr && list != nullptr).flags(flags, 0)) {
        return;
    }
    std::vector<std::uint32_t> found = nodes_named(c.rt(), name);
    for (std::size_t i = 0; i < DIS_MAX_NSCIS; ++i) {
        (*list)[i] = i < found.size() ? found[i] : 0u;
        if (adapters != nullptr) {
            adapters[i] = 0; // one adapter per node: adapter 0 reaches every node
        }
    }
    if (type != nullptr) {
        *type = found.empty() ? DIS_VIRT_ADAPTER_UNKNOWN : DIS_VIRT_ADAPTER_SOFTWARE_FABRIC;
    }
    set(error, SCI_ERR_OK);
}

} // namespace

SCI_API void SCIGetNodeIdByAdapterName(const char* adapterName, dis_nodeId_list_t* nodeIdList,
                                       dis_adapter_type_t* type, unsigned int flags,
                                       sci_error_t* error) {
    node_info_by_name(adapterName, nullptr, nodeIdList, type, flags, error);
}

SCI_API void SCIGetNodeInfoByAdapterName(const char* adapterName, unsigned int* adapterNoList,
                                         dis_nodeId_list_t* nodeIdList, dis_adapter_type_t* type,
                                         unsigned int flags, sci_error_t* error) {
    node_info_by_name(adapterName, adapterNoList, nodeIdList, type, flags, error);
}

// ====================================== queries ======================================

namespace {

void copy_string(sci_query_string_t* q, const char* text, sci_error_t* error) {
    if (!Check(error).param(q != nullptr && q->str != nullptr && q->length != 0)) {
        return;
    }
    std::snprintf(q->str, q->length, "%s", text);
    set(error, std::strlen(text) < q->length ? SCI_ERR_OK : SCI_ERR_OUT_OF_RANGE);
}

void query_adapter(sci_query_adapter_t* q, sci_error_t* error) {
    Check c(error);
    if (!c.runtime().param(q != nullptr && q->data != nullptr) || !c.adapter(q->localAdapterNo) ||
        !c.home()) {
        return;
    }
    Runtime* rt = c.rt();
    const std::shared_ptr<Conn>& home = c.home_conn();
    auto* out = static_cast<unsigned int*>(q->data);
    Reply info = home->call({{"op", "node_info"}});
    Reply links = home->call({{"op", "links"}});
    if (info.err != SCI_ERR_OK || links.err != SCI_ERR_OK) {
        set(error, info.err != SCI_ERR_OK ? info.err : links.err);
        return;
    }
    try {
        const json& ad = info.body.at("node").at("adapters").at(0);
        const json& ls = links.body.at("links");
        auto link = [&](bool& ok) -> const json* {
            ok = q->portNo < ls.size();
            return ok ? &ls.at(q->portNo) : nullptr;
        };
        bool ok = true;
        switch (q->subcommand) {
        case SCI_Q_ADAPTER_NODEID:
            *out = rt->node_id();
            break;
        case SCI_Q_ADAPTER_SERIAL_NUMBER:
            *out = static_cast<unsigned int>(ad.at("serial").get<std::uint64_t>());
            break;
        case SCI_Q_ADAPTER_CARD_TYPE:
            *out = DIS_ADAPTER_SOFTWARE_FABRIC;
            break;
        case SCI_Q_ADAPTER_CONFIGURED:
            *out = 1;
            break;
        case SCI_Q_ADAPTER_NUMBER_OF_LINKS:
            *out = static_cast<unsigned int>(ls.size());
            break;
        case SCI_Q_ADAPTER_LINK_OPERATIONAL:
            if (const json* l = link(ok)) {
                *out = l->at("state").get<std::string>() == "up" ? 1 : 0;
            }
            break;
        case SCI_Q_ADAPTER_LINK_WIDTH:
            if (const json* l = link(ok)) {
                *out = l->at("width").get<unsigned>();
            }
            break;
        case SCI_Q_ADAPTER_LINK_SPEED:
            if (const json* l = link(ok)) {
                // "8GT/s" -> 8000 MT/s; "2.5GT/s" -> 2500.
                *out =
                    static_cast<unsigned int>(std::stod(l->at("speed").get<std::string>()) * 1000);
            }
            break;
        case SCI_Q_ADAPTER_DMA_SIZE_ALIGNMENT:
        case SCI_Q_ADAPTER_DMA_OFFSET_ALIGNMENT:
            *out = ad.at("dma_alignment").get<unsigned>();
            break;
        case SCI_Q_ADAPTER_SUGGESTED_MIN_DMA_SIZE:
            *out = 4096;
            break;
        case SCI_Q_ADAPTER_DMA_MTU:
            *out = 1u << 20;
            break;
        case SCI_Q_ADAPTER_BDF:
            *out = 0;
            break;
        case SCI_Q_ADAPTER_MCAST_MAX_GROUPS:
            *out = 1;
            break;
        default:
            set(error, SCI_ERR_ILLEGAL_QUERY);
            return;
        }
        set(error, ok ? SCI_ERR_OK : SCI_ERR_OUT_OF_RANGE);
    } catch (const std::exception&) {
        set(error, SCI_ERR_SYSTEM);
    }
}

void query_system(sci_query_system_t* q, sci_error_t* error) {
    if (!Check(error).param(q->data != nullptr)) {
        return;
    }
    auto* out = static_cast<unsigned int*>(q->data);
    if (q->subcommand == SCI_Q_SYSTEM_CPU_CACHE_LINE_SIZE) {
        long line = ::sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
        *out = line > 0 ? static_cast<unsigned int>(line) : 64u;
    } else if (q->subcommand == SCI_Q_SYSTEM_WRITE_POSTING_ENABLED ||
               q->subcommand == SCI_Q_SYSTEM_WRITE_COMBINING_ENABLED) {
        *out = 1;
    } else {
        set(error, SCI_ERR_ILLEGAL_QUERY);
        return;
    }
    set(error, SCI_ERR_OK);
}

void query_dma(sci_query_dma_t* q, sci_error_t* error) {
    Check c(error);
    if (!c.param(q->data != nullptr).adapter(q->localAdapterNo)) {
        return;
    }
    if (q->subcommand == SCI_Q_DMA_AVAILABLE) {
        *static_cast<unsigned int*>(q->data) = 1;
    } else if (q->subcommand == SCI_Q_DMA_CAPABILITIES) {
        auto* caps = static_cast<sci_dma_capabilities_t*>(q->data);
        caps->max_transfer_size = 0xFFFFFFFFu;
        caps->max_vector_length = DIS_DMA_MAX_VECLEN;
        caps->offset_alignment = 1;
        caps->size_alignment = 1;
        caps->suggested_min_size = 4096;
        caps->supports_read = 1;
        caps->supports_vector = 1;
    } else {
        set(error, SCI_ERR_ILLEGAL_QUERY);
        return;
    }
    set(error, SCI_ERR_OK);
}

} // namespace

SCI_API void SCIQuery(unsigned int command, void* data, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.param(data != nullptr)) {
        return;
    }
    switch (command) {
    case SCI_Q_VENDORID:
        if (c.flags(flags, 0)) {
            copy_string(static_cast<sci_query_string_t*>(data), "dis-tool software fabric", error);
        }
        return;
    case SCI_Q_API:
        if (c.flags(flags, 0)) {
            copy_string(static_cast<sci_query_string_t*>(data),
                        "SISCI API (dis-tool software fabric, protocol 1)", error);
        }
        return;
    case SCI_Q_ADAPTER:
        if (c.flags(flags, 0)) {
            query_adapter(static_cast<sci_query_adapter_t*>(data), error);
        }
        return;
    case SCI_Q_SYSTEM:
        if (c.flags(flags, 0)) {
            query_system(static_cast<sci_query_system_t*>(data), error);
        }
        return;
    case SCI_Q_DMA:
        if (c.flags(flags, SCI_FLAG_DMA_ADAPTER | SCI_FLAG_DMA_SYSDMA | SCI_FLAG_DMA_GLOBAL)) {
            query_dma(static_cast<sci_query_dma_t*>(data), error);
        }
        return;
    case SCI_Q_DEVICE:
        dis::sisci::query_device(data, flags, error);
        return;
    default:
        set(error, SCI_ERR_ILLEGAL_QUERY);
    }
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCIInitialize)
SCI_VENDOR_NAMES(SCITerminate)
SCI_VENDOR_NAMES(SCIOpen)
SCI_VENDOR_NAMES(SCIClose)
SCI_VENDOR_NAMES(SCIGetAdapterTypeString)
SCI_VENDOR_NAMES(SCIGetLocalNodeId)
SCI_VENDOR_NAMES(SCIProbeNode)
SCI_VENDOR_NAMES(SCIGetNodeIdByAdapterName)
SCI_VENDOR_NAMES(SCIGetNodeInfoByAdapterName)
SCI_VENDOR_NAMES(SCIQuery)
