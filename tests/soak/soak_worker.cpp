// One worker run of scripts/soak.sh: a SISCI client of its node that creates two segments,
// fills one with checksummed data, DMAs it into the other through a loopback connection,
// writes through a remote mapping, raises an interrupt and a data interrupt, and reads (by
// mapping and by DMA) the segment of a worker on a peer node, verifying every byte it gets.
// The soak's chaos loop may kill it, its peer or either daemon at any moment.
//
//   soak_worker NODE SLOT PEER_NODE PEER_SLOT SEED DAEMON_PID HOLD_MS
//
// Exit status: 0 all good (peer steps may have missed: printed), 1 a data error (an
// operation succeeded but the bytes are wrong), 3 an own-node operation failed while the
// node's daemon DAEMON_PID was alive, 4 the node's daemon died under it (expected in a
// soak), 2 usage. Every run ends within 60 s or dies of SIGALRM.
#include <sisci_api.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::uint64_t k_magic = 0x534f414b31444953ULL; // "DIS1KAOS"
constexpr std::size_t k_header = 64;
constexpr int k_exit_data = 1;
constexpr int k_exit_fabric = 3;
constexpr int k_exit_daemon_gone = 4;

struct Header {
    std::uint64_t magic;
    std::uint64_t seed;
    std::uint64_t size;
};

unsigned char pattern(std::size_t i, std::uint64_t seed) {
    return static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
}

pid_t g_daemon = 0;

// The daemon is gone: no /proc entry, or a zombie waiting for the soak script to reap it.
bool daemon_gone() {
    std::ifstream stat("/proc/" + std::to_string(g_daemon) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line))
        return true;
    auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z';
}

// An own-node operation failed: expected only when the node's daemon died.
[[noreturn]] void fail(const char* what, sci_error_t err) {
    if (daemon_gone()) {
        std::printf("daemon-gone %s\n", what);
        std::exit(k_exit_daemon_gone);
    }
    std::fprintf(stderr, "soak_worker %d: %s: %s (0x%x)\n", static_cast<int>(::getpid()), what,
                 SCIGetErrorString(err), static_cast<unsigned>(err));
    std::exit(k_exit_fabric);
}

[[noreturn]] void data_error(const char* what, std::size_t at) {
    std::fprintf(stderr, "soak_worker %d: DATA ERROR: %s at byte %zu\n",
                 static_cast<int>(::getpid()), what, at);
    std::exit(k_exit_data);
}

void check(sci_error_t err, const char* what) {
    if (err != SCI_ERR_OK)
        fail(what, err);
}

// Index of the first byte of `body` that is not the pattern of `seed`, or npos.
std::size_t first_bad(const volatile unsigned char* p, std::size_t size, std::uint64_t seed) {
    for (std::size_t i = k_header; i < size; ++i)
        if (p[i] != pattern(i, seed))
            return i;
    return std::string::npos;
}

// Creates a segment, retrying while a killed predecessor's segment of the same id is being
// released by the daemon (it must be gone within 5 s, or it leaked).
sci_local_segment_t create_segment(sci_desc_t sd, unsigned id, std::size_t size) {
    sci_local_segment_t seg = nullptr;
    sci_error_t err = SCI_ERR_OK;
    for (int i = 0; i < 250; ++i) {
        SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, 0, &err);
        if (err != SCI_ERR_SEGMENTID_USED)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    check(err, "SCICreateSegment");
    SCIPrepareSegment(seg, 0, 0, &err);
    check(err, "SCIPrepareSegment");
    return seg;
}

