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
    Stmt(sqlite3* db, StmtHandle stmt) : m_db(db), m_stmt(std::move(stmt)) {}
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
    StmtHandle m_stmt;
};

class Db {
public:
    // Opens (creating) the file, WAL mode, the busy timeout, foreign keys on.
    Db(const std::filesystem::path& path, int busy_timeout_ms, bool synchronous_full);
    void exec(const std::string& sql);
    Stmt prepare(std::string_view sql);
    std::int64_t last_insert_id() const { return sqlite3_last_insert_rowid(m_db.get()); }
    sqlite3* get() const { return m_db.get(); }

private:
    DbHandle m_db;
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
