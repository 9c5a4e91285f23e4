// disd against broken or hostile local clients: one that stops reading, a SIGSTOPped segment
// owner, memory that could be truncated under the daemon, and the wire protocol's table
// (stray descriptors, unknown ops, hello's node id).
#include "fabric_support.hpp"
#include "raw_client.hpp"

#include "dis/fabric_admin.hpp"
#include "wire.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

using namespace dis::test;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::uint64_t counter(const LocalFabric& fabric, std::uint32_t node, const std::string& name) {
    dis::fabric::AdminClient admin(fabric.dir(), node);
    return admin.node_info().counters.at(name);
}

// Polls `pred` until it holds or `timeout` passes.
template <typename Pred> bool eventually(Pred pred, milliseconds timeout = milliseconds(5000)) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
}

// Sends one ping without reading anything back; false once the daemon has closed the
// connection. Waits at most 10 ms for room in the socket.
bool send_ping_nowait(int fd) {
    static const std::string ping = nlohmann::json{{"op", "ping"}, {"seq", 1}}.dump();
    for (int tries = 0; tries < 10; ++tries) {
        auto st = dis::wire::send_frame(fd, ping);
        if (st == dis::wire::SendStatus::ok) {
            return true;
        }
        if (st == dis::wire::SendStatus::gone) {
            return false;
        }
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 1);
    }
    return true; // the daemon does not read either: not gone, just full
}

} // namespace

TEST_CASE("a client that stops reading is dropped and cannot freeze the node",
          "[fabric][hardening]") {
    LocalFabric fabric({4});
    RawClient flooder(fabric.socket(4));
    REQUIRE(flooder.hello(4) == SCI_ERR_OK);
    // More pings than the socket buffers hold replies for: the daemon used to block in
    // sendmsg here, and with it every process of the node.
    for (int i = 0; i < 200; ++i) {
        REQUIRE(send_ping_nowait(flooder.fd()));
    }
    {
        RawClient other(fabric.socket(4));
        auto t0 = Clock::now();
        REQUIRE(other.hello(4) == SCI_ERR_OK);
        auto hello = other.call({{"op", "ping"}}, {}, milliseconds(100));
        auto elapsed = Clock::now() - t0;
        REQUIRE(hello.has_value());
        CHECK(hello->err() == SCI_ERR_OK);
        CHECK(elapsed < milliseconds(200)); // hello and ping: 100 ms each at most
    }
    // Keep flooding: once its outbound queue overflows the flooder is dropped.
    auto deadline = Clock::now() + std::chrono::seconds(10);
    bool dropped = false;
    while (!dropped && Clock::now() < deadline) {
        dropped = !send_ping_nowait(flooder.fd());
    }
    REQUIRE(dropped);
    // Its socket drains the replies that were sent and then sees EOF.
    bool eof = eventually([&] {
        char buf[256];
        ssize_t n = ::recv(flooder.fd(), buf, sizeof(buf), MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    });
    CHECK(eof);
    CHECK(counter(fabric, 4, "clients_dropped_total") == 1);
    // The node serves on; only the admin connection of this check is left.
    CHECK(eventually([&] { return counter(fabric, 4, "clients") == 1; }));
}

TEST_CASE("a SIGSTOPped segment owner with pending events cannot freeze the node",
          "[fabric][hardening]") {
    LocalFabric fabric({4});
    Gate ready;
    pid_t owner = spawn_node_process(fabric, 4, [&](sci_desc_t sd) {
        sci_error_t err;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, 7, 4096, nullptr, nullptr, 0, &err);
        SCIPrepareSegment(seg, 0, 0, &err);
        SCISetSegmentAvailable(seg, 0, 0, &err);
        if (err != SCI_ERR_OK) {
            return 1;
        }
        ready.open();
        ::pause();
        return 0;
    });
    ready.close_unused_write();
    REQUIRE(ready.wait(10000));
    REQUIRE(::kill(owner, SIGSTOP) == 0);

    // Every connect and disconnect is an event to the stopped owner, which never reads.
    RawClient peer(fabric.socket(4));
    REQUIRE(peer.hello(4) == SCI_ERR_OK);
    bool owner_dropped = false;
    milliseconds slowest{0};
    for (int i = 0; i < 5000 && !owner_dropped; ++i) {
        auto t0 = Clock::now();
        auto r = peer.call({{"op", "seg_connect"}, {"segment_id", 7}}, {}, milliseconds(1000));
        REQUIRE(r.has_value()); // the node answers although the owner is frozen
        if (r->err() == SCI_ERR_NO_SUCH_SEGMENT) {
            owner_dropped = true; // its queue overflowed: released as if it had died
            break;
        }
        REQUIRE(r->err() == SCI_ERR_OK);
        REQUIRE(peer.must({{"op", "seg_disconnect"}, {"segment_id", 7}}, {}, milliseconds(1000)) ==
                SCI_ERR_OK);
        slowest = std::max(slowest, std::chrono::duration_cast<milliseconds>(Clock::now() - t0));
    }
    CHECK(owner_dropped);
    INFO("slowest connect+disconnect " << slowest.count() << " ms");
    CHECK(slowest < milliseconds(500));
    CHECK(counter(fabric, 4, "clients_dropped_total") == 1);
    ::kill(owner, SIGKILL);
    ::kill(owner, SIGCONT);
    wait_child(owner);
}

