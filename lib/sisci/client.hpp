// libsisci internals: the connections of one process to node daemons, event routing and the
// handle objects behind the opaque SISCI types.
#pragma once

#include "sisci_api.h"
#include "wire.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace dis::sisci {

using json = nlohmann::json;

// Distinguishes live handles from stale or foreign pointers.
enum class Magic : std::uint32_t {
    desc = 0xD15C0001,
    local_segment,
    remote_segment,
    map,
    sequence,
    dma_queue,
    local_interrupt,
    remote_interrupt,
    local_data_interrupt,
    remote_data_interrupt,
    smartio_device,
    dead = 0xDEADDEAD,
};

struct Reply {
    sci_error_t err = SCI_ERR_OK;
    json body;
    std::vector<wire::Fd> fds;
};

// One process's connection to one node daemon. A reader thread matches replies to calls,
// forwards events, and on EOF marks the node lost and wakes everything waiting on it.
class Conn : public std::enable_shared_from_this<Conn> {
public:
    ~Conn();
    // Connects and says hello; err is NO_SUCH_NODEID (no socket) or NODE_NOT_RESPONDING.
    static std::shared_ptr<Conn> open(const std::string& fabric_dir, std::uint32_t node,
                                      std::uint32_t my_node, sci_error_t& err);
    Reply call(json req, const std::vector<int>& fds = {});
    bool lost() const { return m_lost.load(std::memory_order_acquire); }
    std::uint32_t node() const { return m_node; }
    int doorbell_fd() const { return m_doorbell.get(); }

private:
    Conn() = default;
    void reader();
    void mark_lost();

    std::uint32_t m_node = 0;
    wire::Fd m_sock;
    wire::Fd m_stop_efd;
    wire::Fd m_doorbell;
    std::atomic<bool> m_lost{false};
    std::mutex m_send_mutex;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::uint64_t m_seq = 0;
    std::map<std::uint64_t, std::optional<wire::Message>> m_pending;
    std::thread m_reader;
};

struct SegmentEvent {
    sci_segment_cb_reason_t reason;
    std::uint32_t node;
    sci_error_t status;
};

// A queue of segment events with a blocking wait.
class EventQueue {
public:
    void push(SegmentEvent ev);
    // Waits up to timeout_ms (SCI_INFINITE_TIMEOUT: forever); false on timeout.
    bool pop(SegmentEvent& out, unsigned int timeout_ms);

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<SegmentEvent> m_events;
};

} // namespace dis::sisci

// The opaque handle types of sisci_types.h.
struct sci_desc {
    dis::sisci::Magic magic = dis::sisci::Magic::desc;
    std::atomic<int> objects{0};
};

namespace dis::sisci {

// What local and remote segment handles share: the memory, its maps and DMA region, and the
// events (to the callback, or queued for SCIWaitFor*SegmentEvent).
template <Magic M, class Callback> struct Segment {
    static constexpr Magic k_magic = M;
    Magic magic = M;
    sci_desc_t sd = nullptr;
    std::shared_ptr<Conn> conn;
    unsigned int id = 0;
    size_t size = 0;
    wire::Fd memfd;
    // Where the segment starts in memfd: 0, except a vfio device's BAR (the device fd, the
    // BAR's VFIO region offset).
    std::uint64_t map_offset = 0;
    std::atomic<int> maps{0};
    std::uint32_t dma_region = 0;
    std::mutex cb_mutex;
    Callback callback = nullptr;
    void* callback_arg = nullptr;
    EventQueue events;
};

} // namespace dis::sisci

struct sci_local_segment
    : dis::sisci::Segment<dis::sisci::Magic::local_segment, sci_cb_local_segment_t> {
    bool attached = false; // SCIAttachLocalSegment: not the creator
    bool empty = false;    // SCI_FLAG_EMPTY, no memory registered yet
};

namespace dis::sisci {
struct DeviceState;
}

struct sci_remote_segment
    : dis::sisci::Segment<dis::sisci::Magic::remote_segment, sci_cb_remote_segment_t> {
    unsigned int node = 0; // the owner node (for broadcast: the node that holds it)
    bool broadcast = false;
    std::atomic<bool> lost{false};
    std::atomic<bool> disconnected{false};
    // A device segment (SCIConnectDeviceSegment): the borrowed device and the lender's handle.
    std::shared_ptr<dis::sisci::DeviceState> dev;
    std::uint64_t dev_segment = 0;
};

