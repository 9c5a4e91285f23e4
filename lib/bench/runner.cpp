// The initiating side of every test: connects to the responder, measures, verifies the
// payload and measures the matching host baseline at the same sizes.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include "pingpong.hpp"
#include "process.hpp"
#include "protocol.hpp"
#include "sisci.hpp"
#include "watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

namespace dis::bench {

using namespace detail;

namespace {

#ifdef SCI_MAX_DATA_INTERRUPT_SIZE
constexpr std::size_t k_data_intr_capacity = SCI_MAX_DATA_INTERRUPT_SIZE;
#else
constexpr std::size_t k_data_intr_capacity = 1024;
#endif

void flush() {
    SCIFlush(nullptr, SCI_NO_FLAGS);
}

[[noreturn]] void payload_error(const BenchOptions& o, std::uint64_t size,
                                const std::string& what) {
    throw Error(ErrorKind::check_failed, std::string(to_string(o.test)) +
                                             ": payload check failed at size " +
                                             std::to_string(size) + ": " + what);
}

// A connection to the responder: its control and data segments, our own segment, and the
// responder process when we started it.
class Session {
public:
    explicit Session(const BenchOptions& o) : m_o(o) {
        m_sci = std::make_unique<SciDescriptor>(); // fails fast without a fabric
        if (!o.responder_argv.empty())
            m_child = ChildProcess::spawn(o.responder_argv, o.responder_env);
        m_local_node = local_node_id(o.adapter);
        const std::uint64_t max_size =
            o.sizes.empty() ? 0 : *std::max_element(o.sizes.begin(), o.sizes.end());
        const std::size_t bytes = segment_bytes_for(std::max<std::uint64_t>(max_size, 4096));
        m_local = std::make_unique<LocalSegment>(
            m_sci->get(), k_client_segment_base | (static_cast<unsigned>(getpid()) & 0xffff), bytes,
            o.adapter);
        try {
            m_control = std::make_unique<RemoteSegment>(
                m_sci->get(), o.remote_node, k_control_segment_id, o.adapter, o.timeout, [this] {
                    if (!responder_alive())
                        throw responder_died();
                    return true;
                });
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::not_found && e.kind() != ErrorKind::timeout)
                throw;
            throw Error(
                ErrorKind::fabric_down,
                "no responder on node " + std::to_string(o.remote_node) +
                    (o.responder_argv.empty() ? " (start `dis-tool bench serve` there): " : ": ") +
                    e.what());
        }
        wait_until([&] { return get(cb().magic) == k_magic; }, "the responder to start");
        if (get(cb().version) != k_protocol_version)
            throw Error(ErrorKind::fabric_down, "the responder on node " +
                                                    std::to_string(o.remote_node) +
                                                    " speaks another protocol version");
        // The responder we started, not one that another run left on that node (ours then
        // failed to create the well-known control segment, and its error says so).
        if (!o.responder_argv.empty() &&
            get(cb().responder_pid) != static_cast<std::uint64_t>(m_child.pid())) {
            m_child.wait(std::chrono::milliseconds(2000));
            throw Error(
                ErrorKind::fabric_down, "another bench responder is already running on node " +
                                            std::to_string(o.remote_node) + " (" +
                                            m_child.describe() +
                                            [&] {
                                                auto t = m_child.error_output();
                                                return t.empty() ? std::string() : ": " + t;
                                            }() +
                                            ")");
        }
        m_seq = std::max(get(cb().req_seq), get(cb().ack_seq));
        request(Op::hello, bytes, m_local_node, SCIGetLocalSegmentId(m_local->handle()));
        m_data = std::make_unique<RemoteSegment>(m_sci->get(), o.remote_node, k_data_segment_id,
                                                 o.adapter, o.timeout);
    }