TEST_CASE("memory handed to the daemon must be sealed against resizing", "[fabric][hardening]") {
    LocalFabric fabric({4});
    RawClient c(fabric.socket(4));
    auto hello = c.must_reply({{"op", "hello"}, {"version", 1}, {"node_id", 4}});
    REQUIRE(hello.err() == SCI_ERR_OK);
    REQUIRE(hello.fds.size() == 1); // the DMA doorbell
    constexpr std::size_t k_size = 8192;

    // SCIRegisterSegmentMemory with an unsealed memfd: refused, the daemon lives.
    REQUIRE(c.must({{"op", "seg_create"}, {"segment_id", 1}, {"size", 0}, {"empty", true}}) ==
            SCI_ERR_OK);
    auto unsealed = memory_file(k_size, false);
    CHECK(c.must({{"op", "seg_register"}, {"segment_id", 1}, {"size", k_size}}, {unsealed.get()}) ==
          SCI_ERR_ILLEGAL_PARAMETER);
    CHECK(c.must({{"op", "dma_region"}, {"size", k_size}}, {unsealed.get()}) ==
          SCI_ERR_ILLEGAL_PARAMETER);
    REQUIRE(c.must({{"op", "ping"}}) == SCI_ERR_OK);

    // Sealed: accepted, and the memory can no longer be truncated under the daemon.
    auto sealed = memory_file(k_size, true);
    {
        auto map = dis::wire::map_shared(sealed.get(), k_size);
        REQUIRE(map.get() != nullptr);
        std::memset(map.get(), 0x5A, k_size);
    }
    REQUIRE(c.must({{"op", "seg_register"}, {"segment_id", 1}, {"size", k_size}}, {sealed.get()}) ==
            SCI_ERR_OK);
    auto remote = memory_file(k_size, true);
    {
        auto map = dis::wire::map_shared(remote.get(), k_size);
        std::memset(map.get(), 0xC3, k_size);
    }
    auto local_region = c.must_reply({{"op", "dma_region"}, {"segment_id", 1}});
    auto remote_region = c.must_reply({{"op", "dma_region"}, {"size", k_size}}, {remote.get()});
    REQUIRE(local_region.err() == SCI_ERR_OK);
    REQUIRE(remote_region.err() == SCI_ERR_OK);
    CHECK(::ftruncate(sealed.get(), 0) != 0);
    CHECK(errno == EPERM);
    CHECK(::ftruncate(remote.get(), 0) != 0);

    // A DMA that reads the remote memory into the registered one: done, and the node lives.
    auto q = c.must_reply({{"op", "dma_queue_create"}, {"capacity", 4}});
    REQUIRE(q.err() == SCI_ERR_OK);
    REQUIRE(q.fds.size() == 1);
    auto qmap = dis::wire::map_shared(q.fds[0].get(), dis::wire::dma_queue_bytes(4));
    auto bell = dis::wire::map_shared(hello.fds[0].get(), 4096);
    REQUIRE(qmap.get() != nullptr);
    REQUIRE(bell.get() != nullptr);
    auto* shared = static_cast<dis::wire::DmaQueueShared*>(qmap.get());
    auto* doorbell = static_cast<dis::wire::DmaDoorbell*>(bell.get());
    shared->ring[0] = dis::wire::DmaDesc{local_region.body.at("region_id").get<std::uint32_t>(),
                                         remote_region.body.at("region_id").get<std::uint32_t>(),
                                         0,
                                         0,
                                         4096,
                                         dis::wire::k_dma_read,
                                         0};
    shared->head.store(1);
    doorbell->seq.fetch_add(1);
    dis::wire::futex_wake(&doorbell->seq);
    CHECK(eventually([&] { return shared->completed.load() == 1; }));
    CHECK(shared->error.load() == 0);
    auto seg = dis::wire::map_shared(sealed.get(), k_size);
    auto* bytes = static_cast<unsigned char*>(seg.get());
    CHECK(bytes[0] == 0xC3);
    CHECK(bytes[4095] == 0xC3);
    CHECK(bytes[4096] == 0x5A);
    CHECK(c.must({{"op", "ping"}}) == SCI_ERR_OK);
    CHECK(counter(fabric, 4, "dma_errors_total") == 0);
}

