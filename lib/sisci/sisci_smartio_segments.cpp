// SmartIO device segments (a BAR, or memory made for the device: disd's dev_connect) and
// segments mapped for a device's DMA (dev_map: the lender puts the segment's memfd into the
// device's IO address space and answers the address the device uses).
#include "sisci_smartio.hpp"

namespace smartio = dis::sisci::smartio;

namespace {

constexpr unsigned k_placement_flags = SCI_FLAG_DEVICE_SIDE_ONLY | SCI_FLAG_LOCAL_ONLY |
                                       SCI_FLAG_DEVICE_PREFER_BANDWIDTH |
                                       SCI_FLAG_HOST_PREFER_BANDWIDTH;
constexpr unsigned k_all_hints = SCI_MEMACCESS_MULTIHOST_READ | SCI_MEMACCESS_MULTIHOST_WRITE |
                                 SCI_MEMACCESS_P2P_READ | SCI_MEMACCESS_P2P_WRITE;

void connect_device_segment(sci_desc_t sd, sci_smartio_device_t device,
                            sci_remote_segment_t* segment, unsigned int segmentId,
                            unsigned int memtype, sci_cb_remote_segment_t callback,
                            void* callbackArg, unsigned int flags, sci_error_t* error) {
    Check c(error);
    std::string kind = smartio::memtype_name(memtype);
    if (!smartio::usable(c, device) ||
        !c.param(segment != nullptr && !kind.empty())
             .flags(flags, SCI_FLAG_USE_CALLBACK | SCI_FLAG_SPECIFY_PATH | SCI_FLAG_SPECIFY_SLOT)
             .that((flags & (SCI_FLAG_SPECIFY_PATH | SCI_FLAG_SPECIFY_SLOT)) == 0,
                   SCI_ERR_FLAG_NOT_IMPLEMENTED)) {
        return;
    }
    auto& st = device->state;
    Reply r = st->conn->call(
        {{"op", "dev_connect"}, {"lease_id", st->lease_id}, {"memtype", kind}, {"id", segmentId}});
    if (!c.status(r.err) || !c.that(!r.fds.empty(), SCI_ERR_SYSTEM)) {
        return;
    }
    auto* s = new sci_remote_segment();
    s->sd = sd;
    s->conn = st->conn;
    s->node = st->conn->node();
    s->id = segmentId;
    s->size = r.body.value("size", std::uint64_t{0});
    s->memfd = take_fd(r, 0);
    s->map_offset = r.body.value("map_offset", std::uint64_t{0}); // a vfio BAR's region offset
    s->dev = st;
    s->dev_segment = r.body.value("segment", std::uint64_t{0});
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        s->callback = callback;
        s->callback_arg = callbackArg;
    }
    {
        std::lock_guard lock(st->mutex);
        ++st->segments;
    }
    if (Runtime* rt = Runtime::get()) {
        rt->add(s);
    }
    hand_out(s, segment, error);
}

// The record of `local`/`remote` mapped for st (nullptr if none); st->mutex held.
ForDevice* find_map(DeviceState& st, sci_local_segment_t local, sci_remote_segment_t remote) {
    for (auto& m : st.maps) {
        if (m.local == local && m.remote == remote) {
            return &m;
        }
    }
    return nullptr;
}

// Maps [offset, offset + size) of a segment's memfd into the device's IO address space.
void map_for_device(sci_smartio_device_t device, int memfd, size_t seg_size,
                    sci_local_segment_t local, sci_remote_segment_t remote,
                    sci_ioaddr_t* remoteAddr, size_t offset, size_t size, unsigned int flags,
                    sci_error_t* error) {
    Check c(error);
    if (!smartio::usable(c, device) ||
        !c.param(remoteAddr != nullptr)
             .flags(flags, 0)
             .that(memfd >= 0, SCI_ERR_SEGMENT_NOT_PREPARED)
             .that(offset < seg_size && size <= seg_size - offset, SCI_ERR_OUT_OF_RANGE)) {
        return;
    }
    if (size == 0) {
        size = seg_size - offset;
    }
    auto& st = device->state;
    {
        // Mapping it again for the same device hands out the same address (counted).
        std::lock_guard lock(st->mutex);
        if (ForDevice* m = find_map(*st, local, remote)) {
            if (!c.that(m->offset == offset && m->size == size, SCI_ERR_BUSY)) {
                return;
            }
            ++m->refs;
            *remoteAddr = m->io_addr;
            set(error, SCI_ERR_OK);
            return;
        }
    }
    Reply r = st->conn->call(
        {{"op", "dev_map"}, {"lease_id", st->lease_id}, {"size", size}, {"offset", offset}},
        {memfd});
    if (!c.status(r.err)) {
        return;
    }
    ForDevice m;
    m.local = local;
    m.remote = remote;
    m.io_addr = r.body.value("io_addr", std::uint64_t{0});
    m.offset = offset;
    m.size = size;
    m.refs = 1;
    {
        std::lock_guard lock(st->mutex);
        st->maps.push_back(m);
    }
    // Counts as a map of the segment: removing or disconnecting it waits for the unmap.
    if (local != nullptr) {
        ++local->maps;
    } else {
        ++remote->maps;
    }
    *remoteAddr = m.io_addr;
    set(error, SCI_ERR_OK);
}