    // On an error path: end any phase and say goodbye without waiting for answers, so the
    // responder exits by itself; the ChildProcess member kills it if it does not.
    ~Session() {
        if (m_finished || !m_control)
            return;
        put(cb().stop_seq, m_seq);
        post(Op::bye, 0, 0, 0);
        if (m_child.running())
            m_child.wait(std::chrono::milliseconds(1000));
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Says goodbye and waits for a responder we started to exit.
    void finish() {
        m_finished = true;
        m_data.reset(); // let go of the responder's data segment before it removes it
        request(Op::bye, 0, 0, 0);
        m_control.reset();
        if (m_child.running()) {
            m_child.wait(m_o.timeout);
            if (m_child.describe() != "exit status 0")
                throw responder_died();
        }
    }

    std::uint64_t request(Op op, std::uint64_t size, std::uint64_t offset, std::uint64_t arg) {
        post(op, size, offset, arg);
        wait_until([&] { return get(cb().ack_seq) == m_seq; }, "the responder to answer");
        check_status();
        return get(cb().result);
    }

    // Starts a measurement phase; returns the responder's ready result.
    std::uint64_t begin_phase(Op op, std::uint64_t size, std::uint64_t arg) {
        return request(op, size, 0, arg);
    }

    // Tells the responder to end the running phase (end_phase waits for its results).
    void request_stop() {
        put(cb().stop_seq, m_seq);
        flush();
    }

    PhaseResult end_phase() {
        request_stop();
        wait_until([&] { return get(cb().done_seq) == m_seq; }, "the responder to end the phase");
        check_status();
        return {get(cb().result), get(cb().result2), get(cb().result3)};
    }

    sci_desc_t sd() const { return m_sci->get(); }
    std::uint32_t local_node() const { return m_local_node; }
    LocalSegment& local() { return *m_local; }
    RemoteSegment& data() { return *m_data; }

private:
    ControlBlock& cb() { return *reinterpret_cast<ControlBlock*>(m_control->bytes()); }

    Error responder_died() {
        auto text = m_child.error_output();
        return Error(ErrorKind::fabric_down,
                     "the responder on node " + std::to_string(m_o.remote_node) + " exited (" +
                         m_child.describe() + ")" + (text.empty() ? "" : ": " + text));
    }

    bool responder_alive() {
        if (!m_child.running())
            return m_o.responder_argv.empty();
        return !m_child.poll_exited();
    }

    void post(Op op, std::uint64_t size, std::uint64_t offset, std::uint64_t arg) {
        auto& c = cb();
        put(c.op, static_cast<std::uint64_t>(op));
        put(c.size, size);
        put(c.offset, offset);
        put(c.arg, arg);
        put(c.req_seq, ++m_seq);
        flush();
    }

    void check_status() {
        if (get(cb().status) == 0)
            return;
        char message[sizeof(ControlBlock::message)];
        std::memcpy(message, cb().message, sizeof message);
        message[sizeof message - 1] = '\0';
        throw Error(ErrorKind::fabric_down, std::string("the responder failed: ") + message);
    }

    template <class Pred> void wait_until(Pred&& done, const char* what) {
        const auto deadline = Clock::now() + m_o.timeout;
        for (unsigned spins = 0; !done(); ++spins) {
            if (spins < 1000)
                continue;
            std::this_thread::sleep_for(std::chrono::microseconds(20));
            if (spins % 256 == 0 && !responder_alive())
                throw responder_died();
            if (Clock::now() > deadline)
                throw Error(ErrorKind::timeout, std::string("timed out waiting for ") + what +
                                                    " on node " + std::to_string(m_o.remote_node));
        }
    }

    const BenchOptions& m_o;
    ChildProcess m_child; // declared first: stopped after everything else is released
    std::unique_ptr<SciDescriptor> m_sci;
    std::uint32_t m_local_node = 0;
    std::unique_ptr<LocalSegment> m_local;
    std::unique_ptr<RemoteSegment> m_control;
    std::unique_ptr<RemoteSegment> m_data;
    std::uint64_t m_seq = 0;
    bool m_finished = false;
};

// Runs `body(i)` for warm-up, then either `iterations` times or for `duration_s`, timing the
// measured part. Returns (iterations, seconds, index of the last call).
struct LoopResult {
    std::uint64_t iterations = 0;
    double seconds = 0;
    std::uint64_t last = 0;
};

template <class Body> LoopResult timed_loop(const BenchOptions& o, Body&& body) {
    std::uint64_t i = 0;
    for (; i < o.warmup; ++i)
        body(i);
    LoopResult r;
    const auto t0 = Clock::now();
    if (o.duration_s > 0) {
        const auto end = t0 + std::chrono::duration<double>(o.duration_s);
        do {
            body(i++);
            ++r.iterations;
        } while (Clock::now() < end);
    } else {
        for (std::uint64_t n = 0; n < o.iterations; ++n, ++i) {
            body(i);
            ++r.iterations;
        }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.last = i - 1;
    return r;
}

Result latency_result(std::uint64_t size, std::string method, std::vector<double> samples) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.latency = compute_latency_stats(std::move(samples));
    r.payload_verified = true;
    return r;
}

Result bandwidth_result(std::uint64_t size, std::string method, const LoopResult& loop) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.bandwidth = compute_bandwidth(size, loop.iterations, loop.seconds);
    r.payload_verified = true;
    return r;
}

Result baseline_latency(std::uint64_t size, std::string method, LatencyStats s) {
    Result r;
    r.size = size;
    r.method = std::move(method);
    r.latency = s;
    r.payload_verified = true;
    return r;
}

std::uint64_t baseline_iterations(const BenchOptions& o, std::uint64_t measured) {
    return o.duration_s > 0 ? std::max<std::uint64_t>(measured, 1) : o.iterations;
}

// ---- the tests ------------------------------------------------------------------------------

void pio_latency(Session& s, const BenchOptions& o, Report& rep) {
    for (auto size : o.sizes) {
        Messenger messenger(size, 1);
        std::memset(s.local().bytes(), 0, pingpong_window(size));
        s.begin_phase(Op::ping_pio, size, 0);
        auto r = run_initiator(messenger, s.data().bytes(), s.local().bytes(), o.warmup,
                               o.iterations, o.duration_s, o.timeout, flush);
        auto remote = s.end_phase();
        if (remote.messages != r.messages)
            payload_error(o, size,
                          "the responder saw " + std::to_string(remote.messages) + " of " +
                              std::to_string(r.messages) + " messages");
        if (remote.received_sum != r.sent_sum)
            payload_error(o, size, "messages to the responder arrived corrupted");
        if (remote.sent_sum != r.received_sum)
            payload_error(o, size, "replies from the responder arrived corrupted");
        const auto n = r.samples_us.size();
        rep.results.push_back(latency_result(size, "store", std::move(r.samples_us)));
        if (o.baseline)
            rep.baseline.push_back(baseline_latency(
                size, "shm-store",
                baseline_store_pingpong(size, baseline_iterations(o, n), o.warmup, o.remote_cpu)));
    }
}

// Bandwidth tests interleave the fabric and the memcpy baseline in rounds: on a shared host the
// background load changes from one millisecond to the next, and both must see the same load.
constexpr std::uint64_t k_rounds = 32;

std::uint64_t rounds_for(const BenchOptions& o) {
    return o.duration_s > 0 ? k_rounds
                            : std::max<std::uint64_t>(std::min(k_rounds, o.iterations), 1);
}

// Round `r`'s share of the iterations (or duration). The warm-up runs before the first round;
// every later chunk (fabric and baseline alike) gets one untimed copy to bring its buffers back
// into the caches the previous chunk used.
BenchOptions round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds) {
    BenchOptions ro = o;
    ro.warmup = r == 0 ? o.warmup : 1;
    ro.iterations = o.iterations / rounds + (r < o.iterations % rounds ? 1 : 0);
    ro.duration_s = o.duration_s / static_cast<double>(rounds);
    return ro;
}

