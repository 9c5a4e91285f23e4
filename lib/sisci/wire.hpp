// The software fabric's wire protocol (see tools/disd/README.md): one JSON object per
// SOCK_SEQPACKET message on a node's Unix socket, with file descriptors (segment memfds,
// eventfds, shared rings) attached as SCM_RIGHTS. Shared by disd, libsisci and libdis's
// admin client. Also the shared-memory layouts that bypass the socket on hot paths.
#pragma once

#include "dis/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dis::wire {

inline constexpr int k_protocol_version = 1;
inline constexpr std::size_t k_max_message = 64 * 1024; // bytes of JSON per message
inline constexpr std::size_t k_max_fds = 4;             // descriptors per message
// Replies carry "err", an sci_error_t; the admin client (built without sisci_error.h, so
// that a vendor-SISCI build has one set of SISCI headers) needs two of its values.
inline constexpr int k_reply_ok = 0x000;     // SCI_ERR_OK
inline constexpr int k_reply_access = 0x921; // SCI_ERR_ACCESS

// An owned file descriptor (the project-wide RAII fd).
using Fd = ::dis::UniqueFd;

// An owned shared mapping.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* addr, std::size_t size) : m_addr(addr), m_size(size) {}
    ~Mapping() { reset(); }
    Mapping(Mapping&& o) noexcept
        : m_addr(std::exchange(o.m_addr, nullptr)), m_size(std::exchange(o.m_size, 0)) {}
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            m_addr = std::exchange(o.m_addr, nullptr);
            m_size = std::exchange(o.m_size, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    void* get() const { return m_addr; }
    std::size_t size() const { return m_size; }
    void reset();

private:
    void* m_addr = nullptr;
    std::size_t m_size = 0;
};

// Maps `size` bytes of `fd` shared read-write; returns an empty Mapping on failure (errno).
Mapping map_shared(int fd, std::size_t size, bool writable = true);

// A malformed message or field; the daemon answers it with an error reply.
class WireError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
// The peer is not a daemon this process trusts (check_daemon_peer).
class UntrustedPeer : public WireError {
public:
    using WireError::WireError;
};

struct Message {
    nlohmann::json body;
    std::vector<Fd> fds;
};

// `again`: a non-blocking socket has no message yet (nothing was consumed).
enum class RecvStatus { ok, eof, error, malformed, again };
enum class SendStatus { ok, again, gone };

// Sends one message. Returns false (errno set) when the peer is gone.
bool send_message(int sock, const nlohmann::json& body, const std::vector<int>& fds = {});
// Sends one already encoded message without blocking: `again` when the socket's buffer is
// full (nothing was sent), `gone` (errno set) when the peer is gone or the message too big.
SendStatus send_frame(int sock, const std::string& text, const std::vector<int>& fds = {});
// Receives one message into a buffer of the message's own size (learnt with MSG_PEEK |
// MSG_TRUNC); `malformed` for oversize, truncated or non-JSON-object payloads (their
// descriptors are received and closed).
RecvStatus recv_message(int sock, Message& out);

// Path of node `node_id`'s socket in `fabric_dir`: "<dir>/node-<id>.sock".
std::string socket_path(const std::string& fabric_dir, std::uint32_t node_id);
// Node ids with a socket file in `fabric_dir` (not checked for life), ascending.
std::vector<std::uint32_t> list_node_sockets(const std::string& fabric_dir);
// Connects a SOCK_SEQPACKET socket to `path`; -1 with errno on failure.
int connect_socket(const std::string& path);
// The same without ever blocking longer than `timeout`: a frozen daemon whose listen backlog
// is full refuses a non-blocking connect with EAGAIN, retried until the deadline (then -1,
// errno ETIMEDOUT). The returned socket is blocking.
int connect_socket(const std::string& path, std::chrono::milliseconds timeout);
// Whether a connection to `path` is accepted within `timeout` (as connect_socket says), the
// connection closed at once: a listening daemon's liveness.
bool probe_socket(const std::string& path, std::chrono::milliseconds timeout);

// The uid at the other end of a connected Unix socket (SO_PEERCRED); -1 when unknown.
long peer_uid(int sock);
// Whether the daemon at the other end of `sock` may be trusted with this process's memory:
// its uid is root, this process's euid, or $DIS_DAEMON_UID. Empty when it may, else one line
// saying why not.
std::string check_daemon_peer(int sock, const std::string& what);

