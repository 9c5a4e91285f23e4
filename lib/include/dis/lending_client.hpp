// Client of the lender daemons (issue 9): talks the software fabric's wire protocol to each
// lender node's disd directly, one connection per lender node, like the admin client
// (dis/fabric_admin.hpp). Replies are read through the one schema of dis/lending_model.hpp
// (devices, leases, audit rows; the wire ops are in tools/disd/README.md); a reply that does
// not fit it is a daemon we cannot understand (fabric_down).
// Refusals become dis::Error with the lender's message, which names the fdid, the state and
// why: not_found (no such device or lease), busy (held by someone else, or a wait that ran
// out), invalid_input (a policy rule or the transition table refused it), permission (an admin
// operation by a user who may not), fabric_down (the lender daemon is unreachable).
#pragma once

#include "dis/lending_model.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::lending {

using ClientMillis = std::chrono::milliseconds;

// The wait of a borrow whose request names no limit (`device borrow --wait`): a day.
inline constexpr ClientMillis k_wait_forever{24LL * 3600 * 1000};

struct BorrowOptions {
    Fdid fdid;
    bool exclusive = false;
    ClientMillis lease{0};            // 0: the lender's default
    std::optional<ClientMillis> wait; // absent: a busy device fails at once
};

// A lease this client holds (the dev_borrow reply).
struct HeldLease {
    Lease lease;
    std::string token;                // hands the lease to another process (join_value)
    std::optional<DeviceView> device; // as granted
};

// "FDID:LEASE_ID:TOKEN", what libsisci reads from DIS_SMARTIO_JOIN to join the lease.
std::string join_value(const HeldLease& lease);

// An event from a lender: "dev_lost" (the lease is gone: reclaimed, expired, returned from
// elsewhere, a device fault; `reason` says which) or "dev_irq" (`body` has type and number).
struct LenderEvent {
    std::string event;
    std::optional<Fdid> fdid;
    std::int64_t lease_id = 0;
    std::string reason;
    nlohmann::json body; // the whole event
};

// One connection to one lender node's daemon. Not thread-safe: one call at a time.
class LenderClient {
public:
    // Connects to `lender_node` in `fabric_dir` and says hello as `client_node` (0: an admin
    // client; a borrower says its own node, which identifies it with its pid and uid).
    // Throws Error(fabric_down) when the daemon is not there, Error(permission) when it is
    // not a daemon this process trusts.
    LenderClient(const std::string& fabric_dir, std::uint32_t lender_node,
                 std::uint32_t client_node = 0, ClientMillis timeout = ClientMillis(5000));
    ~LenderClient();
    LenderClient(LenderClient&&) noexcept;
    LenderClient& operator=(LenderClient&&) noexcept;

    std::uint32_t lender_node() const;

    std::vector<DeviceView> list();
    DeviceView show(Fdid fdid);
    HeldLease borrow(const BorrowOptions& options);
    Lease renew(std::int64_t lease_id, ClientMillis ttl);
    // Returns a lease this connection holds.
    void release(std::int64_t lease_id);
    // Returns a lease held by another connection (same uid, root or the daemon's uid).
    void return_lease(Fdid fdid, std::int64_t lease_id);
    std::vector<Lease> reclaim(Fdid fdid, const std::string& reason); // the leases dropped
    std::string reset(Fdid fdid);                                     // ok | failed | timed_out
    void make_available(Fdid fdid);
    void make_unavailable(Fdid fdid);
    std::vector<AuditRow> history(std::optional<Fdid> fdid, std::optional<std::int64_t> since_ms,
                                  std::optional<std::uint32_t> limit = std::nullopt);

    // Host devices (issue 10, tools/disd/host_devices.cpp). A device enters the lender's pool
    // from a spec as `disd --device` takes it ("vfio:0000:03:00.0,name=nvme0", "memory
    // name=m bars=1M"): the PF first, then its VFs, each available. Throws invalid_input when
    // the lender cannot parse or open it.
    std::vector<DeviceView> add_device(const std::string& spec);
    // The device (and its VFs) leaves the pool: state removed, its endpoint closed. Refused
    // (busy) while borrowed unless `force`, which reclaims first.
    std::vector<DeviceView> remove_device(Fdid fdid, bool force);
    // One audit row that changes nothing ("note"): `subject` (a BDF), `action` (the step),
    // `result` ("ok", "failed", "rolled back"), `detail`. Without `fdid` the row is the
    // lender host's own (fdid (node << 16) | 0xffff).
    AuditRow audit_note(std::optional<Fdid> fdid, const std::string& subject,
                        const std::string& action, const std::string& result,
                        const std::string& detail);

    // The next event the daemon sent (dev_lost, dev_irq): one queued while a call waited for
    // its reply, else one arriving within `wait`; nullopt when none came. Throws
    // Error(fabric_down) when the daemon closed the connection.
    std::optional<LenderEvent> next_event(ClientMillis wait);
    // The socket, to poll for readability alongside other descriptors.
    int fd() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

struct NodeFailure {
    std::uint32_t node_id = 0;
    std::string error;
};

// The pool across the fabric: every node whose daemon answers is asked.
struct PoolView {
    std::vector<std::uint32_t> nodes;     // nodes that answered, ascending
    std::vector<DeviceView> devices;      // ascending fdid
    std::vector<NodeFailure> unreachable; // answered ping, failed dev_list
};
// Throws Error(fabric_down) when no node of the fabric answers at all.
PoolView list_pool(const std::string& fabric_dir, ClientMillis timeout = ClientMillis(5000));

struct HistoryView {
    std::vector<std::uint32_t> nodes;
    std::vector<AuditRow> rows; // by time, then fdid, then id
    std::vector<NodeFailure> unreachable;
};
// The audit rows of one device (its lender only) or, without `fdid`, of every node.
HistoryView pool_history(const std::string& fabric_dir, std::optional<Fdid> fdid,
                         std::optional<std::int64_t> since_ms,
                         std::optional<std::uint32_t> limit = std::nullopt,
                         ClientMillis timeout = ClientMillis(5000));

} // namespace dis::lending