struct sci_map {
    dis::sisci::Magic magic = dis::sisci::Magic::map;
    void* base = nullptr; // page-aligned start of the mmap
    size_t base_len = 0;
    volatile void* addr = nullptr; // what the caller got
    size_t size = 0;
    sci_local_segment_t local = nullptr;
    sci_remote_segment_t remote = nullptr;
};

struct sci_sequence {
    dis::sisci::Magic magic = dis::sisci::Magic::sequence;
    sci_map_t map = nullptr;
};

struct sci_dma_queue {
    dis::sisci::Magic magic = dis::sisci::Magic::dma_queue;
    sci_desc_t sd = nullptr;
    std::shared_ptr<dis::sisci::Conn> conn;
    std::uint32_t id = 0;
    dis::wire::Fd fd;
    dis::wire::Mapping shm;
    dis::wire::DmaQueueShared* q = nullptr;
    dis::wire::Mapping doorbell_map;
    dis::wire::DmaDoorbell* doorbell = nullptr;
    std::uint32_t capacity = 0;
    std::uint32_t posted = 0;  // descriptors posted (wraps like the shared counters)
    std::int64_t spin_us = 30; // how long a waiter spins before sleeping (grows with size)
    std::uint32_t polls = 0;   // SCIDMAQueueState calls while posted
    bool aborted = false;
    // Callback delivery.
    std::mutex cb_mutex;
    std::condition_variable cb_cv;
    std::deque<std::tuple<std::uint32_t, sci_cb_dma_t, void*>> cb_pending; // target, cb, arg
    bool cb_stop = false;
    std::thread cb_thread;
};

namespace dis::sisci {

// What a data interrupt adds to a plain one: the shared ring that carries the payloads.
struct NoRing {};
struct PayloadRing {
    wire::Fd ring_fd;
    wire::Mapping ring_map;
    wire::DataRing* ring = nullptr;
};

// An interrupt this process owns (it waits or gets callbacks); Data: a data interrupt.
template <bool Data> struct LocalInterrupt : std::conditional_t<Data, PayloadRing, NoRing> {
    static constexpr bool k_data = Data;
    static constexpr Magic k_magic = Data ? Magic::local_data_interrupt : Magic::local_interrupt;
    using Callback = std::conditional_t<Data, sci_cb_data_interrupt_t, sci_cb_interrupt_t>;

    Magic magic = k_magic;
    sci_desc_t sd = nullptr;
    std::shared_ptr<Conn> conn;
    unsigned int no = 0;
    wire::Fd efd;
    std::atomic<bool> stopping{false}; // set before the wake-up that ends waits on removal
    Callback callback = nullptr;
    void* callback_arg = nullptr;
    std::thread cb_thread;
};

// An interrupt of another process (usually another node's) that this process triggers.
template <bool Data> struct RemoteInterrupt : std::conditional_t<Data, PayloadRing, NoRing> {
    static constexpr bool k_data = Data;
    static constexpr Magic k_magic = Data ? Magic::remote_data_interrupt : Magic::remote_interrupt;

    Magic magic = k_magic;
    sci_desc_t sd = nullptr;
    std::shared_ptr<Conn> conn;
    unsigned int node = 0;
    unsigned int no = 0;
    wire::Fd efd;
    wire::Mapping stats_map; // the interrupt's counters (wire::InterruptStats)
    wire::InterruptStats* stats = nullptr;
    std::atomic<bool> gone{false};
};

} // namespace dis::sisci

struct sci_local_interrupt : dis::sisci::LocalInterrupt<false> {};
struct sci_local_data_interrupt : dis::sisci::LocalInterrupt<true> {};
struct sci_remote_interrupt : dis::sisci::RemoteInterrupt<false> {};
struct sci_remote_data_interrupt : dis::sisci::RemoteInterrupt<true> {};

namespace dis::sisci {

// A segment mapped for a device (SCIMap{Local,Remote}SegmentForDevice): counts in the
// segment's maps (removal and disconnection are refused while it lives).
struct ForDevice {
    sci_local_segment_t local = nullptr;
    sci_remote_segment_t remote = nullptr;
    std::uint64_t io_addr = 0;
    size_t offset = 0;
    size_t size = 0;
    int refs = 0;
};

// One borrow of a SmartIO device: the lease on the lender and what this process made with it.
// Shared by the handle, its device segments and the runtime (events, renewal), so a device
// segment outlives a returned device handle safely.
struct DeviceState {
    std::shared_ptr<Conn> conn; // to the lender node
    std::uint32_t fdid = 0;
    std::int64_t lease_id = 0;
    std::string token;
    bool exclusive = false;
    bool joined = false; // joined another process's lease ($DIS_SMARTIO_JOIN): never renewed
    std::uint32_t ttl_ms = 0;
    std::chrono::steady_clock::time_point next_renew;
    json device; // the lender's device json at borrow time

