// The software fabric's wire protocol: framing, descriptor passing, validated field access.
#include "wire.hpp"

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
#include <cstring>
#include <filesystem>

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

bool send_message(int sock, const nlohmann::json& body, const std::vector<int>& fds) {
    std::string text = body.dump();
    if (text.size() > k_max_message || fds.size() > k_max_fds) {
        errno = EMSGSIZE;
        return false;
    }
    iovec iov{text.data(), text.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * k_max_fds)];
    if (!fds.empty()) {
        std::memset(control, 0, sizeof(control));
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            return true;
        }
        if (errno != EINTR) {
            return false;
        }
    }
}

RecvStatus recv_message(int sock, Message& out) {
    out.fds.clear();
    std::string buf(k_max_message + 1, '\0');
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * k_max_fds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return (errno == ECONNRESET) ? RecvStatus::eof : RecvStatus::error;
    }
    // Take ownership of every descriptor first so none leaks on a malformed message.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                out.fds.emplace_back(fd);
            }
        }
    }
    if (n == 0) {
        return RecvStatus::eof;
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        static_cast<std::size_t>(n) > k_max_message) {
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

std::vector<std::uint32_t> list_node_sockets(const std::string& fabric_dir) {
    std::vector<std::uint32_t> ids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(fabric_dir, ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind("node-", 0) != 0 || name.size() <= 10 ||
            name.substr(name.size() - 5) != ".sock") {
            continue;
        }
        std::string digits = name.substr(5, name.size() - 10);
        if (digits.empty() || digits.size() > 9 ||
            !std::all_of(digits.begin(), digits.end(),
                         [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        ids.push_back(static_cast<std::uint32_t>(std::stoul(digits)));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

int connect_socket(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
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
    m_fd = Fd(connect_socket(socket_path(fabric_dir, node_id)));
    if (!m_fd.valid()) {
        throw WireError("node " + std::to_string(node_id) + ": " + std::strerror(errno));
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
