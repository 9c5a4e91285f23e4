// The pool's rows in SQLite (internal to lib/lending): the schema and plain reads and writes.
// Callers hold a sql::Transaction; nothing here decides anything.
#pragma once

#include "dis/lending.hpp"
#include "sqlite.hpp"

#include <optional>
#include <vector>

namespace dis::lending::store {

struct DeviceRow {
    DeviceInfo info;
    State state = State::removed;
    TimePoint since;
    std::string reason;
    bool needs_reset = false; // a lease since the last reset asked for reset on release
};

enum class WaitStatus { waiting, granted, expired, cancelled };

struct WaiterRow {
    std::int64_t id = 0;
    BorrowRequest request;
    Decision decision;
    TimePoint enqueued;
    TimePoint deadline;
    WaitStatus status = WaitStatus::waiting;
    std::optional<std::int64_t> lease_id;
};

void create_schema(sql::Db& db);

std::optional<DeviceRow> load_device(sql::Db& db, Fdid fdid);
std::vector<DeviceRow> load_devices(sql::Db& db);
void upsert_device(sql::Db& db, const DeviceInfo& info);
void write_state(sql::Db& db, const DeviceRow& row);

std::vector<Lease> load_leases(sql::Db& db, std::optional<Fdid> fdid = std::nullopt);
std::optional<Lease> load_lease(sql::Db& db, std::int64_t id);
std::vector<Lease> expired_leases(sql::Db& db, TimePoint now);
std::int64_t insert_lease(sql::Db& db, const Lease& lease, Millis max_lease);
Millis lease_max(sql::Db& db, std::int64_t id);
void update_lease_expiry(sql::Db& db, std::int64_t id, TimePoint expires, Millis ttl);
void update_lease_mode(sql::Db& db, std::int64_t id, Mode mode);
void delete_lease(sql::Db& db, std::int64_t id);

std::int64_t insert_waiter(sql::Db& db, const WaiterRow& waiter);
std::optional<WaiterRow> load_waiter(sql::Db& db, std::int64_t id);
// Waiting rows of a device, highest priority first, then first come first served.
std::vector<WaiterRow> waiting(sql::Db& db, Fdid fdid);
std::size_t count_waiting(sql::Db& db, Fdid fdid);
void set_waiter(sql::Db& db, std::int64_t id, WaitStatus status,
                std::optional<std::int64_t> lease_id);
void delete_waiter(sql::Db& db, std::int64_t id);
// Marks waiting rows past their deadline expired (all devices); returns how many.
std::size_t expire_waiters(sql::Db& db, TimePoint now);
// Drops every waiting or granted-but-untaken row (a restarted lender); returns how many.
std::size_t drop_waiters(sql::Db& db);

std::int64_t insert_audit(sql::Db& db, const AuditRow& row);
std::vector<AuditRow> load_audit(sql::Db& db, std::optional<Fdid> fdid,
                                 std::optional<TimePoint> since);
std::int64_t count_audit(sql::Db& db);

} // namespace dis::lending::store