struct Totals {
    std::uint64_t iterations = 0;
    double seconds = 0;
    std::uint64_t last = 0; // index of the last call of the last round

    void add(const LoopResult& l) {
        iterations += l.iterations;
        seconds += l.seconds;
        last = l.last;
    }
    void add(const Bandwidth& b) {
        iterations += b.iterations;
        seconds += b.seconds;
    }
    LoopResult loop() const { return {iterations, seconds, last}; }
};

// One memcpy baseline round of `iterations` copies (at least one).
void memcpy_round(Totals& base, std::optional<MemcpyBaseline>& yardstick, const BenchOptions& ro,
                  std::uint64_t iterations) {
    if (yardstick)
        base.add(yardstick->run(std::max<std::uint64_t>(iterations, 1), ro.warmup));
}

void add_memcpy_baseline(Report& rep, const BenchOptions& o, std::uint64_t size,
                         const Totals& base) {
    if (!o.baseline)
        return;
    Result b;
    b.size = size;
    b.method = "memcpy";
    b.bandwidth = compute_bandwidth(size, base.iterations, base.seconds);
    b.payload_verified = true;
    rep.baseline.push_back(b);
}

void pio_bw(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = o.read ? "read" : "write";
    MapSequence sequence(s.data().map());
    const std::string methods[2] = {"scimemcpy", o.read ? "load" : "store"};
    for (auto size : o.sizes) {
        if (2 * size > s.data().size())
            throw Error(ErrorKind::invalid_input, "size larger than the remote segment");
        // Each method has its own region of the remote segment, checked after the last round.
        std::vector<unsigned char> buf[2] = {std::vector<unsigned char>(size),
                                             std::vector<unsigned char>(size)};
        std::uint64_t expected[2] = {0, 0};
        if (o.read) {
            for (std::uint64_t m = 0; m < 2; ++m)
                expected[m] = s.request(Op::fill, size, m * size, size * 4 + 5 + m);
        } else {
            // Two source patterns used alternately; the regions are poisoned first so that
            // stale data cannot pass the final check.
            fill_pattern(buf[0].data(), size, size * 4 + 1);
            fill_pattern(buf[1].data(), size, size * 4 + 2);
            for (std::uint64_t m = 0; m < 2; ++m)
                s.request(Op::fill, size, m * size, size * 4 + 3 + m);
        }
        Totals totals[2], base;
        std::optional<MemcpyBaseline> yardstick;
        if (o.baseline)
            yardstick.emplace(size);
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = round_options(o, r, rounds);
            std::uint64_t measured = 0;
            for (std::size_t m = 0; m < 2; ++m) {
                const std::size_t off = m * size;
                const bool sci = m == 0;
                LoopResult loop;
                if (!o.read) {
                    loop = timed_loop(ro, [&](std::uint64_t i) {
                        auto& from = buf[i & 1];
                        if (sci) {
                            sci_error_t err = SCI_ERR_OK;
                            SCIMemCpy(sequence.get(), from.data(), s.data().map(), off, size,
                                      SCI_NO_FLAGS, &err);
                            check_sci(err, "SCIMemCpy");
                        } else {
                            std::memcpy(s.data().bytes() + off, from.data(), size);
                            asm volatile("" : : : "memory");
                        }
                    });
                } else {
                    auto& to = buf[m];
                    loop = timed_loop(ro, [&](std::uint64_t) {
                        if (sci) {
                            sci_error_t err = SCI_ERR_OK;
                            SCIMemCpy(sequence.get(), to.data(), s.data().map(), off, size,
                                      SCI_FLAG_BLOCK_READ, &err);
                            check_sci(err, "SCIMemCpy(SCI_FLAG_BLOCK_READ)");
                        } else {
                            std::memcpy(to.data(), s.data().bytes() + off, size);
                        }
                        asm volatile("" : : "r"(to.data()) : "memory");
                    });
                }
                totals[m].add(loop);
                measured = std::max(measured, loop.iterations);
            }
            memcpy_round(base, yardstick, ro, measured);
        }
        flush();
        for (std::size_t m = 0; m < 2; ++m) {
            const bool intact = o.read ? checksum(buf[m].data(), size) == expected[m]
                                       : s.request(Op::verify, size, m * size, 0) ==
                                             checksum(buf[totals[m].last & 1].data(), size);
            if (!intact)
                payload_error(o, size,
                              methods[m] +
                                  (o.read ? " read wrong data" : " data did not arrive intact"));
            rep.results.push_back(bandwidth_result(size, methods[m], totals[m].loop()));
        }
        add_memcpy_baseline(rep, o, size, base);
    }
}

