// disd internals: one node daemon of the software fabric. The main thread serves the Unix
// socket (one epoll loop, so request handling needs no locks); the DMA engine runs in its own
// thread and shares only the queue and region tables (guarded by m_dma_mutex).
#pragma once

#include "dis/fabric_config.hpp"
#include "wire.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace dis::disd {

// A quarter of the last-level cache (engine.cpp): where DMA copies start bypassing it.
std::uint64_t default_streaming_bytes();

struct Options {
    std::uint32_t node_id = 0;
    std::string fabric_dir;
    std::optional<std::string> config_path;
    std::uint32_t adapter = 0;
    bool verbose = false;
    std::uint64_t max_client_bytes = 1ULL << 30; // segment memory per client
    std::uint32_t max_client_objects = 1024;     // segments, interrupts, queues, regions each
    std::uint64_t dma_streaming_bytes = 0;       // see engine.cpp; 0: a quarter of the LLC
};

struct Client {
    int id = 0;
    wire::Fd sock;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    bool hello = false;
    std::uint32_t node_id = 0; // the node the client process belongs to
    std::uint64_t bytes = 0;
    std::uint32_t segments = 0;
    std::uint32_t interrupts = 0;
    std::uint32_t queues = 0;
    std::uint32_t regions = 0;
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
    wire::Fd ring_fd; // data interrupts: the payload ring
    int owner = 0;
    uid_t owner_uid = 0;
    bool shared_access = false;
    std::map<int, std::uint32_t> connections;
};

// A memory region the DMA engine may read or write, owned by one client.
struct Region {
    int client = 0;
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

    void log(const std::string& msg) const;
    void accept_client();
    void serve_client(int client_id);
    void drop_client(int client_id);
    void handle(Client& c, const wire::Message& msg, json& reply, std::vector<int>& fds);
    void send_event(int client_id, const json& ev, const std::vector<int>& fds = {});

    // Request handlers: fill `reply` ("err" set by the caller when they throw).
    void op_hello(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_seg_create(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_seg_register(Client& c, const json& req, const wire::Message& msg, json& reply);
    void op_seg_state(Client& c, const json& req, const std::string& op, json& reply);
    void op_seg_remove(Client& c, const json& req, json& reply);
    void op_seg_attach(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_seg_connect(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_seg_disconnect(Client& c, const json& req, json& reply);
    void op_seg_map(Client& c, const json& req, json& reply);
    void op_int_create(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_int_remove(Client& c, const json& req, json& reply);
    void op_int_connect(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_int_disconnect(Client& c, const json& req, json& reply);
    void op_dma_queue_create(Client& c, const json& req, json& reply, std::vector<int>& fds);
    void op_dma_queue_remove(Client& c, const json& req, json& reply);
    void op_dma_region(Client& c, const json& req, const wire::Message& msg, json& reply);
    void op_dma_region_release(Client& c, const json& req, json& reply);
    json node_info() const;
    json segments_json() const;
    json links_json() const;

    Segment& owned_segment(Client& c, std::uint32_t id);
    bool may_access(const Client& c, uid_t owner_uid, bool shared_access) const;
    void remove_segment(std::uint32_t id, bool notify);
    void remove_interrupt(std::uint32_t no, bool data);
    void segment_event(const Segment& s, int target_client, bool to_owner, int reason,
                       std::uint32_t node);

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
    std::string m_socket_path;
    bool m_stop = false;

    int m_next_client = 1;
    std::map<int, Client> m_clients;   // by client id
    std::map<int, int> m_fd_to_client; // socket fd -> client id
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

    // Counters (Prometheus-style names in node_info).
    std::atomic<std::uint64_t> m_dma_bytes{0};
    std::atomic<std::uint64_t> m_dma_transfers{0};
    std::atomic<std::uint64_t> m_dma_errors{0};
    std::uint64_t m_requests = 0;
    std::uint64_t m_malformed = 0;
    std::uint64_t m_clients_total = 0;
};

// Error reply for a request the daemon refuses: carries an sci_error_t code.
struct Refused {
    int code;
    std::string why;
};

} // namespace dis::disd