TEST_CASE("the wire protocol refuses stray descriptors, unknown ops and bad node ids",
          "[fabric][hardening]") {
    TempDir conf_dir;
    auto conf = (conf_dir.path() / "fabric.conf").string();
    write_file(conf, "node 4 name=a\nnode 8 name=b\n");
    LocalFabric fabric({4}, {"--config", conf});
    RawClient c(fabric.socket(4));
    // hello: a node id is a positive multiple of 4, declared in the config (0: admin).
    CHECK(c.hello(5) == SCI_ERR_ILLEGAL_NODEID);
    CHECK(c.hello(16) == SCI_ERR_ILLEGAL_NODEID);
    CHECK(c.must({{"op", "ping"}}) == SCI_ERR_NOT_INITIALIZED);
    REQUIRE(c.hello(8) == SCI_ERR_OK);
    CHECK(c.hello(8) == SCI_ERR_ILLEGAL_OPERATION); // once per connection
    {
        RawClient admin(fabric.socket(4));
        CHECK(admin.hello(0) == SCI_ERR_OK);
    }

    std::uint64_t malformed = counter(fabric, 4, "malformed_requests_total");
    int junk[2] = {::eventfd(0, EFD_CLOEXEC), ::eventfd(0, EFD_CLOEXEC)};
    // A request that takes no descriptors, or fewer than it got: refused, counted.
    CHECK(c.must({{"op", "ping"}}, {junk[0]}) == SCI_ERR_ILLEGAL_PARAMETER);
    CHECK(c.must({{"op", "node_info"}}, {junk[0], junk[1]}) == SCI_ERR_ILLEGAL_PARAMETER);
    CHECK(c.must({{"op", "seg_register"}, {"segment_id", 1}, {"size", 4096}}, {junk[0], junk[1]}) ==
          SCI_ERR_ILLEGAL_PARAMETER);
    CHECK(counter(fabric, 4, "malformed_requests_total") == malformed + 3);
    // An unknown op is malformed too.
    CHECK(c.must({{"op", "no_such_op"}}) == SCI_ERR_ILLEGAL_OPERATION);
    CHECK(counter(fabric, 4, "malformed_requests_total") == malformed + 4);
    for (int j : junk) {
        ::close(j);
    }
    CHECK(c.must({{"op", "ping"}}) == SCI_ERR_OK);
}

TEST_CASE("a view too large for one message is an error reply, not a dropped client",
          "[fabric][hardening]") {
    LocalFabric fabric({4});
    RawClient c(fabric.socket(4));
    REQUIRE(c.hello(4) == SCI_ERR_OK);
    // About 150 bytes of JSON per segment: 600 of them do not fit in 64 KiB.
    for (std::uint32_t id = 1; id <= 600; ++id) {
        REQUIRE(c.must({{"op", "seg_create"}, {"segment_id", id}, {"size", 4096}}) == SCI_ERR_OK);
    }
    auto r = c.call({{"op", "segments"}}, {}, milliseconds(2000));
    REQUIRE(r.has_value());
    CHECK(r->err() == SCI_ERR_NOSPC);
    CHECK(c.must({{"op", "ping"}}) == SCI_ERR_OK);
}

TEST_CASE("link probes to a frozen peer with a full backlog do not stall the node",
          "[fabric][hardening]") {
    LocalFabric fabric({4, 8});
    REQUIRE(::kill(fabric.pid(8), SIGSTOP) == 0);
    // Fill the frozen daemon's listen backlog: a blocking connect to it now waits forever.
    std::vector<dis::wire::Fd> backlog;
    for (int i = 0; i < 1000; ++i) {
        dis::wire::Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, fabric.socket(8).c_str(), sizeof(addr.sun_path) - 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            REQUIRE(errno == EAGAIN);
            break;
        }
        backlog.push_back(std::move(fd));
    }
    REQUIRE(backlog.size() < 1000);
    RawClient c(fabric.socket(4));
    REQUIRE(c.hello(0) == SCI_ERR_OK);
    auto t0 = Clock::now();
    auto links = c.call({{"op", "links"}}, {}, milliseconds(1000));
    REQUIRE(links.has_value());
    CHECK(Clock::now() - t0 < milliseconds(500));
    REQUIRE(links->body.at("links").size() == 1);
    CHECK(links->body.at("links")[0].at("state") == "down");
    CHECK(c.must({{"op", "ping"}}, {}, milliseconds(100)) == SCI_ERR_OK);
    backlog.clear();
    ::kill(fabric.pid(8), SIGCONT);
}
