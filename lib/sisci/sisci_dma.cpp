// DMA: descriptors go into a ring shared with the node daemon's DMA engine; completion is a
// shared counter the caller polls (SCIDMAQueueState) or sleeps on (futex).
#include "api_util.hpp"

#include <sched.h>

#include <algorithm>
#include <cstring>

namespace {

constexpr unsigned k_dma_flags = SCI_FLAG_DMA_READ | SCI_FLAG_USE_CALLBACK | SCI_FLAG_DMA_WAIT |
                                 SCI_FLAG_DMA_GLOBAL | SCI_FLAG_DMA_SYSDMA |
                                 SCI_FLAG_DMA_SOURCE_ONLY;
constexpr std::int64_t k_spin_us = 30;           // spin at least this long before sleeping
constexpr std::int64_t k_max_spin_us = 5000;     // and at most this long
constexpr std::int64_t k_wake_spin_us = 200;     // after a wake-up before the end
constexpr std::int64_t k_busy_us = 20;           // pause only, before yielding now and then
constexpr std::int64_t k_yield_every_us = 10;    // to other tasks that want this CPU
constexpr std::int64_t k_sleep_slice_us = 20000; // re-check node loss this often

inline bool reached(std::uint32_t value, std::uint32_t target) {
    return static_cast<std::int32_t>(value - target) >= 0;
}

// The engine is confined to the CPU this thread runs on: spinning there only delays it.
inline bool engine_here(sci_dma_queue_t dq) {
    if (dq->doorbell == nullptr) {
        return false;
    }
    std::uint32_t on = dq->doorbell->on_cpu.load(std::memory_order_relaxed);
    return on != 0 && static_cast<int>(on) - 1 == sched_getcpu();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Waits until `target` descriptors completed. With the engine on another CPU, spin (pause,
// then yielding now and then to anyone else who wants this CPU) about as long as the copy
// should take: completion is then seen within a fraction of a microsecond, where a futex
// sleep would add a wake-up (tens of microseconds when the CPU has to come out of a virtual
// machine's halt). With the engine on this CPU, spinning only delays it: sleep at once.
// `may_spin` false (SCI_FLAG_DIS_SLEEP_WAIT): sleep at once whatever the engine's CPU.
sci_error_t wait_completed(sci_dma_queue_t dq, std::uint32_t target, unsigned int timeout_ms,
                           bool may_spin = true) {
    auto* q = dq->q;
    auto start = std::chrono::steady_clock::now();
    auto spin = may_spin ? std::chrono::microseconds(std::max(k_spin_us, dq->spin_us))
                         : std::chrono::microseconds(0);
    if (timeout_ms != SCI_INFINITE_TIMEOUT) {
        spin = std::min<std::chrono::microseconds>(spin, std::chrono::milliseconds(timeout_ms));
    }
    auto spin_end = start + spin;
    auto next_yield = start + std::chrono::microseconds(k_busy_us);
    for (unsigned n = 0;; ++n) {
        if (reached(q->completed.load(std::memory_order_acquire), target)) {
            return SCI_ERR_OK;
        }
        if (n % 32 != 0) {
            cpu_relax();
            continue;
        }
        auto now = std::chrono::steady_clock::now();
        if (now >= spin_end || engine_here(dq)) {
            break;
        }
        if (now >= next_yield) {
            sched_yield();
            next_yield = now + std::chrono::microseconds(k_yield_every_us);
        }
    }
    q->waiters.fetch_add(1, std::memory_order_seq_cst);
    sci_error_t result = SCI_ERR_OK;
    for (;;) {
        std::uint32_t c = q->completed.load(std::memory_order_seq_cst);
        if (reached(c, target)) {
            break;
        }
        if (dq->conn->lost()) {
            result = SCI_ERR_NODE_NOT_RESPONDING;
            break;
        }
        std::int64_t slice = k_sleep_slice_us;
        if (timeout_ms != SCI_INFINITE_TIMEOUT) {
            auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                            start + std::chrono::milliseconds(timeout_ms) -
                            std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) {
                result = SCI_ERR_TIMEOUT;
                break;
            }
            slice = std::min<std::int64_t>(slice, left);
        }
        wire::futex_wait(&q->completed, c, slice);
        // Woken (possibly early, by the engine starting the last chunk of a long copy):
        // spin a little before sleeping again, so the wake-up latency overlaps the copy.
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(may_spin ? k_wake_spin_us : 0);
        while (!engine_here(dq) && !reached(q->completed.load(std::memory_order_acquire), target) &&
               std::chrono::steady_clock::now() < until) {
            sched_yield();
        }
    }
    q->waiters.fetch_sub(1, std::memory_order_seq_cst);
    return result;
}

void ring_doorbell(sci_dma_queue_t dq) {
    if (dq->doorbell != nullptr && dq->doorbell->sleeping.load(std::memory_order_seq_cst) != 0) {
        dq->doorbell->seq.fetch_add(1, std::memory_order_seq_cst);
        wire::futex_wake(&dq->doorbell->seq);
    }
}

void callback_thread(sci_dma_queue_t dq) {
    for (;;) {
        std::tuple<std::uint32_t, sci_cb_dma_t, void*> job;
        {
            std::unique_lock lock(dq->cb_mutex);
            dq->cb_cv.wait(lock, [&] { return dq->cb_stop || !dq->cb_pending.empty(); });
            if (dq->cb_pending.empty()) {
                return;
            }
            job = dq->cb_pending.front();
        }
        sci_error_t status = wait_completed(dq, std::get<0>(job), SCI_INFINITE_TIMEOUT);
        if (status == SCI_ERR_OK) {
            status = static_cast<sci_error_t>(dq->q->error.load());
        }
        std::get<1>(job)(std::get<2>(job), dq, status);
        std::lock_guard lock(dq->cb_mutex);
        dq->cb_pending.pop_front();
        dq->cb_cv.notify_all();
    }
}

// The engine's region id for a local segment (registered on first use).
sci_error_t local_region(sci_dma_queue_t dq, sci_local_segment_t l, std::uint32_t& region) {
    if (l->dma_region == 0) {
        Reply r = dq->conn->call({{"op", "dma_region"}, {"segment_id", l->id}});
        if (r.err != SCI_ERR_OK) {
            return r.err;
        }
        l->dma_region = r.body.value("region_id", 0u);
    }
    region = l->dma_region;
    return SCI_ERR_OK;
}

sci_error_t remote_region(sci_dma_queue_t dq, sci_remote_segment_t s, std::uint32_t& region) {
    if (s->dma_region == 0) {
        Reply r =
            dq->conn->call({{"op", "dma_region"}, {"size", static_cast<std::uint64_t>(s->size)}},
                           {s->memfd.get()});
        if (r.err != SCI_ERR_OK) {
            return r.err;
        }
        s->dma_region = r.body.value("region_id", 0u);
    }
    region = s->dma_region;
    return SCI_ERR_OK;
}

void post(sci_dma_queue_t dq, sci_local_segment_t l, sci_remote_segment_t r,
          const dis_dma_vec_t* vec, size_t n, sci_cb_dma_t callback, void* arg, unsigned int flags,
          sci_error_t* error) {
    Check c(error);
    if (!c.handle(dq, Magic::dma_queue)
             .handle(l, Magic::local_segment)
             .handle(r, Magic::remote_segment)
             .param(vec != nullptr)
             .flags(flags, k_dma_flags)
             .that((flags & SCI_FLAG_USE_CALLBACK) == 0 || callback != nullptr,
                   SCI_ERR_ILLEGAL_FLAG)
             .param(n != 0) ||
        !c.that(n <= DIS_DMA_MAX_VECLEN && n <= dq->capacity, SCI_ERR_MAX_ENTRIES)
             .that(!r->lost.load() && !dq->conn->lost(), SCI_ERR_NODE_NOT_RESPONDING)
             .that(!r->disconnected.load(), SCI_ERR_NOT_CONNECTED)
             .that(l->memfd.valid(), SCI_ERR_SEGMENT_NOT_PREPARED)) {
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        const auto& v = vec[i];
        if (!c.param(v.size != 0)
                 .that(v.local_offset <= l->size && v.size <= l->size - v.local_offset &&
                           v.remote_offset <= r->size && v.size <= r->size - v.remote_offset,
                       SCI_ERR_OUT_OF_RANGE)) {
            return;
        }
    }
    std::uint32_t lreg = 0;
    std::uint32_t rreg = 0;
    sci_error_t err = local_region(dq, l, lreg);
    if (err == SCI_ERR_OK) {
        err = remote_region(dq, r, rreg);
    }
    if (err != SCI_ERR_OK) {
        set(error, err);
        return;
    }
    auto* q = dq->q;
    // Room in the ring (the engine frees it as it completes).
    std::uint32_t need = dq->posted + static_cast<std::uint32_t>(n) - dq->capacity;
    if (!reached(q->completed.load(), need)) {
        err = wait_completed(dq, need, SCI_INFINITE_TIMEOUT);
        if (err != SCI_ERR_OK) {
            set(error, err);
            return;
        }
    }
    if (q->completed.load() == dq->posted) {
        q->error.store(0); // a new batch on an idle queue starts clean
        dq->aborted = false;
    }
    // Twice the expected copy time at ~4 GB/s: how long a waiter may spin (see wait_completed).
    std::uint64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
        total += vec[i].size;
    }
    dq->spin_us = std::clamp<std::int64_t>(k_spin_us + static_cast<std::int64_t>(total / 2000),
                                           k_spin_us, k_max_spin_us);
    for (size_t i = 0; i < n; ++i) {
        wire::DmaDesc d{};
        d.local_region = lreg;
        d.remote_region = rreg;
        d.local_offset = vec[i].local_offset;
        d.remote_offset = vec[i].remote_offset;
        d.size = vec[i].size;
        d.flags = (flags & SCI_FLAG_DMA_READ) != 0 ? wire::k_dma_read : 0;
        std::memcpy(&q->ring[(dq->posted + i) % dq->capacity], &d, sizeof(d));
    }
    dq->posted += static_cast<std::uint32_t>(n);
    // Tell the engine where we run, so it can place itself (see tools/disd/engine.cpp).
    int cpu = sched_getcpu();
    q->poster_cpu.store(cpu >= 0 ? static_cast<std::uint32_t>(cpu) + 1 : 0,
                        std::memory_order_relaxed);
    q->head.store(dq->posted, std::memory_order_seq_cst);
    ring_doorbell(dq);
    if ((flags & SCI_FLAG_USE_CALLBACK) != 0) {
        std::lock_guard lock(dq->cb_mutex);
        if (!dq->cb_thread.joinable()) {
            dq->cb_thread = std::thread(callback_thread, dq);
        }
        dq->cb_pending.emplace_back(dq->posted, callback, arg);
        dq->cb_cv.notify_all();
    }
    if ((flags & SCI_FLAG_DMA_WAIT) != 0) {
        err = wait_completed(dq, dq->posted, SCI_INFINITE_TIMEOUT);
        if (err == SCI_ERR_OK) {
            err = static_cast<sci_error_t>(q->error.load());
        }
        set(error, err);
        return;
    }
    set(error, SCI_ERR_OK);
}

} // namespace

