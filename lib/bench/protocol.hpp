// How `dis-tool bench` and its responder (`bench serve`) coordinate, using SISCI only.
//
// The responder owns a control segment with a well-known id. The client connects to it,
// writes a request (op, size, offset, arg) and then bumps req_seq; the responder polls
// req_seq, performs the op and publishes ack_seq = req_seq (plus status and results). Ops
// that run a measurement phase (ping-pongs) acknowledge when ready, run until the client
// writes stop_seq = req_seq, then publish done_seq = req_seq with their results. Every word
// is written by one side only and accessed with acquire/release ordering.
//
// The responder also owns a data segment (the target of PIO and DMA); the client owns a
// segment the responder writes its ping-pong replies into. A responder serves one client at a
// time. Internal to libdis.
#pragma once

#include <atomic>
#include <cstdint>

namespace dis::bench::detail {

constexpr unsigned int k_control_segment_id = 0xD15B0001;
constexpr unsigned int k_data_segment_id = 0xD15B0002;
constexpr unsigned int k_client_segment_base = 0xD15C0000; // | (client pid & 0xffff)
constexpr std::uint64_t k_magic = 0x31484342'53494430ull;  // "0DISBCH1"
constexpr std::uint64_t k_protocol_version = 2;            // 2: responder_cpu_ns
constexpr std::size_t k_control_size = 4096;

enum class Op : std::uint64_t {
    hello = 1,          // size: data segment bytes; arg: client segment id; offset: client node
    fill = 2,           // fill data[offset, offset+size) with pattern(arg); result: its checksum
    verify = 3,         // result: checksum of data[offset, offset+size)
    ping_pio = 4,       // phase: echo ping-pong messages of `size` bytes into the client segment
    ping_intr = 5,      // phase: arg: client interrupt; result (ready): responder interrupt
    ping_data_intr = 6, // phase: as ping_intr with data interrupts carrying `size` bytes
    bye = 7,
};

struct ControlBlock {
    // Written once by the responder before the segment becomes available.
    std::uint64_t magic;
    std::uint64_t version;
    std::uint64_t responder_node;
    std::uint64_t responder_pid; // lets a client tell its own responder from another's
    // Written by the client.
    std::uint64_t req_seq;
    std::uint64_t op;
    std::uint64_t size;
    std::uint64_t offset;
    std::uint64_t arg;
    std::uint64_t stop_seq;
    std::uint64_t reserved1[6];
    // Written by the responder.
    std::uint64_t ack_seq;
    std::uint64_t done_seq;
    std::uint64_t status; // 0 ok, else `message` says why
    std::uint64_t result;
    std::uint64_t result2;
    std::uint64_t result3;
    // The responder's process CPU time (CLOCK_PROCESS_CPUTIME_ID), written before every
    // ack_seq and done_seq, so the client can tell what a phase cost the other side.
    std::uint64_t responder_cpu_ns;
    std::uint64_t reserved2[1];
    char message[256];
};
static_assert(sizeof(ControlBlock) <= k_control_size);

inline std::uint64_t get(const std::uint64_t& field) {
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(field))
        .load(std::memory_order_acquire);
}
inline void put(std::uint64_t& field, std::uint64_t value) {
    std::atomic_ref<std::uint64_t>(field).store(value, std::memory_order_release);
}

// Phase results: messages seen, checksum of what was received, checksum of what was sent.
struct PhaseResult {
    std::uint64_t messages = 0;
    std::uint64_t received_sum = 0;
    std::uint64_t sent_sum = 0;
};

inline std::size_t segment_bytes_for(std::uint64_t max_size) {
    // Two slots (ping-pong) or two regions (alternating DMA sources), page-rounded.
    std::uint64_t need = 2 * ((max_size + 63) / 64 * 64);
    return static_cast<std::size_t>((need + 4095) / 4096 * 4096);
}

} // namespace dis::bench::detail