// One DMA transfer of [local_off, +size) <-> [remote_off, +size), as a vector of `vector`
// entries when asked. Does not wait.
void post_dma(Session& s, DmaQueue& q, const BenchOptions& o, std::uint64_t size,
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
        check_sci(err, "SCIStartDmaTransferVec");
    } else {
        SCIStartDmaTransfer(q.get(), s.local().handle(), s.data().handle(), local_off, size,
                            remote_off, cb, cb_arg, flags, &err);
        check_sci(err, "SCIStartDmaTransfer");
    }
}

void wait_dma(DmaQueue& q, const BenchOptions& o) {
    sci_error_t err = SCI_ERR_OK;
    auto state = SCIWaitForDMAQueue(q.get(), timeout_ms(o.timeout), SCI_NO_FLAGS, &err);
    check_sci(err, "SCIWaitForDMAQueue");
    if (state != SCI_DMAQUEUE_DONE)
        throw Error(ErrorKind::os, "DMA transfer ended in state " + std::to_string(state));
}

void poll_dma(DmaQueue& q, const BenchOptions& o) {
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
};

// The completion as the application sees it: the moment its callback runs.
sci_callback_action_t dma_done(void* arg, sci_dma_queue_t, sci_error_t status) {
    auto* state = static_cast<DmaCallbackState*>(arg);
    state->when = Clock::now();
    state->status.store(status, std::memory_order_relaxed);
    state->done.store(1, std::memory_order_release);
    return SCI_CALLBACK_CONTINUE;
}

