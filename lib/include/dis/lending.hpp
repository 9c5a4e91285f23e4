// The device pool of one lender node, independent of the transport: devices, leases with a
// TTL, policy, hand-over to waiting borrowers, reclaim and reset, and an audit log. State,
// leases, waiters and history live in one SQLite database (WAL); every state change is one
// row of the transition table (dis/lending_states.hpp) committed together with its audit row.
// Model and guarantees: lib/lending/README.md; policy file: dis-tool-lending-policy(5).
#pragma once

#include "dis/lending_fdid.hpp"
#include "dis/lending_policy.hpp"
#include "dis/lending_states.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::lending {

using Millis = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<Millis>;

// Time as the pool sees it; tests inject a manual clock so that expiry needs no sleeps.
class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};
class SystemClock final : public Clock {
public:
    TimePoint now() const override;
};

enum class ResetOutcome { ok, failed, timed_out };
struct Lease;

// The pool's hands on the devices (the emulated endpoint in disd, or real hardware). Called
// without the pool's lock held and outside any transaction.
class DeviceControl {
public:
    virtual ~DeviceControl() = default;
    // Tear down what the lease's borrower had: its device segments, mappings and DMA. An
    // exception means the device stopped responding: it is quarantined (fault).
    virtual void quiesce(const DeviceInfo& device, const Lease& lease) = 0;
    // Reset the device, giving up after `timeout`.
    virtual ResetOutcome reset(const DeviceInfo& device, Millis timeout) = 0;
};

struct Lease {
    std::int64_t id = 0;
    Fdid fdid;
    Borrower borrower;
    Mode mode = Mode::exclusive;
    int priority = 0;
    TimePoint granted;
    TimePoint expires;
    Millis ttl{0};
    std::string rule; // the policy rule that allowed it
    bool reset_on_release = true;
};

struct DeviceStatus {
    DeviceInfo info;
    State state = State::removed;
    TimePoint since;    // when it entered this state
    std::string reason; // the reason given for the last transition
    std::vector<Lease> leases;
    std::size_t waiters = 0;
};

struct AuditRow {
    std::int64_t id = 0;
    TimePoint time;
    Fdid fdid;
    Event event = Event::add;
    State from = State::removed;
    State to = State::removed;
    std::optional<Borrower> borrower;
    std::optional<std::int64_t> lease_id;
    std::string actor;
    std::string reason;
};

struct BorrowRequest {
    Fdid fdid;
    Borrower borrower;
    Mode mode = Mode::exclusive;
    Millis lease{0}; // 0: the policy's maximum; longer requests are cut to it
};

using WaitTicket = std::int64_t;

struct RecoveryReport {
    std::vector<Lease> confirmed;
    std::vector<Lease> reclaimed;
    std::vector<Fdid> reset; // devices whose reset was (re)started
    std::size_t waiters_dropped = 0;
};

struct PoolOptions {
    std::filesystem::path database;
    Policy policy;
    std::shared_ptr<const Clock> clock;    // default: SystemClock
    std::shared_ptr<DeviceControl> device; // required
    Millis reset_timeout{std::chrono::seconds(5)};
    Millis busy_timeout{std::chrono::seconds(10)}; // waiting for another writer of the DB
    bool synchronous_full = false; // NORMAL survives a killed process; FULL survives power loss
    // No WAL checkpoint inside a commit (its fsync is a borrow's 5 ms tail); the owner calls
    // checkpoint() off the request path instead (disd: every lease-clock tick, on a worker).
    bool manual_checkpoints = false;
    // Test hook: runs inside each transaction, after its writes, before COMMIT.
    std::function<void(const AuditRow&)> before_commit;
};

class Pool {
public:
    explicit Pool(PoolOptions options);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    void set_policy(Policy policy);

    // --- the lender's own moves (actor: who asked, for the audit log)
    void add_device(const DeviceInfo& info, const std::string& actor);
    void make_available(Fdid fdid, const std::string& actor);
    void make_unavailable(Fdid fdid, const std::string& actor);
    void remove(Fdid fdid, const std::string& actor);
    // An audit row that changes nothing (event note, from = to = the device's state, removed
    // for an fdid the pool does not know): a step the lender's host took for the device, such
    // as one sysfs write of `dis-tool device lend`. Returns the row.
    AuditRow note(Fdid fdid, const std::string& actor, const std::string& reason);

    // --- borrowers
    // Grants at once or throws LendingError (policy: names the rule; guard_failed/busy: names
    // the holder).
    Lease borrow(const BorrowRequest& request);
    // Like borrow, but a busy device queues the request until `timeout`: the ticket is granted
    // on hand-over (highest priority first, then first come first served).
    WaitTicket borrow_or_wait(const BorrowRequest& request, Millis timeout);
    // The lease once granted, nullopt while still waiting; throws wait_ended when it expired
    // or was cancelled. A granted ticket is consumed by the first call that returns it.
    std::optional<Lease> take_grant(WaitTicket ticket);
    void cancel_wait(WaitTicket ticket);
    Lease renew(std::int64_t lease_id, Millis ttl = Millis{0});
    // An exclusive lease becomes a shared one (SCIReleaseExclusiveBorrow), if the policy
    // allows the borrower a shared borrow; others may then share the device. The state stays
    // borrowed, so no audit row is written.
    Lease share(std::int64_t lease_id);
    // Releases a lease; the last one quiesces, resets (per policy) and hands the device over.
    void release(std::int64_t lease_id, const std::string& actor);

    // --- faults and admin
    // Forced: drops every lease (quiescing each), resets, makes available. Returns the leases.
    std::vector<Lease> reclaim(Fdid fdid, const std::string& actor, const std::string& reason);
    // Admin reset: available or failed -> resetting -> available (or failed again).
    ResetOutcome reset(Fdid fdid, const std::string& actor);
    // The device stopped responding: quarantined, its leases dropped and returned (tell them).
    std::vector<Lease> fault(Fdid fdid, const std::string& reason);
    // Expires leases and waits past their time; returns how many leases expired.
    std::size_t tick();
    // At lender start-up: leases `confirm` rejects are reclaimed (devices reset), interrupted
    // returns and resets are finished, waiters (their connections are gone) are dropped.
    RecoveryReport recover(const std::function<bool(const Lease&)>& confirm = {});

    // --- reading
    DeviceStatus device(Fdid fdid) const;
    std::vector<DeviceStatus> devices() const;
    std::vector<AuditRow> history(std::optional<Fdid> fdid = std::nullopt,
                                  std::optional<TimePoint> since = std::nullopt) const;
    std::int64_t audit_count() const;
    // Moves the write-ahead log into the database file (see PoolOptions::manual_checkpoints).
    void checkpoint();

    struct Impl; // opaque: lib/lending/pool_impl.hpp

private:
    std::unique_ptr<Impl> m_impl;
};

} // namespace dis::lending