SCI_API void SCICreateDMAQueue(sci_desc_t sd, sci_dma_queue_t* dq, unsigned int localAdapterNo,
                               unsigned int maxEntries, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(dq != nullptr && maxEntries != 0)
             .flags(flags, 0)
             .adapter(localAdapterNo)
             .that(maxEntries <= 4096, SCI_ERR_MAX_ENTRIES)
             .home() ||
        !c.that(c.home_conn()->doorbell_fd() >= 0, SCI_ERR_DMA_NOT_AVAILABLE)) {
        return;
    }
    const std::shared_ptr<Conn>& home = c.home_conn();
    // Room for one whole vector of DIS_DMA_MAX_VECLEN entries whatever maxEntries says (the
    // vendor's programs post such vectors on queues made with maxEntries 1).
    std::uint32_t capacity = std::max<std::uint32_t>(maxEntries, DIS_DMA_MAX_VECLEN);
    Reply r = home->call({{"op", "dma_queue_create"}, {"capacity", capacity}});
    if (!c.status(r.err)) {
        return;
    }
    auto q = std::make_unique<sci_dma_queue>();
    q->sd = sd;
    q->conn = home;
    q->id = r.body.value("queue_id", 0u);
    q->capacity = capacity;
    q->fd = take_fd(r, 0);
    q->shm = wire::map_shared(q->fd.get(), wire::dma_queue_bytes(capacity));
    q->doorbell_map = wire::map_shared(home->doorbell_fd(), 4096);
    if (q->shm.get() == nullptr || q->doorbell_map.get() == nullptr) {
        home->call({{"op", "dma_queue_remove"}, {"queue_id", q->id}});
        set(error, SCI_ERR_NOSPC);
        return;
    }
    q->q = static_cast<wire::DmaQueueShared*>(q->shm.get());
    q->doorbell = static_cast<wire::DmaDoorbell*>(q->doorbell_map.get());
    hand_out(q.release(), dq, error);
}

