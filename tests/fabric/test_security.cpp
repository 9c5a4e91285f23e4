// Socket permissions, per-uid access to segments and interrupts, malformed messages, limits
// and leaks over many cycles.
#include "fabric_support.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "wire.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <grp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <thread>

using namespace dis::test;

namespace {

constexpr uid_t k_nobody = 65534;

// Runs `body` in a child that switched to uid 65534 (and gid `gid`) before touching SISCI.
int as_other_user(const LocalFabric& fabric, gid_t gid, std::uint32_t node,
                  const std::function<int()>& body) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
            ::setresuid(k_nobody, k_nobody, k_nobody) != 0) {
            std::cerr << "cannot switch user: " << std::strerror(errno) << "\n";
            ::_exit(90);
        }
        ::setenv("DIS_FABRIC", fabric.dir().c_str(), 1);
        ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
        ::_exit(body());
    }
    return wait_child(pid);
}

// A raw client of a daemon socket for protocol-level tests.
struct RawClient {
    dis::wire::Fd fd;
    explicit RawClient(const std::string& path) : fd(dis::wire::connect_socket(path)) {
        REQUIRE(fd.valid());
    }
    nlohmann::json send_raw(const std::string& bytes, const std::vector<int>& fds = {}) {
        iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
        if (!fds.empty()) {
            msg.msg_control = control;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        REQUIRE(::sendmsg(fd.get(), &msg, MSG_NOSIGNAL) >= 0);
        dis::wire::Message reply;
        REQUIRE(dis::wire::recv_message(fd.get(), reply) == dis::wire::RecvStatus::ok);
        return reply.body;
    }
    nlohmann::json call(const nlohmann::json& j, const std::vector<int>& fds = {}) {
        return send_raw(j.dump(), fds);
    }
};

} // namespace

