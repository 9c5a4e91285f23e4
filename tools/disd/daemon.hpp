// disd internals: one node daemon of the software fabric. The main thread serves the Unix
// socket (one epoll loop, so request handling needs no locks); the DMA engine runs in its own
// thread and shares only the queue and region tables (guarded by m_dma_mutex).
#pragma once

#include "dis/fabric_config.hpp"
#include "lending.hpp"
#include "wire.hpp"

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dis::disd {

// A quarter of the last-level cache (engine.cpp): where DMA copies start bypassing it.
std::uint64_t default_streaming_bytes();

struct Options {
    std::uint32_t node_id = 0;
    std::string fabric_dir;
    std::optional<std::string> config_path;
    std::optional<gid_t> group; // --group: the fabric directory and sockets are shared with it
    std::uint32_t adapter = 0;
    bool verbose = false;
    std::uint64_t max_client_bytes = 1ULL << 30; // segment + region memory per connection
    std::uint32_t max_client_objects = 1024;     // segments, interrupts, queues each (4x regions)
    std::uint64_t max_uid_bytes = 4ULL << 30;    // the same, summed over a uid's connections
    std::uint32_t max_uid_objects = 16384;       // all objects of a uid, every kind together
    std::uint32_t max_uid_connections = 256;     // connections of one uid at a time
    std::uint64_t dma_streaming_bytes = 0;       // see engine.cpp; 0: a quarter of the LLC
    // Device lending (devices.cpp): specs after the config's, the pool's database and policy.
    std::vector<std::string> devices;              // --device SPEC, repeatable
    std::optional<std::string> lending_db;         // default <fabric_dir>/node-<id>.lending.sqlite
    std::optional<std::string> lending_policy;     // TOML; default: allow all
    std::chrono::milliseconds lease_ttl{10000};    // a borrower that asks for no lease
    std::chrono::milliseconds reset_timeout{5000}; // a device reset taking longer fails
    std::chrono::milliseconds command_timeout{2000}; // an epf-test command pending longer: fault
};

// Kinds of objects a client holds (counted per client and per uid).
enum class Obj { segment, interrupt, queue, region };
inline constexpr std::size_t k_obj_kinds = 4;

// A message waiting for a client's socket to accept it; descriptors are the daemon's own
// duplicates, so they stay valid whatever happens to the objects they came from.
struct Outgoing {
    std::string text;
    std::vector<wire::Fd> fds;
};

struct Client {
    int id = 0;
    wire::Fd sock;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    bool hello = false;
    std::uint32_t node_id = 0; // the node the client process belongs to (0: an admin client)
    std::uint64_t bytes = 0;
    std::array<std::uint32_t, k_obj_kinds> objects{};
    std::deque<Outgoing> out; // replies and events the socket did not take yet
    std::size_t out_bytes = 0;
    bool want_out = false; // EPOLLOUT armed
    bool doomed = false;   // to be dropped once the current event is handled
};

// What one uid holds over all its connections.
struct UidUsage {
    std::uint64_t bytes = 0;
    std::uint32_t objects = 0;
    std::uint32_t connections = 0;
};

struct Segment {
    std::uint32_t id = 0;
    std::uint64_t size = 0;
    wire::Fd memfd;                     // invalid until memory exists (SCI_FLAG_EMPTY)
    std::shared_ptr<wire::Mapping> map; // the daemon's view, for the DMA engine
    int owner = 0;                      // client id
    pid_t owner_pid = 0;
    uid_t owner_uid = 0;
    bool prepared = false;
    bool available = false;
    bool broadcast = false;
    bool shared_access = false;               // SCI_FLAG_DIS_SHARED_ACCESS
    bool shareable = false;                   // SCIShareSegment
    std::map<int, std::uint32_t> connections; // client id -> count
    std::map<int, std::uint32_t> mappings;    // client id -> count
    std::map<int, std::uint32_t> attached;    // client id -> count (SCIAttachLocalSegment)
};

struct Interrupt {
    std::uint32_t no = 0;
    bool data = false;
    wire::Fd efd;
    wire::Fd ring_fd;  // data interrupts: the payload ring
    wire::Fd stats_fd; // wire::InterruptStats, shared with every connector
    std::shared_ptr<wire::Mapping> stats_map;
    int owner = 0;
    uid_t owner_uid = 0;
    bool shared_access = false;
    std::map<int, std::uint32_t> connections;
};

// A memory region the DMA engine may read or write, owned by one client.
struct Region {
    int client = 0;
    std::uint64_t bytes = 0; // charged to the client: a mapping of another node's memory
    std::shared_ptr<wire::Mapping> map;
};

struct DmaQueue {
    std::uint32_t id = 0;
    int client = 0;
    wire::Fd fd;
    wire::Mapping shm;
    wire::DmaQueueShared* q = nullptr;
    std::uint32_t capacity = 0;
    std::uint32_t tail = 0; // the engine's own copy; the shared one is informative
};

// One request being served: what came in, and what goes back.
struct Request {
    Client& client;
    const nlohmann::json& body;
    std::vector<wire::Fd>& fds;  // descriptors that came with it (at most the op's fds_in)
    nlohmann::json& reply;       // "err" is set by the caller
    std::vector<int>& reply_fds; // descriptors of the daemon's objects to send with the reply
    bool deferred = false;       // the handler replies later (send_deferred); none now
};

class Daemon {
public:
    explicit Daemon(Options opts);
    ~Daemon();
    // Binds the socket; throws dis::Error when the node cannot start.
    void start();
    // Serves until SIGTERM/SIGINT or an admin shutdown.
    void run();

private:
    using json = nlohmann::json;
    using Handler = void (Daemon::*)(Request&);
    // One row of the wire protocol (server.cpp has the table; README.md documents it).
    struct Op {
        std::string_view name;
        Handler handler;
        bool needs_hello;
        std::uint8_t fds_in; // descriptors the request may carry; more are refused
    };
    static const Op* find_op(std::string_view name);

    // Server loop, clients and their queues (server.cpp).
    void log(const std::string& msg) const;
    void accept_clients();
    void refuse_connection(wire::Fd sock, uid_t uid);
    void pause_accepting();
    void resume_accepting();
    void serve_client(int client_id);
    // Returns false when the handler deferred its reply.
    bool dispatch(Client& c, wire::Message& msg, json& reply, std::vector<int>& fds);
    void send(Client& c, const json& body, const std::vector<int>& fds = {});
    void send_to(int client_id, const json& body);
    void flush(Client& c);
    void update_events(Client& c);
    void doom(Client& c, const std::string& why);
    void reap_doomed();
    void drop_client(int client_id);

    // Accounting (server.cpp): throws Refused(SCI_ERR_NOSPC) over a client's or uid's limit.
    void charge(Client& c, Obj kind, std::uint64_t bytes);
    void charge_bytes(Client& c, std::uint64_t bytes);
    void release(int client_id, Obj kind, std::uint64_t bytes);

    void op_hello(Request& r);
    void op_ping(Request& r);
    void op_shutdown(Request& r);

    // Segments (segments.cpp).
    void op_seg_create(Request& r);
    void op_seg_register(Request& r);
    void op_seg_state(Request& r);
    void op_seg_remove(Request& r);
    void op_seg_attach(Request& r);
    void op_seg_connect(Request& r);
    void op_seg_disconnect(Request& r);
    void op_seg_map(Request& r);
    Segment& owned_segment(Client& c, std::uint32_t id);
    bool may_access(const Client& c, uid_t owner_uid, bool shared_access) const;
    void remove_segment(std::uint32_t id, bool notify);
    void segment_event(const Segment& s, int target_client, bool to_owner, int reason,
                       std::uint32_t node);
    void release_client_segments(int client_id);

    // Interrupts (interrupts.cpp).
    void op_int_create(Request& r);
    void op_int_remove(Request& r);
    void op_int_connect(Request& r);
    void op_int_disconnect(Request& r);
    void remove_interrupt(std::uint32_t no, bool data);
    void release_client_interrupts(int client_id);
    std::uint64_t interrupts_triggered() const;

    // DMA queues and regions (dma.cpp).
    void op_dma_queue_create(Request& r);
    void op_dma_queue_remove(Request& r);
    void op_dma_region(Request& r);
    void op_dma_region_release(Request& r);
    // True when the client held DMA queues or regions (the engine must drop its references).
    bool release_client_dma(int client_id);

    // Admin views (admin_views.cpp).
    void op_node_info(Request& r);
    void op_segments(Request& r);
    void op_links(Request& r);
    json node_info() const;
    json segments_json() const;
    // With `probe`, each peer is connected to (a link is up when configured up and the peer
    // accepts); without, links are as configured.
    json links_json(bool probe) const;

    // Device lending: declaring devices, the pool, its hooks (devices.cpp).
    void start_lending();
    void stop_lending();
    void quiesce_hook(const lending::DeviceInfo& info, const lending::Lease& lease);
    lending::ResetOutcome reset_hook(const lending::DeviceInfo& info,
                                     std::chrono::milliseconds timeout);
    LentDevice* lent_device(lending::Fdid fdid) const;
    lending::DeviceView device_view(const lending::DeviceStatus& status) const;
    std::string admin_actor(const Client& c, const json& body) const;
    // The wire ops (lending.cpp).
    void op_dev_list(Request& r);
    void op_dev_show(Request& r);
    void op_dev_borrow(Request& r);
    void op_dev_renew(Request& r);
    void op_dev_share(Request& r);
    void op_dev_return(Request& r);
    void op_dev_reclaim(Request& r);
    void op_dev_reset(Request& r);
    void op_dev_availability(Request& r);
    void op_dev_history(Request& r);
    // Devices entering and leaving the pool at run time, audit notes (host_devices.cpp).
    void op_dev_add(Request& r);
    void op_dev_remove(Request& r);
    void op_audit_note(Request& r);
    void retire_devices(const std::vector<lending::Fdid>& fdids);
    void borrow_join(Request& r);
    json borrow_reply(const lending::Lease& lease, int client);
    // Runs `job` on a lending worker; what it returns (or throws) is the reply.
    void defer(Request& r, std::function<json()> job);
    void send_deferred(int client_id, const json& seq, json reply,
                       const std::vector<int>& fds = {});
    void run_posted();
    void lending_tick();
    void check_waits();
    // A lease's device access ended (quiesced): tell its connections, forget its records.
    void lease_gone(std::int64_t lease_id, const std::string& reason, int skip_client);
    void release_client_leases(int client_id);
    LeaseLink& lease_of(const Client& c, const json& body);
    void update_polled(lending::Fdid fdid);
    // Main loop: dev_irq to one connection of a lease (the engine's socket was full).
    void device_irq(lending::Fdid fdid, std::int64_t lease_id, int client, int type, int number);
    void deliver_irq(LentDevice& d, int type, int number); // device engine thread
    void device_fault(lending::Fdid fdid, const std::string& reason);
    // Device segments and IO mappings (device_segments.cpp).
    void op_dev_connect(Request& r);
    void op_dev_disconnect(Request& r);
    void op_dev_map(Request& r);
    void op_dev_unmap(Request& r);
    void drop_device_access(std::int64_t lease_id, int client_id);
    void drop_device_memory(lending::Fdid fdid, std::int64_t lease_id);
    // The device engine (device_engine.cpp).
    void device_engine_main();
    void vfio_irq_main();
    // Main loop: starts the interrupt thread, or has it take the current vfio devices and
    // waits until it has (a removed device's eventfds must be out of its set before closing).
    void vfio_irq_resync();
    void wake_device_engine();

    // DMA engine (engine.cpp).
    void engine_main();
    void wake_engine();
    bool engine_pass(const std::vector<std::shared_ptr<DmaQueue>>& queues, bool early_wake);
    std::uint32_t engine_execute(const DmaQueue& q, const wire::DmaDesc& d, bool early_wake);

    Options m_opts;
    fabric::FabricConfig m_config;
    std::chrono::steady_clock::time_point m_started;
    wire::Fd m_listen;
    wire::Fd m_epoll;
    wire::Fd m_signal;
    wire::Fd m_accept_timer; // re-arms the listener after the daemon ran out of descriptors
    wire::Fd m_reserve_fd;   // /dev/null, given up to accept-and-close at EMFILE
    bool m_accept_paused = false;
    std::string m_socket_path;
    bool m_stop = false;

    int m_next_client = 1;
    std::map<int, Client> m_clients; // by client id (also the epoll tag)
    std::vector<int> m_doomed;
    std::map<uid_t, UidUsage> m_uids;
    std::map<std::uint32_t, Segment> m_segments;
    std::map<std::pair<bool, std::uint32_t>, Interrupt> m_interrupts; // (data, no)
    std::uint32_t m_next_auto_segment = 0x10000;
    std::uint32_t m_next_auto_intno = 1;

    // Shared with the engine thread.
    std::mutex m_dma_mutex;
    std::map<std::uint32_t, std::shared_ptr<DmaQueue>> m_queues;
    std::map<std::uint32_t, Region> m_regions;
    std::atomic<std::uint64_t> m_queues_version{0};
    std::uint32_t m_next_queue = 1;
    std::uint32_t m_next_region = 1;
    wire::Fd m_doorbell_fd;
    wire::Mapping m_doorbell_map;
    wire::DmaDoorbell* m_doorbell = nullptr;
    std::uint64_t m_streaming_bytes = 0; // DMA copies this long use non-temporal stores
    std::atomic<bool> m_engine_stop{false};
    std::thread m_engine;

    // Device lending. Entries of m_devices are never erased (threads keep pointers to them);
    // the main loop adds entries and retires them (dev == nullptr: removed, host_devices.cpp)
    // under m_devices_mu held exclusively, and other threads look them up (lent_device)
    // holding it shared. The main loop reads without it (it is the only writer).
    std::map<std::uint32_t, std::unique_ptr<LentDevice>> m_devices; // by fdid value
    std::vector<std::uint32_t> m_device_order;                      // declared, then added
    mutable std::shared_mutex m_devices_mu;
    std::atomic<std::uint64_t> m_devices_generation{0}; // the engine re-reads m_devices
    std::shared_ptr<lending::DeviceControl> m_device_control;
    std::unique_ptr<lending::Pool> m_pool;      // main loop: borrows, renewals, reads
    std::unique_ptr<lending::Pool> m_pool_work; // workers: releases, resets, ticks, history
    std::unique_ptr<LendingWorker> m_worker;
    wire::Fd m_tick_timer;
    bool m_tick_running = false;
    std::map<std::int64_t, LeaseLink> m_lease_links;
    std::map<std::uint32_t, DevSegment> m_dev_segments; // by segment handle
    std::map<DevMemoryKey, DevMemory> m_dev_memory;
    std::map<std::pair<std::uint32_t, std::uint64_t>, DevMapping> m_dev_maps; // (fdid, io_addr)
    std::uint32_t m_next_dev_segment = 1;
    std::vector<PendingWait> m_waits;
    std::mutex m_dev_engine_mu;
    std::condition_variable m_dev_engine_cv;
    bool m_dev_engine_stop = false;
    std::thread m_dev_engine;
    std::thread m_vfio_irq;  // waits on the vfio devices' interrupt eventfds (device_vfio.cpp)
    wire::Fd m_vfio_irq_ctl; // eventfd: the thread returns (m_vfio_irq_quit) or resyncs
    std::atomic<bool> m_vfio_irq_quit{false};
    std::mutex m_vfio_irq_mu; // the resync handshake: want (main loop) and seen (the thread)
    std::condition_variable m_vfio_irq_cv;
    std::uint64_t m_vfio_irq_want = 0;
    std::uint64_t m_vfio_irq_seen = 0;
    std::atomic<std::uint64_t> m_borrows{0};
    std::atomic<std::uint64_t> m_returns{0};
    std::atomic<std::uint64_t> m_resets{0};
    std::atomic<std::uint64_t> m_reset_failures{0};
    std::atomic<std::uint64_t> m_faults{0};
    // Leases the lender ended without their holder returning them, by reason (node_info
    // reclaims_<reason>_total): an admin reclaim, an expired lease, a lease a restarted lender
    // could not confirm, a device fault. A holder whose connection closed returns its lease
    // (returns_total).
    std::atomic<std::uint64_t> m_reclaims_admin{0};
    std::atomic<std::uint64_t> m_reclaims_expired{0};
    std::atomic<std::uint64_t> m_reclaims_restart{0};
    std::atomic<std::uint64_t> m_reclaims_fault{0};

    // Counters (Prometheus-style names in node_info).
    std::atomic<std::uint64_t> m_dma_bytes{0};
    std::atomic<std::uint64_t> m_dma_transfers{0};
    std::atomic<std::uint64_t> m_dma_errors{0};
    std::uint64_t m_requests = 0;
    std::uint64_t m_malformed = 0;
    std::uint64_t m_clients_total = 0;
    std::uint64_t m_clients_dropped = 0;     // outbound queue overflowed
    std::uint64_t m_connections_refused = 0; // over --max-uid-connections
    std::uint64_t m_accept_errors = 0;       // accept() failed (EMFILE, ENFILE, ...)
    std::uint64_t m_triggers_retired = 0;    // triggers of interrupts since removed
    // Every seg_* request and every client gone: a reader of the "segments" reply that sees
    // the same value in node_info knows the reply would be the same, and need not ask again.
    std::uint64_t m_segment_changes = 0;
};

// Error reply for a request the daemon refuses: carries an sci_error_t code.
struct Refused {
    int code;
    std::string why;
    nlohmann::json extra = nlohmann::json::object(); // more reply fields ("refusal", "state")
};

[[noreturn]] inline void refuse(int code, const std::string& why) {
    throw Refused{code, why};
}

// Shared by the lending ops (lending.cpp) and the host-device ops (host_devices.cpp).
// A pool refusal as the request's error ("refusal", "state" in the reply).
Refused refused_for(const lending::LendingError& e, bool borrowing = false);
// Refuses (SCI_ERR_ACCESS) unless the client is root or the daemon's user.
void require_admin(const Client& c, const std::string& op);
// The request's "fdid": "0x80000" or a number.
lending::Fdid fdid_arg(const nlohmann::json& body);

// Limits of the outbound queue of one client (replies and events it has not read yet).
// Beyond either, the client is dropped as if it had died.
inline constexpr std::size_t k_max_out_messages = 256;
inline constexpr std::size_t k_max_out_bytes = 4u << 20;

inline constexpr std::uint64_t k_max_segment_size = 1ULL << 40;
inline constexpr std::uint32_t k_max_dma_entries = 4096;

// A sealed memfd of `size` bytes (throws Refused(NOSPC)).
wire::Fd make_memfd(const std::string& name, std::uint64_t size);
// Refuses (SCI_ERR_ILLEGAL_PARAMETER) memory a client handed over unless its size is sealed
// (F_SEAL_SHRINK | F_SEAL_GROW: a later truncate would SIGBUS the daemon's mapping) and it is
// a memory file of at least `size` bytes.
void require_sealed_memory(int fd, std::uint64_t size);

} // namespace dis::disd
