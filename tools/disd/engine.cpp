// The node adapter's DMA engine: one thread per daemon, shared by every process of the node.
// Clients post descriptors into a shared ring; the engine copies between the daemon's own
// mappings of the segments' memory and signals completion through a shared futex word. It
// spins briefly after activity (low latency for back-to-back transfers) and then sleeps on
// the doorbell futex, which clients bump only while the engine says it is asleep.
#include "cpu_relax.hpp"
#include "daemon.hpp"

#include "sisci_error.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace dis::disd {

namespace {

constexpr auto k_spin_window = std::chrono::microseconds(100);
constexpr std::uint64_t k_chunk = 1u << 20; // copy granularity of long transfers
constexpr std::int64_t k_sleep_us = 200000; // re-check periodically (stop flag, lost wake-ups)

// Contention: over each window of activity on another CPU than the poster's, the engine
// measures how long it sat runnable but waiting for its CPU (the kernel's run delay). More
// than k_contended_share of k_contended_windows windows in a row means another task wants that
// CPU; the engine then runs on the poster's CPU (the poster sleeps while the engine is there)
// for k_contended_hold, or until the poster's own wake-up lands on another CPU (which was
// then idle after all), and tries the other CPU again afterwards.
constexpr auto k_contention_window = std::chrono::milliseconds(4);
constexpr double k_contended_share = 0.25;
constexpr int k_contended_windows = 2;
constexpr auto k_contended_hold = std::chrono::milliseconds(500);

// This thread's run delay in ns (/proc/thread-self/schedstat, second field), -1 if unknown.
class RunDelay {
public:
    RunDelay() : m_fd(::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)) {}
    std::int64_t read() const {
        if (!m_fd.valid()) {
            return -1;
        }
        char buf[128];
        ssize_t n = ::pread(m_fd.get(), buf, sizeof(buf) - 1, 0);
        if (n <= 0) {
            return -1;
        }
        buf[n] = '\0';
        unsigned long long run = 0;
        unsigned long long delay = 0;
        return std::sscanf(buf, "%llu %llu", &run, &delay) == 2 ? static_cast<std::int64_t>(delay)
                                                                : -1;
    }

private:
    wire::Fd m_fd;
};

// Where the engine thread runs relative to the thread that posted (few CPUs, shared with other
// work). Normally on another CPU than the poster's: a poster that spins or polls for
// completion never hands its CPU to the engine and back (a context switch each way, and on a
// virtual machine a sleeping CPU's wake-up costs tens of microseconds), and both keep their
// caches. Measured on 2 vCPUs: following the poster instead made the poster's own wake-ups
// land on the other CPU and the engine chase it (half a migration per transfer, 4 MiB at
// 0.6x memcpy). When the other CPU is contended the engine runs on the poster's, which is
// free while the poster sleeps (waiters sleep at once when the engine is on their CPU, see
// DmaDoorbell::on_cpu). Affinity changes only when the decision does.
class Placement {
public:
    explicit Placement(wire::DmaDoorbell* doorbell) : m_doorbell(doorbell) {
        CPU_ZERO(&m_allowed);
        if (::sched_getaffinity(0, sizeof(m_allowed), &m_allowed) == 0) {
            m_usable = CPU_COUNT(&m_allowed) >= 2;
        }
    }

    // `poster_cpu` as in wire::DmaQueueShared (CPU + 1, 0 = unknown).
    void place(std::uint32_t poster_cpu) {
        if (!m_usable || poster_cpu == 0) {
            return;
        }
        int cpu = static_cast<int>(poster_cpu - 1);
        if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &m_allowed)) {
            return;
        }
        auto now = std::chrono::steady_clock::now();
        if (m_state > 0 && cpu + 1 != m_state) {
            // The poster's wake-up went to another CPU: that one was idle after all.
            m_contended_until = {};
        }
        bool follow = now < m_contended_until;
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
            // Tells waiters and pollers on that CPU to sleep or yield rather than spin.
            m_doorbell->on_cpu.store(want > 0 ? static_cast<std::uint32_t>(want) : 0,
                                     std::memory_order_relaxed);
            restart_window(now);
        }
    }

    // Called while the engine is busy (working or spinning for more): measures contention.
    void busy(std::chrono::steady_clock::time_point now) {
        if (m_state >= 0) {
            return;
        }
        if (m_window_delay < 0) {
            restart_window(now);
            return;
        }
        if (now - m_window_start < k_contention_window) {
            return;
        }
        std::int64_t delay = m_run_delay.read();
        if (delay >= 0) {
            double waited = static_cast<double>(delay - m_window_delay) * 1e-9;
            double elapsed = std::chrono::duration<double>(now - m_window_start).count();
            m_contended_windows =
                waited > k_contended_share * elapsed ? m_contended_windows + 1 : 0;
            if (m_contended_windows >= k_contended_windows) {
                m_contended_windows = 0;
                m_contended_until = now + k_contended_hold;
            }
        }
        m_window_start = now;
        m_window_delay = delay;
    }

    // A sleep is not activity: the next window starts when the engine runs again.
    void idle() {
        m_window_delay = -1;
        m_contended_windows = 0;
    }

    bool apart() const { return m_state < 0; }