TEST_CASE("sockets are 0660 and other users reach only segments shared with them",
          "[fabric][security]") {
    LocalFabric fabric({4});
    REQUIRE(::geteuid() == 0); // the test needs to switch users
    struct stat st {};
    REQUIRE(::stat(fabric.socket(4).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    CHECK(S_ISSOCK(st.st_mode));
    ::chmod(fabric.dir().c_str(), 0755); // let the other user traverse the directory

    SisciSession s(fabric, 4);
    sci_error_t err;
    auto make = [&](unsigned id, unsigned flags) {
        sci_local_segment_t seg;
        SCICreateSegment(s.sd, &seg, id, 4096, nullptr, nullptr, flags, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIPrepareSegment(seg, 0, 0, &err);
        SCISetSegmentAvailable(seg, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        return seg;
    };
    sci_local_segment_t priv = make(1, 0);
    sci_local_segment_t shared = make(2, SCI_FLAG_DIS_SHARED_ACCESS);
    sci_map_t smap;
    auto* sp = static_cast<volatile std::uint32_t*>(
        SCIMapLocalSegment(shared, &smap, 0, 4096, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    sp[0] = 0;
    sci_local_interrupt_t irq;
    unsigned no = 0;
    SCICreateInterrupt(s.sd, &irq, 0, &no, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // In the socket's group (gid 0): may talk to the daemon, but only to shared objects.
    int rc = as_other_user(fabric, 0, 4, [no] {
        sci_error_t e;
        SCIInitialize(0, &e);
        if (e != SCI_ERR_OK) {
            return 1;
        }
        sci_desc_t sd;
        SCIOpen(&sd, 0, &e);
        sci_remote_segment_t rs;
        SCIConnectSegment(sd, &rs, 4, 1, 0, nullptr, nullptr, 0, 0, &e);
        if (e != SCI_ERR_ACCESS) {
            return 2;
        }
        SCIConnectSegment(sd, &rs, 4, 2, 0, nullptr, nullptr, 0, 0, &e);
        if (e != SCI_ERR_OK) {
            return 3;
        }
        sci_map_t m;
        auto* w = static_cast<volatile std::uint32_t*>(
            SCIMapRemoteSegment(rs, &m, 0, 4096, nullptr, 0, &e));
        if (e != SCI_ERR_OK) {
            return 4;
        }
        w[0] = 65534;
        SCIUnmapSegment(m, 0, &e);
        SCIDisconnectSegment(rs, 0, &e);
        sci_remote_interrupt_t ri;
        SCIConnectInterrupt(sd, &ri, 4, 0, no, 0, 0, &e);
        if (e != SCI_ERR_ACCESS) {
            return 5;
        }
        // Nor may it stop the daemon.
        try {
            dis::fabric::AdminClient(std::getenv("DIS_FABRIC"), 4).shutdown();
            return 6;
        } catch (const dis::Error& ex) {
            if (ex.kind() != dis::ErrorKind::permission) {
                return 7;
            }
        }
        return 0;
    });
    CHECK(rc == 0);
    CHECK(sp[0] == 65534);

    // Outside the group: the socket itself is closed to it.
    rc = as_other_user(fabric, k_nobody, 4, [] {
        sci_error_t e;
        SCIInitialize(0, &e);
        return e == SCI_ERR_OK ? 1 : 0;
    });
    CHECK(rc == 0);

    SCIRemoveInterrupt(irq, 0, &err);
    SCIUnmapSegment(smap, 0, &err);
    SCIRemoveSegment(priv, 0, &err);
    SCIRemoveSegment(shared, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("malformed messages get error replies and never hurt the daemon", "[fabric][security]") {
    LocalFabric fabric({4});
    std::size_t fds_before = fabric.settled_daemon_fds(4);
    {
        RawClient c(fabric.socket(4));
        const int illegal = SCI_ERR_ILLEGAL_PARAMETER;
        CHECK(c.send_raw("garbage{").at("err") == illegal);
        CHECK(c.send_raw("[1,2,3]").at("err") == illegal);
        CHECK(c.send_raw(std::string(1, '\0')).at("err") == illegal);
        // Too big for one message: truncated, reported as malformed.
        CHECK(c.send_raw(std::string(100000, 'x')).at("err") == illegal);
        // Before hello nothing but hello is served.
        CHECK(c.call({{"op", "node_info"}, {"seq", 1}}).at("err") == SCI_ERR_NOT_INITIALIZED);
        CHECK(c.call({{"op", "hello"}, {"version", 99}, {"node_id", 4}}).at("err") ==
              SCI_ERR_INCONSISTENT_VERSIONS);
        CHECK(c.call({{"op", "hello"}, {"version", 1}, {"node_id", 4}}).at("err") == SCI_ERR_OK);
        CHECK(c.call({{"op", 5}}).at("err") == illegal);
        CHECK(c.call({{"op", "no_such_op"}}).at("err") == SCI_ERR_ILLEGAL_OPERATION);
        CHECK(c.call({{"op", "seg_create"}, {"size", "big"}}).at("err") == illegal);
        CHECK(c.call({{"op", "seg_create"}, {"size", -1}}).at("err") == illegal);
        CHECK(c.call({{"op", "seg_create"}, {"size", 1ULL << 50}, {"segment_id", 1}}).at("err") ==
              illegal);
        CHECK(c.call({{"op", "seg_create"}, {"size", 4096}}).at("err") == illegal); // no id
        CHECK(c.call({{"op", "seg_connect"}, {"segment_id", 1ULL << 40}}).at("err") == illegal);
        CHECK(c.call({{"op", "seg_remove"}, {"segment_id", 12345}}).at("err") ==
              SCI_ERR_NO_SUCH_SEGMENT);
        CHECK(c.call({{"op", "dma_queue_create"}, {"capacity", 1000000}}).at("err") == illegal);
        CHECK(c.call({{"op", "dma_region_release"}, {"region_id", 77}}).at("err") == illegal);
        // Descriptors attached where none belong, or of the wrong kind: refused, not leaked.
        int junk[4];
        for (int& j : junk) {
            j = ::eventfd(0, EFD_CLOEXEC);
        }
        // A request that takes no descriptors is refused when it carries some.
        CHECK(c.call({{"op", "ping"}}, {junk[0], junk[1], junk[2], junk[3]}).at("err") == illegal);
        CHECK(c.call({{"op", "dma_region"}, {"size", 4096}}, {junk[0]}).at("err") == illegal);
        CHECK(c.call({{"op", "dma_region"}, {"size", 4096}}).at("err") == illegal);
        for (int j : junk) {
            ::close(j);
        }
        // Still healthy.
        auto info = c.call({{"op", "node_info"}});
        CHECK(info.at("err") == SCI_ERR_OK);
        CHECK(info.at("node").at("counters").at("malformed_requests_total").get<int>() >= 8);
    }
    // The daemon kept none of the descriptors it was sent.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (fabric.daemon_fds(4) != fds_before && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(fabric.daemon_fds(4) == fds_before);
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    CHECK(admin.node_info().node_id == 4);
}

TEST_CASE("per-client limits stop one client from exhausting the node", "[fabric][security]") {
    LocalFabric fabric({4}, {"--max-client-memory", "1048576", "--max-client-objects", "4"});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 1, 2u << 20, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NOSPC);
    std::vector<sci_local_segment_t> segs;
    for (unsigned i = 0; i < 4; ++i) {
        SCICreateSegment(s.sd, &seg, 10 + i, 4096, nullptr, nullptr, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        segs.push_back(seg);
    }
    SCICreateSegment(s.sd, &seg, 20, 4096, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_NOSPC);
    SCIRemoveSegment(segs.back(), 0, &err);
    segs.pop_back();
    SCICreateSegment(s.sd, &seg, 20, 1048576 - 3 * 4096, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_OK); // exactly at the memory limit
    segs.push_back(seg);
    // Another client has its own budget.
    CHECK(run_node_process(fabric, 4, [](sci_desc_t sd) {
              sci_error_t e;
              sci_local_segment_t x;
              SCICreateSegment(sd, &x, 99, 512 * 1024, nullptr, nullptr, 0, &e);
              return e == SCI_ERR_OK ? 0 : 1;
          }) == 0);
    for (auto* x : segs) {
        SCIRemoveSegment(x, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
}

TEST_CASE("thousands of create/connect/map/remove cycles leak nothing", "[fabric][leaks]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    auto cycle = [&](int i) {
        sci_local_segment_t seg;
        SCICreateSegment(s.sd, &seg, 0, 8192, nullptr, nullptr, SCI_FLAG_AUTO_ID, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIPrepareSegment(seg, 0, 0, &err);
        SCISetSegmentAvailable(seg, 0, 0, &err);
        sci_remote_segment_t rs;
        SCIConnectSegment(s.sd, &rs, 4, SCIGetLocalSegmentId(seg), 0, nullptr, nullptr, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        sci_map_t map;
        auto* p =
            static_cast<volatile int*>(SCIMapRemoteSegment(rs, &map, 0, 8192, nullptr, 0, &err));
        REQUIRE(err == SCI_ERR_OK);
        p[0] = i;
        if (i % 20 == 0) {
            sci_dma_queue_t dq;
            SCICreateDMAQueue(s.sd, &dq, 0, 4, 0, &err);
            REQUIRE(err == SCI_ERR_OK);
            SCIStartDmaTransfer(dq, seg, rs, 0, 4096, 4096, nullptr, nullptr, SCI_FLAG_DMA_WAIT,
                                &err);
            REQUIRE(err == SCI_ERR_OK);
            SCIRemoveDMAQueue(dq, 0, &err);
            REQUIRE(err == SCI_ERR_OK);
            sci_local_interrupt_t irq;
            unsigned no;
            SCICreateInterrupt(s.sd, &irq, 0, &no, nullptr, nullptr, 0, &err);
            sci_remote_interrupt_t ri;
            SCIConnectInterrupt(s.sd, &ri, 4, 0, no, 0, 0, &err);
            SCITriggerInterrupt(ri, 0, &err);
            SCIWaitForInterrupt(irq, 1000, 0, &err);
            REQUIRE(err == SCI_ERR_OK);
            SCIDisconnectInterrupt(ri, 0, &err);
            SCIRemoveInterrupt(irq, 0, &err);
            REQUIRE(err == SCI_ERR_OK);
        }
        SCIUnmapSegment(map, 0, &err);
        SCIDisconnectSegment(rs, 0, &err);
        SCIRemoveSegment(seg, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
    };
    // Warm up (threads, first connections), then measure.
    for (int i = 0; i < 20; ++i) {
        cycle(i);
    }
    std::size_t own_before = own_fds();
    std::size_t daemon_before = fabric.settled_daemon_fds(4);
    for (int i = 0; i < 2000; ++i) {
        cycle(i);
    }
    CHECK(own_fds() == own_before);
    // The DMA engine drops its last queue reference when it next looks at its queue list.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (fabric.daemon_fds(4) != daemon_before && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(fabric.daemon_fds(4) == daemon_before);
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    auto info = admin.node_info();
    CHECK(info.counters.at("segments") == 0);
    CHECK(info.counters.at("segment_bytes") == 0);
    CHECK(info.counters.at("interrupts") == 0);
    CHECK(info.counters.at("dma_queues") == 0);
    CHECK(admin.segments().empty());
}
