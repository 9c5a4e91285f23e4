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

using wire::signal_efd;

inline wire::Fd take_fd(Reply& r, std::size_t i) {
    return i < r.fds.size() ? std::move(r.fds[i]) : wire::Fd();
}

} // namespace dis::sisci

using namespace dis::sisci;
