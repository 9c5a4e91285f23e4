// disd's DMA requests: queues (shared rings the engine serves) and regions (memory the engine
// may read or write). The engine itself is engine.cpp.
#include "daemon.hpp"

#include "sisci_error.h"

#include <cerrno>
#include <cstring>

namespace dis::disd {

void Daemon::op_dma_queue_create(Request& r) {
    Client& c = r.client;
    if (c.node_id != m_opts.node_id) {
        refuse(SCI_ERR_ILLEGAL_OPERATION, "DMA queues are created on the client's own node");
    }
    std::uint32_t capacity = wire::get_u32(r.body, "capacity", k_max_dma_entries);
    if (capacity == 0) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "DMA queue capacity 0");
    }
    auto q = std::make_shared<DmaQueue>();
    std::size_t bytes = wire::dma_queue_bytes(capacity);
    q->fd = make_memfd("dis-dmaq", bytes);
    q->shm = wire::map_shared(q->fd.get(), bytes);
    if (q->shm.get() == nullptr) {
        refuse(SCI_ERR_NOSPC, std::string("mmap: ") + std::strerror(errno));
    }
    charge(c, Obj::queue, 0);
    q->q = static_cast<wire::DmaQueueShared*>(q->shm.get());
    q->q->capacity = capacity;
    q->capacity = capacity;
    q->client = c.id;
    r.reply_fds.push_back(q->fd.get());
    std::lock_guard lock(m_dma_mutex);
    q->id = m_next_queue++;
    r.reply["queue_id"] = q->id;
    r.reply["capacity"] = capacity;
    m_queues.emplace(q->id, q);
    ++m_queues_version;
}

void Daemon::op_dma_queue_remove(Request& r) {
    std::uint32_t id = wire::get_u32(r.body, "queue_id");
    {
        std::lock_guard lock(m_dma_mutex);
        auto it = m_queues.find(id);
        if (it == m_queues.end() || it->second->client != r.client.id) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "no DMA queue " + std::to_string(id));
        }
        m_queues.erase(it);
        ++m_queues_version;
    }
    wake_engine(); // so it drops its reference (and the queue's memory) now
    release(r.client.id, Obj::queue, 0);
    r.reply["queue_id"] = id;
}

void Daemon::op_dma_region(Request& r) {
    Client& c = r.client;
    Region region;
    region.client = c.id;
    if (r.body.contains("segment_id")) {
        // A segment of this node the client owns, attached or is connected to.
        if (!r.fds.empty()) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "dma_region of a local segment takes no descriptor");
        }
        std::uint32_t id = wire::get_u32(r.body, "segment_id");
        auto it = m_segments.find(id);
        if (it == m_segments.end() || !it->second.map) {
            refuse(SCI_ERR_NO_SUCH_SEGMENT, "no segment " + std::to_string(id));
        }
        Segment& s = it->second;
        if (s.owner != c.id && s.attached.count(c.id) == 0 && s.connections.count(c.id) == 0) {
            refuse(SCI_ERR_ACCESS, "segment not owned, attached or connected by the client");
        }
        region.map = s.map;
    } else {
        // A segment of another node: the client passes the descriptor it was given. The
        // mapping is this daemon's, so it counts against the client's memory.
        if (r.fds.size() != 1) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "dma_region needs a segment_id or a descriptor");
        }
        std::uint64_t size = wire::get_u64(r.body, "size", k_max_segment_size);
        require_sealed_memory(r.fds[0].get(), size);
        auto map = wire::map_shared(r.fds[0].get(), size);
        if (map.get() == nullptr) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, std::string("mmap: ") + std::strerror(errno));
        }
        region.map = std::make_shared<wire::Mapping>(std::move(map));
        region.bytes = size;
    }
    charge(c, Obj::region, region.bytes);
    std::lock_guard lock(m_dma_mutex);
    std::uint32_t id = m_next_region++;
    m_regions.emplace(id, std::move(region));
    r.reply["region_id"] = id;
}

void Daemon::op_dma_region_release(Request& r) {
    std::uint32_t id = wire::get_u32(r.body, "region_id");
    std::uint64_t bytes = 0;
    {
        std::lock_guard lock(m_dma_mutex);
        auto it = m_regions.find(id);
        if (it == m_regions.end() || it->second.client != r.client.id) {
            refuse(SCI_ERR_ILLEGAL_PARAMETER, "no DMA region " + std::to_string(id));
        }
        bytes = it->second.bytes;
        m_regions.erase(it);
    }
    release(r.client.id, Obj::region, bytes);
    r.reply["region_id"] = id;
}

bool Daemon::release_client_dma(int client_id) {
    std::vector<std::uint64_t> regions;
    std::size_t queues = 0;
    {
        std::lock_guard lock(m_dma_mutex);
        for (auto q = m_queues.begin(); q != m_queues.end();) {
            if (q->second->client == client_id) {
                q = m_queues.erase(q);
                ++queues;
            } else {
                ++q;
            }
        }
        for (auto it = m_regions.begin(); it != m_regions.end();) {
            if (it->second.client == client_id) {
                regions.push_back(it->second.bytes);
                it = m_regions.erase(it);
            } else {
                ++it;
            }
        }
        if (queues > 0 || !regions.empty()) {
            ++m_queues_version;
        }
    }
    for (std::size_t i = 0; i < queues; ++i) {
        release(client_id, Obj::queue, 0);
    }
    for (auto bytes : regions) {
        release(client_id, Obj::region, bytes);
    }
    return queues > 0 || !regions.empty();
}

} // namespace dis::disd
