// Maps and PIO: a map is an mmap of a segment's memfd; sequences report whether PIO through a
// map of a remote segment still reaches it.
#include "api_util.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstring>

// ==================================== mapping, PIO ====================================

namespace {

volatile void* map_segment(int fd, std::uint64_t fd_offset, size_t seg_size,
                           std::shared_ptr<Conn> conn, unsigned int id, sci_local_segment_t local,
                           sci_remote_segment_t remote, sci_map_t* map, size_t offset, size_t size,
                           void* addr, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.param(map != nullptr)
             // SCI_FLAG_IO_MAP_IOSPACE (remote maps): the vendor maps device memory uncached;
             // segment memory here is host memory kept coherent by the CPU, so the flag changes
             // nothing but is accepted.
             .flags(flags, SCI_FLAG_READONLY_MAP | SCI_FLAG_FIXED_MAP_ADDR |
                               (remote != nullptr ? SCI_FLAG_IO_MAP_IOSPACE : 0u))
             .that(fd >= 0, SCI_ERR_SEGMENT_NOT_PREPARED)
             .param(size != 0)
             .that(offset <= seg_size && size <= seg_size - offset, SCI_ERR_OUT_OF_RANGE)) {
        return nullptr;
    }
    size_t aligned = offset - offset % page_size();
    size_t delta = offset - aligned;
    int prot = PROT_READ | ((flags & SCI_FLAG_READONLY_MAP) != 0 ? 0 : PROT_WRITE);
    int mflags = MAP_SHARED;
    void* hint = nullptr;
    if ((flags & SCI_FLAG_FIXED_MAP_ADDR) != 0) {
        if (!c.that(addr != nullptr &&
                        reinterpret_cast<std::uintptr_t>(addr) % page_size() == delta,
                    SCI_ERR_ILLEGAL_ADDRESS)) {
            return nullptr;
        }
        hint = static_cast<char*>(addr) - delta;
        mflags |= MAP_FIXED;
    }
    void* p = ::mmap(hint, delta + size, prot, mflags, fd, static_cast<off_t>(fd_offset + aligned));
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
    // Tell the owner (admin view; removal is refused while mapped). Device segments have no
    // owner segment to tell.
    if (remote == nullptr || remote->dev == nullptr) {
        conn->call({{"op", "seg_map"}, {"segment_id", id}});
    }
    *map = m;
    set(error, SCI_ERR_OK);
    return m->addr;
}

} // namespace

SCI_API volatile void* SCIMapLocalSegment(sci_local_segment_t segment, sci_map_t* map,
                                          size_t offset, size_t size, void* addr,
                                          unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(segment, Magic::local_segment)) {
        return nullptr;
    }
    return map_segment(segment->memfd.get(), segment->map_offset, segment->size, segment->conn,
                       segment->id, segment, nullptr, map, offset, size, addr, flags, error);
}

SCI_API volatile void* SCIMapRemoteSegment(sci_remote_segment_t segment, sci_map_t* map,
                                           size_t offset, size_t size, void* addr,
                                           unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(segment, Magic::remote_segment) ||
        !c.that(!segment->lost.load(), SCI_ERR_NODE_NOT_RESPONDING)
             .that(!segment->disconnected.load(), SCI_ERR_NOT_CONNECTED)) {
        return nullptr;
    }
    return map_segment(segment->memfd.get(), segment->map_offset, segment->size, segment->conn,
                       segment->id, nullptr, segment, map, offset, size, addr, flags, error);
}

SCI_API void SCIUnmapSegment(sci_map_t map, unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(map, Magic::map).flags(flags, 0)) {
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
    if (!conn->lost() && (map->remote == nullptr || map->remote->dev == nullptr)) {
        conn->call({{"op", "seg_map"}, {"segment_id", id}, {"unmap", true}});
    }
    destroy(map);
    set(error, SCI_ERR_OK);
}

namespace {

// The status of PIO through a map: remote mappings fail once their node is lost.
sci_sequence_status_t sequence_status(sci_sequence_t seq, sci_error_t* error) {
    Check c(error);
    if (!c.handle(seq, Magic::sequence) || !c.handle(seq->map, Magic::map)) {
        return SCI_SEQ_NOT_RETRIABLE;
    }
    sci_remote_segment_t r = seq->map->remote;
    if (!c.that(r == nullptr || !r->lost.load(), SCI_ERR_NODE_NOT_RESPONDING)
             .that(r == nullptr || !r->disconnected.load(), SCI_ERR_NOT_CONNECTED)) {
        return SCI_SEQ_NOT_RETRIABLE;
    }
    set(error, SCI_ERR_OK);
    return SCI_SEQ_OK;
}

} // namespace

