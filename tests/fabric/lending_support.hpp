// Helpers of the lending fault and stress tests (issue 9): the pool's wire ops spoken raw
// (tests/fabric/raw_client.hpp), fdids, bounded polling, and a borrower that lives in a forked
// child. Every wait is bounded; nothing here sleeps as synchronisation.
#pragma once

#include "fabric_support.hpp"
#include "raw_client.hpp"

#include "dis/lending.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace dis::test::lending {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint32_t fdid_of(std::uint32_t node, std::uint32_t index) {
    return (node << 16) | index;
}
// As the daemon prints it: "0x40000".
inline std::string fdid_text(std::uint32_t fdid) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", fdid);
    return buf;
}
// How a request names a device (the device json's own form).
inline nlohmann::json fdid_json(std::uint32_t fdid) {
    return fdid_text(fdid);
}

inline double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Polls `pred` every 2 ms until it holds or `timeout` passed; true when it held.
template <class Pred> bool poll_until(milliseconds timeout, Pred&& pred) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (Clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(milliseconds(2));
    }
}

// ---- requests that must be answered (the test process; REQUIREs) --------------------------

// A client of `lender` that said hello as `as_node` (the test's admin view: same uid).
class LenderView {
public:
    LenderView(const LocalFabric& fabric, std::uint32_t lender, std::uint32_t as_node)
        : m_client(fabric.socket(lender)) {
        REQUIRE(m_client.hello(as_node) == 0);
    }
    RawClient& client() { return m_client; }

    nlohmann::json device(std::uint32_t fdid) {
        auto r = m_client.must_reply({{"op", "dev_show"}, {"fdid", fdid_json(fdid)}});
        INFO(r.body.dump());
        REQUIRE(r.err() == 0);
        return r.body.at("device");
    }
    std::vector<nlohmann::json> devices() {
        auto r = m_client.must_reply({{"op", "dev_list"}});
        INFO(r.body.dump());
        REQUIRE(r.err() == 0);
        return r.body.at("devices").get<std::vector<nlohmann::json>>();
    }
    std::string state(std::uint32_t fdid) { return device(fdid).value("state", ""); }
    // The newest audit rows of `fdid` (as many as fit one reply: a few hundred), oldest first.
    std::vector<nlohmann::json> history(std::uint32_t fdid) {
        auto r = history_reply(fdid);
        auto rows = r.at("rows").get<std::vector<nlohmann::json>>();
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
            return a.at("id").template get<std::int64_t>() <
                   b.at("id").template get<std::int64_t>();
        });
        return rows;
    }
    // How many audit rows `fdid` has in all (the reply's "total").
    std::size_t history_total(std::uint32_t fdid) {
        return history_reply(fdid).at("total").get<std::size_t>();
    }
    // Admin reset; returns the outcome ("ok", "failed", "timed_out").
    std::string reset(std::uint32_t fdid) {
        auto r = m_client.call({{"op", "dev_reset"}, {"fdid", fdid_json(fdid)}}, {},
                               std::chrono::seconds(15));
        REQUIRE(r.has_value());
        INFO(r->body.dump());
        REQUIRE(r->err() == 0);
        return r->body.value("outcome", "");
    }
    // True once `fdid` is available with no lease left, within `timeout`.
    bool wait_available(std::uint32_t fdid, milliseconds timeout) {
        return poll_until(timeout, [&] {
            auto d = device(fdid);
            return d.value("state", "") == "available" &&
                   d.value("leases", nlohmann::json::array()).empty();
        });
    }
    bool wait_state(std::uint32_t fdid, const std::string& state, milliseconds timeout) {
        return poll_until(timeout, [&] { return this->state(fdid) == state; });
    }

private:
    nlohmann::json history_reply(std::uint32_t fdid) {
        auto r = m_client.must_reply(
            {{"op", "dev_history"}, {"fdid", fdid_json(fdid)}, {"limit", 100000}});
        INFO(r.body.dump().substr(0, 2000));
        REQUIRE(r.err() == 0);
        return r.body;
    }

    RawClient m_client;
};

// The whole audit log of `fdid` read from the lender's database itself (a reply carries only
// the newest rows): a second Pool on the same file, as lib/lending/README.md allows; it only
// reads.
inline std::vector<dis::lending::AuditRow>
database_history(const LocalFabric& fabric, std::uint32_t lender, std::uint32_t fdid) {
    struct ReadOnly final : dis::lending::DeviceControl {
        void quiesce(const dis::lending::DeviceInfo&, const dis::lending::Lease&) override {
            throw std::logic_error("the test's pool does not move devices");
        }
        dis::lending::ResetOutcome reset(const dis::lending::DeviceInfo&,
                                         dis::lending::Millis) override {
            throw std::logic_error("the test's pool does not move devices");
        }
    };
    dis::lending::PoolOptions o;
    o.database = fabric.dir() + "/node-" + std::to_string(lender) + ".lending.sqlite";
    o.device = std::make_shared<ReadOnly>();
    dis::lending::Pool pool(std::move(o));
    return pool.history(dis::lending::Fdid{fdid});
}

// The rows of `rows` from index `from` on whose event is `event`.
inline std::size_t count_event(const std::vector<nlohmann::json>& rows, const std::string& event,
                               std::size_t from = 0) {
    std::size_t n = 0;
    for (std::size_t i = from; i < rows.size(); ++i)
        n += rows[i].value("event", "") == event;
    return n;
}

