// A raw client of a disd socket for protocol-level tests: wire::connect_socket and
// wire::send_message directly, no libsisci, every wait bounded.
#pragma once

#include "wire.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace dis::test {

struct RawReply {
    nlohmann::json body;
    std::vector<wire::Fd> fds;
    int err() const { return body.value("err", -1); }
};

class RawClient {
public:
    explicit RawClient(const std::string& path) : m_fd(wire::connect_socket(path)) {
        REQUIRE(m_fd.valid());
    }
    int fd() const { return m_fd.get(); }
    void close() { m_fd.reset(); }

    // Sends `req` with a fresh "seq" and waits for its reply (skipping events) at most
    // `timeout`; nullopt when none came in time or the daemon closed the socket.
    std::optional<RawReply> call(nlohmann::json req, const std::vector<int>& fds = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::uint64_t seq = ++m_seq;
        req["seq"] = seq;
        if (!wire::send_message(m_fd.get(), req, fds)) {
            return std::nullopt;
        }
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
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
            auto it = m.body.find("seq");
            if (it != m.body.end() && *it == seq) {
                return RawReply{std::move(m.body), std::move(m.fds)};
            }
        }
    }
    // A call that must be answered; returns the error code.
    int must(const nlohmann::json& req, const std::vector<int>& fds = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto r = call(req, fds, timeout);
        REQUIRE(r.has_value());
        return r->err();
    }
    RawReply must_reply(const nlohmann::json& req, const std::vector<int>& fds = {}) {
        auto r = call(req, fds);
        REQUIRE(r.has_value());
        return std::move(*r);
    }
    int hello(std::uint32_t node) {
        return must({{"op", "hello"}, {"version", wire::k_protocol_version}, {"node_id", node}});
    }

private:
    wire::Fd m_fd;
    std::uint64_t m_seq = 0;
};

// A memfd of `size` bytes, sealed against resizing when `sealed`.
inline wire::Fd memory_file(std::size_t size, bool sealed) {
    wire::Fd fd(::memfd_create("test-mem", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(fd.valid());
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
    if (sealed) {
        REQUIRE(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    }
    return fd;
}

} // namespace dis::test