    std::mutex mutex;
    std::condition_variable cv;
    bool lost = false;
    std::string lost_reason;
    sci_error_t lost_err = SCI_ERR_OK; // what later calls fail with
    bool returned = false;
    std::deque<std::pair<unsigned, unsigned>> irqs; // (type, number) not yet waited for
    int segments = 0;                               // connected device segments
    std::vector<std::uint64_t> created;             // lender handles of created segments
    std::vector<ForDevice> maps;

    bool is_lost() {
        std::lock_guard lock(mutex);
        return lost;
    }
};

} // namespace dis::sisci

struct sci_smartio_device {
    dis::sisci::Magic magic = dis::sisci::Magic::smartio_device;
    sci_desc_t sd = nullptr;
    std::shared_ptr<dis::sisci::DeviceState> state;
};

namespace dis::sisci {

// SCIQuery(SCI_Q_DEVICE, ...) (sisci_smartio.cpp).
void query_device(void* data, unsigned int flags, sci_error_t* error);

// Process-wide state between SCIInitialize and SCITerminate.
class Runtime {
public:
    static Runtime* get();           // nullptr when not initialized
    static sci_error_t initialize(); // counts nested calls
    static void terminate();

    std::uint32_t node_id() const { return m_node; }
    const std::string& fabric_dir() const { return m_dir; }
    // The connection to `node` (reconnecting when it was lost).
    std::shared_ptr<Conn> conn(std::uint32_t node, sci_error_t& err);
    std::shared_ptr<Conn> home(sci_error_t& err) { return conn(m_node, err); }

    // Event routing.
    void on_event(std::uint32_t node, const json& ev);
    void on_node_lost(std::uint32_t node);
    void post_callback(std::function<void()> fn);

    // Registries for routing (pointers stay valid until unregistered).
    void add(sci_local_segment_t s);
    void remove(sci_local_segment_t s);
    void add(sci_remote_segment_t s);
    void remove(sci_remote_segment_t s);
    void add(sci_local_interrupt_t i);
    void remove(sci_local_interrupt_t i);
    void add(sci_remote_interrupt_t i);
    void remove(sci_remote_interrupt_t i);
    void add(sci_local_data_interrupt_t i);
    void remove(sci_local_data_interrupt_t i);
    void add(sci_remote_data_interrupt_t i);
    void remove(sci_remote_data_interrupt_t i);
    // Borrowed devices: their events, their loss and the lease renewal thread.
    void add(const std::shared_ptr<DeviceState>& d);
    void remove(const std::shared_ptr<DeviceState>& d);
    // Marks d lost (first reason wins), wakes its waiters and tells its device segments.
    void device_lost(const std::shared_ptr<DeviceState>& d, const std::string& reason,
                     sci_error_t err);

    ~Runtime();

private:
    Runtime() = default;
    void dispatcher();
    void renewer();
    void deliver_remote(sci_remote_segment_t s, SegmentEvent ev);
    void lose_device_locked(const std::shared_ptr<DeviceState>& d, const std::string& reason,
                            sci_error_t err);

    pid_t m_pid = 0;
    int m_refs = 0;
    std::string m_dir;
    std::uint32_t m_node = 0;
    std::mutex m_conn_mutex;
    std::map<std::uint32_t, std::shared_ptr<Conn>> m_conns;

    std::mutex m_reg_mutex;
    std::set<sci_local_segment_t> m_local;
    std::set<sci_remote_segment_t> m_remote;
    std::set<sci_local_interrupt_t> m_lints;
    std::set<sci_local_data_interrupt_t> m_ldints;
    std::set<sci_remote_interrupt_t> m_rints;
    std::set<sci_remote_data_interrupt_t> m_rdints;
    std::set<std::shared_ptr<DeviceState>> m_devices;

    std::mutex m_renew_mutex;
    std::condition_variable m_renew_cv;
    bool m_renew_stop = false;
    std::thread m_renew_thread;

    std::mutex m_cb_mutex;
    std::condition_variable m_cb_cv;
    std::deque<std::function<void()>> m_callbacks;
    bool m_cb_stop = false;
    std::thread m_cb_thread;
};

} // namespace dis::sisci