// Each row's "from" is the previous row's "to" (the history replays to the current state).
inline bool history_chains(const std::vector<nlohmann::json>& rows, std::string& why) {
    for (std::size_t i = 1; i < rows.size(); ++i)
        if (rows[i].value("from", "?") != rows[i - 1].value("to", "!")) {
            why = "row " + rows[i].dump() + " does not follow " + rows[i - 1].dump();
            return false;
        }
    return true;
}

// ---- a raw borrower (also usable inside forked children: no REQUIRE past construction) -----

// The BAR of a lease connected with dev_connect and mapped into this process.
struct MappedBar {
    wire::Fd fd;
    void* addr = MAP_FAILED;
    std::size_t size = 0;
    std::int64_t segment = -1;
    MappedBar() = default;
    MappedBar(const MappedBar&) = delete;
    MappedBar& operator=(const MappedBar&) = delete;
    ~MappedBar() { unmap(); }
    void unmap() {
        if (addr != MAP_FAILED)
            ::munmap(addr, size);
        addr = MAP_FAILED;
    }
    volatile std::uint64_t* word(std::size_t index) const {
        return static_cast<volatile std::uint64_t*>(addr) + index;
    }
    volatile std::uint32_t* reg(std::size_t offset) const {
        return reinterpret_cast<volatile std::uint32_t*>(static_cast<char*>(addr) + offset);
    }
};

// A borrowing connection to a lender. Calls report failures as text instead of REQUIRE, so
// that a forked child can count them and exit with a status.
class Borrower {
public:
    Borrower(const LocalFabric& fabric, std::uint32_t lender, std::uint32_t as_node)
        : m_client(fabric.socket(lender)) {
        m_hello = m_client.hello(as_node);
    }
    bool ok() const { return m_hello == 0; }
    RawClient& client() { return m_client; }
    const std::string& error() const { return m_error; }

    // dev_borrow: exclusive, waiting up to `wait` when given; the lease json or nullopt.
    std::optional<nlohmann::json> borrow(std::uint32_t fdid, bool exclusive,
                                         std::optional<milliseconds> wait = std::nullopt,
                                         milliseconds lease = milliseconds(0),
                                         int* err_out = nullptr) {
        nlohmann::json req = {{"op", "dev_borrow"},
                              {"fdid", fdid_json(fdid)},
                              {"exclusive", exclusive},
                              {"lease_ms", lease.count()}};
        if (wait)
            req["wait_ms"] = wait->count();
        auto r =
            m_client.call(req, {}, (wait ? *wait : milliseconds(0)) + std::chrono::seconds(10));
        if (!r) {
            m_error = "dev_borrow " + fdid_text(fdid) + ": no reply";
            if (err_out)
                *err_out = -1;
            return std::nullopt;
        }
        if (err_out)
            *err_out = r->err();
        if (r->err() != 0) {
            m_error = "dev_borrow " + fdid_text(fdid) + ": " + r->body.dump();
            return std::nullopt;
        }
        m_last = r->body;
        return r->body.at("lease");
    }
    // dev_connect of BAR `bar` and mmap of its memfd (`map_bytes`, 0: the whole BAR).
    bool connect_bar(std::int64_t lease_id, int bar, MappedBar& out, std::size_t map_bytes = 0) {
        auto r = m_client.call(
            {{"op", "dev_connect"}, {"lease_id", lease_id}, {"memtype", "bar"}, {"id", bar}});
        if (!r || r->err() != 0 || r->fds.empty()) {
            m_error = "dev_connect: " + (r ? r->body.dump() : std::string("no reply"));
            return false;
        }
        out.size = map_bytes ? map_bytes : r->body.value("size", std::size_t{0});
        out.segment = r->body.value("segment", std::int64_t{-1});
        out.fd = std::move(r->fds.front());
        out.addr = ::mmap(nullptr, out.size, PROT_READ | PROT_WRITE, MAP_SHARED, out.fd.get(), 0);
        if (out.addr == MAP_FAILED) {
            m_error = "mmap of the BAR failed";
            return false;
        }
        return true;
    }
    bool disconnect(std::int64_t lease_id, const MappedBar& bar) {
        return simple({{"op", "dev_disconnect"}, {"lease_id", lease_id}, {"segment", bar.segment}});
    }
    bool give_back(std::int64_t lease_id) {
        return simple({{"op", "dev_return"}, {"lease_id", lease_id}}, std::chrono::seconds(15));
    }
    // Waits for an event named `name` on this connection (replies are skipped), at most
    // `timeout`; the event's body or nullopt.
    std::optional<nlohmann::json> wait_event(const std::string& name, milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return std::nullopt;
            pollfd p{m_client.fd(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            wire::Message m;
            if (wire::recv_message(m_client.fd(), m) != wire::RecvStatus::ok)
                return std::nullopt;
            if (m.body.value("event", "") == name)
                return m.body;
        }
    }

private:
    bool simple(const nlohmann::json& req, milliseconds timeout = std::chrono::seconds(5)) {
        auto r = m_client.call(req, {}, timeout);
        if (!r || r->err() != 0) {
            m_error = req.value("op", "?") + ": " + (r ? r->body.dump() : std::string("no reply"));
            return false;
        }
        return true;
    }

    RawClient m_client;
    int m_hello = -1;
    std::string m_error;
    nlohmann::json m_last;
};

} // namespace dis::test::lending