void unmap_for_device(sci_smartio_device_t device, sci_local_segment_t local,
                      sci_remote_segment_t remote, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(device, Magic::smartio_device).flags(flags, 0)) {
        return;
    }
    auto& st = device->state;
    std::uint64_t io_addr = 0;
    bool last = false;
    bool lost;
    {
        std::lock_guard lock(st->mutex);
        ForDevice* m = find_map(*st, local, remote);
        if (!c.that(m != nullptr, SCI_ERR_NOT_CONNECTED)) {
            return;
        }
        lost = st->lost;
        io_addr = m->io_addr;
        last = --m->refs == 0;
        if (last) {
            st->maps.erase(st->maps.begin() + (m - st->maps.data()));
        }
    }
    if (!last) {
        set(error, SCI_ERR_OK);
        return;
    }
    // After a loss the lender has dropped the mapping already.
    if (!lost && !st->conn->lost()) {
        st->conn->call({{"op", "dev_unmap"}, {"lease_id", st->lease_id}, {"io_addr", io_addr}});
    }
    if (local != nullptr) {
        --local->maps;
    } else {
        --remote->maps;
    }
    set(error, SCI_ERR_OK);
}

} // namespace

// ================================== device segments ==================================

SCI_API void SCIConnectDeviceSegment(sci_smartio_device_t device, sci_remote_segment_t* segment,
                                     unsigned int segmentId, unsigned int memtype,
                                     sci_cb_remote_segment_t callback, void* callbackArg,
                                     unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(device, Magic::smartio_device)) {
        return;
    }
    connect_device_segment(device->sd, device, segment, segmentId, memtype, callback, callbackArg,
                           flags, error);
}

SCI_API void SCIConnectDeviceMemory(sci_desc_t sd, sci_remote_segment_t* segment,
                                    unsigned int localAdapterNo, sci_smartio_device_t device,
                                    unsigned int segmentNo, unsigned int offset, unsigned int flags,
                                    sci_error_t* error) {
    Check c(error);
    if (!c.handle(sd, Magic::desc)
             .adapter(localAdapterNo)
             .param(offset == 0)
             .flags(flags, SCI_FLAG_BAR)
             .handle(device, Magic::smartio_device)) {
        return;
    }
    connect_device_segment(sd, device, segment, segmentNo, SCI_MEMTYPE_BAR, nullptr, nullptr, 0,
                           error);
}

SCI_API void SCICreateDeviceSegment(sci_smartio_device_t device, unsigned int segmentId,
                                    size_t size, unsigned int memtype, unsigned int accessHints,
                                    unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!smartio::usable(c, device) ||
        !c.param(size != 0 && (memtype == SCI_MEMTYPE_PRIVATE || memtype == SCI_MEMTYPE_SHARED) &&
                 (accessHints & ~k_all_hints) == 0)
             .flags(flags, k_placement_flags)) {
        return;
    }
    auto& st = device->state;
    // The lender makes and connects it; the handle it answers keeps it alive until the device
    // is returned (SCIConnectDeviceSegment connects it again for the caller).
    Reply r = st->conn->call({{"op", "dev_connect"},
                              {"lease_id", st->lease_id},
                              {"memtype", smartio::memtype_name(memtype)},
                              {"id", segmentId},
                              {"size", size}});
    if (!c.status(r.err)) {
        return;
    }
    std::lock_guard lock(st->mutex);
    st->created.push_back(r.body.value("segment", std::uint64_t{0}));
    set(error, SCI_ERR_OK);
}

// ================================ mappings for a device ================================

SCI_API void SCIMapLocalSegmentForDevice(sci_local_segment_t segment, unsigned int localAdapterNo,
                                         sci_smartio_device_t device, sci_ioaddr_t* remoteAddr,
                                         size_t offset, size_t size, unsigned int flags,
                                         sci_error_t* error) {
    if (!Check(error).handle(segment, Magic::local_segment).adapter(localAdapterNo)) {
        return;
    }
    map_for_device(device, segment->memfd.get(), segment->size, segment, nullptr, remoteAddr,
                   offset, size, flags, error);
}

SCI_API void SCIUnmapLocalSegmentForDevice(sci_local_segment_t segment, unsigned int localAdapterNo,
                                           sci_smartio_device_t device, unsigned int flags,
                                           sci_error_t* error) {
    if (!Check(error).handle(segment, Magic::local_segment).adapter(localAdapterNo)) {
        return;
    }
    unmap_for_device(device, segment, nullptr, flags, error);
}

SCI_API void SCIMapRemoteSegmentForDevice(sci_remote_segment_t segment, sci_smartio_device_t device,
                                          sci_ioaddr_t* remoteAddr, size_t offset, size_t size,
                                          unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(segment, Magic::remote_segment) ||
        !c.that(!segment->lost.load(), SCI_ERR_NODE_NOT_RESPONDING)
             .that(!segment->disconnected.load(), SCI_ERR_NOT_CONNECTED)) {
        return;
    }
    map_for_device(device, segment->memfd.get(), segment->size, nullptr, segment, remoteAddr,
                   offset, size, flags, error);
}

SCI_API void SCIUnmapRemoteSegmentForDevice(sci_remote_segment_t segment,
                                            sci_smartio_device_t device, unsigned int flags,
                                            sci_error_t* error) {
    if (!Check(error).handle(segment, Magic::remote_segment)) {
        return;
    }
    unmap_for_device(device, nullptr, segment, flags, error);
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCIConnectDeviceSegment)
SCI_VENDOR_NAMES(SCIConnectDeviceMemory)
SCI_VENDOR_NAMES(SCICreateDeviceSegment)
SCI_VENDOR_NAMES(SCIMapLocalSegmentForDevice)
SCI_VENDOR_NAMES(SCIUnmapLocalSegmentForDevice)
SCI_VENDOR_NAMES(SCIMapRemoteSegmentForDevice)
SCI_VENDOR_NAMES(SCIUnmapRemoteSegmentForDevice)
