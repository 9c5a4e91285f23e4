// disd's device segments and IO mappings for a borrowed device: dev_connect hands the BAR's
// memfd itself (the borrower's PIO runs at memory speed, no daemon in the path), or private or
// shared memory for the device; dev_map puts borrower memory into the device's IO space (what
// its DMA engine may reach). A lease's records go when the lease does (quiesce).
#include "daemon.hpp"

#include "sisci_error.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dis::disd {

namespace {

constexpr std::uint64_t k_max_device_memory = 1ULL << 30; // one private/shared device segment

} // namespace

void Daemon::op_dev_connect(Request& r) {
    Client& c = r.client;
    LeaseLink& link = lease_of(c, r.body);
    LentDevice* d = lent_device(link.fdid);
    if (d == nullptr) {
        refuse(SCI_ERR_NOT_AVAILABLE, "the device of this lease is not declared any more");
    }
    std::string memtype = wire::get_str(r.body, "memtype", 16);
    DevSegment seg;
    seg.fdid = link.fdid;
    seg.lease_id = link.lease_id;
    seg.client = c.id;
    seg.memtype = memtype;
    int fd = -1;
    if (memtype == "bar") {
        seg.number = wire::get_u32(r.body, "id");
        seg.size = d->bar_size(static_cast<int>(std::min<std::uint32_t>(seg.number, 64)));
        if (seg.size == 0) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "fdid " + lending::to_string(link.fdid) +
                                                  " has no BAR " + std::to_string(seg.number));
        }
        if (d->vfio) {
            // The borrower maps the region through the VFIO device fd at the region's offset.
            const vfio::Region* bar = d->vfio->bar(static_cast<int>(seg.number));
            if (!bar->mappable) {
                refuse(SCI_ERR_NOT_SUPPORTED,
                       "BAR " + std::to_string(seg.number) + " of " + d->vfio->identity().bdf +
                           " cannot be mapped (VFIO offers no mmap of it: I/O ports, or "
                           "smaller than a page)");
            }
            fd = d->vfio->device_fd();
            r.reply["map_offset"] = bar->offset;
        } else {
            fd = d->dev->bar_fd(static_cast<int>(seg.number));
        }
    } else if (memtype == "private" || memtype == "shared") {
        // With a size: SCICreateDeviceSegment (create, then connect); without: connect to
        // the one created before (private: this lease's; shared: any lease's of the device).
        seg.number = wire::get_u32(r.body, "id");
        bool shared = memtype == "shared";
        DevMemoryKey key{link.fdid.value, shared, shared ? 0 : link.lease_id, seg.number};
        auto it = m_dev_memory.find(key);
        if (r.body.contains("size")) {
            if (it != m_dev_memory.end()) {
                refuse(SCI_ERR_SEGMENTID_USED,
                       memtype + " device segment " + std::to_string(seg.number) + " exists");
            }
            DevMemory mem;
            mem.size = wire::get_u64(r.body, "size", k_max_device_memory);
            if (mem.size == 0) {
                refuse(SCI_ERR_ILLEGAL_PARAMETER, "device segment size 0");
            }
            mem.memfd = make_memfd("dis-devseg", mem.size);
            charge(c, Obj::segment, mem.size);
            mem.creator = c.id;
            it = m_dev_memory.emplace(key, std::move(mem)).first;
        } else if (it == m_dev_memory.end()) {
            refuse(SCI_ERR_NO_SUCH_SEGMENT, "no " + memtype + " device segment " +
                                                std::to_string(seg.number) + " of fdid " +
                                                lending::to_string(link.fdid));
        }
        seg.size = it->second.size;
        fd = it->second.memfd.get();
    } else {
        refuse(SCI_ERR_ILLEGAL_PARAMETER,
               "memtype '" + memtype + "' is not \"bar\", \"private\" or \"shared\"");
    }
    seg.id = m_next_dev_segment++;
    r.reply["segment"] = seg.id;
    r.reply["size"] = seg.size;
    r.reply_fds.push_back(fd);
    m_dev_segments.emplace(seg.id, std::move(seg));
}

void Daemon::op_dev_disconnect(Request& r) {
    LeaseLink& link = lease_of(r.client, r.body);
    std::uint32_t id = wire::get_u32(r.body, "segment");
    auto it = m_dev_segments.find(id);
    if (it == m_dev_segments.end() || it->second.client != r.client.id ||
        it->second.lease_id != link.lease_id) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "no device segment " + std::to_string(id) + " of lease " +
                                              std::to_string(link.lease_id));
    }
    m_dev_segments.erase(it);
}

