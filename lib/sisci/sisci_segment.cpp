// Segments: local ones (created, registered, attached, offered to peers) and remote ones
// (connected from another node or from this one). The memory is a memfd the daemon owns.
#include "api_util.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace {

// The callback a segment was created with takes effect only with SCI_FLAG_USE_CALLBACK.
template <class Segment, class Callback>
void take_callback(Segment* s, unsigned int flags, Callback callback, void* arg) {
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        s->callback = callback;
        s->callback_arg = arg;
    }
}

// The next queued event of a segment (one without a callback); false with *error set on bad
// arguments or when none came within timeout_ms.
template <class Handle>
bool next_event(Handle* s, unsigned int timeout_ms, unsigned int flags, SegmentEvent& ev,
                sci_error_t* error) {
    Check c(error);
    return c.handle(s, Handle::k_magic).flags(flags, 0) &&
           c.that(s->events.pop(ev, timeout_ms), SCI_ERR_TIMEOUT);
}

// A new local segment handle on `conn` from a daemon's reply (memfd first).
sci_local_segment_t new_local(sci_desc_t sd, const std::shared_ptr<Conn>& conn, unsigned int id,
                              size_t size, Reply& r) {
    auto* s = new sci_local_segment();
    s->sd = sd;
    s->conn = conn;
    s->id = id;
    s->size = size;
    s->memfd = take_fd(r, 0);
    return s;
}

} // namespace

// ================================== local segments ==================================

SCI_API void SCICreateSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                              size_t size, sci_cb_local_segment_t callback, void* callbackArg,
                              unsigned int flags, sci_error_t* error) {
    const unsigned allowed = SCI_FLAG_AUTO_ID | SCI_FLAG_EMPTY | SCI_FLAG_BROADCAST |
                             SCI_FLAG_PRIVATE | SCI_FLAG_USE_CALLBACK | SCI_FLAG_DMA_SOURCE_ONLY |
                             SCI_FLAG_DIS_SHARED_ACCESS;
    const bool empty = (flags & SCI_FLAG_EMPTY) != 0;
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(segment != nullptr)
             .flags(flags, allowed)
             .param(empty || size != 0)
             .home()) {
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
    Reply r = c.home_conn()->call(req);
    if (!c.status(r.err)) {
        return;
    }
    sci_local_segment_t s =
        new_local(sd, c.home_conn(), r.body.value("segment_id", 0u), empty ? 0 : size, r);
    s->empty = empty;
    take_callback(s, flags, callback, callbackArg);
    c.rt()->add(s);
    hand_out(s, segment, error);
}