SCI_API void SCIRemoveDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(dq, Magic::dma_queue).flags(flags, 0) ||
        !c.that(dq->q->completed.load() == dq->posted || dq->conn->lost(), SCI_ERR_BUSY)) {
        return;
    }
    {
        std::lock_guard lock(dq->cb_mutex);
        dq->cb_stop = true;
        dq->cb_cv.notify_all();
    }
    if (dq->cb_thread.joinable()) {
        dq->cb_thread.join();
    }
    if (!dq->conn->lost()) {
        dq->conn->call({{"op", "dma_queue_remove"}, {"queue_id", dq->id}});
    }
    destroy(dq);
    set(error, SCI_ERR_OK);
}

SCI_API void SCIStartDmaTransfer(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                                 sci_remote_segment_t remoteSegment, size_t localOffset,
                                 size_t size, size_t remoteOffset, sci_cb_dma_t callback,
                                 void* callbackArg, unsigned int flags, sci_error_t* error) {
    dis_dma_vec_t v{size, localOffset, remoteOffset, 0};
    post(dq, localSegment, remoteSegment, &v, 1, callback, callbackArg, flags, error);
}

SCI_API void SCIStartDmaTransferVec(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                                    sci_remote_segment_t remoteSegment, size_t vecLength,
                                    dis_dma_vec_t* disDmaVec, sci_cb_dma_t callback,
                                    void* callbackArg, unsigned int flags, sci_error_t* error) {
    post(dq, localSegment, remoteSegment, disDmaVec, vecLength, callback, callbackArg, flags,
         error);
}

