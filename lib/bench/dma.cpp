// DMA tests: bandwidth and post-to-completion latency in four completion modes.
#include "families.hpp"
#include "rounds.hpp"

#include "dis/unique_fd.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

namespace dis::bench::detail {

namespace {

// One DMA transfer of [local_off, +size) <-> [remote_off, +size), as a vector of `vector`
// entries when asked. Does not wait.
void post_dma(Session& s, sci::DmaQueue& q, const BenchOptions& o, std::uint64_t size,
              std::size_t local_off, std::size_t remote_off, sci_cb_dma_t cb, void* cb_arg,
              unsigned int extra_flags) {
    const unsigned int flags = (o.pull ? SCI_FLAG_DMA_READ : 0u) | extra_flags;
    sci_error_t err = SCI_ERR_OK;
    if (o.vector > 1) {
        std::vector<dis_dma_vec_t> vec(o.vector);
        const std::size_t chunk = size / o.vector / 64 * 64;
        for (std::size_t i = 0; i < o.vector; ++i) {
            vec[i].size = i + 1 == o.vector ? size - chunk * i : chunk;
            vec[i].local_offset = local_off + chunk * i;
            vec[i].remote_offset = remote_off + chunk * i;
            vec[i].flags = 0;
        }
        SCIStartDmaTransferVec(q.get(), s.local().handle(), s.data().handle(), vec.size(),
                               vec.data(), cb, cb_arg, flags, &err);
        sci::check(err, "SCIStartDmaTransferVec");
    } else {
        SCIStartDmaTransfer(q.get(), s.local().handle(), s.data().handle(), local_off, size,
                            remote_off, cb, cb_arg, flags, &err);
        sci::check(err, "SCIStartDmaTransfer");
    }
}

void wait_dma(sci::DmaQueue& q, const BenchOptions& o, unsigned int flags = SCI_NO_FLAGS) {
    sci_error_t err = SCI_ERR_OK;
    auto state = SCIWaitForDMAQueue(q.get(), sci::timeout_ms(o.timeout), flags, &err);
    sci::check(err, "SCIWaitForDMAQueue");
    if (state != SCI_DMAQUEUE_DONE)
        throw Error(ErrorKind::os, "DMA transfer ended in state " + std::to_string(state));
}

void poll_dma(sci::DmaQueue& q, const BenchOptions& o) {
    const auto deadline = Clock::now() + o.timeout;
    for (unsigned spins = 0;; ++spins) {
        auto state = SCIDMAQueueState(q.get());
        if (state == SCI_DMAQUEUE_DONE)
            return;
        if (state == SCI_DMAQUEUE_ERROR || state == SCI_DMAQUEUE_ABORTED)
            throw Error(ErrorKind::os,
                        "DMA transfer failed (queue state " + std::to_string(state) + ")");
        if (spins % 4096 == 4095) {
            if (Clock::now() > deadline)
                throw Error(ErrorKind::timeout, "DMA transfer did not complete");
            // Like the ping-pong's wait: after microseconds without completion the engine
            // may be waiting for this CPU.
            std::this_thread::yield();
        }
    }
}

struct DmaCallbackState {
    std::atomic<int> done{0};
    std::atomic<int> status{SCI_ERR_OK};
    Clock::time_point when; // written before `done` is released
    UniqueFd wake;          // sleep mode: written by the callback, read by the sleeping caller
};

// The completion as the application sees it: the moment its callback runs.
sci_callback_action_t dma_done(void* arg, sci_dma_queue_t, sci_error_t status) {
    auto* state = static_cast<DmaCallbackState*>(arg);
    state->when = Clock::now();
    state->status.store(status, std::memory_order_relaxed);
    state->done.store(1, std::memory_order_release);
    if (state->wake.get() >= 0) {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = write(state->wake.get(), &one, sizeof one);
    }
    return SCI_CALLBACK_CONTINUE;
}

void check_callback_status(const DmaCallbackState& state) {
    if (state.status.load() != SCI_ERR_OK)
        sci::throw_error("DMA transfer (callback)", static_cast<sci_error_t>(state.status.load()));
}

// Callback mode: waits for the callback without hogging a CPU its thread may need.
Clock::time_point wait_callback(DmaCallbackState& state, const BenchOptions& o) {
    const auto deadline = Clock::now() + o.timeout;
    for (unsigned spins = 0; !state.done.load(std::memory_order_acquire); ++spins) {
        if (spins < 200)
            continue;
        std::this_thread::yield();
        if (spins % 256 == 0 && Clock::now() > deadline)
            throw Error(ErrorKind::timeout, "no DMA completion callback");
    }
    check_callback_status(state);
    return state.when;
}

#ifndef SCI_FLAG_DIS_SLEEP_WAIT
// Sleep mode on a SISCI without SCI_FLAG_DIS_SLEEP_WAIT: the caller blocks in the kernel
// until the callback wakes it; the latency ends when the caller runs again.
Clock::time_point sleep_until_callback(DmaCallbackState& state, const BenchOptions& o) {
    pollfd p{state.wake.get(), POLLIN, 0};
    for (;;) {
        int r = ::poll(&p, 1, static_cast<int>(o.timeout.count()));
        if (r > 0)
            break;
        if (r == 0)
            throw Error(ErrorKind::timeout, "no DMA completion callback");
        if (errno != EINTR)
            throw os_error("poll", errno);
    }
    std::uint64_t v = 0;
    if (read(state.wake.get(), &v, sizeof v) != sizeof v)
        throw os_error("read eventfd", errno);
    auto t1 = Clock::now();
    check_callback_status(state);
    return t1;
}
#endif

// Both DMA source regions (push: ours; pull: the responder's), prepared, with the checksums
// the last transfer must match.
struct DmaPayload {
    std::uint64_t sums[2] = {0, 0};
};

DmaPayload prepare_dma(Session& s, const BenchOptions& o, std::uint64_t size) {
    DmaPayload p;
    if (2 * size > s.local().size() || 2 * size > s.data().size())
        throw Error(ErrorKind::invalid_input, "size larger than the DMA segments");
    if (o.vector > 1 && size < 64 * o.vector)
        throw Error(ErrorKind::invalid_input, "size " + std::to_string(size) +
                                                  " is too small for a vector of " +
                                                  std::to_string(o.vector) + " entries");
    for (int r = 0; r < 2; ++r) {
        const std::uint64_t seed = size * 8 + static_cast<std::uint64_t>(r) + 11;
        if (o.pull) {
            p.sums[r] = s.request(Op::fill, size, r * size, seed);
        } else {
            fill_pattern(s.local().bytes() + r * size, size, seed);
            p.sums[r] = checksum(s.local().bytes() + r * size, size);
        }
    }
    if (o.pull)
        std::memset(s.local().bytes(), 0, size);
    else
        s.request(Op::fill, size, 0, size * 8 + 99); // poison the target
    return p;
}

// Records on `r` whether the last transfer's payload arrived intact.
void verify_dma(Session& s, const BenchOptions& o, std::uint64_t size, const DmaPayload& p,
                std::uint64_t last, Result& r) {
    const std::uint64_t got =
        o.pull ? checksum(s.local().bytes(), size) : s.request(Op::verify, size, 0, 0);
    const Payload check = checksum_check(p.sums[last & 1], got);
    set_payload(r, check,
                check == Payload::verified ? "checksum of the last transfer matches"
                                           : "the last DMA transfer did not arrive intact");
}

// The engine doing the copies runs in the local node's daemon (software fabric).
CpuTime engine_cpu(double local_s, std::optional<double> before, std::optional<double> after,
                   const std::string& who) {
    CpuTime c{local_s, std::nullopt, who};
    if (before && after)
        c.remote_s = *after - *before;
    return c;
}

Wait wait_of(DmaMode mode) {
    switch (mode) {
    case DmaMode::wait:
    case DmaMode::callback:
        return Wait::spin_then_sleep;
    case DmaMode::sleep:
        return Wait::sleep;
    case DmaMode::poll:
        return Wait::spin;
    }
    return Wait::spin;
}

const char* completion_of(DmaMode mode) {
    switch (mode) {
    case DmaMode::wait:
        return "SCIWaitForDMAQueue: spins (on libsisci: about 30 us, longer for large "
               "transfers), then sleeps until woken";
    case DmaMode::sleep:
#ifdef SCI_FLAG_DIS_SLEEP_WAIT
        return "SCIWaitForDMAQueue with SCI_FLAG_DIS_SLEEP_WAIT: the caller sleeps in the kernel "
               "at once, no spinning, until the engine wakes it";
#else
        return "the caller sleeps in the kernel (an eventfd) until the completion callback "
               "wakes it; the SISCI library's callback thread may spin first";
#endif
    case DmaMode::poll:
        return "SCIDMAQueueState in a loop: the caller spins";
    case DmaMode::callback:
        return "the completion callback's own time stamp; libsisci's callback thread spins, "
               "then sleeps";
    }
    return "";
}

} // namespace

void dma_bw(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = o.pull ? "pull" : "push";
    sci::DmaQueue queue(s.sd(), o.adapter, std::max<std::uint32_t>(o.vector, 1));
    const std::string method = o.vector > 1 ? "dma-vector-" + std::to_string(o.vector) : "dma";
    for (auto size : o.sizes) {
        auto payload = prepare_dma(s, o, size);
        Totals totals;
        MemcpyRounds yardstick(o, size);
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = round_options(o, r, rounds);
            auto loop = timed_loop(ro, [&](std::uint64_t i) {
                // Alternate between the two source regions so the final check sees the last.
                const std::size_t src = (i & 1) * size;
                post_dma(s, queue, o, size, o.pull ? 0 : src, o.pull ? src : 0, nullptr, nullptr,
                         0);
                wait_dma(queue, o);
            });
            totals.add(loop);
            yardstick.round(ro, loop.iterations);
        }
        auto result = bandwidth_result(size, method, totals.loop());
        verify_dma(s, o, size, payload, totals.last, result);
        rep.results.push_back(std::move(result));
        yardstick.finish(rep);
    }
}

