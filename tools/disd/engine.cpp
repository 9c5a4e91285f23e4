// The node adapter's DMA engine: one thread per daemon, shared by every process of the node.
// Clients post descriptors into a shared ring; the engine copies between the daemon's own
// mappings of the segments' memory and signals completion through a shared futex word. It
// spins briefly after activity (low latency for back-to-back transfers) and then sleeps on
// the doorbell futex, which clients bump only while the engine says it is asleep.
#include "daemon.hpp"

#include "sisci_error.h"

#include <sched.h>

#include <cstring>

namespace dis::disd {

namespace {

constexpr auto k_spin_window = std::chrono::microseconds(100);
constexpr std::uint64_t k_chunk = 1u << 20; // copy granularity of long transfers
constexpr std::int64_t k_sleep_us = 200000; // re-check periodically (stop flag, lost wake-ups)

} // namespace

std::uint32_t Daemon::engine_execute(const DmaQueue& q, const wire::DmaDesc& d) {
    std::shared_ptr<wire::Mapping> local;
    std::shared_ptr<wire::Mapping> remote;
    {
        std::lock_guard lock(m_dma_mutex);
        auto l = m_regions.find(d.local_region);
        auto r = m_regions.find(d.remote_region);
        if (l == m_regions.end() || r == m_regions.end() || l->second.client != q.client ||
            r->second.client != q.client) {
            return SCI_ERR_ILLEGAL_PARAMETER;
        }
        local = l->second.map;
        remote = r->second.map;
    }
    // Overflow-safe bounds checks: the descriptor came from client-writable memory.
    if (d.size == 0 || d.local_offset > local->size() || d.size > local->size() - d.local_offset ||
        d.remote_offset > remote->size() || d.size > remote->size() - d.remote_offset) {
        return SCI_ERR_OUT_OF_RANGE;
    }
    auto* lp = static_cast<unsigned char*>(local->get()) + d.local_offset;
    auto* rp = static_cast<unsigned char*>(remote->get()) + d.remote_offset;
    // Like a hardware engine, a copy between overlapping memory is undefined; the mappings are
    // distinct address ranges, so memcpy never sees overlapping pointers.
    unsigned char* dst = (d.flags & wire::k_dma_read) != 0 ? lp : rp;
    const unsigned char* src = (d.flags & wire::k_dma_read) != 0 ? rp : lp;
    // Long copies go in chunks; before the last one a sleeping waiter is woken early, so its
    // wake-up (slow on a loaded host) overlaps the rest of the copy instead of following it.
    std::uint64_t done = 0;
    while (d.size - done > k_chunk) {
        std::memcpy(dst + done, src + done, k_chunk);
        done += k_chunk;
        if (d.size - done <= k_chunk && q.q->waiters.load(std::memory_order_relaxed) != 0) {
            wire::futex_wake(&q.q->completed);
        }
    }
    std::memcpy(dst + done, src + done, d.size - done);
    m_dma_bytes.fetch_add(d.size, std::memory_order_relaxed);
    m_dma_transfers.fetch_add(1, std::memory_order_relaxed);
    return SCI_ERR_OK;
}

bool Daemon::engine_pass(const std::vector<std::shared_ptr<DmaQueue>>& queues) {
    bool did = false;
    for (const auto& qp : queues) {
        DmaQueue& q = *qp;
        wire::DmaQueueShared* s = q.q;
        std::uint32_t head = s->head.load(std::memory_order_acquire);
        if (head == q.tail) {
            continue;
        }
        did = true;
        if (head - q.tail > q.capacity) {
            // A corrupted head: fail everything outstanding rather than read garbage.
            std::uint32_t n = head - q.tail;
            q.tail = head;
            s->error.store(SCI_ERR_ILLEGAL_PARAMETER);
            s->tail.store(q.tail, std::memory_order_release);
            s->completed.fetch_add(n);
            m_dma_errors.fetch_add(1);
        }
        while (q.tail != head) {
            std::uint32_t status;
            if (s->abort.load(std::memory_order_acquire) != 0) {
                status = SCI_ERR_CANCELLED;
            } else {
                wire::DmaDesc d;
                std::memcpy(&d, &s->ring[q.tail % q.capacity], sizeof(d));
                status = engine_execute(q, d);
            }
            if (status != SCI_ERR_OK) {
                std::uint32_t none = 0;
                s->error.compare_exchange_strong(none, status);
                if (status != SCI_ERR_CANCELLED) {
                    m_dma_errors.fetch_add(1);
                }
            }
            ++q.tail;
            s->tail.store(q.tail, std::memory_order_release);
            s->completed.fetch_add(1, std::memory_order_seq_cst);
            if (s->waiters.load(std::memory_order_seq_cst) != 0) {
                wire::futex_wake(&s->completed);
            }
        }
    }
    return did;
}

void Daemon::engine_main() {
    std::vector<std::shared_ptr<DmaQueue>> queues;
    std::uint64_t seen_version = ~0ULL;
    auto last_work = std::chrono::steady_clock::now();
    auto refresh = [&] {
        std::uint64_t v = m_queues_version.load(std::memory_order_acquire);
        if (v != seen_version) {
            std::lock_guard lock(m_dma_mutex);
            queues.clear();
            for (const auto& [id, q] : m_queues) {
                queues.push_back(q);
            }
            seen_version = m_queues_version.load();
        }
    };
    while (!m_engine_stop.load(std::memory_order_relaxed)) {
        refresh();
        if (engine_pass(queues)) {
            last_work = std::chrono::steady_clock::now();
            continue;
        }
        if (std::chrono::steady_clock::now() - last_work < k_spin_window) {
            // Yield rather than pause: when a client polling for completion shares our CPU,
            // it must get to run (on an idle CPU the yield returns at once).
            sched_yield();
            continue;
        }
        // Going to sleep: announce it, then look once more so no post is missed.
        std::uint32_t seq = m_doorbell->seq.load(std::memory_order_seq_cst);
        m_doorbell->sleeping.store(1, std::memory_order_seq_cst);
        refresh();
        bool pending = false;
        for (const auto& q : queues) {
            pending = pending || q->q->head.load(std::memory_order_seq_cst) != q->tail;
        }
        if (!pending && !m_engine_stop.load()) {
            wire::futex_wait(&m_doorbell->seq, seq, k_sleep_us);
        }
        m_doorbell->sleeping.store(0, std::memory_order_seq_cst);
        last_work = std::chrono::steady_clock::now();
    }
}

} // namespace dis::disd
