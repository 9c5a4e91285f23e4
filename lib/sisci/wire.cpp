// The software fabric's wire protocol: framing, descriptor passing, validated field access.
#include "wire.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

namespace dis::wire {

void Mapping::reset() {
    if (m_addr != nullptr) {
        ::munmap(m_addr, m_size);
    }
    m_addr = nullptr;
    m_size = 0;
}

Mapping map_shared(int fd, std::size_t size, bool writable) {
    if (size == 0) {
        errno = EINVAL;
        return {};
    }
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return {};
    }
    return Mapping(p, size);
}

namespace {

// Fills `msg` to carry `fds` as SCM_RIGHTS in `control` (sized for k_max_fds).
void attach_fds(msghdr& msg, char* control, std::size_t control_size, const std::vector<int>& fds) {
    if (fds.empty()) {
        return;
    }
    std::memset(control, 0, control_size);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
}

SendStatus send_text(int sock, const std::string& text, const std::vector<int>& fds, int flags) {
    if (text.size() > k_max_message || fds.size() > k_max_fds) {
        errno = EMSGSIZE;
        return SendStatus::gone;
    }
    iovec iov{const_cast<char*>(text.data()), text.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * k_max_fds)];
    attach_fds(msg, control, sizeof(control), fds);
    for (;;) {
        ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
        if (n >= 0) {
            return SendStatus::ok;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return SendStatus::again;
        }
        if (errno != EINTR) {
            return SendStatus::gone;
        }
    }
}

// Takes ownership of every descriptor a received message carried.
void take_fds(msghdr& msg, std::vector<Fd>& out) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                out.emplace_back(fd);
            }
        }
    }
}

} // namespace

bool send_message(int sock, const nlohmann::json& body, const std::vector<int>& fds) {
    std::string text = body.dump();
    for (;;) {
        switch (send_text(sock, text, fds, 0)) {
        case SendStatus::ok:
            return true;
        case SendStatus::gone:
            return false;
        case SendStatus::again: {
            // A non-blocking socket: wait until the message fits.
            pollfd p{sock, POLLOUT, 0};
            if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
                return false;
            }
            break;
        }
        }
    }
}

SendStatus send_frame(int sock, const std::string& text, const std::vector<int>& fds) {
    return send_text(sock, text, fds, MSG_DONTWAIT);
}

RecvStatus recv_message(int sock, Message& out) {
    out.fds.clear();
    // The datagram's real length, without consuming it (its descriptors stay queued).
    ssize_t len;
    char probe = 0;
    do {
        len = ::recv(sock, &probe, 1, MSG_PEEK | MSG_TRUNC);
    } while (len < 0 && errno == EINTR);
    if (len < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return RecvStatus::again;
        }
        return (errno == ECONNRESET) ? RecvStatus::eof : RecvStatus::error;
    }
    // An oversize message is still received (into one byte, the rest discarded) so that its
    // descriptors are taken and closed.
    bool oversize = static_cast<std::size_t>(len) > k_max_message;
    std::string buf(oversize ? 1 : std::max<std::size_t>(static_cast<std::size_t>(len), 1), '\0');
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * k_max_fds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return RecvStatus::again;
        }
        return (errno == ECONNRESET) ? RecvStatus::eof : RecvStatus::error;
    }
    // Take ownership of every descriptor first so none leaks on a malformed message.
    take_fds(msg, out.fds);
    if (n == 0) {
        return RecvStatus::eof;
    }
    if (oversize || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        return RecvStatus::malformed;
    }
    buf.resize(static_cast<std::size_t>(n));
    out.body = nlohmann::json::parse(buf, nullptr, false);
    if (out.body.is_discarded() || !out.body.is_object()) {
        return RecvStatus::malformed;
    }
    return RecvStatus::ok;
}

std::string socket_path(const std::string& fabric_dir, std::uint32_t node_id) {
    return fabric_dir + "/node-" + std::to_string(node_id) + ".sock";
}

// readdir, not std::filesystem: every node_info request lists the fabric directory (which
// also holds each node's log and pool files), and a path object per entry cost more than the
// rest of the request.
std::vector<std::uint32_t> list_node_sockets(const std::string& fabric_dir) {
    std::vector<std::uint32_t> ids;
    DIR* dir = ::opendir(fabric_dir.c_str());
    if (dir == nullptr) {
        return ids;
    }
    constexpr std::string_view prefix = "node-";
    constexpr std::string_view suffix = ".sock";
    while (const dirent* e = ::readdir(dir)) {
        std::string_view name = e->d_name;
        if (name.size() <= prefix.size() + suffix.size() ||
            name.substr(0, prefix.size()) != prefix ||
            name.substr(name.size() - suffix.size()) != suffix) {
            continue;
        }
        std::string_view digits =
            name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
        if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(),
                                              [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        std::uint32_t id = 0;
        for (char c : digits) {
            id = id * 10 + static_cast<std::uint32_t>(c - '0');
        }
        ids.push_back(id);
    }
    ::closedir(dir);
    std::sort(ids.begin(), ids.end());
    return ids;
}

namespace {

int connect_with(const std::string& path, int extra_type, std::chrono::milliseconds timeout,
                 bool restore_blocking = true) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra_type, 0));
    if (!fd.valid()) {
        return -1;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        // A Unix listener with a full backlog: a non-blocking connect says EAGAIN at once.
        if (errno != EAGAIN || std::chrono::steady_clock::now() >= deadline) {
            if (errno == EAGAIN) {
                errno = ETIMEDOUT;
            }
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (extra_type != 0 && restore_blocking) {
        int flags = ::fcntl(fd.get(), F_GETFL);
        ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    }
    return fd.release();
}

} // namespace