void dma_latency(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = to_string(o.dma_mode);
    if (o.pull)
        rep.mode += "-pull";
    rep.completion = completion_of(o.dma_mode);
    sci::DmaQueue queue(s.sd(), o.adapter, std::max<std::uint32_t>(o.vector, 1));
    DmaCallbackState state;
#ifndef SCI_FLAG_DIS_SLEEP_WAIT
    if (o.dma_mode == DmaMode::sleep) {
        state.wake = UniqueFd(eventfd(0, EFD_CLOEXEC));
        if (state.wake.get() < 0)
            throw os_error("eventfd", errno);
    }
#endif
    const pid_t engine = engine_pid(s.local_node());
    const std::string engine_name =
        engine > 0 ? "disd node " + std::to_string(s.local_node()) + " (its DMA engine)"
                   : "DMA engine (CPU time not readable)";
    bool eventfd_done = false;
    for (auto size : o.sizes) {
        auto payload = prepare_dma(s, o, size);
        std::vector<double> samples;
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
        const auto engine0 = other_process_cpu_s(engine);
        const double local0 = process_cpu_s();
        auto loop = timed_loop(o, [&](std::uint64_t i) {
            const std::size_t src = (i & 1) * size;
            const std::size_t lo = o.pull ? 0 : src, ro = o.pull ? src : 0;
            auto t0 = Clock::now();
            Clock::time_point t1;
            switch (o.dma_mode) {
            case DmaMode::wait:
                post_dma(s, queue, o, size, lo, ro, nullptr, nullptr, 0);
                wait_dma(queue, o);
                t1 = Clock::now();
                break;
            case DmaMode::poll:
                post_dma(s, queue, o, size, lo, ro, nullptr, nullptr, 0);
                poll_dma(queue, o);
                t1 = Clock::now();
                break;
            case DmaMode::callback:
                state.done.store(0);
                post_dma(s, queue, o, size, lo, ro, dma_done, &state, SCI_FLAG_USE_CALLBACK);
                t1 = wait_callback(state, o);
                break;
            case DmaMode::sleep:
#ifdef SCI_FLAG_DIS_SLEEP_WAIT
                post_dma(s, queue, o, size, lo, ro, nullptr, nullptr, 0);
                wait_dma(queue, o, SCI_FLAG_DIS_SLEEP_WAIT);
                t1 = Clock::now();
#else
                state.done.store(0);
                post_dma(s, queue, o, size, lo, ro, dma_done, &state, SCI_FLAG_USE_CALLBACK);
                t1 = sleep_until_callback(state, o);
#endif
                break;
            }
            if (i >= o.warmup)
                samples.push_back(elapsed_us(t0, t1));
        });
        const double local_s = process_cpu_s() - local0;
        const auto cpu = engine_cpu(local_s, engine0, other_process_cpu_s(engine), engine_name);
        const auto n = samples.size();
        auto result = latency_result(size, "dma", wait_of(o.dma_mode), std::move(samples), cpu);
        verify_dma(s, o, size, payload, loop.last, result);
        rep.results.push_back(std::move(result));
        if (!o.baseline)
            continue;
        // A spinning completion is held to the host's spinning path (a store seen by a
        // poller), a sleeping one to a wake-up.
        if (yardstick_wait(wait_of(o.dma_mode)) == Wait::spin) {
            rep.baseline.push_back(
                store_yardstick_after(o, std::max<std::uint64_t>(size / 4 * 4, 4), n));
        } else if (!eventfd_done) {
            rep.baseline.push_back(eventfd_yardstick_after(o, n));
            eventfd_done = true;
        }
    }
}

} // namespace dis::bench::detail
