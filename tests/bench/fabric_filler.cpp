// dis_bench_filler COUNT: as the node in $DIS_NODE_ID, creates COUNT available 4 KiB segments
// (ids 1..COUNT), connects to CONNECT_EVERY-th one of the next node's segments when
// $DIS_FILLER_PEER names it, prints "ready" and holds everything until stdin closes. Used by
// scripts/bench-exporter.sh and the monitor's CPU benchmark to give a fabric its load.
#include <sisci_api.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2 || std::atoi(argv[1]) <= 0) {
        std::fprintf(stderr, "usage: dis_bench_filler COUNT\n");
        return 2;
    }
    const int count = std::atoi(argv[1]);
    sci_error_t err;
    SCIInitialize(0, &err);
    if (err != SCI_ERR_OK) {
        std::fprintf(stderr, "dis_bench_filler: SCIInitialize: %s\n", SCIGetErrorString(err));
        return 3;
    }
    sci_desc_t sd;
    SCIOpen(&sd, 0, &err);
    if (err != SCI_ERR_OK) {
        std::fprintf(stderr, "dis_bench_filler: SCIOpen: %s\n", SCIGetErrorString(err));
        return 3;
    }
    std::vector<sci_local_segment_t> segments;
    for (int i = 1; i <= count; ++i) {
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, static_cast<unsigned>(i), 4096, nullptr, nullptr, 0, &err);
        if (err == SCI_ERR_OK) {
            SCIPrepareSegment(seg, 0, 0, &err);
        }
        if (err == SCI_ERR_OK) {
            SCISetSegmentAvailable(seg, 0, 0, &err);
        }
        if (err != SCI_ERR_OK) {
            std::fprintf(stderr, "dis_bench_filler: segment %d: %s\n", i, SCIGetErrorString(err));
            return 1;
        }
        segments.push_back(seg);
    }
    std::vector<sci_remote_segment_t> remotes;
    if (const char* peer = std::getenv("DIS_FILLER_PEER"); peer != nullptr && *peer != '\0') {
        const unsigned node = static_cast<unsigned>(std::strtoul(peer, nullptr, 0));
        for (int i = 1; i <= count; i += 10) {
            sci_remote_segment_t r;
            SCIConnectSegment(sd, &r, node, static_cast<unsigned>(i), 0, nullptr, nullptr, 5000, 0,
                              &err);
            if (err != SCI_ERR_OK) {
                std::fprintf(stderr, "dis_bench_filler: connect %u/%d: %s\n", node, i,
                             SCIGetErrorString(err));
                return 1;
            }
            remotes.push_back(r);
        }
    }
    std::printf("ready\n");
    std::fflush(stdout);
    char buf[64];
    while (::read(0, buf, sizeof buf) > 0) {
    }
    for (auto r : remotes) {
        SCIDisconnectSegment(r, 0, &err);
    }
    for (auto s : segments) {
        SCIRemoveSegment(s, 0, &err);
    }
    SCIClose(sd, 0, &err);
    SCITerminate();
    return 0;
}