SCI_API sci_dma_queue_state_t SCIDMAQueueState(sci_dma_queue_t dq) {
    if (!valid(dq, Magic::dma_queue)) {
        return SCI_DMAQUEUE_ERROR;
    }
    if (dq->aborted) {
        return SCI_DMAQUEUE_ABORTED;
    }
    std::uint32_t c = dq->q->completed.load(std::memory_order_acquire);
    if (c != dq->posted) {
        if (dq->conn->lost()) {
            return SCI_DMAQUEUE_ERROR;
        }
        // Callers poll this in a loop: let the engine have the CPU at once when it is
        // confined to ours, else now and then in case it shares ours (rarely enough not to
        // add latency when it does not).
        if (++dq->polls % 8 == 0 || engine_here(dq)) {
            sched_yield();
        }
        return SCI_DMAQUEUE_POSTED;
    }
    if (dq->q->error.load() != 0) {
        return SCI_DMAQUEUE_ERROR;
    }
    return dq->posted == 0 ? SCI_DMAQUEUE_IDLE : SCI_DMAQUEUE_DONE;
}

SCI_API sci_dma_queue_state_t SCIWaitForDMAQueue(sci_dma_queue_t dq, unsigned int timeout,
                                                 unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(dq, Magic::dma_queue).flags(flags, SCI_FLAG_DIS_SLEEP_WAIT)) {
        return SCI_DMAQUEUE_ERROR;
    }
    sci_error_t err =
        wait_completed(dq, dq->posted, timeout, (flags & SCI_FLAG_DIS_SLEEP_WAIT) == 0);
    if (err == SCI_ERR_TIMEOUT) {
        set(error, err);
        return SCI_DMAQUEUE_POSTED;
    }
    if (err == SCI_ERR_OK) {
        err = static_cast<sci_error_t>(dq->q->error.load());
    }
    set(error, err);
    if (dq->aborted) {
        return SCI_DMAQUEUE_ABORTED;
    }
    return err == SCI_ERR_OK ? SCI_DMAQUEUE_DONE : SCI_DMAQUEUE_ERROR;
}

SCI_API void SCIAbortDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(dq, Magic::dma_queue).flags(flags, 0)) {
        return;
    }
    dq->q->abort.store(1, std::memory_order_seq_cst);
    ring_doorbell(dq);
    sci_error_t err = wait_completed(dq, dq->posted, SCI_INFINITE_TIMEOUT);
    dq->q->abort.store(0, std::memory_order_seq_cst);
    dq->aborted = true;
    set(error, err);
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCICreateDMAQueue)
SCI_VENDOR_NAMES(SCIRemoveDMAQueue)
SCI_VENDOR_NAMES(SCIStartDmaTransfer)
SCI_VENDOR_NAMES(SCIStartDmaTransferVec)
SCI_VENDOR_NAMES(SCIDMAQueueState)
SCI_VENDOR_NAMES(SCIWaitForDMAQueue)
SCI_VENDOR_NAMES(SCIAbortDMAQueue)
