// Segment lifecycle, PIO visibility and the argument checks of the segment calls.
#include "fabric_support.hpp"

#include "dis/fabric_admin.hpp"
#include "dis/fabric_sample.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

using namespace dis::test;

namespace {

sci_local_segment_t make_available(sci_desc_t sd, unsigned id, size_t size, unsigned flags = 0) {
    sci_local_segment_t seg = nullptr;
    sci_error_t err;
    SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, flags, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    return seg;
}

} // namespace

TEST_CASE("segment lifecycle across two nodes with PIO in both directions", "[fabric][segment]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg = make_available(s.sd, 42, 8192);
    sci_map_t map;
    auto* words = static_cast<volatile std::uint32_t*>(
        SCIMapLocalSegment(seg, &map, 0, 8192, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    words[0] = 0;
    words[1] = 0;

    Gate written;
    pid_t child = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_remote_segment_t rs;
        SCIConnectSegment(sd, &rs, 4, 42, 0, nullptr, nullptr, 5000, 0, &e);
        if (e != SCI_ERR_OK || SCIGetRemoteSegmentSize(rs) != 8192 ||
            SCIGetRemoteSegmentNodeId(rs) != 4) {
            return 1;
        }
        sci_map_t m;
        auto* w = static_cast<volatile std::uint32_t*>(
            SCIMapRemoteSegment(rs, &m, 0, 8192, nullptr, 0, &e));
        if (e != SCI_ERR_OK) {
            return 2;
        }
        w[1] = 0xC0FFEE;
        w[2047] = 0x1234; // last word of the segment
        SCIStoreBarrier(nullptr, 0);
        written.open();
        // Wait for the owner's answer, a store into our mapping.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (w[0] != 0xABCD) {
            if (std::chrono::steady_clock::now() > deadline) {
                return 3;
            }
        }
        SCIUnmapSegment(m, 0, &e);
        SCIDisconnectSegment(rs, 0, &e);
        return e == SCI_ERR_OK ? 0 : 4;
    });
    REQUIRE(written.wait(10000));
    CHECK(words[1] == 0xC0FFEE);
    CHECK(words[2047] == 0x1234);

    // The owner daemon's admin view sees the connection and both mappings.
    dis::fabric::AdminClient admin(fabric.dir(), 4);
    auto segs = admin.segments();
    REQUIRE(segs.size() == 1);
    CHECK(segs[0].segment_id == 42);
    CHECK(segs[0].size == 8192);
    CHECK(segs[0].state == "available");
    CHECK(segs[0].connections == 1);
    CHECK(segs[0].mappings == 2);
    CHECK(segs[0].owner_pid == ::getpid());

    words[0] = 0xABCD;
    CHECK(wait_child(child) == 0);

    // The owner was told about the connect and the disconnect, with the peer's node id.
    unsigned node = 0;
    unsigned adapter = 99;
    CHECK(SCIWaitForLocalSegmentEvent(seg, &node, &adapter, 2000, 0, &err) == SCI_CB_CONNECT);
    CHECK(err == SCI_ERR_OK);
    CHECK(node == 8);
    CHECK(adapter == 0);
    CHECK(SCIWaitForLocalSegmentEvent(seg, &node, &adapter, 2000, 0, &err) == SCI_CB_DISCONNECT);
    CHECK(err == SCI_ERR_OK);

    // Removal is refused while mapped, allowed afterwards.
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_BUSY);
    SCIUnmapSegment(map, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(admin.segments().empty());
}

// Removal while a remote node is connected: tests/fabric/test_sisci_removal.cpp.