// Waits for the callback without hogging a CPU the callback's thread may need.
Clock::time_point wait_callback(DmaCallbackState& state, const BenchOptions& o) {
    const auto deadline = Clock::now() + o.timeout;
    for (unsigned spins = 0; !state.done.load(std::memory_order_acquire); ++spins) {
        if (spins < 200)
            continue;
        std::this_thread::yield();
        if (spins % 256 == 0 && Clock::now() > deadline)
            throw Error(ErrorKind::timeout, "no DMA completion callback");
    }
    if (state.status.load() != SCI_ERR_OK)
        throw_sci("DMA transfer (callback)", static_cast<sci_error_t>(state.status.load()));
    return state.when;
}

// Prepares both DMA source regions (push: ours; pull: the responder's) and returns a
// function checking, after the loop, that the last transfer's payload arrived intact.
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

void verify_dma(Session& s, const BenchOptions& o, std::uint64_t size, const DmaPayload& p,
                std::uint64_t last) {
    const std::uint64_t got =
        o.pull ? checksum(s.local().bytes(), size) : s.request(Op::verify, size, 0, 0);
    if (got != p.sums[last & 1])
        payload_error(o, size, "the last DMA transfer did not arrive intact");
}

void dma_bw(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = o.pull ? "pull" : "push";
    DmaQueue queue(s.sd(), o.adapter, std::max<std::uint32_t>(o.vector, 1));
    const std::string method = o.vector > 1 ? "dma-vector-" + std::to_string(o.vector) : "dma";
    for (auto size : o.sizes) {
        auto payload = prepare_dma(s, o, size);
        Totals totals, base;
        std::optional<MemcpyBaseline> yardstick;
        if (o.baseline)
            yardstick.emplace(size);
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
            memcpy_round(base, yardstick, ro, loop.iterations);
        }
        verify_dma(s, o, size, payload, totals.last);
        rep.results.push_back(bandwidth_result(size, method, totals.loop()));
        add_memcpy_baseline(rep, o, size, base);
    }
}

