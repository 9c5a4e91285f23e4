// libFuzzer target: the wire message decoder. The input's first byte says how many
// descriptors ride along (0-5; more than wire::k_max_fds must be refused without leaking),
// the rest is sent as one SOCK_SEQPACKET message and read back with wire::recv_message; a
// decoded body then goes through the validated getters the daemon uses on every request.
#include "wire.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

namespace wire = dis::wire;

// The lowest free descriptor number: equal before and after a run unless a descriptor leaked.
int lowest_free_fd() {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        std::abort();
    ::close(fd);
    return fd;
}

void exercise_getters(const nlohmann::json& body) {
    for (const char* key : {"op", "seq", "node_id", "size", "segment_id", "name", "flags"}) {
        try {
            (void)wire::get_u64(body, key);
        } catch (const wire::WireError&) {
        }
        try {
            (void)wire::get_u32(body, key, 1000);
        } catch (const wire::WireError&) {
        }
        try {
            (void)wire::get_str(body, key, 16);
        } catch (const wire::WireError&) {
        }
        try {
            (void)wire::get_bool(body, key, true);
        } catch (const wire::WireError&) {
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > wire::k_max_message + 64)
        return -1; // larger than the socket takes in one datagram: not worth keeping
    const int before = lowest_free_fd();
    std::size_t nfds = data[0] % 6;
    {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            std::abort();
        wire::Fd a(sv[0]), b(sv[1]);
        std::vector<wire::Fd> owned;
        std::vector<int> fds;
        for (std::size_t i = 0; i < nfds; ++i) {
            owned.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            fds.push_back(owned.back().get());
        }
        // send_message takes JSON; the decoder must face raw bytes, so send them directly.
        iovec iov{const_cast<std::uint8_t*>(data + 1), size - 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 5)];
        if (!fds.empty()) {
            msg.msg_control = control;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        if (::sendmsg(a.get(), &msg, MSG_NOSIGNAL) < 0)
            std::abort();
        owned.clear();
        wire::Message m;
        auto status = wire::recv_message(b.get(), m);
        if (status == wire::RecvStatus::ok) {
            if (!m.body.is_object())
                std::abort(); // ok promises a JSON object
            exercise_getters(m.body);
        }
        if (m.fds.size() > wire::k_max_fds)
            std::abort();
    }
    if (lowest_free_fd() != before)
        std::abort(); // a received descriptor outlived its Message
    return 0;
}
