// Helpers shared by the SISCI entry points (argument checks, eventfd waits).
#pragma once

#include "client.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#define SCI_API extern "C" __attribute__((visibility("default")))

// The vendor's link names of an entry point defined above in the same file: its headers map
// SCIxxx to _SISCI_PUBLIC_FUNC_ST_SCIxxx (_MT_ with _REENTRANT), so programs built against them
// and link probes (AC_SEARCH_LIBS) look for those. Aliases: one function, three symbols.
#define SCI_VENDOR_ALIAS(prefix, fn)                                                               \
    extern "C" __attribute__((visibility("default"), alias(#fn))) decltype(fn) prefix##fn;
#define SCI_VENDOR_NAMES(fn)                                                                       \
    SCI_VENDOR_ALIAS(_SISCI_PUBLIC_FUNC_ST_, fn)                                                   \
    SCI_VENDOR_ALIAS(_SISCI_PUBLIC_FUNC_MT_, fn)

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

inline std::size_t page_size() {
    static const std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return p;
}

inline bool valid_node_id(unsigned int id) {
    return id > 0 && id % 4 == 0 && id <= 0xFFFFFFF0u;
}

// The argument checks that open an entry point, made in the order the entry point states
// them. The first that fails sets *error and the rest are skipped; the Check is then false:
//     Check c(error);
//     if (!c.runtime().handle(sd, Magic::desc).param(out != nullptr).flags(flags, 0)) {
//         return;
//     }
// The arguments of a chain are all computed (though its checks stop at the first failure): a
// chain may test pointers but not read through them; read a handle's fields in a later chain
// joined with ||.
class Check {
public:
    explicit Check(sci_error_t* error) : m_error(error) {}

    // SCI_ERR_NOT_INITIALIZED unless SCIInitialize ran; rt() is the runtime after it.
    Check& runtime() {
        if (m_ok) {
            m_rt = Runtime::get();
            that(m_rt != nullptr, SCI_ERR_NOT_INITIALIZED);
        }
        return *this;
    }
    // The connection to this node's daemon (after runtime()): its error, or home() is it.
    Check& home() {
        if (m_ok) {
            sci_error_t err = SCI_ERR_OK;
            m_home = m_rt->home(err);
            that(m_home != nullptr, err);
        }
        return *this;
    }
    // A live handle of its kind (read only when the checks before it passed).
    template <class T> Check& handle(const T* h, Magic m) {
        return m_ok ? that(valid(h, m), SCI_ERR_ILLEGAL_PARAMETER) : *this;
    }
    Check& param(bool ok) { return that(ok, SCI_ERR_ILLEGAL_PARAMETER); }
    Check& flags(unsigned flags, unsigned allowed) {
        return that(flags_ok(flags, allowed), SCI_ERR_ILLEGAL_FLAG);
    }
    Check& adapter(unsigned no) { return that(no == 0, SCI_ERR_NO_SUCH_ADAPTERNO); }
    Check& node(unsigned id) { return that(valid_node_id(id), SCI_ERR_ILLEGAL_NODEID); }
    // A status from elsewhere (a daemon's reply): fails unless SCI_ERR_OK.
    Check& status(sci_error_t e) { return that(e == SCI_ERR_OK, e); }
    Check& that(bool ok, sci_error_t e) {
        if (m_ok && !ok) {
            m_ok = false;
            set(m_error, e);
        }
        return *this;
    }

    explicit operator bool() const { return m_ok; }
    Runtime* rt() const { return m_rt; }
    const std::shared_ptr<Conn>& home_conn() const { return m_home; }

private:
    sci_error_t* m_error;
    bool m_ok = true;
    Runtime* m_rt = nullptr;
    std::shared_ptr<Conn> m_home;
};

// Gives a new handle to the caller: it counts in its descriptor (SCIClose is refused while
// it lives) until destroy().
template <class T> void hand_out(T* h, T** out, sci_error_t* error) {
    ++h->sd->objects;
    *out = h;
    set(error, SCI_ERR_OK);
}

// Ends a handle's life: its descriptor (if it counts in one) lets go of it, and a stale pointer
// to it no longer passes valid().
template <class T> void destroy(T* h) {
    if constexpr (requires { h->sd->objects; }) {
        --h->sd->objects;
    }
    h->magic = Magic::dead;
    delete h;
}

using wire::signal_efd;

inline wire::Fd take_fd(Reply& r, std::size_t i) {
    return i < r.fds.size() ? std::move(r.fds[i]) : wire::Fd();
}

} // namespace dis::sisci

using namespace dis::sisci;