void dma_latency(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = to_string(o.dma_mode);
    if (o.pull)
        rep.mode += "-pull";
    DmaQueue queue(s.sd(), o.adapter, std::max<std::uint32_t>(o.vector, 1));
    DmaCallbackState state;
    bool eventfd_done = false;
    for (auto size : o.sizes) {
        auto payload = prepare_dma(s, o, size);
        std::vector<double> samples;
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
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
            }
            if (i >= o.warmup)
                samples.push_back(elapsed_us(t0, t1));
        });
        verify_dma(s, o, size, payload, loop.last);
        const auto n = samples.size();
        rep.results.push_back(latency_result(size, "dma", std::move(samples)));
        if (!o.baseline)
            continue;
        // The host path of a completion: a store seen by a poller, or a wake-up.
        if (o.dma_mode == DmaMode::poll) {
            rep.baseline.push_back(baseline_latency(
                size, "shm-store",
                baseline_store_pingpong(std::max<std::uint64_t>(size / 4 * 4, 4),
                                        baseline_iterations(o, n), o.warmup, o.remote_cpu)));
        } else if (!eventfd_done) {
            rep.baseline.push_back(baseline_latency(
                0, "eventfd",
                baseline_eventfd_pingpong(baseline_iterations(o, n), o.warmup, o.remote_cpu)));
            eventfd_done = true;
        }
    }
}

// Wake-up tests interleave with their eventfd yardstick in rounds too (see k_rounds): where
// the kernel's placement and the host's load decide a wake-up's cost, both must see the same.
// Every round after the first starts with a few untimed round trips, since the other side
// slept meanwhile.
BenchOptions latency_round_options(const BenchOptions& o, std::uint64_t r, std::uint64_t rounds) {
    BenchOptions ro = round_options(o, r, rounds);
    if (r > 0)
        ro.warmup = std::max<std::uint64_t>(1, o.warmup / rounds);
    return ro;
}

// One yardstick round of as many round trips as the fabric round measured.
void eventfd_round(std::optional<EventfdBaseline>& yardstick, const BenchOptions& ro,
                   std::uint64_t measured, std::vector<double>& samples) {
    if (yardstick)
        yardstick->run(std::max<std::uint64_t>(measured, 1), ro.warmup, samples);
}

void add_eventfd_baseline(Report& rep, std::optional<EventfdBaseline>& yardstick,
                          std::vector<double> samples) {
    if (!yardstick)
        return;
    yardstick->finish();
    rep.baseline.push_back(
        baseline_latency(0, "eventfd", compute_latency_stats(std::move(samples))));
}

void intr_latency(Session& s, const BenchOptions& o, Report& rep) {
    LocalInterrupt mine(s.sd(), o.adapter);
    const auto theirs_no = s.begin_phase(Op::ping_intr, 0, mine.number());
    std::optional<EventfdBaseline> yardstick;
    if (o.baseline)
        yardstick.emplace(o.remote_cpu);
    std::vector<double> samples, base_samples;
    std::uint64_t total = 0;
    {
        RemoteInterrupt theirs(s.sd(), o.remote_node, o.adapter,
                               static_cast<std::uint32_t>(theirs_no), o.timeout);
        // The measured wait blocks without a timeout, like the eventfd baseline's read; a
        // loopback connection to our own interrupt lets the watchdog end a hung wait.
        RemoteInterrupt self(s.sd(), s.local_node(), o.adapter, mine.number(), o.timeout);
        Watchdog dog(o.timeout, [&] { self.trigger(); });
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = latency_round_options(o, r, rounds);
            auto loop = timed_loop(ro, [&](std::uint64_t i) {
                auto t0 = Clock::now();
                theirs.trigger();
                mine.wait(SCI_INFINITE_TIMEOUT);
                auto t1 = Clock::now();
                if (dog.fired())
                    throw Error(ErrorKind::timeout,
                                "no interrupt back from node " + std::to_string(o.remote_node));
                dog.progress();
                if (i >= ro.warmup)
                    samples.push_back(elapsed_us(t0, t1) / 2);
            });
            total += loop.last + 1;
            eventfd_round(yardstick, ro, loop.iterations, base_samples);
            dog.progress();
        }
        s.request_stop();
        theirs.trigger(); // wakes the responder's blocking wait to see the stop
    }
    auto remote = s.end_phase();
    if (remote.messages != total)
        payload_error(o, 0,
                      "the responder saw " + std::to_string(remote.messages) + " of " +
                          std::to_string(total) + " interrupts");
    rep.results.push_back(latency_result(0, "interrupt", std::move(samples)));
    add_eventfd_baseline(rep, yardstick, std::move(base_samples));
}