TEST_CASE("segment calls check their arguments", "[fabric][segment][errors]") {
    LocalFabric fabric({4, 8});
    sci_error_t err = SCI_ERR_OK;
    sci_desc_t sd = nullptr;
    // Nothing works before SCIInitialize.
    SCIOpen(&sd, 0, &err);
    CHECK(err == SCI_ERR_NOT_INITIALIZED);

    SisciSession s(fabric, 4);
    sci_local_segment_t seg = nullptr;
    SCICreateSegment(s.sd, &seg, 1, 4096, nullptr, nullptr, SCI_FLAG_DMA_READ, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);
    SCICreateSegment(s.sd, &seg, 1, 0, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
    SCICreateSegment(nullptr, &seg, 1, 4096, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);

    SCICreateSegment(s.sd, &seg, 1, 4096, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_local_segment_t dup = nullptr;
    SCICreateSegment(s.sd, &dup, 1, 4096, nullptr, nullptr, 0, &err);
    CHECK(err == SCI_ERR_SEGMENTID_USED);

    // Automatic ids are distinct and reported.
    sci_local_segment_t a1;
    sci_local_segment_t a2;
    SCICreateSegment(s.sd, &a1, 0, 4096, nullptr, nullptr, SCI_FLAG_AUTO_ID, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCICreateSegment(s.sd, &a2, 0, 4096, nullptr, nullptr, SCI_FLAG_AUTO_ID, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(SCIGetLocalSegmentId(a1) != SCIGetLocalSegmentId(a2));

    // Not prepared, wrong adapter.
    SCISetSegmentAvailable(seg, 0, 0, &err);
    CHECK(err == SCI_ERR_SEGMENT_NOT_PREPARED);
    SCIPrepareSegment(seg, 1, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_ADAPTERNO);
    SCIPrepareSegment(seg, 0, SCI_FLAG_BROADCAST, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);
    SCIPrepareSegment(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // Connect errors: unknown node, illegal node id, missing segment, unavailable segment.
    sci_remote_segment_t rs = nullptr;
    SCIConnectSegment(s.sd, &rs, 12, 1, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_NODEID);
    SCIConnectSegment(s.sd, &rs, 5, 1, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_NODEID);
    SCIConnectSegment(s.sd, &rs, 8, 999, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_SEGMENT);
    auto t0 = std::chrono::steady_clock::now();
    SCIConnectSegment(s.sd, &rs, 8, 999, 0, nullptr, nullptr, 300, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_SEGMENT);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
    SCIConnectSegment(s.sd, &rs, 4, 1, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_CONNECTION_REFUSED);
    SCIConnectSegment(s.sd, &rs, 4, 1, 0, nullptr, nullptr, 0, SCI_FLAG_EMPTY, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);

    // Loopback connect to our own node, then range checks on map and SCIMemCpy.
    SCISetSegmentAvailable(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIConnectSegment(s.sd, &rs, 4, 1, 0, nullptr, nullptr, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t map = nullptr;
    SCIMapRemoteSegment(rs, &map, 4096, 1, nullptr, 0, &err);
    CHECK(err == SCI_ERR_OUT_OF_RANGE);
    SCIMapRemoteSegment(rs, &map, 100, 4000, nullptr, 0, &err);
    CHECK(err == SCI_ERR_OUT_OF_RANGE);
    SCIMapRemoteSegment(rs, &map, 0, 4096, nullptr, SCI_FLAG_DMA_READ, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);
    // An unaligned offset works and lands at the right byte.
    auto* p = static_cast<volatile char*>(SCIMapRemoteSegment(rs, &map, 100, 16, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    p[0] = 'x';
    sci_map_t lmap;
    auto* lp =
        static_cast<volatile char*>(SCIMapLocalSegment(seg, &lmap, 0, 4096, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    CHECK(lp[100] == 'x');
    sci_sequence_t seq;
    SCICreateMapSequence(map, &seq, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    char buf[32] = "0123456789abcdef";
    SCIMemCpy(seq, buf, map, 8, 16, 0, &err);
    CHECK(err == SCI_ERR_OUT_OF_RANGE);
    SCIMemCpy(seq, buf, map, 0, 16, SCI_FLAG_DMA_READ, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);
    SCIMemCpy(seq, buf, map, 0, 16, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(std::memcmp(const_cast<char*>(lp) + 100, buf, 16) == 0);
    char back[16] = {};
    SCIMemCpy(seq, back, map, 0, 16, SCI_FLAG_BLOCK_READ, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(std::memcmp(back, buf, 16) == 0);
    CHECK(SCIStartSequence(seq, 0, &err) == SCI_SEQ_OK);
    CHECK(SCICheckSequence(seq, 0, &err) == SCI_SEQ_OK);

    // The descriptor cannot close while it owns objects.
    SCIClose(s.sd, 0, &err);
    CHECK(err == SCI_ERR_BUSY);

    SCIRemoveSequence(seq, 0, &err);
    SCIUnmapSegment(map, 0, &err);
    SCIUnmapSegment(lmap, 0, &err);
    SCIDisconnectSegment(rs, 0, &err);
    CHECK(err == SCI_ERR_OK);
    for (auto* x : {seg, a1, a2}) {
        SCIRemoveSegment(x, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
}

TEST_CASE("queries, node ids and probes", "[fabric][query]") {
    LocalFabric fabric({4, 8, 12});
    SisciSession s(fabric, 8);
    sci_error_t err;
    unsigned node = 0;
    SCIGetLocalNodeId(0, &node, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(node == 8);
    SCIGetLocalNodeId(1, &node, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_ADAPTERNO);

    unsigned value = 0;
    sci_query_adapter_t qa{SCI_Q_ADAPTER_NODEID, 0, 0, &value};
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(value == 8);
    qa.subcommand = SCI_Q_ADAPTER_NUMBER_OF_LINKS;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(value == 2); // links to 4 and 12
    qa.subcommand = SCI_Q_ADAPTER_LINK_OPERATIONAL;
    qa.portNo = 1;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(value == 1);
    qa.subcommand = SCI_Q_ADAPTER_LINK_WIDTH;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(value == 8);
    qa.subcommand = SCI_Q_ADAPTER_LINK_SPEED;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(value == 8000);
    qa.portNo = 5;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_OUT_OF_RANGE);
    qa.portNo = 0;
    qa.subcommand = SCI_Q_ADAPTER_CARD_TYPE;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(value == DIS_ADAPTER_SOFTWARE_FABRIC);
    qa.subcommand = 0xFFFF;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_QUERY);
    qa.subcommand = SCI_Q_ADAPTER_NODEID;
    qa.localAdapterNo = 3;
    SCIQuery(SCI_Q_ADAPTER, &qa, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_ADAPTERNO);

    sci_query_system_t qs{SCI_Q_SYSTEM_CPU_CACHE_LINE_SIZE, &value};
    SCIQuery(SCI_Q_SYSTEM, &qs, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK((value == 32 || value == 64 || value == 128));

    unsigned avail = 0;
    sci_query_dma_t qd{SCI_Q_DMA_AVAILABLE, 0, &avail};
    SCIQuery(SCI_Q_DMA, &qd, SCI_FLAG_DMA_ADAPTER, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(avail == 1);
    sci_dma_capabilities_t caps{};
    qd = {SCI_Q_DMA_CAPABILITIES, 0, &caps};
    SCIQuery(SCI_Q_DMA, &qd, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(caps.supports_read == 1);

    char text[128];
    sci_query_string_t qstr{text, sizeof(text)};
    SCIQuery(SCI_Q_VENDORID, &qstr, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(std::string(text).find("dis-tool") != std::string::npos);
    SCIQuery(SCI_Q_API, &qstr, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIQuery(0x7777, &qstr, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_QUERY);

    CHECK(SCIProbeNode(s.sd, 0, 12, 0, &err) == 1);
    CHECK(err == SCI_ERR_OK);
    CHECK(SCIProbeNode(s.sd, 0, 16, 0, &err) == 0);
    CHECK(err == SCI_ERR_NO_SUCH_NODEID);
    CHECK(SCIProbeNode(s.sd, 0, 6, 0, &err) == 0);
    CHECK(err == SCI_ERR_ILLEGAL_NODEID);

    CHECK(std::string(SCIGetErrorString(SCI_ERR_SEGMENTID_USED)) !=
          std::string(SCIGetErrorString(SCI_ERR_NO_SUCH_NODEID)));
}

TEST_CASE("DIS_NODE_ID picks the node, by default the lowest node", "[fabric][query]") {
    LocalFabric fabric({8, 12});
    ::unsetenv("DIS_NODE_ID");
    ::setenv("DIS_FABRIC", fabric.dir().c_str(), 1);
    sci_error_t err;
    SCIInitialize(0, &err);
    REQUIRE(err == SCI_ERR_OK);
    unsigned node = 0;
    SCIGetLocalNodeId(0, &node, 0, &err);
    CHECK(node == 8);
    SCITerminate();

    ::setenv("DIS_NODE_ID", "12", 1);
    SCIInitialize(0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIGetLocalNodeId(0, &node, 0, &err);
    CHECK(node == 12);
    SCITerminate();

    ::setenv("DIS_NODE_ID", "13", 1);
    SCIInitialize(0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_NODEID);
    ::setenv("DIS_NODE_ID", "16", 1);
    SCIInitialize(0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_NODEID);
    ::unsetenv("DIS_NODE_ID");
}

TEST_CASE("SCI_FLAG_EMPTY with SCIRegisterSegmentMemory shares the caller's memory",
          "[fabric][segment]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 300, 0, nullptr, nullptr, SCI_FLAG_EMPTY, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(seg, 0, 0, &err);
    CHECK(err == SCI_ERR_SEGMENT_NOT_PREPARED); // no memory yet
    const size_t size = 3 * 4096;
    void* mem = std::aligned_alloc(4096, size);
    REQUIRE(mem != nullptr);
    std::memset(mem, 0x5A, size);
    SCIRegisterSegmentMemory(static_cast<char*>(mem) + 1, 4096, seg, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_ADDRESS);
    SCIRegisterSegmentMemory(mem, 100, seg, 0, &err);
    CHECK(err == SCI_ERR_SIZE_ALIGNMENT);
    SCIRegisterSegmentMemory(mem, size, seg, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(SCIGetLocalSegmentSize(seg) == size);
    SCIPrepareSegment(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_remote_segment_t rs;
    SCIConnectSegment(s.sd, &rs, 4, 300, 0, nullptr, nullptr, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t map;
    auto* p = static_cast<volatile unsigned char*>(
        SCIMapRemoteSegment(rs, &map, 0, size, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    CHECK(p[0] == 0x5A);                                       // old contents kept
    p[size - 1] = 0x77;                                        // a store through the segment...
    CHECK(static_cast<unsigned char*>(mem)[size - 1] == 0x77); // ...is in the caller's memory
    static_cast<unsigned char*>(mem)[5] = 0x11;
    CHECK(p[5] == 0x11);
    SCIUnmapSegment(map, 0, &err);
    SCIDisconnectSegment(rs, 0, &err);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
    std::free(mem);
}

TEST_CASE("SCIShareSegment and SCIAttachLocalSegment share a segment within a node",
          "[fabric][segment]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 11, 4096, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t map;
    auto* p = static_cast<volatile std::uint64_t*>(
        SCIMapLocalSegment(seg, &map, 0, 4096, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    p[0] = 0;
    int rc = run_node_process(fabric, 4, [](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t att;
        size_t size = 0;
        SCIAttachLocalSegment(sd, &att, 11, &size, nullptr, nullptr, 0, &e);
        return e == SCI_ERR_NO_SUCH_SEGMENT ? 0 : 1; // not shared yet
    });
    CHECK(rc == 0);
    SCIShareSegment(seg, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    rc = run_node_process(fabric, 4, [](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t att;
        size_t size = 0;
        SCIAttachLocalSegment(sd, &att, 11, &size, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK || size != 4096) {
            return 1;
        }
        sci_map_t m;
        auto* q = static_cast<volatile std::uint64_t*>(
            SCIMapLocalSegment(att, &m, 0, 4096, nullptr, 0, &e));
        if (e != SCI_ERR_OK) {
            return 2;
        }
        q[0] = 0xA77AC4ED;
        SCIUnmapSegment(m, 0, &e);
        SCIRemoveSegment(att, 0, &e); // detaches
        return e == SCI_ERR_OK ? 0 : 3;
    });
    CHECK(rc == 0);
    CHECK(p[0] == 0xA77AC4ED);
    SCIUnmapSegment(map, 0, &err);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("broadcast segments are reflective memory for every member", "[fabric][broadcast]") {
    LocalFabric fabric({4, 8, 12});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg = make_available(s.sd, 9, 4096, SCI_FLAG_BROADCAST);
    sci_map_t map;
    auto* own = static_cast<volatile std::uint64_t*>(
        SCIMapLocalSegment(seg, &map, 0, 4096, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    own[0] = 0;
    own[1] = 0;

    // A normal connect does not reach a broadcast segment.
    sci_remote_segment_t rs;
    SCIConnectSegment(s.sd, &rs, 4, 9, 0, nullptr, nullptr, 0, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_SEGMENT);

    auto member = [&](std::uint64_t mine, std::uint64_t other) {
        return [&, mine, other](sci_desc_t sd) {
            sci_error_t e;
            sci_remote_segment_t r;
            SCIConnectSegment(sd, &r, DIS_BROADCAST_NODEID_GROUP_ALL, 9, 0, nullptr, nullptr, 5000,
                              SCI_FLAG_BROADCAST, &e);
            if (e != SCI_ERR_OK) {
                return 1;
            }
            sci_map_t m;
            auto* w = static_cast<volatile std::uint64_t*>(
                SCIMapRemoteSegment(r, &m, 0, 4096, nullptr, 0, &e));
            if (e != SCI_ERR_OK) {
                return 2;
            }
            w[mine == 8 ? 0 : 1] = mine; // one store...
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (w[other == 8 ? 0 : 1] != other) { // ...seen by the other member
                if (std::chrono::steady_clock::now() > deadline) {
                    return 3;
                }
            }
            SCIUnmapSegment(m, 0, &e);
            SCIDisconnectSegment(r, 0, &e);
            return 0;
        };
    };
    pid_t a = spawn_node_process(fabric, 8, member(8, 12));
    pid_t b = spawn_node_process(fabric, 12, member(12, 8));
    CHECK(wait_child(a) == 0);
    CHECK(wait_child(b) == 0);
    CHECK(own[0] == 8); // and by the owner
    CHECK(own[1] == 12);
    SCIUnmapSegment(map, 0, &err);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("fabric sampler: a kept node's segments are asked again only when they changed",
          "[fabric][segment]") {
    LocalFabric fabric({4, 8});
    dis::fabric::FabricSampler sampler(fabric.dir(), std::chrono::milliseconds(2000), true);
    auto node4 = [&] {
        auto nodes = sampler.sample(true);
        REQUIRE(nodes.size() == 2);
        REQUIRE(nodes[0].id == 4);
        REQUIRE(nodes[0].up);
        REQUIRE(nodes[0].segments);
        return nodes[0];
    };
    auto segment42 = [](const dis::fabric::NodeSample& n) {
        for (const auto& seg : *n.segments)
            if (seg.segment_id == 42)
                return std::optional(seg);
        return std::optional<dis::fabric::SegmentInfo>();
    };

    pid_t first_pid = 0;
    {
        SisciSession s(fabric, 4);
        sci_error_t err;
        sci_local_segment_t seg = make_available(s.sd, 42, 8192);
        auto first = node4();
        first_pid = first.info.pid;
        REQUIRE(segment42(first));
        CHECK(segment42(first)->state == "available");
        CHECK(segment42(first)->connections == 0);

        // Nothing changes: the daemon is asked node_info and links alone (its requests_total
        // counts the node_info that reports it), and the kept list is the same.
        auto second = node4();
        auto third = node4();
        CHECK(third.info.counter("segment_changes_total") ==
              second.info.counter("segment_changes_total"));
        CHECK(third.info.counter("requests_total") - second.info.counter("requests_total") == 2);
        REQUIRE(segment42(third));
        CHECK(segment42(third)->state == "available");

        // A connection, its end, and the segment's removal each show in the next sample.
        sci_remote_segment_t rs;
        SCIConnectSegment(s.sd, &rs, 4, 42, 0, nullptr, nullptr, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        auto connected = node4();
        CHECK(connected.info.counter("segment_changes_total") >
              third.info.counter("segment_changes_total"));
        REQUIRE(segment42(connected));
        CHECK(segment42(connected)->connections == 1);

        SCIDisconnectSegment(rs, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        auto disconnected = node4();
        REQUIRE(segment42(disconnected));
        CHECK(segment42(disconnected)->connections == 0);

        SCIRemoveSegment(seg, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK_FALSE(segment42(node4()));
    } // the session ends with no segment left

    // A restarted daemon (another pid) counts from zero again: its segments are asked anew,
    // not taken from the list kept for the one before. A child process holds segment 43
    // until it is killed with the daemon (its segment handle dies with it, no leak here).
    Gate created;
    const pid_t holder = spawn_node_process(fabric, 4, [&](sci_desc_t sd) {
        sci_local_segment_t held = nullptr;
        sci_error_t e;
        SCICreateSegment(sd, &held, 43, 4096, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK)
            return 1;
        created.open();
        for (;;)
            pause();
    });
    REQUIRE(created.wait(10000));
    auto held = node4();
    REQUIRE(held.segments->size() == 1);
    CHECK(held.segments->front().segment_id == 43);
    fabric.signal(4, SIGKILL);
    kill(holder, SIGKILL);
    wait_child(holder);
    fabric.start(4);
    auto restarted = node4();
    CHECK(restarted.info.pid != first_pid);
    CHECK(restarted.segments->empty());
}
