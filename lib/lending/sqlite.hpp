// A thin RAII layer over SQLite for the pool (internal to lib/lending): a connection, prepared
// statements and an IMMEDIATE transaction that rolls back unless committed.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dis::lending::sql {

struct CloseDb {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct FinalizeStmt {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

class Stmt {
public:
    // A statement of its own, or one borrowed from the connection's cache (reset and its
    // bindings cleared when this Stmt goes, so the next user finds it fresh).
    Stmt(sqlite3* db, StmtHandle stmt) : m_db(db), m_owned(std::move(stmt)), m_raw(m_owned.get()) {}
    Stmt(sqlite3* db, sqlite3_stmt* cached, bool* in_use)
        : m_db(db), m_raw(cached), m_in_use(in_use) {}
    ~Stmt();
    Stmt(Stmt&& o) noexcept;
    Stmt& operator=(Stmt&&) = delete;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    // Bind by 1-based position; nullopt binds NULL.
    Stmt& bind(int index, std::int64_t value);
    Stmt& bind(int index, std::string_view value);
    Stmt& bind(int index, std::optional<std::int64_t> value);
    Stmt& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
    Stmt& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    // True when a row is ready, false when done; throws dis::Error on failure.
    bool step();
    void run(); // step to completion
    std::int64_t int64(int column) const;
    std::optional<std::int64_t> opt_int64(int column) const;
    std::string text(int column) const;

private:
    sqlite3* m_db;
    StmtHandle m_owned;
    sqlite3_stmt* m_raw = nullptr;
    bool* m_in_use = nullptr; // the cache's flag, for a borrowed statement
};

class Db {
public:
    // Opens (creating) the file, WAL mode, the busy timeout, foreign keys on.
    // `manual_checkpoints`: no automatic WAL checkpoint at commit (its fsync would land on
    // whichever writer crosses the threshold); the owner calls checkpoint() instead.
    Db(const std::filesystem::path& path, int busy_timeout_ms, bool synchronous_full,
       bool manual_checkpoints = false);
    // Copies the WAL back into the database without waiting for readers or writers.
    void checkpoint();
    void exec(const std::string& sql);
    // Compiled once per connection and reused (compiling costs more than most of the pool's
    // statements take to run); a statement still in use is compiled afresh.
    Stmt prepare(std::string_view sql);
    std::int64_t last_insert_id() const { return sqlite3_last_insert_rowid(m_db.get()); }
    sqlite3* get() const { return m_db.get(); }

private:
    struct Cached {
        StmtHandle stmt;
        bool in_use = false;
    };
    DbHandle m_db;
    std::unordered_map<std::string, std::unique_ptr<Cached>> m_cache; // goes before m_db
};

// BEGIN IMMEDIATE: the write lock is taken up front, so a transaction never fails half-way
// for lack of it (SQLite's advice for writers in WAL mode). Readers pass immediate = false
// for one consistent snapshot across several statements.
class Transaction {
public:
    explicit Transaction(Db& db, bool immediate = true);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Db& m_db;
    bool m_done = false;
};

// Throws dis::Error for a failed SQLite call: busy for SQLITE_BUSY/LOCKED, os for I/O
// trouble, internal otherwise.
[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what);

} // namespace dis::lending::sql
