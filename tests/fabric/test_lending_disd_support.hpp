// Helpers of the disd lending tests: a wire client that keeps the events it sees while waiting
// for replies (dev_lost, dev_irq), files for configs and policies, and polling with deadlines.
#pragma once

#include "fabric_support.hpp"
#include "raw_client.hpp"

#include "dis/fabric_admin.hpp"
#include "wire.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace dis::test {

using LClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// SCI_ERR_NO_SUCH_FDID (sisci_error.h of the vendor, 0xB06).
constexpr int k_err_no_such_fdid = 0xB06;

class LendingClient {
public:
    LendingClient(const LocalFabric& fabric, std::uint32_t lender, std::uint32_t my_node)
        : m_fd(wire::connect_socket(fabric.socket(lender))) {
        REQUIRE(m_fd.valid());
        auto r =
            call({{"op", "hello"}, {"version", wire::k_protocol_version}, {"node_id", my_node}});
        REQUIRE(r.has_value());
        REQUIRE(r->err() == 0);
    }
    void close() { m_fd.reset(); }
    int fd() const { return m_fd.get(); }

    // Sends `req` and waits for its reply; events seen meanwhile are kept.
    std::optional<RawReply> call(nlohmann::json req, const std::vector<int>& fds = {},
                                 milliseconds timeout = milliseconds(10000)) {
        std::uint64_t seq = ++m_seq;
        req["seq"] = seq;
        if (!wire::send_message(m_fd.get(), req, fds)) {
            return std::nullopt;
        }
        auto deadline = LClock::now() + timeout;
        while (auto m = next(deadline)) {
            auto it = m->body.find("seq");
            if (it != m->body.end() && *it == seq) {
                return RawReply{std::move(m->body), std::move(m->fds)};
            }
            if (m->body.contains("event")) {
                m_events.push_back(std::move(m->body));
            }
        }
        return std::nullopt;
    }
    RawReply must(const nlohmann::json& req, const std::vector<int>& fds = {}) {
        auto r = call(req, fds);
        REQUIRE(r.has_value());
        return std::move(*r);
    }
    // Sends without waiting (a deferred reply is collected with reply_to()).
    std::uint64_t send(nlohmann::json req) {
        std::uint64_t seq = ++m_seq;
        req["seq"] = seq;
        REQUIRE(wire::send_message(m_fd.get(), req));
        return seq;
    }
    std::optional<RawReply> reply_to(std::uint64_t seq, milliseconds timeout) {
        auto deadline = LClock::now() + timeout;
        while (auto m = next(deadline)) {
            auto it = m->body.find("seq");
            if (it != m->body.end() && *it == seq) {
                return RawReply{std::move(m->body), std::move(m->fds)};
            }
            if (m->body.contains("event")) {
                m_events.push_back(std::move(m->body));
            }
        }
        return std::nullopt;
    }
    // The first event named `name` (kept or arriving within `timeout`).
    std::optional<nlohmann::json> event(const std::string& name,
                                        milliseconds timeout = milliseconds(5000)) {
        auto deadline = LClock::now() + timeout;
        for (;;) {
            for (auto it = m_events.begin(); it != m_events.end(); ++it) {
                if (it->value("event", "") == name) {
                    nlohmann::json e = *it;
                    m_events.erase(it);
                    return e;
                }
            }
            auto m = next(deadline);
            if (!m) {
                return std::nullopt;
            }
            if (m->body.contains("event")) {
                m_events.push_back(std::move(m->body));
            }
        }
    }

private:
    std::optional<wire::Message> next(LClock::time_point deadline) {
        for (;;) {
            auto left = std::chrono::duration_cast<milliseconds>(deadline - LClock::now());
            if (left.count() <= 0) {
                return std::nullopt;
            }
            pollfd p{m_fd.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                continue;
            }
            wire::Message m;
            if (wire::recv_message(m_fd.get(), m) != wire::RecvStatus::ok) {
                return std::nullopt;
            }
            return m;
        }
    }

    wire::Fd m_fd;
    std::uint64_t m_seq = 0;
    std::deque<nlohmann::json> m_events;
};

inline std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

template <typename Pred>
bool eventually_true(Pred pred, milliseconds timeout = milliseconds(5000)) {
    auto deadline = LClock::now() + timeout;
    while (!pred()) {
        if (LClock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
}

inline std::string state_of(LendingClient& c, const std::string& fdid) {
    auto r = c.must({{"op", "dev_show"}, {"fdid", fdid}});
    REQUIRE(r.err() == 0);
    return r.body["device"]["state"].get<std::string>();
}

inline nlohmann::json borrow(LendingClient& c, const std::string& fdid, bool exclusive,
                             nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json req{{"op", "dev_borrow"}, {"fdid", fdid}, {"exclusive", exclusive}};
    req.update(extra);
    return c.must(req).body;
}

inline std::uint64_t node_counter(const LocalFabric& fabric, std::uint32_t node,
                                  const std::string& name) {
    fabric::AdminClient admin(fabric.dir(), node);
    return admin.node_info().counters.at(name);
}

// The audit rows of `fdid` (oldest first).
inline nlohmann::json history(LendingClient& c, const std::string& fdid) {
    auto r = c.must({{"op", "dev_history"}, {"fdid", fdid}, {"limit", 1000}});
    REQUIRE(r.err() == 0);
    return r.body["rows"];
}

inline bool has_row(const nlohmann::json& rows, const std::string& event,
                    const std::string& actor_part = "", const std::string& reason_part = "") {
    for (const auto& row : rows) {
        if (row["event"] == event &&
            row["actor"].get<std::string>().find(actor_part) != std::string::npos &&
            row["reason"].get<std::string>().find(reason_part) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// A shared read-write mapping of a descriptor the daemon handed over.
struct Mapped {
    void* addr = MAP_FAILED;
    std::size_t size = 0;
    Mapped(int fd, std::size_t n)
        : addr(::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)), size(n) {
        REQUIRE(addr != MAP_FAILED);
    }
    ~Mapped() {
        if (addr != MAP_FAILED) {
            ::munmap(addr, size);
        }
    }
    Mapped(const Mapped&) = delete;
    Mapped& operator=(const Mapped&) = delete;
    template <typename T = std::uint8_t> T* as() const { return static_cast<T*>(addr); }
};

} // namespace dis::test