SCI_API void SCICreateMapSequence(sci_map_t map, sci_sequence_t* sequence, unsigned int flags,
                                  sci_error_t* error) {
    if (!Check(error).handle(map, Magic::map).param(sequence != nullptr).flags(flags, 0)) {
        return;
    }
    auto* s = new sci_sequence();
    s->map = map;
    *sequence = s;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIRemoveSequence(sci_sequence_t sequence, unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(sequence, Magic::sequence).flags(flags, 0)) {
        return;
    }
    destroy(sequence);
    set(error, SCI_ERR_OK);
}

SCI_API sci_sequence_status_t SCIStartSequence(sci_sequence_t sequence, unsigned int flags,
                                               sci_error_t* error) {
    if (!Check(error).flags(flags, 0)) {
        return SCI_SEQ_NOT_RETRIABLE;
    }
    return sequence_status(sequence, error);
}

SCI_API sci_sequence_status_t SCICheckSequence(sci_sequence_t sequence, unsigned int flags,
                                               sci_error_t* error) {
    if (!Check(error).flags(flags, 0)) {
        return SCI_SEQ_NOT_RETRIABLE;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return sequence_status(sequence, error);
}

SCI_API void SCIMemCpy(sci_sequence_t sequence, void* memAddr, sci_map_t remoteMap,
                       size_t remoteOffset, size_t size, unsigned int flags, sci_error_t* error) {
    const unsigned allowed =
        SCI_FLAG_BLOCK_READ | SCI_FLAG_ERROR_CHECK | SCI_FLAG_NO_FLUSH | SCI_FLAG_NO_STORE_BARRIER;
    Check c(error);
    if (!c.handle(remoteMap, Magic::map)
             .param(memAddr != nullptr && (sequence == nullptr || valid(sequence, Magic::sequence)))
             .flags(flags, allowed) ||
        !c.that(remoteOffset <= remoteMap->size && size <= remoteMap->size - remoteOffset,
                SCI_ERR_OUT_OF_RANGE)) {
        return;
    }
    sci_remote_segment_t r = remoteMap->remote;
    if (!c.that(r == nullptr || !(r->lost.load() || r->disconnected.load()),
                SCI_ERR_TRANSFER_FAILED)) {
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

SCI_API void SCICacheSync(sci_map_t map, void* addr, size_t length, unsigned int flags,
                          sci_error_t* error) {
    Check c(error);
    if (!c.param(map == nullptr || valid(map, Magic::map))
             .param(addr != nullptr || length == 0)
             .flags(flags, SCI_FLAG_CACHE_FLUSH | SCI_FLAG_CACHE_INVALIDATE)) {
        return;
    }
    if (map != nullptr) {
        auto* base = const_cast<char*>(static_cast<volatile char*>(map->addr));
        auto* p = static_cast<char*>(addr);
        if (!c.that(p >= base && static_cast<size_t>(p - base) <= map->size &&
                        length <= map->size - static_cast<size_t>(p - base),
                    SCI_ERR_OUT_OF_RANGE)) {
            return;
        }
    }
    // One coherent host: caches need no write-back or invalidation, only ordering. A full fence
    // orders this CPU's earlier stores before later accesses (flush) and its later loads after
    // earlier ones (invalidate).
    if ((flags & (SCI_FLAG_CACHE_FLUSH | SCI_FLAG_CACHE_INVALIDATE)) != 0) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    set(error, SCI_ERR_OK);
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCIMapLocalSegment)
SCI_VENDOR_NAMES(SCIMapRemoteSegment)
SCI_VENDOR_NAMES(SCIUnmapSegment)
SCI_VENDOR_NAMES(SCICreateMapSequence)
SCI_VENDOR_NAMES(SCIRemoveSequence)
SCI_VENDOR_NAMES(SCIStartSequence)
SCI_VENDOR_NAMES(SCICheckSequence)
SCI_VENDOR_NAMES(SCIMemCpy)
SCI_VENDOR_NAMES(SCIFlush)
SCI_VENDOR_NAMES(SCIStoreBarrier)
SCI_VENDOR_NAMES(SCICacheSync)