void data_intr_latency(Session& s, const BenchOptions& o, Report& rep) {
    std::optional<EventfdBaseline> yardstick;
    if (o.baseline)
        yardstick.emplace(o.remote_cpu);
    std::vector<double> base_samples;
    for (auto size : o.sizes) {
        if (size > k_data_intr_capacity)
            throw Error(ErrorKind::invalid_input,
                        "data interrupts carry at most " + std::to_string(k_data_intr_capacity) +
                            " bytes; size " + std::to_string(size) + " is too large");
        LocalDataInterrupt mine(s.sd(), o.adapter);
        const auto theirs_no = s.begin_phase(Op::ping_data_intr, size, mine.number());
        std::vector<unsigned char> payload[2] = {std::vector<unsigned char>(size),
                                                 std::vector<unsigned char>(size)};
        fill_pattern(payload[0].data(), size, size * 2 + 1);
        fill_pattern(payload[1].data(), size, size * 2 + 2);
        const std::uint64_t sums[2] = {checksum(payload[0].data(), size),
                                       checksum(payload[1].data(), size)};
        std::vector<unsigned char> echo(k_data_intr_capacity);
        std::vector<double> samples;
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
        std::uint64_t sent_sum = 0, echo_sum = 0, total = 0;
        {
            RemoteDataInterrupt theirs(s.sd(), o.remote_node, o.adapter,
                                       static_cast<std::uint32_t>(theirs_no), o.timeout);
            RemoteDataInterrupt self(s.sd(), s.local_node(), o.adapter, mine.number(), o.timeout);
            const std::uint32_t wake_word = 0;
            Watchdog dog(o.timeout, [&] { self.trigger(&wake_word, sizeof wake_word); });
            const auto rounds = rounds_for(o);
            for (std::uint64_t r = 0; r < rounds; ++r) {
                const auto ro = latency_round_options(o, r, rounds);
                auto loop = timed_loop(ro, [&](std::uint64_t i) {
                    const std::uint64_t k = total + i; // alternates across rounds
                    unsigned int length = static_cast<unsigned int>(echo.size());
                    auto t0 = Clock::now();
                    theirs.trigger(payload[k & 1].data(), static_cast<unsigned int>(size));
                    mine.wait(echo.data(), &length, SCI_INFINITE_TIMEOUT);
                    auto t1 = Clock::now();
                    if (dog.fired())
                        throw Error(ErrorKind::timeout, "no data interrupt back from node " +
                                                            std::to_string(o.remote_node));
                    dog.progress();
                    if (i >= ro.warmup)
                        samples.push_back(elapsed_us(t0, t1) / 2);
                    sent_sum = fold(sent_sum, sums[k & 1]);
                    echo_sum = fold(echo_sum, checksum(echo.data(), length));
                });
                total += loop.last + 1;
                // One yardstick for every size: wake-ups do not depend on the payload.
                if (size == o.sizes.front())
                    eventfd_round(yardstick, ro, loop.iterations, base_samples);
                dog.progress();
            }
            s.request_stop();
            theirs.trigger(&wake_word, sizeof wake_word); // wakes the responder to see the stop
        }
        auto remote = s.end_phase();
        if (remote.messages != total)
            payload_error(o, size,
                          "the responder saw " + std::to_string(remote.messages) + " of " +
                              std::to_string(total) + " data interrupts");
        if (remote.received_sum != sent_sum)
            payload_error(o, size, "data interrupts to the responder arrived corrupted");
        if (echo_sum != sent_sum)
            payload_error(o, size, "echoed data interrupts arrived corrupted");
        rep.results.push_back(latency_result(size, "data-interrupt", std::move(samples)));
    }
    add_eventfd_baseline(rep, yardstick, std::move(base_samples));
}