namespace {

// Host memory becomes the memory of an empty segment (SCIRegisterSegmentMemory,
// SCIAttachPhysicalMemory): copied into a memfd mapped over the same addresses, so the
// caller's pointer and every peer's mapping see one memory.
void register_memory(void* address, size_t size, sci_local_segment_t segment, sci_error_t* error) {
    Check c(error);
    if (!c.that(segment->empty && !segment->memfd.valid(), SCI_ERR_ILLEGAL_OPERATION)
             .that(address != nullptr &&
                       reinterpret_cast<std::uintptr_t>(address) % page_size() == 0,
                   SCI_ERR_ILLEGAL_ADDRESS)
             .that(size != 0 && size % page_size() == 0, SCI_ERR_SIZE_ALIGNMENT)) {
        return;
    }
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
    if (!c.status(r.err)) {
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

} // namespace

// SCI_FLAG_LOCK_USER_MEM (pin the pages) is accepted: the registered memory is shared memory
// the daemon maps, resident while in use; there is no device that needs it pinned.
SCI_API void SCIRegisterSegmentMemory(void* address, size_t size, sci_local_segment_t segment,
                                      unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(segment, Magic::local_segment).flags(flags, SCI_FLAG_LOCK_USER_MEM)) {
        return;
    }
    register_memory(address, size, segment, error);
}

SCI_API void SCIAttachPhysicalMemory(sci_ioaddr_t ioaddress, void* address, unsigned int busNo,
                                     size_t size, sci_local_segment_t segment, unsigned int flags,
                                     sci_error_t* error) {
    (void)busNo;
    // No CUDA and no device (physical) memory in the software fabric: refused, not faked.
    Check c(error);
    if (!c.handle(segment, Magic::local_segment)
             .flags(flags, SCI_FLAG_CUDA_BUFFER | SCI_FLAG_PHYSICAL | SCI_FLAG_LOCK_USER_MEM)
             .that((flags & (SCI_FLAG_CUDA_BUFFER | SCI_FLAG_PHYSICAL)) == 0,
                   SCI_ERR_FLAG_NOT_IMPLEMENTED)
             .that(ioaddress == 0, SCI_ERR_NOT_SUPPORTED)) {
        return;
    }
    register_memory(address, size, segment, error);
}

namespace {

// The daemon requests on a local segment that take nothing back.
void segment_op(sci_local_segment_t segment, unsigned int adapter, unsigned int flags,
                unsigned int allowed, json req, sci_error_t* error) {
    if (!Check(error)
             .handle(segment, Magic::local_segment)
             .flags(flags, allowed)
             .adapter(adapter)) {
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
    Check c(error);
    if (!c.handle(segment, Magic::local_segment).flags(flags, SCI_FLAG_FORCE_REMOVE) ||
        !c.that(segment->maps.load() <= 0, SCI_ERR_BUSY)) {
        return;
    }
    Reply r = segment->attached
                  ? segment->conn->call(
                        {{"op", "seg_attach"}, {"segment_id", segment->id}, {"detach", true}})
                  : segment->conn->call({{"op", "seg_remove"}, {"segment_id", segment->id}});
    // A lost node has already released everything; the handle can go.
    if (!c.that(r.err == SCI_ERR_OK || r.err == SCI_ERR_NODE_NOT_RESPONDING, r.err)) {
        return;
    }
    if (segment->dma_region != 0) {
        segment->conn->call({{"op", "dma_region_release"}, {"region_id", segment->dma_region}});
    }
    if (Runtime* rt = Runtime::get()) {
        rt->remove(segment);
    }
    destroy(segment);
    set(error, SCI_ERR_OK);
}

SCI_API void SCIAttachLocalSegment(sci_desc_t sd, sci_local_segment_t* segment,
                                   unsigned int segmentId, size_t* size,
                                   sci_cb_local_segment_t callback, void* callbackArg,
                                   unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(segment != nullptr && size != nullptr)
             .flags(flags, SCI_FLAG_USE_CALLBACK)
             .home()) {
        return;
    }
    Reply r = c.home_conn()->call({{"op", "seg_attach"}, {"segment_id", segmentId}});
    if (!c.status(r.err)) {
        return;
    }
    sci_local_segment_t s =
        new_local(sd, c.home_conn(), segmentId, r.body.value("size", std::uint64_t{0}), r);
    s->attached = true;
    take_callback(s, flags, callback, callbackArg);
    c.rt()->add(s);
    *size = s->size;
    hand_out(s, segment, error);
}

SCI_API sci_segment_cb_reason_t SCIWaitForLocalSegmentEvent(
    sci_local_segment_t segment, unsigned int* sourcenodeId, unsigned int* localAdapterNo,
    unsigned int timeout, unsigned int flags, sci_error_t* error) {
    SegmentEvent ev{};
    if (!next_event(segment, timeout, flags, ev, error)) {
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

namespace {

// One attempt at connecting segment `id` of `node`, or of whichever member node holds the
// broadcast segment `id` (reflective memory). Sets conn, owner and the reply on the way.
sci_error_t try_connect(Runtime* rt, unsigned int node, unsigned int id, bool broadcast,
                        std::shared_ptr<Conn>& conn, unsigned int& owner, Reply& r) {
    if (!broadcast) {
        sci_error_t err;
        conn = rt->conn(node, err);
        if (!conn) {
            return err;
        }
        r = conn->call({{"op", "seg_connect"}, {"segment_id", id}});
        return r.err;
    }
    sci_error_t err = SCI_ERR_NO_SUCH_SEGMENT;
    for (auto member : wire::list_node_sockets(rt->fabric_dir())) {
        sci_error_t cerr;
        auto c = rt->conn(member, cerr);
        if (!c) {
            continue;
        }
        r = c->call({{"op", "seg_connect"}, {"segment_id", id}, {"broadcast", true}});
        if (r.err == SCI_ERR_OK || r.err == SCI_ERR_ACCESS || r.err == SCI_ERR_CONNECTION_REFUSED) {
            err = r.err;
            conn = c;
            owner = member;
            if (r.err == SCI_ERR_OK) {
                break;
            }
        }
    }
    return err;
}

} // namespace

SCI_API void SCIConnectSegment(sci_desc_t sd, sci_remote_segment_t* segment, unsigned int nodeId,
                               unsigned int segmentId, unsigned int localAdapterNo,
                               sci_cb_remote_segment_t callback, void* callbackArg,
                               unsigned int timeout, unsigned int flags, sci_error_t* error) {
    const bool broadcast = nodeId == DIS_BROADCAST_NODEID_GROUP_ALL;
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(segment != nullptr)
             .flags(flags, SCI_FLAG_USE_CALLBACK | SCI_FLAG_BROADCAST | SCI_FLAG_SHARED)
             .adapter(localAdapterNo)
             .that(broadcast || valid_node_id(nodeId), SCI_ERR_ILLEGAL_NODEID)) {
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    std::shared_ptr<Conn> conn;
    Reply r;
    unsigned int owner = nodeId;
    sci_error_t err;
    for (;;) {
        err = try_connect(c.rt(), nodeId, segmentId, broadcast, conn, owner, r);
        bool retriable = err == SCI_ERR_NO_SUCH_SEGMENT || err == SCI_ERR_CONNECTION_REFUSED;
        if (err == SCI_ERR_OK || !retriable || timeout == 0 ||
            (timeout != SCI_INFINITE_TIMEOUT && std::chrono::steady_clock::now() >= deadline)) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!c.status(err)) {
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
    take_callback(s, flags, callback, callbackArg);
    c.rt()->add(s);
    hand_out(s, segment, error);
}

SCI_API void SCIDisconnectSegment(sci_remote_segment_t segment, unsigned int flags,
                                  sci_error_t* error) {
    Check c(error);
    if (!c.handle(segment, Magic::remote_segment).flags(flags, 0) ||
        !c.that(segment->maps.load() <= 0, SCI_ERR_BUSY)) {
        return;
    }
    if (segment->dev != nullptr) {
        // A device segment: the lender's handle goes (unless the device is lost already).
        auto& st = *segment->dev;
        bool gone;
        {
            std::lock_guard lock(st.mutex);
            --st.segments;
            gone = st.lost;
        }
        if (!gone && !segment->conn->lost()) {
            segment->conn->call({{"op", "dev_disconnect"},
                                 {"lease_id", st.lease_id},
                                 {"segment", segment->dev_segment}});
        }
    } else if (!segment->conn->lost()) {
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
    destroy(segment);
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
    SegmentEvent ev{};
    if (!next_event(segment, timeout, flags, ev, error)) {
        return SCI_CB_NOT_OPERATIONAL;
    }
    if (status != nullptr) {
        *status = ev.status;
    }
    set(error, SCI_ERR_OK);
    return ev.reason;
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCICreateSegment)
SCI_VENDOR_NAMES(SCIRegisterSegmentMemory)
SCI_VENDOR_NAMES(SCIAttachPhysicalMemory)
SCI_VENDOR_NAMES(SCIPrepareSegment)
SCI_VENDOR_NAMES(SCISetSegmentAvailable)
SCI_VENDOR_NAMES(SCISetSegmentUnavailable)
SCI_VENDOR_NAMES(SCIShareSegment)
SCI_VENDOR_NAMES(SCIRemoveSegment)
SCI_VENDOR_NAMES(SCIAttachLocalSegment)
SCI_VENDOR_NAMES(SCIWaitForLocalSegmentEvent)
SCI_VENDOR_NAMES(SCIGetLocalSegmentId)
SCI_VENDOR_NAMES(SCIGetLocalSegmentSize)
SCI_VENDOR_NAMES(SCIConnectSegment)
SCI_VENDOR_NAMES(SCIDisconnectSegment)
SCI_VENDOR_NAMES(SCIGetRemoteSegmentSize)
SCI_VENDOR_NAMES(SCIGetRemoteSegmentId)
SCI_VENDOR_NAMES(SCIGetRemoteSegmentNodeId)
SCI_VENDOR_NAMES(SCIWaitForRemoteSegmentEvent)
