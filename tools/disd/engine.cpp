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

// Transfers from this size on run on the poster's CPU, smaller ones on another (see Placement).
constexpr std::uint64_t k_follow_bytes = 4u << 20;
// Losing the CPU this long while spinning means another task wants it for whole time slices
// (brief wake-ups of other tasks take far less); the engine then follows the poster for
// k_contended_hold.
constexpr auto k_contended_gap = std::chrono::microseconds(250);
constexpr auto k_contended_hold = std::chrono::milliseconds(500);

// Where the engine thread runs relative to the thread that posted (few CPUs, shared with other
// work). A transfer below k_follow_bytes runs on another CPU than the poster's: a poster that
// spins or polls for completion never has to hand its CPU to the engine and back (a context
// switch each way, 3-6 us instead of < 1 us), and the copy keeps its data in that core's
// private cache while the poster works in its own. A longer copy needs a CPU for a long time:
// it runs on the poster's, which is idle while the poster waits and so the one most surely
// free on a busy host. Affinity changes only when the decision changes, and the engine drops
// it before sleeping so that its wake-up may go to any CPU.
class Placement {
public:
    explicit Placement(wire::DmaDoorbell* doorbell) : m_doorbell(doorbell) {
        CPU_ZERO(&m_allowed);
        if (::sched_getaffinity(0, sizeof(m_allowed), &m_allowed) == 0) {
            m_usable = CPU_COUNT(&m_allowed) >= 2;
        }
    }

    // `poster_cpu` as in wire::DmaQueueShared (CPU + 1, 0 = unknown).
    void place(std::uint32_t poster_cpu, std::uint64_t bytes) {
        if (!m_usable || poster_cpu == 0) {
            return;
        }
        int cpu = static_cast<int>(poster_cpu - 1);
        if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &m_allowed)) {
            return;
        }
        bool follow =
            bytes >= k_follow_bytes || std::chrono::steady_clock::now() < m_contended_until;
        int want = follow ? cpu + 1 : -(cpu + 1);
        if (want == m_state) {
            return;
        }
        cpu_set_t set;
        if (want > 0) {
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
        } else {
            set = m_allowed;
            CPU_CLR(cpu, &set);
        }
        if (::sched_setaffinity(0, sizeof(set), &set) == 0) {
            m_state = want;
            // Tells pollers on that CPU to yield to us at once rather than spin.
            m_doorbell->on_cpu.store(want > 0 ? static_cast<std::uint32_t>(want) : 0,
                                     std::memory_order_relaxed);
        }
    }

    // The engine was off its CPU for long (another task runs there): pinning it away from
    // the poster would make it wait behind that task for every transfer (measured: 1 MiB at
    // 0.03x memcpy). Follow the poster for a while instead, whose CPU is free while it waits.
    void contended() {
        m_contended_until = std::chrono::steady_clock::now() + k_contended_hold;
        if (m_state < 0) {
            release();
        }
    }

    bool apart() const { return m_state < 0; }

    void release() {
        if (m_state != 0 && ::sched_setaffinity(0, sizeof(m_allowed), &m_allowed) == 0) {
            m_state = 0;
            m_doorbell->on_cpu.store(0, std::memory_order_relaxed);
        }
    }

private:
    wire::DmaDoorbell* m_doorbell;
    cpu_set_t m_allowed;
    bool m_usable = false;
    std::chrono::steady_clock::time_point m_contended_until;
    int m_state = 0; // 0: anywhere; cpu + 1: on it; -(cpu + 1): anywhere but it
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

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
    Placement placement(m_doorbell);
    while (!m_engine_stop.load(std::memory_order_relaxed)) {
        refresh();
        for (const auto& q : queues) {
            // Placed by the first queue with work (its oldest descriptor's size).
            if (q->q->head.load(std::memory_order_acquire) != q->tail) {
                placement.place(q->q->poster_cpu.load(std::memory_order_relaxed),
                                q->q->ring[q->tail % q->capacity].size);
                break;
            }
        }
        if (engine_pass(queues)) {
            last_work = std::chrono::steady_clock::now();
            continue;
        }
        if (std::chrono::steady_clock::now() - last_work < k_spin_window) {
            // Sharing the poster's CPU (or not placed), yield rather than pause, so that a
            // client polling for completion gets to run (on an idle CPU the yield returns at
            // once). Away from the poster there is nobody to yield to that we serve.
            auto before = std::chrono::steady_clock::now();
            if (placement.apart()) {
                cpu_relax();
            } else {
                sched_yield();
            }
            if (std::chrono::steady_clock::now() - before > k_contended_gap) {
                placement.contended();
            }
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
            placement.release();
            wire::futex_wait(&m_doorbell->seq, seq, k_sleep_us);
        }
        m_doorbell->sleeping.store(0, std::memory_order_seq_cst);
        last_work = std::chrono::steady_clock::now();
    }
}

} // namespace dis::disd