int connect_socket(const std::string& path) {
    return connect_with(path, 0, std::chrono::milliseconds(0));
}

int connect_socket(const std::string& path, std::chrono::milliseconds timeout) {
    return connect_with(path, SOCK_NONBLOCK, timeout);
}

bool probe_socket(const std::string& path, std::chrono::milliseconds timeout) {
    // Closed at once: the descriptor's blocking mode does not matter.
    const Fd fd(connect_with(path, SOCK_NONBLOCK, timeout, false));
    return fd.valid();
}

long peer_uid(int sock) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return -1;
    }
    return static_cast<long>(cred.uid);
}

std::string check_daemon_peer(int sock, const std::string& what) {
    long uid = peer_uid(sock);
    if (uid < 0) {
        return what + ": cannot read the daemon's credentials: " + std::strerror(errno);
    }
    if (uid == 0 || uid == static_cast<long>(::geteuid())) {
        return {};
    }
    if (const char* d = std::getenv("DIS_DAEMON_UID"); d != nullptr && *d != '\0') {
        char* end = nullptr;
        unsigned long v = std::strtoul(d, &end, 10);
        if (*end == '\0' && static_cast<long>(v) == uid) {
            return {};
        }
    }
    return what + " is served by uid " + std::to_string(uid) +
           ", not by root or this user (set DIS_DAEMON_UID to trust it)";
}

std::uint64_t get_u64(const nlohmann::json& j, const char* key, std::uint64_t max) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
        throw WireError(std::string("field '") + key + "' missing or not an unsigned number");
    }
    auto v = it->get<std::uint64_t>();
    if (v > max) {
        throw WireError(std::string("field '") + key + "' out of range");
    }
    return v;
}

std::uint32_t get_u32(const nlohmann::json& j, const char* key, std::uint32_t max) {
    return static_cast<std::uint32_t>(get_u64(j, key, max));
}

std::string get_str(const nlohmann::json& j, const char* key, std::size_t max_len) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
        throw WireError(std::string("field '") + key + "' missing or not a string");
    }
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > max_len) {
        throw WireError(std::string("field '") + key + "' too long");
    }
    return s;
}

bool get_bool(const nlohmann::json& j, const char* key, bool dflt) {
    auto it = j.find(key);
    if (it == j.end()) {
        return dflt;
    }
    if (!it->is_boolean()) {
        throw WireError(std::string("field '") + key + "' not a boolean");
    }
    return it->get<bool>();
}

Channel::Channel(const std::string& fabric_dir, std::uint32_t node_id, std::uint32_t client_node,
                 std::chrono::milliseconds timeout)
    : m_timeout(timeout) {
    m_fd = Fd(connect_socket(socket_path(fabric_dir, node_id), timeout));
    if (!m_fd.valid()) {
        throw WireError("node " + std::to_string(node_id) + ": " + std::strerror(errno));
    }
    if (auto why = check_daemon_peer(m_fd.get(), "node " + std::to_string(node_id)); !why.empty()) {
        throw UntrustedPeer(why);
    }
    call({{"op", "hello"}, {"version", k_protocol_version}, {"node_id", client_node}});
}

Message Channel::call(nlohmann::json req) {
    std::uint64_t seq = ++m_seq;
    req["seq"] = seq;
    if (!send_message(m_fd.get(), req)) {
        throw WireError(std::string("send: ") + std::strerror(errno));
    }
    auto deadline = std::chrono::steady_clock::now() + m_timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            throw WireError("no reply within " + std::to_string(m_timeout.count()) + " ms");
        }
        pollfd p{m_fd.get(), POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            continue;
        }
        Message m;
        auto st = recv_message(m_fd.get(), m);
        if (st != RecvStatus::ok) {
            throw WireError("connection closed by the daemon");
        }
        auto it = m.body.find("seq");
        if (it != m.body.end() && it->is_number_unsigned() && it->get<std::uint64_t>() == seq) {
            return m;
        }
        // Anything else is an asynchronous event; a blocking channel ignores them.
    }
}

bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_us) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout_us >= 0) {
        ts.tv_sec = timeout_us / 1000000;
        ts.tv_nsec = (timeout_us % 1000000) * 1000;
        tsp = &ts;
    }
    long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, tsp,
                       nullptr, 0);
    return !(r != 0 && errno == ETIMEDOUT);
}

void futex_wake(std::atomic<std::uint32_t>* word, int count) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count, nullptr,
              nullptr, 0);
}

void signal_efd(int fd) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

} // namespace dis::wire
