// The SISCI API over the software fabric: argument checking, then the daemon or shared memory.
#include "api_util.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

// ============================== library and descriptors ==============================

SCI_API void SCIInitialize(unsigned int flags, sci_error_t* error) {
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    set(error, Runtime::initialize());
}

SCI_API void SCITerminate(void) {
    Runtime::terminate();
}

SCI_API void SCIOpen(sci_desc_t* sd, unsigned int flags, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (sd == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    sci_error_t err;
    if (!rt->home(err)) {
        set(error, err);
        return;
    }
    *sd = new sci_desc();
    set(error, SCI_ERR_OK);
}

SCI_API void SCIClose(sci_desc_t sd, unsigned int flags, sci_error_t* error) {
    if (!valid(sd, Magic::desc)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (sd->objects.load() > 0) {
        set(error, SCI_ERR_BUSY);
        return;
    }
    sd->magic = Magic::dead;
    delete sd;
    set(error, SCI_ERR_OK);
}

SCI_API const char* SCIGetErrorString(sci_error_t error) {
    switch (error) {
    case SCI_ERR_OK:
        return "OK";
    case SCI_ERR_BUSY:
        return "Resource busy";
    case SCI_ERR_FLAG_NOT_IMPLEMENTED:
        return "Flag option not implemented";
    case SCI_ERR_ILLEGAL_FLAG:
        return "Illegal flag option";
    case SCI_ERR_NOSPC:
        return "Out of local resources";
    case SCI_ERR_API_NOSPC:
        return "Out of local API resources";
    case SCI_ERR_HW_NOSPC:
        return "Out of hardware resources";
    case SCI_ERR_NOT_IMPLEMENTED:
        return "Not implemented";
    case SCI_ERR_ILLEGAL_ADAPTERNO:
        return "Illegal adapter number";
    case SCI_ERR_NO_SUCH_ADAPTERNO:
        return "No such adapter";
    case SCI_ERR_TIMEOUT:
        return "Operation timed out";
    case SCI_ERR_OUT_OF_RANGE:
        return "Out of range";
    case SCI_ERR_NO_SUCH_SEGMENT:
        return "No such segment or interrupt";
    case SCI_ERR_ILLEGAL_NODEID:
        return "Illegal node id";
    case SCI_ERR_CONNECTION_REFUSED:
        return "Connection refused";
    case SCI_ERR_SEGMENT_NOT_CONNECTED:
        return "Segment not connected";
    case SCI_ERR_SIZE_ALIGNMENT:
        return "Size not aligned";
    case SCI_ERR_OFFSET_ALIGNMENT:
        return "Offset not aligned";
    case SCI_ERR_ILLEGAL_PARAMETER:
        return "Illegal parameter";
    case SCI_ERR_MAX_ENTRIES:
        return "Too many entries";
    case SCI_ERR_SEGMENT_NOT_PREPARED:
        return "Segment not prepared";
    case SCI_ERR_ILLEGAL_ADDRESS:
        return "Illegal address";
    case SCI_ERR_ILLEGAL_OPERATION:
        return "Illegal operation";
    case SCI_ERR_ILLEGAL_QUERY:
        return "Illegal query";
    case SCI_ERR_SEGMENTID_USED:
        return "Segment id already used";
    case SCI_ERR_SYSTEM:
        return "System error";
    case SCI_ERR_CANCELLED:
        return "Operation cancelled";
    case SCI_ERR_NOT_CONNECTED:
        return "Not connected";
    case SCI_ERR_NOT_AVAILABLE:
        return "Not available";
    case SCI_ERR_INCONSISTENT_VERSIONS:
        return "Inconsistent versions";
    case SCI_ERR_COND_INT_RACE_PROBLEM:
        return "Interrupt race";
    case SCI_ERR_OVERFLOW:
        return "Overflow";
    case SCI_ERR_NOT_INITIALIZED:
        return "Not initialized (no fabric node reachable)";
    case SCI_ERR_ACCESS:
        return "Access denied";
    case SCI_ERR_NOT_SUPPORTED:
        return "Not supported";
    case SCI_ERR_DEPRECATED:
        return "Deprecated";
    case SCI_ERR_DMA_NOT_AVAILABLE:
        return "DMA not available";
    case SCI_ERR_DMA_DISABLED:
        return "DMA disabled";
    case SCI_ERR_NO_SUCH_NODEID:
        return "No such node id";
    case SCI_ERR_NODE_NOT_RESPONDING:
        return "Node not responding";
    case SCI_ERR_NO_REMOTE_LINK_ACCESS:
        return "No remote link access";
    case SCI_ERR_NO_LINK_ACCESS:
        return "No link access";
    case SCI_ERR_TRANSFER_FAILED:
        return "Transfer failed";
    case SCI_ERR_EWOULD_BLOCK:
        return "Operation would block";
    case SCI_ERR_SEMAPHORE_COUNT_EXCEEDED:
        return "Semaphore count exceeded";
    case SCI_ERR_IRQL_ILLEGAL:
        return "Illegal IRQ level";
    case SCI_ERR_REMOTE_BUSY:
        return "Remote busy";
    case SCI_ERR_LOCAL_BUSY:
        return "Local busy";
    case SCI_ERR_ALL_BUSY:
        return "All busy";
    }
    return "Unknown error";
}

SCI_API const char* SCIGetAdapterTypeString(unsigned int adapterType) {
    return adapterType == DIS_ADAPTER_SOFTWARE_FABRIC ? "software fabric adapter"
                                                      : "unknown adapter";
}

SCI_API void SCIGetLocalNodeId(unsigned int adapterNo, unsigned int* nodeId, unsigned int flags,
                               sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (nodeId == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (adapterNo != 0) {
        set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
        return;
    }
    *nodeId = rt->node_id();
    set(error, SCI_ERR_OK);
}

SCI_API int SCIProbeNode(sci_desc_t sd, unsigned int localAdapterNo, unsigned int nodeId,
                         unsigned int flags, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return 0;
    }
    if (!valid(sd, Magic::desc)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return 0;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return 0;
    }
    if (localAdapterNo != 0) {
        set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
        return 0;
    }
    if (!valid_node_id(nodeId)) {
        set(error, SCI_ERR_ILLEGAL_NODEID);
        return 0;
    }
    std::string path = wire::socket_path(rt->fabric_dir(), nodeId);
    if (::access(path.c_str(), F_OK) != 0) {
        set(error, SCI_ERR_NO_SUCH_NODEID);
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

void copy_string(sci_query_string_t* q, const char* text, sci_error_t* error) {
    if (q == nullptr || q->str == nullptr || q->length == 0) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    std::snprintf(q->str, q->length, "%s", text);
    set(error, std::strlen(text) < q->length ? SCI_ERR_OK : SCI_ERR_OUT_OF_RANGE);
}

void query_adapter(sci_query_adapter_t* q, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (q == nullptr || q->data == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (q->localAdapterNo != 0) {
        set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
        return;
    }
    sci_error_t err;
    auto home = rt->home(err);
    if (!home) {
        set(error, err);
        return;
    }
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

} // namespace

SCI_API void SCIQuery(unsigned int command, void* data, unsigned int flags, sci_error_t* error) {
    if (data == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    switch (command) {
    case SCI_Q_VENDORID:
        if (!flags_ok(flags, 0)) {
            set(error, SCI_ERR_ILLEGAL_FLAG);
            return;
        }
        copy_string(static_cast<sci_query_string_t*>(data), "dis-tool software fabric", error);
        return;
    case SCI_Q_API:
        if (!flags_ok(flags, 0)) {
            set(error, SCI_ERR_ILLEGAL_FLAG);
            return;
        }
        copy_string(static_cast<sci_query_string_t*>(data),
                    "SISCI API (dis-tool software fabric, protocol 1)", error);
        return;
    case SCI_Q_ADAPTER:
        if (!flags_ok(flags, 0)) {
            set(error, SCI_ERR_ILLEGAL_FLAG);
            return;
        }
        query_adapter(static_cast<sci_query_adapter_t*>(data), error);
        return;
    case SCI_Q_SYSTEM: {
        auto* q = static_cast<sci_query_system_t*>(data);
        if (!flags_ok(flags, 0)) {
            set(error, SCI_ERR_ILLEGAL_FLAG);
            return;
        }
        if (q->data == nullptr) {
            set(error, SCI_ERR_ILLEGAL_PARAMETER);
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
        return;
    }
    case SCI_Q_DMA: {
        auto* q = static_cast<sci_query_dma_t*>(data);
        if (!flags_ok(flags, SCI_FLAG_DMA_ADAPTER | SCI_FLAG_DMA_SYSDMA | SCI_FLAG_DMA_GLOBAL)) {
            set(error, SCI_ERR_ILLEGAL_FLAG);
            return;
        }
        if (q->data == nullptr) {
            set(error, SCI_ERR_ILLEGAL_PARAMETER);
            return;
        }
        if (q->localAdapterNo != 0) {
            set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
            return;
        }
        if (q->subcommand == SCI_Q_DMA_AVAILABLE) {
            *static_cast<unsigned int*>(q->data) = 1;
        } else if (q->subcommand == SCI_Q_DMA_CAPABILITIES) {
            auto* caps = static_cast<sci_dma_capabilities_t*>(q->data);
            caps->max_transfer_size = 0xFFFFFFFFu;
            caps->max_vector_length = 4096;
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
        return;
    }
    default:
        set(error, SCI_ERR_ILLEGAL_QUERY);
    }
}

// ================================== local segments ==================================

SCI_API void SCICreateSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                              size_t size, sci_cb_local_segment_t callback, void* callbackArg,
                              unsigned int flags, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (!valid(sd, Magic::desc) || segment == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    const unsigned allowed = SCI_FLAG_AUTO_ID | SCI_FLAG_EMPTY | SCI_FLAG_BROADCAST |
                             SCI_FLAG_PRIVATE | SCI_FLAG_USE_CALLBACK | SCI_FLAG_DMA_SOURCE_ONLY |
                             SCI_FLAG_DIS_SHARED_ACCESS;
    if (!flags_ok(flags, allowed)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    bool empty = (flags & SCI_FLAG_EMPTY) != 0;
    if (!empty && size == 0) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    sci_error_t err;
    auto home = rt->home(err);
    if (!home) {
        set(error, err);
        return;
    }
    json req{{"op", "seg_create"},
             {"size", static_cast<std::uint64_t>(size)},
             {"auto_id", (flags & SCI_FLAG_AUTO_ID) != 0},
             {"empty", empty},
             {"broadcast", (flags & SCI_FLAG_BROADCAST) != 0},
             {"shared_access", (flags & SCI_FLAG_DIS_SHARED_ACCESS) != 0}};
    if ((flags & SCI_FLAG_AUTO_ID) == 0) {
        req["segment_id"] = segmentId;
    }
    Reply r = home->call(req);
    if (r.err != SCI_ERR_OK) {
        set(error, r.err);
        return;
    }
    auto* s = new sci_local_segment();
    s->sd = sd;
    s->conn = home;
    s->id = r.body.value("segment_id", 0u);
    s->size = empty ? 0 : size;
    s->empty = empty;
    s->memfd = take_fd(r, 0);
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        s->callback = callback;
        s->callback_arg = callbackArg;
    }
    ++sd->objects;
    rt->add(s);
    *segment = s;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIRegisterSegmentMemory(void* address, size_t size, sci_local_segment_t segment,
                                      unsigned int flags, sci_error_t* error) {
    if (!valid(segment, Magic::local_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (!segment->empty || segment->memfd.valid()) {
        set(error, SCI_ERR_ILLEGAL_OPERATION);
        return;
    }
    if (address == nullptr || reinterpret_cast<std::uintptr_t>(address) % page_size() != 0) {
        set(error, SCI_ERR_ILLEGAL_ADDRESS);
        return;
    }
    if (size == 0 || size % page_size() != 0) {
        set(error, SCI_ERR_SIZE_ALIGNMENT);
        return;
    }
    // The caller's memory becomes shared: copy it into a memfd and map that over the same
    // addresses, so the caller's pointer and every peer's mapping see one memory.
    // Sealed against shrinking and growing before anyone else sees it: the daemon maps it, and
    // a truncated memfd would fault (SIGBUS) in whoever touches the lost pages.
    wire::Fd fd(::memfd_create("dis-seg-registered", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid() || ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        set(error, SCI_ERR_NOSPC);
        return;
    }
    {
        wire::Mapping tmp = wire::map_shared(fd.get(), size);
        if (tmp.get() == nullptr) {
            set(error, SCI_ERR_NOSPC);
            return;
        }
        std::memcpy(tmp.get(), address, size);
    }
    Reply r = segment->conn->call({{"op", "seg_register"},
                                   {"segment_id", segment->id},
                                   {"size", static_cast<std::uint64_t>(size)}},
                                  {fd.get()});
    if (r.err != SCI_ERR_OK) {
        set(error, r.err);
        return;
    }
    void* p = ::mmap(address, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd.get(), 0);
    if (p == MAP_FAILED) {
        set(error, SCI_ERR_SYSTEM);
        return;
    }
    segment->memfd = std::move(fd);
    segment->size = size;
    segment->empty = false;
    set(error, SCI_ERR_OK);
}

namespace {

void segment_op(sci_local_segment_t segment, unsigned int adapter, unsigned int flags,
                unsigned int allowed, json req, sci_error_t* error) {
    if (!valid(segment, Magic::local_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, allowed)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (adapter != 0) {
        set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
        return;
    }
    req["segment_id"] = segment->id;
    set(error, segment->conn->call(req).err);
}

} // namespace

SCI_API void SCIPrepareSegment(sci_local_segment_t segment, unsigned int localAdapterNo,
                               unsigned int flags, sci_error_t* error) {
    segment_op(segment, localAdapterNo, flags, SCI_FLAG_DMA_SOURCE_ONLY, {{"op", "seg_prepare"}},
               error);
}

SCI_API void SCISetSegmentAvailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                                    unsigned int flags, sci_error_t* error) {
    segment_op(segment, localAdapterNo, flags, 0, {{"op", "seg_available"}}, error);
}

SCI_API void SCISetSegmentUnavailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                                      unsigned int flags, sci_error_t* error) {
    segment_op(segment, localAdapterNo, flags, SCI_FLAG_NOTIFY | SCI_FLAG_FORCE_DISCONNECT,
               {{"op", "seg_unavailable"},
                {"notify", (flags & SCI_FLAG_NOTIFY) != 0},
                {"force", (flags & SCI_FLAG_FORCE_DISCONNECT) != 0}},
               error);
}

SCI_API void SCIShareSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error) {
    segment_op(segment, 0, flags, 0, {{"op", "seg_share"}}, error);
}

SCI_API void SCIRemoveSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error) {
    if (!valid(segment, Magic::local_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, SCI_FLAG_FORCE_REMOVE)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (segment->maps.load() > 0) {
        set(error, SCI_ERR_BUSY);
        return;
    }
    Reply r = segment->attached
                  ? segment->conn->call(
                        {{"op", "seg_attach"}, {"segment_id", segment->id}, {"detach", true}})
                  : segment->conn->call({{"op", "seg_remove"}, {"segment_id", segment->id}});
    // A lost node has already released everything; the handle can go.
    if (r.err != SCI_ERR_OK && r.err != SCI_ERR_NODE_NOT_RESPONDING) {
        set(error, r.err);
        return;
    }
    if (segment->dma_region != 0) {
        segment->conn->call({{"op", "dma_region_release"}, {"region_id", segment->dma_region}});
    }
    if (Runtime* rt = Runtime::get()) {
        rt->remove(segment);
    }
    --segment->sd->objects;
    segment->magic = Magic::dead;
    delete segment;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIAttachLocalSegment(sci_desc_t sd, sci_local_segment_t* segment,
                                   unsigned int segmentId, size_t* size,
                                   sci_cb_local_segment_t callback, void* callbackArg,
                                   unsigned int flags, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (!valid(sd, Magic::desc) || segment == nullptr || size == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, SCI_FLAG_USE_CALLBACK)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    sci_error_t err;
    auto home = rt->home(err);
    if (!home) {
        set(error, err);
        return;
    }
    Reply r = home->call({{"op", "seg_attach"}, {"segment_id", segmentId}});
    if (r.err != SCI_ERR_OK) {
        set(error, r.err);
        return;
    }
    auto* s = new sci_local_segment();
    s->sd = sd;
    s->conn = home;
    s->id = segmentId;
    s->size = r.body.value("size", std::uint64_t{0});
    s->memfd = take_fd(r, 0);
    s->attached = true;
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        s->callback = callback;
        s->callback_arg = callbackArg;
    }
    ++sd->objects;
    rt->add(s);
    *segment = s;
    *size = s->size;
    set(error, SCI_ERR_OK);
}

SCI_API sci_segment_cb_reason_t SCIWaitForLocalSegmentEvent(
    sci_local_segment_t segment, unsigned int* sourcenodeId, unsigned int* localAdapterNo,
    unsigned int timeout, unsigned int flags, sci_error_t* error) {
    if (!valid(segment, Magic::local_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return SCI_CB_NOT_OPERATIONAL;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return SCI_CB_NOT_OPERATIONAL;
    }
    SegmentEvent ev{};
    if (!segment->events.pop(ev, timeout)) {
        set(error, SCI_ERR_TIMEOUT);
        return SCI_CB_NOT_OPERATIONAL;
    }
    if (sourcenodeId != nullptr) {
        *sourcenodeId = ev.node;
    }
    if (localAdapterNo != nullptr) {
        *localAdapterNo = 0;
    }
    set(error, SCI_ERR_OK);
    return ev.reason;
}

SCI_API unsigned int SCIGetLocalSegmentId(sci_local_segment_t segment) {
    return valid(segment, Magic::local_segment) ? segment->id : 0;
}

SCI_API size_t SCIGetLocalSegmentSize(sci_local_segment_t segment) {
    return valid(segment, Magic::local_segment) ? segment->size : 0;
}

// ================================== remote segments ==================================

SCI_API void SCIConnectSegment(sci_desc_t sd, sci_remote_segment_t* segment, unsigned int nodeId,
                               unsigned int segmentId, unsigned int localAdapterNo,
                               sci_cb_remote_segment_t callback, void* callbackArg,
                               unsigned int timeout, unsigned int flags, sci_error_t* error) {
    Runtime* rt = runtime(error);
    if (rt == nullptr) {
        return;
    }
    if (!valid(sd, Magic::desc) || segment == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, SCI_FLAG_USE_CALLBACK | SCI_FLAG_BROADCAST | SCI_FLAG_SHARED)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (localAdapterNo != 0) {
        set(error, SCI_ERR_NO_SUCH_ADAPTERNO);
        return;
    }
    bool broadcast = nodeId == DIS_BROADCAST_NODEID_GROUP_ALL;
    if (!broadcast && !valid_node_id(nodeId)) {
        set(error, SCI_ERR_ILLEGAL_NODEID);
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    sci_error_t err = SCI_ERR_NO_SUCH_SEGMENT;
    std::shared_ptr<Conn> conn;
    Reply r;
    unsigned int owner = nodeId;
    for (;;) {
        if (broadcast) {
            // Reflective memory: find the member node that holds the broadcast segment.
            err = SCI_ERR_NO_SUCH_SEGMENT;
            for (auto id : wire::list_node_sockets(rt->fabric_dir())) {
                sci_error_t cerr;
                auto c = rt->conn(id, cerr);
                if (!c) {
                    continue;
                }
                r = c->call(
                    {{"op", "seg_connect"}, {"segment_id", segmentId}, {"broadcast", true}});
                if (r.err == SCI_ERR_OK || r.err == SCI_ERR_ACCESS ||
                    r.err == SCI_ERR_CONNECTION_REFUSED) {
                    err = r.err;
                    conn = c;
                    owner = id;
                    if (r.err == SCI_ERR_OK) {
                        break;
                    }
                }
            }
        } else {
            conn = rt->conn(nodeId, err);
            if (conn) {
                r = conn->call({{"op", "seg_connect"}, {"segment_id", segmentId}});
                err = r.err;
            }
        }
        bool retriable = err == SCI_ERR_NO_SUCH_SEGMENT || err == SCI_ERR_CONNECTION_REFUSED;
        if (err == SCI_ERR_OK || !retriable || timeout == 0 ||
            (timeout != SCI_INFINITE_TIMEOUT && std::chrono::steady_clock::now() >= deadline)) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (err != SCI_ERR_OK) {
        set(error, err);
        return;
    }
    auto* s = new sci_remote_segment();
    s->sd = sd;
    s->conn = conn;
    s->node = owner;
    s->id = segmentId;
    s->broadcast = broadcast;
    s->size = r.body.value("size", std::uint64_t{0});
    s->memfd = take_fd(r, 0);
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        s->callback = callback;
        s->callback_arg = callbackArg;
    }
    ++sd->objects;
    rt->add(s);
    *segment = s;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIDisconnectSegment(sci_remote_segment_t segment, unsigned int flags,
                                  sci_error_t* error) {
    if (!valid(segment, Magic::remote_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (segment->maps.load() > 0) {
        set(error, SCI_ERR_BUSY);
        return;
    }
    if (!segment->conn->lost()) {
        segment->conn->call({{"op", "seg_disconnect"}, {"segment_id", segment->id}});
    }
    Runtime* rt = Runtime::get();
    if (segment->dma_region != 0 && rt != nullptr) {
        sci_error_t err;
        if (auto home = rt->home(err)) {
            home->call({{"op", "dma_region_release"}, {"region_id", segment->dma_region}});
        }
    }
    if (rt != nullptr) {
        rt->remove(segment);
    }
    --segment->sd->objects;
    segment->magic = Magic::dead;
    delete segment;
    set(error, SCI_ERR_OK);
}

SCI_API size_t SCIGetRemoteSegmentSize(sci_remote_segment_t segment) {
    return valid(segment, Magic::remote_segment) ? segment->size : 0;
}

SCI_API unsigned int SCIGetRemoteSegmentId(sci_remote_segment_t segment) {
    return valid(segment, Magic::remote_segment) ? segment->id : 0;
}

SCI_API unsigned int SCIGetRemoteSegmentNodeId(sci_remote_segment_t segment) {
    return valid(segment, Magic::remote_segment) ? segment->node : 0;
}

SCI_API sci_segment_cb_reason_t SCIWaitForRemoteSegmentEvent(sci_remote_segment_t segment,
                                                             sci_error_t* status,
                                                             unsigned int timeout,
                                                             unsigned int flags,
                                                             sci_error_t* error) {
    if (!valid(segment, Magic::remote_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return SCI_CB_NOT_OPERATIONAL;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return SCI_CB_NOT_OPERATIONAL;
    }
    SegmentEvent ev{};
    if (!segment->events.pop(ev, timeout)) {
        set(error, SCI_ERR_TIMEOUT);
        return SCI_CB_NOT_OPERATIONAL;
    }
    if (status != nullptr) {
        *status = ev.status;
    }
    set(error, SCI_ERR_OK);
    return ev.reason;
}

// ==================================== mapping, PIO ====================================

namespace {

volatile void* map_segment(int fd, size_t seg_size, std::shared_ptr<Conn> conn, unsigned int id,
                           sci_local_segment_t local, sci_remote_segment_t remote, sci_map_t* map,
                           size_t offset, size_t size, void* addr, unsigned int flags,
                           sci_error_t* error) {
    if (map == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return nullptr;
    }
    if (!flags_ok(flags, SCI_FLAG_READONLY_MAP | SCI_FLAG_FIXED_MAP_ADDR)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return nullptr;
    }
    if (fd < 0) {
        set(error, SCI_ERR_SEGMENT_NOT_PREPARED);
        return nullptr;
    }
    if (size == 0) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return nullptr;
    }
    if (offset > seg_size || size > seg_size - offset) {
        set(error, SCI_ERR_OUT_OF_RANGE);
        return nullptr;
    }
    size_t aligned = offset - offset % page_size();
    size_t delta = offset - aligned;
    int prot = PROT_READ | ((flags & SCI_FLAG_READONLY_MAP) != 0 ? 0 : PROT_WRITE);
    int mflags = MAP_SHARED;
    void* hint = nullptr;
    if ((flags & SCI_FLAG_FIXED_MAP_ADDR) != 0) {
        if (addr == nullptr || reinterpret_cast<std::uintptr_t>(addr) % page_size() != delta) {
            set(error, SCI_ERR_ILLEGAL_ADDRESS);
            return nullptr;
        }
        hint = static_cast<char*>(addr) - delta;
        mflags |= MAP_FIXED;
    }
    void* p = ::mmap(hint, delta + size, prot, mflags, fd, static_cast<off_t>(aligned));
    if (p == MAP_FAILED) {
        set(error, SCI_ERR_NOSPC);
        return nullptr;
    }
    auto* m = new sci_map();
    m->base = p;
    m->base_len = delta + size;
    m->addr = static_cast<char*>(p) + delta;
    m->size = size;
    m->local = local;
    m->remote = remote;
    if (local != nullptr) {
        ++local->maps;
    } else {
        ++remote->maps;
    }
    // Tell the owner (admin view; removal is refused while mapped).
    conn->call({{"op", "seg_map"}, {"segment_id", id}});
    *map = m;
    set(error, SCI_ERR_OK);
    return m->addr;
}

} // namespace

SCI_API volatile void* SCIMapLocalSegment(sci_local_segment_t segment, sci_map_t* map,
                                          size_t offset, size_t size, void* addr,
                                          unsigned int flags, sci_error_t* error) {
    if (!valid(segment, Magic::local_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return nullptr;
    }
    return map_segment(segment->memfd.get(), segment->size, segment->conn, segment->id, segment,
                       nullptr, map, offset, size, addr, flags, error);
}

SCI_API volatile void* SCIMapRemoteSegment(sci_remote_segment_t segment, sci_map_t* map,
                                           size_t offset, size_t size, void* addr,
                                           unsigned int flags, sci_error_t* error) {
    if (!valid(segment, Magic::remote_segment)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return nullptr;
    }
    if (segment->lost.load() || segment->disconnected.load()) {
        set(error, segment->lost.load() ? SCI_ERR_NODE_NOT_RESPONDING : SCI_ERR_NOT_CONNECTED);
        return nullptr;
    }
    return map_segment(segment->memfd.get(), segment->size, segment->conn, segment->id, nullptr,
                       segment, map, offset, size, addr, flags, error);
}

SCI_API void SCIUnmapSegment(sci_map_t map, unsigned int flags, sci_error_t* error) {
    if (!valid(map, Magic::map)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    ::munmap(map->base, map->base_len);
    std::shared_ptr<Conn> conn;
    unsigned int id;
    if (map->local != nullptr) {
        --map->local->maps;
        conn = map->local->conn;
        id = map->local->id;
    } else {
        --map->remote->maps;
        conn = map->remote->conn;
        id = map->remote->id;
    }
    if (!conn->lost()) {
        conn->call({{"op", "seg_map"}, {"segment_id", id}, {"unmap", true}});
    }
    map->magic = Magic::dead;
    delete map;
    set(error, SCI_ERR_OK);
}

namespace {

// The status of PIO through a map: remote mappings fail once their node is lost.
sci_sequence_status_t sequence_status(sci_sequence_t seq, sci_error_t* error) {
    if (!valid(seq, Magic::sequence) || !valid(seq->map, Magic::map)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return SCI_SEQ_NOT_RETRIABLE;
    }
    sci_remote_segment_t r = seq->map->remote;
    if (r != nullptr && r->lost.load()) {
        set(error, SCI_ERR_NODE_NOT_RESPONDING);
        return SCI_SEQ_NOT_RETRIABLE;
    }
    if (r != nullptr && r->disconnected.load()) {
        set(error, SCI_ERR_NOT_CONNECTED);
        return SCI_SEQ_NOT_RETRIABLE;
    }
    set(error, SCI_ERR_OK);
    return SCI_SEQ_OK;
}

} // namespace

SCI_API void SCICreateMapSequence(sci_map_t map, sci_sequence_t* sequence, unsigned int flags,
                                  sci_error_t* error) {
    if (!valid(map, Magic::map) || sequence == nullptr) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    auto* s = new sci_sequence();
    s->map = map;
    *sequence = s;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIRemoveSequence(sci_sequence_t sequence, unsigned int flags, sci_error_t* error) {
    if (!valid(sequence, Magic::sequence)) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    sequence->magic = Magic::dead;
    delete sequence;
    set(error, SCI_ERR_OK);
}

SCI_API sci_sequence_status_t SCIStartSequence(sci_sequence_t sequence, unsigned int flags,
                                               sci_error_t* error) {
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return SCI_SEQ_NOT_RETRIABLE;
    }
    return sequence_status(sequence, error);
}

SCI_API sci_sequence_status_t SCICheckSequence(sci_sequence_t sequence, unsigned int flags,
                                               sci_error_t* error) {
    if (!flags_ok(flags, 0)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return SCI_SEQ_NOT_RETRIABLE;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return sequence_status(sequence, error);
}

SCI_API void SCIMemCpy(sci_sequence_t sequence, void* memAddr, sci_map_t remoteMap,
                       size_t remoteOffset, size_t size, unsigned int flags, sci_error_t* error) {
    if (!valid(remoteMap, Magic::map) || memAddr == nullptr ||
        (sequence != nullptr && !valid(sequence, Magic::sequence))) {
        set(error, SCI_ERR_ILLEGAL_PARAMETER);
        return;
    }
    const unsigned allowed =
        SCI_FLAG_BLOCK_READ | SCI_FLAG_ERROR_CHECK | SCI_FLAG_NO_FLUSH | SCI_FLAG_NO_STORE_BARRIER;
    if (!flags_ok(flags, allowed)) {
        set(error, SCI_ERR_ILLEGAL_FLAG);
        return;
    }
    if (remoteOffset > remoteMap->size || size > remoteMap->size - remoteOffset) {
        set(error, SCI_ERR_OUT_OF_RANGE);
        return;
    }
    sci_remote_segment_t r = remoteMap->remote;
    if (r != nullptr && (r->lost.load() || r->disconnected.load())) {
        set(error, SCI_ERR_TRANSFER_FAILED);
        return;
    }
    auto* remote = const_cast<char*>(static_cast<volatile char*>(remoteMap->addr)) + remoteOffset;
    if ((flags & SCI_FLAG_BLOCK_READ) != 0) {
        std::memcpy(memAddr, remote, size);
    } else {
        std::memcpy(remote, memAddr, size);
    }
    if ((flags & SCI_FLAG_NO_STORE_BARRIER) == 0) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (r != nullptr && (flags & SCI_FLAG_ERROR_CHECK) != 0 && r->lost.load()) {
        set(error, SCI_ERR_TRANSFER_FAILED);
        return;
    }
    set(error, SCI_ERR_OK);
}

SCI_API void SCIFlush(sci_sequence_t sequence, unsigned int flags) {
    (void)sequence;
    (void)flags;
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

SCI_API void SCIStoreBarrier(sci_sequence_t sequence, unsigned int flags) {
    (void)sequence;
    (void)flags;
    std::atomic_thread_fence(std::memory_order_seq_cst);
}