private:
    void restart_window(std::chrono::steady_clock::time_point now) {
        m_window_start = now;
        m_window_delay = m_run_delay.read();
    }

    wire::DmaDoorbell* m_doorbell;
    cpu_set_t m_allowed;
    bool m_usable = false;
    RunDelay m_run_delay;
    std::chrono::steady_clock::time_point m_contended_until;
    std::chrono::steady_clock::time_point m_window_start;
    std::int64_t m_window_delay = -1;
    int m_contended_windows = 0;
    int m_state = 0; // 0: anywhere; cpu + 1: on it; -(cpu + 1): anywhere but it
};

} // namespace

// Transfers from this size on are written with non-temporal stores, the way a hardware
// engine's writes bypass the CPU caches: the data is for another node's CPU, and a copy this
// long (a quarter of the last-level cache or more) would only evict that cache and pay for
// reading every destination line before writing it. Measured on a 2-vCPU EPYC VM (32 MiB L3):
// 8 MiB 14 vs 11 GB/s, 16 MiB 12 vs 9 GB/s; but 1 MiB 21 vs 34 GB/s, hence the threshold.
std::uint64_t default_streaming_bytes() {
    constexpr std::uint64_t fallback = 32u << 20;
    std::uint64_t llc = fallback;
    // sysfs rather than sysconf: under a hypervisor the CPUID cache leaves can be fiction.
    if (std::FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
        unsigned long long n = 0;
        char unit = 0;
        if (std::fscanf(f, "%llu%c", &n, &unit) >= 1 && n > 0) {
            llc = unit == 'K' ? n << 10 : unit == 'M' ? n << 20 : n;
        }
        std::fclose(f);
    }
    return std::max<std::uint64_t>(llc / 4, 1u << 20);
}

namespace {

// memcpy with non-temporal stores for the 64-byte-aligned body of the destination; fenced, so
// that the completion published after it is ordered behind every byte.
void copy_streaming(unsigned char* dst, const unsigned char* src, std::uint64_t n) {
#if defined(__x86_64__)
    std::uint64_t head = (64 - (reinterpret_cast<std::uintptr_t>(dst) & 63)) & 63;
    head = std::min(head, n);
    std::memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
        __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16));
        __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 32));
        __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 48));
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst), a);
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 16), b);
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 32), c);
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 48), d);
    }
    std::memcpy(dst, src, n);
    _mm_sfence();
#else
    std::memcpy(dst, src, n);
#endif
}

} // namespace

std::uint32_t Daemon::engine_execute(const DmaQueue& q, const wire::DmaDesc& d, bool early_wake) {
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
    // Long copies go in chunks; before the last one a sleeping waiter on another CPU is woken
    // early, so its wake-up (slow on a loaded or virtual host) overlaps the rest of the copy
    // instead of following it. On our own CPU it would only preempt the copy.
    auto copy = d.size >= m_streaming_bytes ? copy_streaming
                                            : [](unsigned char* to, const unsigned char* from,
                                                 std::uint64_t n) { std::memcpy(to, from, n); };
    std::uint64_t done = 0;
    while (d.size - done > k_chunk) {
        copy(dst + done, src + done, k_chunk);
        done += k_chunk;
        if (early_wake && d.size - done <= k_chunk &&
            q.q->waiters.load(std::memory_order_relaxed) != 0) {
            wire::futex_wake(&q.q->completed);
        }
    }
    copy(dst + done, src + done, d.size - done);
    m_dma_bytes.fetch_add(d.size, std::memory_order_relaxed);
    m_dma_transfers.fetch_add(1, std::memory_order_relaxed);
    return SCI_ERR_OK;
}

bool Daemon::engine_pass(const std::vector<std::shared_ptr<DmaQueue>>& queues, bool early_wake) {
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
                status = engine_execute(q, d, early_wake);
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
            // Placed by the first queue with work.
            if (q->q->head.load(std::memory_order_acquire) != q->tail) {
                placement.place(q->q->poster_cpu.load(std::memory_order_relaxed));
                break;
            }
        }
        if (engine_pass(queues, placement.apart())) {
            last_work = std::chrono::steady_clock::now();
            placement.busy(last_work);
            continue;
        }
        auto now = std::chrono::steady_clock::now();
        if (now - last_work < k_spin_window) {
            // Sharing the poster's CPU (or not placed), yield rather than pause, so that a
            // client polling for completion gets to run (on an idle CPU the yield returns at
            // once). Away from the poster there is nobody to yield to that we serve.
            if (placement.apart()) {
                cpu_relax();
            } else {
                sched_yield();
            }
            placement.busy(now);
            continue;
        }
        // Going to sleep: announce it, then look once more so no post is missed. The
        // placement stays: the wake-up then lands where the engine will run.
        std::uint32_t seq = m_doorbell->seq.load(std::memory_order_seq_cst);
        m_doorbell->sleeping.store(1, std::memory_order_seq_cst);
        refresh();
        bool pending = false;
        for (const auto& q : queues) {
            pending = pending || q->q->head.load(std::memory_order_seq_cst) != q->tail;
        }
        if (!pending && !m_engine_stop.load()) {
            placement.idle();
            wire::futex_wait(&m_doorbell->seq, seq, k_sleep_us);
        }
        m_doorbell->sleeping.store(0, std::memory_order_seq_cst);
        // Spin after a doorbell only: a periodic re-check that found nothing goes back to
        // sleep at once (sixteen idle nodes spinning five times a second cost a core's 5%).
        last_work = std::chrono::steady_clock::now();
        if (!pending && m_doorbell->seq.load(std::memory_order_seq_cst) == seq) {
            last_work -= k_spin_window;
        }
    }
}

} // namespace dis::disd