// Validated field access: throw WireError when missing, mistyped or out of range.
std::uint64_t get_u64(const nlohmann::json& j, const char* key, std::uint64_t max = UINT64_MAX);
std::uint32_t get_u32(const nlohmann::json& j, const char* key, std::uint32_t max = UINT32_MAX);
std::string get_str(const nlohmann::json& j, const char* key, std::size_t max_len = 256);
bool get_bool(const nlohmann::json& j, const char* key, bool dflt = false);

// A blocking request/reply channel (admin client, probes): one outstanding call at a time.
class Channel {
public:
    // Connects (within `timeout`), checks the daemon's uid (check_daemon_peer) and says
    // hello; throws WireError when the node is not reachable, UntrustedPeer when it is
    // not trusted.
    Channel(const std::string& fabric_dir, std::uint32_t node_id, std::uint32_t client_node,
            std::chrono::milliseconds timeout);
    // Sends `req` (a "seq" is added) and waits for the matching reply, skipping events.
    Message call(nlohmann::json req);
    int fd() const { return m_fd.get(); }

private:
    Fd m_fd;
    std::uint64_t m_seq = 0;
    std::chrono::milliseconds m_timeout;
};

// ---- Linux futex helpers (shared futex words in memfd mappings) ----
// Waits while *word == expected, at most `timeout_us` (negative = forever). Returns false on
// timeout.
bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_us);
void futex_wake(std::atomic<std::uint32_t>* word, int count = INT32_MAX);
// Adds one to an eventfd (in semaphore mode: one wake-up).
void signal_efd(int fd);

// ---- Shared-memory layouts ----

// The DMA engine's doorbell page, one per daemon, mapped by every client of the node.
struct DmaDoorbell {
    std::atomic<std::uint32_t> sleeping; // engine is (about to be) asleep on `seq`
    std::atomic<std::uint32_t> seq;      // bumped by clients to wake the engine
    std::atomic<std::uint32_t> on_cpu;   // CPU + 1 the engine is confined to, 0 = none
};

// One descriptor of a DMA queue. Regions are ids the daemon handed out at registration.
struct DmaDesc {
    std::uint32_t local_region;
    std::uint32_t remote_region;
    std::uint64_t local_offset;
    std::uint64_t remote_offset;
    std::uint64_t size;
    std::uint32_t flags; // k_dma_read
    std::uint32_t reserved;
};
inline constexpr std::uint32_t k_dma_read = 1;

// The shared control block of one DMA queue, followed by `capacity` descriptors.
struct DmaQueueShared {
    std::atomic<std::uint32_t> head;      // written by the client: descriptors posted
    std::atomic<std::uint32_t> tail;      // written by the engine: descriptors taken
    std::atomic<std::uint32_t> completed; // written by the engine: descriptors done (futex)
    std::atomic<std::uint32_t> waiters;   // client is asleep on `completed`
    std::atomic<std::uint32_t> error;     // first sci_error_t since the last reset, 0 = none
    std::atomic<std::uint32_t> abort;     // client asks the engine to drop queued entries
    std::uint32_t capacity;
    std::atomic<std::uint32_t> poster_cpu; // CPU of the last post + 1 (0 = unknown): a hint
    DmaDesc ring[1];                       // really [capacity]
};
inline std::size_t dma_queue_bytes(std::uint32_t capacity) {
    return offsetof(DmaQueueShared, ring) + sizeof(DmaDesc) * capacity;
}

// The payload ring of one data interrupt (multi-producer, single consumer).
inline constexpr std::uint32_t k_data_ring_slots = 64;
inline constexpr std::uint32_t k_data_slot_bytes = 2048;
struct DataSlot {
    std::atomic<std::uint32_t> ready; // == ticket + 1 once the payload is written
    std::uint32_t length;
    unsigned char data[k_data_slot_bytes];
};
// The counters of one interrupt, on a page of its own that its connectors share: a trigger
// is an eventfd write the daemon never sees, so the triggering process counts it here and
// disd reads the sum for node_info (interrupts_triggered_total).
struct InterruptStats {
    std::atomic<std::uint64_t> triggered;
};
inline constexpr std::size_t k_interrupt_stats_bytes = 4096;

struct DataRing {
    std::atomic<std::uint32_t> head; // next ticket producers reserve
    std::atomic<std::uint32_t> tail; // next ticket the consumer reads
    DataSlot slots[k_data_ring_slots];
};

} // namespace dis::wire