void attach_ratios(Report& rep) {
    for (auto& r : rep.results) {
        const Result* base = nullptr;
        for (const auto& b : rep.baseline)
            if (b.size == r.size)
                base = &b;
        if (!base && rep.baseline.size() == 1)
            base = &rep.baseline.front();
        if (!base)
            continue;
        if (r.latency && base->latency && base->latency->median_us > 0)
            r.baseline_ratio = r.latency->median_us / base->latency->median_us;
        if (r.bandwidth && base->bandwidth && base->bandwidth->bandwidth_gbps > 0)
            r.baseline_ratio = r.bandwidth->bandwidth_gbps / base->bandwidth->bandwidth_gbps;
    }
}

void validate(const BenchOptions& o) {
    if (o.iterations == 0 && o.duration_s <= 0)
        throw Error(ErrorKind::invalid_input, "--iterations must be at least 1");
    if (o.sizes.empty() && o.test != TestKind::intr_latency)
        throw Error(ErrorKind::invalid_input, "no sizes to test");
    const bool pingpong = o.test == TestKind::pio_latency;
    for (auto size : o.sizes)
        if (pingpong && size % 4 != 0)
            throw Error(ErrorKind::invalid_input,
                        "pio-latency sizes must be multiples of 4 bytes, got " +
                            std::to_string(size));
    if (o.read && o.test != TestKind::pio_bw)
        throw Error(ErrorKind::invalid_input, "--read applies to pio-bw only");
    if (o.pull && o.test != TestKind::dma_bw && o.test != TestKind::dma_latency)
        throw Error(ErrorKind::invalid_input, "--pull applies to dma-bw and dma-latency only");
    if (o.vector > 1 && o.test != TestKind::dma_bw)
        throw Error(ErrorKind::invalid_input, "--vector applies to dma-bw only");
    for (auto size : o.sizes) {
        if (o.test == TestKind::data_intr_latency && size > k_data_intr_capacity)
            throw Error(ErrorKind::invalid_input,
                        "data interrupts carry at most " + std::to_string(k_data_intr_capacity) +
                            " bytes; size " + std::to_string(size) + " is too large");
        if (o.vector > 1 && size < 64ull * o.vector)
            throw Error(ErrorKind::invalid_input, "size " + std::to_string(size) +
                                                      " is too small for a vector of " +
                                                      std::to_string(o.vector) + " entries");
    }
}

} // namespace

Report run_test(const BenchOptions& options) {
    validate(options);
    pin_to_cpu(options.cpu);
    Report rep;
    rep.test = options.test;
    rep.remote_node = options.remote_node;
    Session session(options);
    rep.local_node = session.local_node();
    switch (options.test) {
    case TestKind::pio_latency:
        pio_latency(session, options, rep);
        break;
    case TestKind::pio_bw:
        pio_bw(session, options, rep);
        break;
    case TestKind::dma_bw:
        dma_bw(session, options, rep);
        break;
    case TestKind::dma_latency:
        dma_latency(session, options, rep);
        break;
    case TestKind::intr_latency:
        intr_latency(session, options, rep);
        break;
    case TestKind::data_intr_latency:
        data_intr_latency(session, options, rep);
        break;
    }
    session.finish();
    attach_ratios(rep);
    return rep;
}

} // namespace dis::bench