void Daemon::op_dev_map(Request& r) {
    Client& c = r.client;
    LeaseLink& link = lease_of(c, r.body);
    LentDevice* d = lent_device(link.fdid);
    if (d == nullptr || d->resetting || d->faulted) {
        refuse(SCI_ERR_NOT_AVAILABLE,
               "fdid " + lending::to_string(link.fdid) + " is being reset or has failed");
    }
    if (r.fds.size() != 1) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "dev_map needs the memory's descriptor");
    }
    std::uint64_t size = wire::get_u64(r.body, "size", k_max_segment_size);
    std::uint64_t offset =
        r.body.contains("offset") ? wire::get_u64(r.body, "offset", k_max_segment_size) : 0;
    if (size == 0) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "dev_map of 0 bytes");
    }
    require_sealed_memory(r.fds[0].get(), offset + size);
    std::shared_ptr<endpoint::Mapping> mapping;
    try {
        mapping = endpoint::Mapping::map_fd(r.fds[0].get(), offset, size);
    } catch (const Error& e) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, e.what());
    }
    // The daemon's mapping of the borrower's memory counts against the borrower.
    charge(c, Obj::region, size);
    std::uint64_t io_addr = 0;
    if (d->vfio) {
        try {
            io_addr = d->vfio->map_dma(std::move(mapping)); // VFIO_IOMMU_MAP_DMA at a new IOVA
        } catch (const Error& e) {
            release(c.id, Obj::region, size);
            refuse(e.kind() == ErrorKind::busy ? SCI_ERR_NOSPC : SCI_ERR_SYSTEM, e.what());
        }
    } else {
        io_addr = d->dev->io().map(std::move(mapping));
    }
    {
        std::lock_guard lock(d->mu);
        d->io_leases[io_addr] = link.lease_id;
    }
    m_dev_maps[{link.fdid.value, io_addr}] = DevMapping{link.fdid, link.lease_id, c.id, size};
    r.reply["io_addr"] = io_addr;
}

void Daemon::op_dev_unmap(Request& r) {
    LeaseLink& link = lease_of(r.client, r.body);
    std::uint64_t io_addr = wire::get_u64(r.body, "io_addr");
    auto it = m_dev_maps.find({link.fdid.value, io_addr});
    if (it == m_dev_maps.end() || it->second.client != r.client.id ||
        it->second.lease_id != link.lease_id) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "no mapping at IO address " + std::to_string(io_addr) +
                                              " of lease " + std::to_string(link.lease_id));
    }
    if (LentDevice* d = lent_device(link.fdid)) {
        {
            std::lock_guard lock(d->mu);
            d->io_leases.erase(io_addr);
        }
        d->unmap_io(io_addr);
    }
    release(r.client.id, Obj::region, it->second.bytes);
    m_dev_maps.erase(it);
}

// Frees the private device memory of a lease that ended, and the device's shared memory once
// nobody borrows it.
void Daemon::drop_device_memory(lending::Fdid fdid, std::int64_t lease_id) {
    bool held = std::any_of(m_lease_links.begin(), m_lease_links.end(),
                            [&](const auto& kv) { return kv.second.fdid == fdid; });
    for (auto it = m_dev_memory.begin(); it != m_dev_memory.end();) {
        const auto& [f, shared, lease, id] = it->first;
        if (f == fdid.value && ((!shared && lease == lease_id) || (shared && !held))) {
            release(it->second.creator, Obj::segment, it->second.size);
            it = m_dev_memory.erase(it);
        } else {
            ++it;
        }
    }
}

// Forgets the device segments and IO mappings of a lease (lease_id != 0) or of a client
// (client_id != 0), taking its mappings out of the device's reach.
void Daemon::drop_device_access(std::int64_t lease_id, int client_id) {
    auto match = [&](std::int64_t lease, int client) {
        return (lease_id != 0 && lease == lease_id) || (client_id != 0 && client == client_id);
    };
    for (auto it = m_dev_segments.begin(); it != m_dev_segments.end();) {
        if (match(it->second.lease_id, it->second.client)) {
            it = m_dev_segments.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = m_dev_maps.begin(); it != m_dev_maps.end();) {
        if (match(it->second.lease_id, it->second.client)) {
            if (LentDevice* d = lent_device(it->second.fdid)) {
                {
                    std::lock_guard lock(d->mu);
                    d->io_leases.erase(it->first.second);
                }
                d->unmap_io(it->first.second);
            }
            release(it->second.client, Obj::region, it->second.bytes);
            it = m_dev_maps.erase(it);
        } else {
            ++it;
        }
    }
}

} // namespace dis::disd
