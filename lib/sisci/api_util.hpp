// Helpers shared by the SISCI entry points (argument checks, eventfd waits).
#pragma once

#include "client.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#define SCI_API extern "C" __attribute__((visibility("default")))

using dis::sisci::Conn;
using dis::sisci::json;
using dis::sisci::Magic;
using dis::sisci::Reply;
using dis::sisci::Runtime;
using dis::sisci::SegmentEvent;
namespace wire = dis::wire;

namespace dis::sisci {

inline void set(sci_error_t* e, sci_error_t v) {
    if (e != nullptr) {
        *e = v;
    }
}

template <class T> inline bool valid(const T* h, Magic m) {
    return h != nullptr && h->magic == m;
}

inline bool flags_ok(unsigned flags, unsigned allowed) {
    return (flags & ~allowed) == 0;
}

inline Runtime* runtime(sci_error_t* error) {
    Runtime* rt = Runtime::get();
    if (rt == nullptr) {
        set(error, SCI_ERR_NOT_INITIALIZED);
    }
    return rt;
}

inline std::size_t page_size() {
    static const std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return p;
}

inline bool valid_node_id(unsigned int id) {
    return id > 0 && id % 4 == 0 && id <= 0xFFFFFFF0u;
}

inline void signal_efd(int fd) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

// Waits for an eventfd (semaphore mode) with the usual SISCI timeout; also wakes when the
// node is lost or the object is removed (stop).
inline sci_error_t wait_efd(int efd, int stop_fd, int lost_fd, unsigned int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        std::uint64_t v;
        if (::read(efd, &v, sizeof(v)) == sizeof(v)) {
            return SCI_ERR_OK;
        }
        int wait_ms = -1;
        if (timeout_ms != SCI_INFINITE_TIMEOUT) {
            auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) {
                return SCI_ERR_TIMEOUT;
            }
            wait_ms = static_cast<int>((left + 999) / 1000); // never wake before the deadline
        }
        pollfd p[3] = {{efd, POLLIN, 0}, {stop_fd, POLLIN, 0}, {lost_fd, POLLIN, 0}};
        int r = ::poll(p, 3, wait_ms);
        if (r < 0 && errno != EINTR) {
            return SCI_ERR_SYSTEM;
        }
        if (r > 0 && (p[1].revents & POLLIN) != 0) {
            return SCI_ERR_CANCELLED;
        }
        if (r > 0 && (p[0].revents & POLLIN) == 0 && (p[2].revents & POLLIN) != 0) {
            return SCI_ERR_NODE_NOT_RESPONDING;
        }
        if (r == 0 && timeout_ms != SCI_INFINITE_TIMEOUT &&
            std::chrono::steady_clock::now() >= deadline) {
            return SCI_ERR_TIMEOUT;
        }
    }
}

inline wire::Fd take_fd(Reply& r, std::size_t i) {
    return i < r.fds.size() ? std::move(r.fds[i]) : wire::Fd();
}

} // namespace dis::sisci

using namespace dis::sisci;
