// The pool's schema and row I/O.
#include "store.hpp"

namespace dis::lending::store {

namespace {

std::int64_t ms(TimePoint t) {
    return t.time_since_epoch().count();
}
TimePoint at(std::int64_t v) {
    return TimePoint(Millis(v));
}

const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
CREATE TABLE IF NOT EXISTS devices(
  fdid INTEGER PRIMARY KEY, vendor_id INTEGER NOT NULL, device_id INTEGER NOT NULL,
  class_code INTEGER NOT NULL, name TEXT NOT NULL,
  state TEXT NOT NULL, since INTEGER NOT NULL, reason TEXT NOT NULL,
  needs_reset INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS leases(
  id INTEGER PRIMARY KEY AUTOINCREMENT, fdid INTEGER NOT NULL REFERENCES devices(fdid),
  node_id INTEGER NOT NULL, pid INTEGER NOT NULL, uid INTEGER NOT NULL,
  exclusive INTEGER NOT NULL, priority INTEGER NOT NULL, granted INTEGER NOT NULL,
  expires INTEGER NOT NULL, ttl_ms INTEGER NOT NULL, max_ms INTEGER NOT NULL,
  rule TEXT NOT NULL, reset_on_release INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS waiters(
  id INTEGER PRIMARY KEY AUTOINCREMENT, fdid INTEGER NOT NULL REFERENCES devices(fdid),
  node_id INTEGER NOT NULL, pid INTEGER NOT NULL, uid INTEGER NOT NULL,
  exclusive INTEGER NOT NULL, lease_ms INTEGER NOT NULL, priority INTEGER NOT NULL,
  rule TEXT NOT NULL, max_ms INTEGER NOT NULL, reset_on_release INTEGER NOT NULL,
  enqueued INTEGER NOT NULL, deadline INTEGER NOT NULL, status INTEGER NOT NULL,
  lease_id INTEGER);
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, fdid INTEGER NOT NULL,
  event TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
  node_id INTEGER, pid INTEGER, uid INTEGER, lease_id INTEGER,
  actor TEXT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_fdid ON audit(fdid, id);
)sql";

State state_of(const std::string& text) {
    if (auto s = parse_state(text))
        return *s;
    throw Error(ErrorKind::internal, "lending database: unknown state '" + text + "'");
}

constexpr const char* k_device_cols =
    "fdid, vendor_id, device_id, class_code, name, state, since, reason, needs_reset";

DeviceRow read_device(const sql::Stmt& s) {
    DeviceRow r;
    r.info.fdid = Fdid{static_cast<std::uint32_t>(s.int64(0))};
    r.info.vendor_id = static_cast<std::uint16_t>(s.int64(1));
    r.info.device_id = static_cast<std::uint16_t>(s.int64(2));
    r.info.class_code = static_cast<std::uint32_t>(s.int64(3));
    r.info.name = s.text(4);
    r.state = state_of(s.text(5));
    r.since = at(s.int64(6));
    r.reason = s.text(7);
    r.needs_reset = s.int64(8) != 0;
    return r;
}

constexpr const char* k_lease_cols = "id, fdid, node_id, pid, uid, exclusive, priority, granted, "
                                     "expires, ttl_ms, rule, reset_on_release";

Lease read_lease(const sql::Stmt& s) {
    Lease l;
    l.id = s.int64(0);
    l.fdid = Fdid{static_cast<std::uint32_t>(s.int64(1))};
    l.borrower = {static_cast<std::uint32_t>(s.int64(2)), s.int64(3),
                  static_cast<std::uint32_t>(s.int64(4))};
    l.mode = s.int64(5) ? Mode::exclusive : Mode::shared;
    l.priority = static_cast<int>(s.int64(6));
    l.granted = at(s.int64(7));
    l.expires = at(s.int64(8));
    l.ttl = Millis(s.int64(9));
    l.rule = s.text(10);
    l.reset_on_release = s.int64(11) != 0;
    return l;
}

std::vector<Lease> read_leases(sql::Stmt& s) {
    std::vector<Lease> out;
    while (s.step())
        out.push_back(read_lease(s));
    return out;
}

constexpr const char* k_waiter_cols =
    "id, fdid, node_id, pid, uid, exclusive, lease_ms, priority, rule, max_ms, "
    "reset_on_release, enqueued, deadline, status, lease_id";

WaiterRow read_waiter(const sql::Stmt& s) {
    WaiterRow w;
    w.id = s.int64(0);
    w.request.fdid = Fdid{static_cast<std::uint32_t>(s.int64(1))};
    w.request.borrower = {static_cast<std::uint32_t>(s.int64(2)), s.int64(3),
                          static_cast<std::uint32_t>(s.int64(4))};
    w.request.mode = s.int64(5) ? Mode::exclusive : Mode::shared;
    w.request.lease = Millis(s.int64(6));
    w.decision.allowed = true;
    w.decision.grant.priority = static_cast<int>(s.int64(7));
    w.decision.rule = s.text(8);
    w.decision.grant.max_lease = Millis(s.int64(9));
    w.decision.grant.reset_on_release = s.int64(10) != 0;
    w.enqueued = at(s.int64(11));
    w.deadline = at(s.int64(12));
    w.status = static_cast<WaitStatus>(s.int64(13));
    w.lease_id = s.opt_int64(14);
    return w;
}

} // namespace

void create_schema(sql::Db& db) {
    db.exec(k_schema);
}

std::optional<DeviceRow> load_device(sql::Db& db, Fdid fdid) {
    auto s = db.prepare(std::string("SELECT ") + k_device_cols + " FROM devices WHERE fdid=?");
    s.bind(1, std::int64_t{fdid.value});
    if (!s.step())
        return std::nullopt;
    return read_device(s);
}

std::vector<DeviceRow> load_devices(sql::Db& db) {
    auto s = db.prepare(std::string("SELECT ") + k_device_cols + " FROM devices ORDER BY fdid");
    std::vector<DeviceRow> out;
    while (s.step())
        out.push_back(read_device(s));
    return out;
}

void upsert_device(sql::Db& db, const DeviceInfo& info) {
    db.prepare("INSERT INTO devices(fdid, vendor_id, device_id, class_code, name, state, since, "
               "reason) VALUES(?,?,?,?,?,'removed',0,'') ON CONFLICT(fdid) DO UPDATE SET "
               "vendor_id=excluded.vendor_id, device_id=excluded.device_id, "
               "class_code=excluded.class_code, name=excluded.name")
        .bind(1, std::int64_t{info.fdid.value})
        .bind(2, std::int64_t{info.vendor_id})
        .bind(3, std::int64_t{info.device_id})
        .bind(4, std::int64_t{info.class_code})
        .bind(5, std::string_view(info.name))
        .run();
}

void write_state(sql::Db& db, const DeviceRow& row) {
    db.prepare("UPDATE devices SET state=?, since=?, reason=?, needs_reset=? WHERE fdid=?")
        .bind(1, to_string(row.state))
        .bind(2, ms(row.since))
        .bind(3, std::string_view(row.reason))
        .bind(4, row.needs_reset ? 1 : 0)
        .bind(5, std::int64_t{row.info.fdid.value})
        .run();
}

std::vector<Lease> load_leases(sql::Db& db, std::optional<Fdid> fdid) {
    std::string q = std::string("SELECT ") + k_lease_cols + " FROM leases";
    if (fdid) {
        auto s = db.prepare(q + " WHERE fdid=? ORDER BY id");
        s.bind(1, std::int64_t{fdid->value});
        return read_leases(s);
    }
    auto s = db.prepare(q + " ORDER BY id");
    return read_leases(s);
}

std::optional<Lease> load_lease(sql::Db& db, std::int64_t id) {
    auto s = db.prepare(std::string("SELECT ") + k_lease_cols + " FROM leases WHERE id=?");
    s.bind(1, id);
    if (!s.step())
        return std::nullopt;
    return read_lease(s);
}

std::vector<Lease> expired_leases(sql::Db& db, TimePoint now) {
    auto s = db.prepare(std::string("SELECT ") + k_lease_cols +
                        " FROM leases WHERE expires<=? ORDER BY expires, id");
    s.bind(1, ms(now));
    return read_leases(s);
}

std::int64_t insert_lease(sql::Db& db, const Lease& l, Millis max_lease) {
    db.prepare("INSERT INTO leases(fdid, node_id, pid, uid, exclusive, priority, granted, "
               "expires, ttl_ms, max_ms, rule, reset_on_release) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, std::int64_t{l.fdid.value})
        .bind(2, std::int64_t{l.borrower.node_id})
        .bind(3, l.borrower.pid)
        .bind(4, std::int64_t{l.borrower.uid})
        .bind(5, l.mode == Mode::exclusive ? 1 : 0)
        .bind(6, l.priority)
        .bind(7, ms(l.granted))
        .bind(8, ms(l.expires))
        .bind(9, static_cast<std::int64_t>(l.ttl.count()))
        .bind(10, static_cast<std::int64_t>(max_lease.count()))
        .bind(11, std::string_view(l.rule))
        .bind(12, l.reset_on_release ? 1 : 0)
        .run();
    return db.last_insert_id();
}

Millis lease_max(sql::Db& db, std::int64_t id) {
    auto s = db.prepare("SELECT max_ms FROM leases WHERE id=?");
    s.bind(1, id);
    return s.step() ? Millis(s.int64(0)) : Millis(0);
}

void update_lease_expiry(sql::Db& db, std::int64_t id, TimePoint expires, Millis ttl) {
    db.prepare("UPDATE leases SET expires=?, ttl_ms=? WHERE id=?")
        .bind(1, ms(expires))
        .bind(2, static_cast<std::int64_t>(ttl.count()))
        .bind(3, id)
        .run();
}

void update_lease_mode(sql::Db& db, std::int64_t id, Mode mode) {
    db.prepare("UPDATE leases SET exclusive=? WHERE id=?")
        .bind(1, mode == Mode::exclusive ? 1 : 0)
        .bind(2, id)
        .run();
}

void delete_lease(sql::Db& db, std::int64_t id) {
    db.prepare("DELETE FROM leases WHERE id=?").bind(1, id).run();
}

std::int64_t insert_waiter(sql::Db& db, const WaiterRow& w) {
    db.prepare("INSERT INTO waiters(fdid, node_id, pid, uid, exclusive, lease_ms, priority, rule, "
               "max_ms, reset_on_release, enqueued, deadline, status, lease_id) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, std::int64_t{w.request.fdid.value})
        .bind(2, std::int64_t{w.request.borrower.node_id})
        .bind(3, w.request.borrower.pid)
        .bind(4, std::int64_t{w.request.borrower.uid})
        .bind(5, w.request.mode == Mode::exclusive ? 1 : 0)
        .bind(6, static_cast<std::int64_t>(w.request.lease.count()))
        .bind(7, w.decision.grant.priority)
        .bind(8, std::string_view(w.decision.rule))
        .bind(9, static_cast<std::int64_t>(w.decision.grant.max_lease.count()))
        .bind(10, w.decision.grant.reset_on_release ? 1 : 0)
        .bind(11, ms(w.enqueued))
        .bind(12, ms(w.deadline))
        .bind(13, static_cast<int>(w.status))
        .bind(14, w.lease_id)
        .run();
    return db.last_insert_id();
}

std::optional<WaiterRow> load_waiter(sql::Db& db, std::int64_t id) {
    auto s = db.prepare(std::string("SELECT ") + k_waiter_cols + " FROM waiters WHERE id=?");
    s.bind(1, id);
    if (!s.step())
        return std::nullopt;
    return read_waiter(s);
}

std::vector<WaiterRow> waiting(sql::Db& db, Fdid fdid) {
    auto s = db.prepare(std::string("SELECT ") + k_waiter_cols +
                        " FROM waiters WHERE fdid=? AND status=0 ORDER BY priority DESC, id");
    s.bind(1, std::int64_t{fdid.value});
    std::vector<WaiterRow> out;
    while (s.step())
        out.push_back(read_waiter(s));
    return out;
}

std::size_t count_waiting(sql::Db& db, Fdid fdid) {
    auto s = db.prepare("SELECT count(*) FROM waiters WHERE fdid=? AND status=0");
    s.bind(1, std::int64_t{fdid.value});
    s.step();
    return static_cast<std::size_t>(s.int64(0));
}

void set_waiter(sql::Db& db, std::int64_t id, WaitStatus status,
                std::optional<std::int64_t> lease_id) {
    db.prepare("UPDATE waiters SET status=?, lease_id=? WHERE id=?")
        .bind(1, static_cast<int>(status))
        .bind(2, lease_id)
        .bind(3, id)
        .run();
}

void delete_waiter(sql::Db& db, std::int64_t id) {
    db.prepare("DELETE FROM waiters WHERE id=?").bind(1, id).run();
}

std::size_t expire_waiters(sql::Db& db, TimePoint now) {
    db.prepare("UPDATE waiters SET status=2 WHERE status=0 AND deadline<=?").bind(1, ms(now)).run();
    return static_cast<std::size_t>(sqlite3_changes(db.get()));
}

std::size_t drop_waiters(sql::Db& db) {
    db.exec("DELETE FROM waiters");
    return static_cast<std::size_t>(sqlite3_changes(db.get()));
}

std::int64_t insert_audit(sql::Db& db, const AuditRow& r) {
    auto opt = [](std::optional<Borrower> b, auto field) -> std::optional<std::int64_t> {
        if (!b)
            return std::nullopt;
        return static_cast<std::int64_t>((*b).*field);
    };
    db.prepare("INSERT INTO audit(time, fdid, event, from_state, to_state, node_id, pid, uid, "
               "lease_id, actor, reason) VALUES(?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, ms(r.time))
        .bind(2, std::int64_t{r.fdid.value})
        .bind(3, to_string(r.event))
        .bind(4, to_string(r.from))
        .bind(5, to_string(r.to))
        .bind(6, opt(r.borrower, &Borrower::node_id))
        .bind(7, opt(r.borrower, &Borrower::pid))
        .bind(8, opt(r.borrower, &Borrower::uid))
        .bind(9, r.lease_id)
        .bind(10, std::string_view(r.actor))
        .bind(11, std::string_view(r.reason))
        .run();
    return db.last_insert_id();
}

std::vector<AuditRow> load_audit(sql::Db& db, std::optional<Fdid> fdid,
                                 std::optional<TimePoint> since) {
    auto s = db.prepare("SELECT id, time, fdid, event, from_state, to_state, node_id, pid, uid, "
                        "lease_id, actor, reason FROM audit WHERE (?1 IS NULL OR fdid=?1) AND "
                        "(?2 IS NULL OR time>=?2) ORDER BY id");
    s.bind(1, fdid ? std::optional<std::int64_t>(fdid->value) : std::nullopt);
    s.bind(2, since ? std::optional<std::int64_t>(ms(*since)) : std::nullopt);
    std::vector<AuditRow> out;
    while (s.step()) {
        AuditRow r;
        r.id = s.int64(0);
        r.time = at(s.int64(1));
        r.fdid = Fdid{static_cast<std::uint32_t>(s.int64(2))};
        r.event = parse_event(s.text(3)).value_or(Event::add);
        r.from = state_of(s.text(4));
        r.to = state_of(s.text(5));
        if (auto node = s.opt_int64(6))
            r.borrower = Borrower{static_cast<std::uint32_t>(*node), s.int64(7),
                                  static_cast<std::uint32_t>(s.int64(8))};
        r.lease_id = s.opt_int64(9);
        r.actor = s.text(10);
        r.reason = s.text(11);
        out.push_back(std::move(r));
    }
    return out;
}

std::int64_t count_audit(sql::Db& db) {
    auto s = db.prepare("SELECT count(*) FROM audit");
    s.step();
    return s.int64(0);
}

} // namespace dis::lending::store