// The peer worker's segment: mapped and read, then pulled by DMA into `into`. Every miss
// (no such segment, the peer or its daemon killed) is fine; wrong bytes are not.
bool read_peer(sci_desc_t sd, unsigned peer_node, unsigned peer_id, sci_local_segment_t into,
               volatile unsigned char* into_p, std::size_t into_size, sci_dma_queue_t dq) {
    sci_error_t err;
    sci_remote_segment_t rs = nullptr;
    SCIConnectSegment(sd, &rs, peer_node, peer_id, 0, nullptr, nullptr, 1000, 0, &err);
    if (err != SCI_ERR_OK)
        return false;
    bool hit = false;
    std::size_t size = SCIGetRemoteSegmentSize(rs);
    sci_map_t map = nullptr;
    auto* p = static_cast<volatile unsigned char*>(
        SCIMapRemoteSegment(rs, &map, 0, size, nullptr, 0, &err));
    if (err == SCI_ERR_OK && size >= k_header) {
        Header h{};
        std::memcpy(&h, const_cast<const unsigned char*>(p), sizeof h);
        // The owner writes its header before making the segment available.
        if (h.magic != k_magic || h.size != size)
            data_error("peer segment header", 0);
        if (auto bad = first_bad(p, size, h.seed); bad != std::string::npos)
            data_error("peer segment (mapped)", bad);
        std::size_t n = std::min(size, into_size);
        std::memset(const_cast<unsigned char*>(into_p), 0, n);
        SCIStartDmaTransfer(dq, into, rs, 0, n, 0, nullptr, nullptr, SCI_FLAG_DMA_READ, &err);
        if (err == SCI_ERR_OK && SCIWaitForDMAQueue(dq, 10000, 0, &err) == SCI_DMAQUEUE_DONE &&
            err == SCI_ERR_OK) {
            if (auto bad = first_bad(into_p, n, h.seed); bad != std::string::npos)
                data_error("peer segment (DMA read)", bad);
        } else if (SCIDMAQueueState(dq) != SCI_DMAQUEUE_IDLE) {
            SCIAbortDMAQueue(dq, 0, &err);
        }
        hit = true;
        SCIUnmapSegment(map, 0, &err);
    }
    SCIDisconnectSegment(rs, 0, &err);
    return hit;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr,
                     "usage: soak_worker NODE SLOT PEER_NODE PEER_SLOT SEED DAEMON_PID HOLD_MS\n");
        return 2;
    }
    const unsigned node = static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10));
    const unsigned slot = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
    const unsigned peer_node = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));
    const unsigned peer_slot = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
    const std::uint64_t seed = std::strtoull(argv[5], nullptr, 10);
    g_daemon = static_cast<pid_t>(std::strtol(argv[6], nullptr, 10));
    const long hold_ms = std::strtol(argv[7], nullptr, 10);
    ::alarm(60);
    std::mt19937_64 rng(seed);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t size = page * (16 + rng() % 112); // 64 KiB to 512 KiB
    const unsigned id_a = 1000 + slot * 2, id_b = id_a + 1;
    (void)node;

    sci_error_t err;
    SCIInitialize(0, &err);
    check(err, "SCIInitialize");
    sci_desc_t sd;
    SCIOpen(&sd, 0, &err);
    check(err, "SCIOpen");

    // A: the checksummed source, header first, then available to the peers.
    sci_local_segment_t a = create_segment(sd, id_a, size);
    sci_map_t a_map;
    auto* a_p = static_cast<volatile unsigned char*>(
        SCIMapLocalSegment(a, &a_map, 0, size, nullptr, 0, &err));
    check(err, "SCIMapLocalSegment A");
    for (std::size_t i = k_header; i < size; ++i)
        a_p[i] = pattern(i, seed);
    Header h{k_magic, seed, size};
    std::memcpy(const_cast<unsigned char*>(a_p), &h, sizeof h);
    SCISetSegmentAvailable(a, 0, 0, &err);
    check(err, "SCISetSegmentAvailable A");

    // B: the DMA target, reached through a loopback connection.
    sci_local_segment_t b = create_segment(sd, id_b, size);
    sci_map_t b_map;
    auto* b_p = static_cast<volatile unsigned char*>(
        SCIMapLocalSegment(b, &b_map, 0, size, nullptr, 0, &err));
    check(err, "SCIMapLocalSegment B");
    std::memset(const_cast<unsigned char*>(b_p), 0, size);
    SCISetSegmentAvailable(b, 0, 0, &err);
    check(err, "SCISetSegmentAvailable B");
    unsigned self = 0;
    SCIGetLocalNodeId(0, &self, 0, &err);
    check(err, "SCIGetLocalNodeId");
    sci_remote_segment_t rb;
    SCIConnectSegment(sd, &rb, self, id_b, 0, nullptr, nullptr, 5000, 0, &err);
    check(err, "SCIConnectSegment (loopback)");
    sci_dma_queue_t dq;
    SCICreateDMAQueue(sd, &dq, 0, 16, 0, &err);
    check(err, "SCICreateDMAQueue");
    SCIStartDmaTransfer(dq, a, rb, 0, size, 0, nullptr, nullptr, 0, &err);
    check(err, "SCIStartDmaTransfer");
    if (SCIWaitForDMAQueue(dq, 10000, 0, &err) != SCI_DMAQUEUE_DONE)
        fail("SCIWaitForDMAQueue", err);
    check(err, "SCIWaitForDMAQueue");
    if (std::memcmp(const_cast<const unsigned char*>(a_p), const_cast<const unsigned char*>(b_p),
                    size) != 0)
        data_error("DMA push A -> B", first_bad(b_p, size, seed));

    // PIO: stores through the remote mapping land in B.
    sci_map_t rb_map;
    auto* rb_p = static_cast<volatile unsigned char*>(
        SCIMapRemoteSegment(rb, &rb_map, 0, size, nullptr, 0, &err));
    check(err, "SCIMapRemoteSegment (loopback)");
    for (std::size_t i = k_header; i < size; i += 61)
        rb_p[i] = static_cast<unsigned char>(~pattern(i, seed));
    for (std::size_t i = k_header; i < size; i += 61)
        if (b_p[i] != static_cast<unsigned char>(~pattern(i, seed)))
            data_error("PIO store through the remote map", i);

    // An interrupt and a data interrupt to ourselves.
    sci_local_interrupt_t irq;
    unsigned irq_no = 0;
    SCICreateInterrupt(sd, &irq, 0, &irq_no, nullptr, nullptr, 0, &err);
    check(err, "SCICreateInterrupt");
    sci_remote_interrupt_t rirq;
    SCIConnectInterrupt(sd, &rirq, self, 0, irq_no, 5000, 0, &err);
    check(err, "SCIConnectInterrupt");
    SCITriggerInterrupt(rirq, 0, &err);
    check(err, "SCITriggerInterrupt");
    SCIWaitForInterrupt(irq, 10000, 0, &err);
    check(err, "SCIWaitForInterrupt");
    sci_local_data_interrupt_t dirq;
    unsigned dirq_no = 0;
    SCICreateDataInterrupt(sd, &dirq, 0, &dirq_no, nullptr, nullptr, 0, &err);
    check(err, "SCICreateDataInterrupt");
    sci_remote_data_interrupt_t rdirq;
    SCIConnectDataInterrupt(sd, &rdirq, self, 0, dirq_no, 5000, 0, &err);
    check(err, "SCIConnectDataInterrupt");
    std::vector<unsigned char> sent(16 + rng() % 1000), got(2048);
    for (std::size_t i = 0; i < sent.size(); ++i)
        sent[i] = pattern(i, seed + 1);
    SCITriggerDataInterrupt(rdirq, sent.data(), static_cast<unsigned>(sent.size()), 0, &err);
    check(err, "SCITriggerDataInterrupt");
    unsigned got_len = static_cast<unsigned>(got.size());
    SCIWaitForDataInterrupt(dirq, got.data(), &got_len, 10000, 0, &err);
    check(err, "SCIWaitForDataInterrupt");
    if (got_len != sent.size() || std::memcmp(got.data(), sent.data(), sent.size()) != 0)
        data_error("data interrupt payload", 0);

    // A worker of the peer node: missing, dying or alive; if we read it, it must be intact.
    bool hit = read_peer(sd, peer_node, 1000 + peer_slot * 2, b, b_p, size, dq);
    std::printf("ok peer=%s size=%zu\n", hit ? "hit" : "miss", size);
    std::fflush(stdout);

    // Stay a while with everything held, so that kills land on live clients too.
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    if (rng() % 4 == 0)
        std::_Exit(0); // leave everything to the daemon, as a crash would

    SCIDisconnectDataInterrupt(rdirq, 0, &err);
    check(err, "SCIDisconnectDataInterrupt");
    SCIRemoveDataInterrupt(dirq, 0, &err);
    check(err, "SCIRemoveDataInterrupt");
    SCIDisconnectInterrupt(rirq, 0, &err);
    check(err, "SCIDisconnectInterrupt");
    SCIRemoveInterrupt(irq, 0, &err);
    check(err, "SCIRemoveInterrupt");
    SCIRemoveDMAQueue(dq, 0, &err);
    check(err, "SCIRemoveDMAQueue");
    SCIUnmapSegment(rb_map, 0, &err);
    check(err, "SCIUnmapSegment rb");
    SCIDisconnectSegment(rb, 0, &err);
    check(err, "SCIDisconnectSegment rb");
    SCIUnmapSegment(b_map, 0, &err);
    check(err, "SCIUnmapSegment B");
    SCIUnmapSegment(a_map, 0, &err);
    check(err, "SCIUnmapSegment A");
    // A peer may still be connected to A: removal is refused while it is (SCI_ERR_BUSY).
    SCIRemoveSegment(b, 0, &err);
    check(err, "SCIRemoveSegment B");
    for (int i = 0; i < 200; ++i) {
        SCISetSegmentUnavailable(a, 0, 0, &err);
        SCIRemoveSegment(a, 0, &err);
        if (err != SCI_ERR_BUSY)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (err != SCI_ERR_BUSY)
        check(err, "SCIRemoveSegment A");
    SCIClose(sd, 0, &err);
    check(err, "SCIClose");
    SCITerminate();
    return 0;
}
