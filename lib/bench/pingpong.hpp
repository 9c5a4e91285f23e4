// The message protocol of the store ping-pong, shared by pio-latency (through SISCI mappings)
// and its baseline (through plain shared memory), so that both measure the same thing.
//
// A message of `size` bytes goes into one of two slots of the receiver's window (slot =
// seq & 1). Its last 32-bit word is the sequence number and is stored last, with release
// ordering, after the rest of the payload; the receiver polls that word. Two slots let the
// receiver checksum message N while message N+1 is already in flight. Windows must be zeroed
// before the first message. Internal to libdis.
#pragma once

#include "dis/bench.hpp"
#include "dis/error.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace dis::bench::detail {

using Clock = std::chrono::steady_clock;

inline double elapsed_us(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
}

inline std::size_t slot_stride(std::size_t size) {
    return (size + 63) / 64 * 64;
}
inline std::size_t pingpong_window(std::size_t size) {
    return 2 * slot_stride(size);
}

// Folds one message checksum into a running sum (order-sensitive).
inline std::uint64_t fold(std::uint64_t sum, std::uint64_t message) {
    return (sum ^ message) * 0x100000001B3ull + 0x9E3779B97F4A7C15ull;
}

inline std::uint32_t load_acquire(const void* p) {
    return std::atomic_ref<std::uint32_t>(*static_cast<std::uint32_t*>(const_cast<void*>(p)))
        .load(std::memory_order_acquire);
}

inline void store_release(void* p, std::uint32_t v) {
    std::atomic_ref<std::uint32_t>(*static_cast<std::uint32_t*>(p))
        .store(v, std::memory_order_release);
}

// One sender's payloads: two patterns (even/odd sequence numbers) staged in private memory.
class Messenger {
public:
    Messenger(std::size_t size, std::uint64_t seed) : m_size(size) {
        if (size < 4 || size % 4 != 0)
            throw Error(ErrorKind::invalid_input,
                        "ping-pong message size must be a multiple of 4 bytes, got " +
                            std::to_string(size));
        for (int p = 0; p < 2; ++p) {
            m_staging[p].resize(size);
            fill_pattern(m_staging[p].data(), size, seed * 2 + static_cast<std::uint64_t>(p));
        }
    }

    std::size_t size() const { return m_size; }

    // Writes message `seq` into the receiver's window: payload first, sequence word last.
    template <class Flush> void send(unsigned char* window, std::uint32_t seq, Flush&& flush) {
        auto& stage = m_staging[seq & 1];
        unsigned char* slot = window + (seq & 1) * slot_stride(m_size);
        std::memcpy(stage.data() + m_size - 4, &seq, 4);
        if (m_size > 4)
            std::memcpy(slot, stage.data(), m_size - 4);
        store_release(slot + m_size - 4, seq);
        flush();
    }

    // The checksum of message `seq` as sent (call after send()).
    std::uint64_t sent_checksum(std::uint32_t seq) const {
        return checksum(m_staging[seq & 1].data(), m_size);
    }

private:
    std::size_t m_size;
    std::vector<unsigned char> m_staging[2];
};

// Spins until message `seq` is in `window`. Checks the clock (and `stop`) only every few
// thousand polls to keep the loop tight. Returns false when `stop()` became true.
template <class Stop>
bool wait_message(const unsigned char* window, std::size_t size, std::uint32_t seq,
                  std::chrono::milliseconds timeout, Stop&& stop) {
    const unsigned char* flag = window + (seq & 1) * slot_stride(size) + size - 4;
    if (load_acquire(flag) == seq)
        return true;
    const auto deadline = Clock::now() + timeout;
    for (bool first = true;; first = false) {
        for (int i = 0; i < 4096; ++i)
            if (load_acquire(flag) == seq)
                return true;
        if (stop())
            return false;
        // Microseconds without an answer: the peer may be waiting for this CPU (an
        // oversubscribed host), so let it run instead of spinning through our time slice.
        if (!first)
            std::this_thread::yield();
        if (Clock::now() > deadline)
            throw Error(ErrorKind::timeout, "no ping-pong message " + std::to_string(seq) +
                                                " within " + std::to_string(timeout.count()) +
                                                " ms");
    }
}

inline std::uint64_t received_checksum(const unsigned char* window, std::size_t size,
                                       std::uint32_t seq) {
    return checksum(window + (seq & 1) * slot_stride(size), size);
}

struct InitiatorResult {
    std::vector<double> samples_us; // one-way latencies (round trip / 2)
    std::uint32_t messages = 0;     // sent, warm-up included
    std::uint64_t sent_sum = 0;
    std::uint64_t received_sum = 0;
};

// The active side: sends, waits for the echo, records round trip / 2.
template <class Flush>
InitiatorResult run_initiator(Messenger& messenger, unsigned char* out, const unsigned char* in,
                              std::uint64_t warmup, std::uint64_t iterations, double duration_s,
                              std::chrono::milliseconds timeout, Flush&& flush) {
    constexpr std::uint64_t k_max_samples = 20'000'000;
    const std::size_t size = messenger.size();
    InitiatorResult r;
    r.samples_us.reserve(duration_s > 0 ? 1 << 16 : iterations);
    std::uint32_t seq = 0;
    const auto never = [] { return false; };
    auto one = [&](bool record) {
        ++seq;
        auto t0 = Clock::now();
        messenger.send(out, seq, flush);
        wait_message(in, size, seq, timeout, never);
        auto t1 = Clock::now();
        if (record)
            r.samples_us.push_back(elapsed_us(t0, t1) / 2);
        r.sent_sum = fold(r.sent_sum, messenger.sent_checksum(seq));
        r.received_sum = fold(r.received_sum, received_checksum(in, size, seq));
    };
    for (std::uint64_t i = 0; i < warmup; ++i)
        one(false);
    if (duration_s > 0) {
        const auto end = Clock::now() + std::chrono::duration<double>(duration_s);
        while (Clock::now() < end && r.samples_us.size() < k_max_samples)
            one(true);
    } else {
        for (std::uint64_t i = 0; i < iterations; ++i)
            one(true);
    }
    r.messages = seq;
    return r;
}

struct EchoResult {
    std::uint32_t messages = 0;
    std::uint64_t sent_sum = 0;
    std::uint64_t received_sum = 0;
};

// The passive side: answers every message with one of the same size until `stop()`.
template <class Stop, class Flush>
EchoResult run_echo(Messenger& messenger, unsigned char* out, const unsigned char* in,
                    std::chrono::milliseconds timeout, Stop&& stop, Flush&& flush) {
    EchoResult r;
    const std::size_t size = messenger.size();
    for (std::uint32_t seq = 1;; ++seq) {
        if (!wait_message(in, size, seq, timeout, stop))
            break;
        messenger.send(out, seq, flush);
        // Checked after answering, while the reply travels: off the initiator's clock.
        r.received_sum = fold(r.received_sum, received_checksum(in, size, seq));
        r.sent_sum = fold(r.sent_sum, messenger.sent_checksum(seq));
        r.messages = seq;
    }
    return r;
}

} // namespace dis::bench::detail
