// RAII SQLite helpers for the pool.
#include "sqlite.hpp"

#include "dis/error.hpp"

#include <utility>

namespace dis::lending::sql {

void fail(sqlite3* db, int rc, std::string_view what) {
    std::string msg = "lending database: " + std::string(what) + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    int primary = rc & 0xff;
    ErrorKind kind = ErrorKind::internal;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        kind = ErrorKind::busy;
    else if (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN || primary == SQLITE_FULL ||
             primary == SQLITE_READONLY)
        kind = ErrorKind::os;
    else if (primary == SQLITE_PERM || primary == SQLITE_AUTH)
        kind = ErrorKind::permission;
    throw Error(kind, msg);
}

Stmt::~Stmt() {
    if (m_in_use != nullptr) {
        sqlite3_reset(m_raw);
        sqlite3_clear_bindings(m_raw);
        *m_in_use = false;
    }
}

Stmt::Stmt(Stmt&& o) noexcept
    : m_db(o.m_db), m_owned(std::move(o.m_owned)), m_raw(std::exchange(o.m_raw, nullptr)),
      m_in_use(std::exchange(o.m_in_use, nullptr)) {}

Stmt& Stmt::bind(int index, std::int64_t value) {
    int rc = sqlite3_bind_int64(m_raw, index, value);
    if (rc != SQLITE_OK)
        fail(m_db, rc, "bind");
    return *this;
}

Stmt& Stmt::bind(int index, std::string_view value) {
    int rc = sqlite3_bind_text(m_raw, index, value.data(), static_cast<int>(value.size()),
                               SQLITE_TRANSIENT);
    if (rc != SQLITE_OK)
        fail(m_db, rc, "bind");
    return *this;
}

Stmt& Stmt::bind(int index, std::optional<std::int64_t> value) {
    if (value)
        return bind(index, *value);
    int rc = sqlite3_bind_null(m_raw, index);
    if (rc != SQLITE_OK)
        fail(m_db, rc, "bind");
    return *this;
}

bool Stmt::step() {
    int rc = sqlite3_step(m_raw);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    fail(m_db, rc, sqlite3_sql(m_raw));
}

void Stmt::run() {
    while (step()) {
    }
}

std::int64_t Stmt::int64(int column) const {
    return sqlite3_column_int64(m_raw, column);
}

std::optional<std::int64_t> Stmt::opt_int64(int column) const {
    if (sqlite3_column_type(m_raw, column) == SQLITE_NULL)
        return std::nullopt;
    return int64(column);
}

std::string Stmt::text(int column) const {
    auto* p = sqlite3_column_text(m_raw, column);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
}

Db::Db(const std::filesystem::path& path, int busy_timeout_ms, bool synchronous_full,
       bool manual_checkpoints) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    m_db.reset(raw); // closed even when open failed
    if (rc != SQLITE_OK)
        fail(raw, rc, "open " + path.string());
    sqlite3_busy_timeout(raw, busy_timeout_ms);
    exec("PRAGMA journal_mode=WAL");
    exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    if (manual_checkpoints)
        exec("PRAGMA wal_autocheckpoint=0");
}

void Db::checkpoint() {
    // Passive first: it never blocks a writer. Under sustained writes a passive checkpoint
    // never catches up and the log would grow without end, so past 1,024 frames (4 MiB) the
    // log is copied and truncated, holding writers off for that one sync.
    constexpr int k_max_frames = 1024;
    int log_frames = 0;
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(m_db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        fail(m_db.get(), rc, "wal checkpoint");
    if (log_frames > k_max_frames) {
        rc = sqlite3_wal_checkpoint_v2(m_db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                       nullptr);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            fail(m_db.get(), rc, "wal checkpoint");
    }
}

void Db::exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(m_db.get(), sql.c_str(), nullptr, nullptr, &err);
    std::unique_ptr<char, decltype(&sqlite3_free)> owned(err, &sqlite3_free);
    if (rc != SQLITE_OK)
        fail(m_db.get(), rc, sql);
}

Stmt Db::prepare(std::string_view sql) {
    auto it = m_cache.find(std::string(sql));
    if (it != m_cache.end() && !it->second->in_use) {
        it->second->in_use = true;
        return Stmt(m_db.get(), it->second->stmt.get(), &it->second->in_use);
    }
    sqlite3_stmt* raw = nullptr;
    int rc =
        sqlite3_prepare_v2(m_db.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    StmtHandle stmt(raw);
    if (rc != SQLITE_OK)
        fail(m_db.get(), rc, sql);
    if (it == m_cache.end()) {
        auto cached = std::make_unique<Cached>();
        cached->stmt = std::move(stmt);
        cached->in_use = true;
        auto& c = *m_cache.emplace(std::string(sql), std::move(cached)).first->second;
        return Stmt(m_db.get(), c.stmt.get(), &c.in_use);
    }
    return Stmt(m_db.get(), std::move(stmt));
}

Transaction::Transaction(Db& db, bool immediate) : m_db(db) {
    m_db.prepare(immediate ? "BEGIN IMMEDIATE" : "BEGIN").run();
}

Transaction::~Transaction() {
    if (!m_done)
        sqlite3_exec(m_db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    m_db.prepare("COMMIT").run();
    m_done = true;
}

} // namespace dis::lending::sql
