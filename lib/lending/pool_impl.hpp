// The pool's private state and the steps its operations are made of (internal).
#pragma once

#include "dis/lending.hpp"
#include "sqlite.hpp"
#include "store.hpp"

#include <mutex>

namespace dis::lending {

namespace detail {
std::string format_time(TimePoint t);
std::string describe(const Borrower& b);
std::string holder(const std::vector<Lease>& leases);
} // namespace detail

struct Pool::Impl {
    // What an audit row says beyond the transition itself.
    struct Change {
        std::string actor;
        std::string reason;
        std::optional<Borrower> borrower = std::nullopt;
        std::optional<std::int64_t> lease_id = std::nullopt;
    };
    struct Dropped {
        DeviceInfo info;
        bool last = false; // the device went to returning
    };

    explicit Impl(PoolOptions o);

    TimePoint now() const { return opt.clock->now(); }
    // The device's row or LendingError(no_such_device).
    store::DeviceRow require(Fdid fdid);
    // The one place a state changes: checks the table, writes the state and the audit row.
    // Inside a transaction; `row` is updated.
    const Transition& apply(store::DeviceRow& row, Event event, const GuardFacts& facts,
                            const Change& change);
    // A borrow transition with its new lease (inside a transaction).
    Lease grant(store::DeviceRow& row, const BorrowRequest& req, const Decision& decision,
                const std::string& actor, const std::string& reason);
    // A just-available device goes to its waiters (inside the transaction that freed it).
    void hand_over(store::DeviceRow& row);
    // Removes one lease by release, expire or lease_lost (inside a transaction).
    Dropped drop_lease(const Lease& lease, Event event, const std::string& actor,
                       const std::string& reason);
    // Quiesce the dropped leases, then quiesced -> resetting -> reset, or -> available.
    // Takes the lock itself; call without it.
    void finish_return(const DeviceInfo& info, const std::vector<Lease>& dropped,
                       const std::string& actor);
    // Resets a device in state resetting and records the outcome. Call without the lock.
    ResetOutcome run_reset(const DeviceInfo& info, const std::string& actor);
    // The fault transition; takes the lock itself.
    std::vector<Lease> fault_locked(Fdid fdid, const std::string& reason);

    PoolOptions opt;
    sql::Db db;
    mutable std::mutex mu; // one transaction at a time on this connection
};

} // namespace dis::lending
