// fabric_perf: measures the software fabric against the host's raw paths in the same run
// (not part of ctest; see tools/disd/README.md "Performance").
//
//   fabric_perf [DISD_PATH]     starts nodes 4 and 8 in a temporary fabric directory
//
// Prints one line per measurement and the ratio to its raw baseline:
//   pio_latency   remote store seen by a poller on another node vs raw shared-memory store
//   memcpy_bw     SCIMemCpy into a remote mapping vs memcpy, 64 KiB .. 16 MiB
//   dma_bw        DMA (node engine) vs memcpy, 1 .. 16 MiB
//   dma_latency   64-byte DMA post-to-completion median, wait and poll modes
//   irq_latency   SCITriggerInterrupt -> SCIWaitForInterrupt vs raw eventfd between processes
#include <sisci_api.h>

#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double now_us() {
    return std::chrono::duration<double, std::micro>(Clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

void check(sci_error_t err, const char* what) {
    if (err != SCI_ERR_OK) {
        std::fprintf(stderr, "fabric_perf: %s: %s\n", what, SCIGetErrorString(err));
        std::exit(3);
    }
}

std::string g_fabric;

pid_t spawn(std::uint32_t node, const std::function<int()>& body) {
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setenv("DIS_FABRIC", g_fabric.c_str(), 1);
        ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
        int rc = body();
        std::fflush(stdout);
        ::_exit(rc);
    }
    return pid;
}

int reap(pid_t pid) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

sci_desc_t open_sisci() {
    sci_error_t err;
    SCIInitialize(0, &err);
    check(err, "SCIInitialize");
    sci_desc_t sd;
    SCIOpen(&sd, 0, &err);
    check(err, "SCIOpen");
    return sd;
}

// One-way latency from a ping-pong of two 64-bit words between two processes: `a` writes
// w[0], `b` answers in w[1]; half the median round trip.
constexpr int k_rounds = 20000;

// Both measurements pin the two sides to different CPUs, so they compare like with like.
void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % static_cast<int>(std::thread::hardware_concurrency()), &set);
    ::sched_setaffinity(0, sizeof(set), &set);
}

double pingpong_side_a(volatile std::uint64_t* w) {
    pin(0);
    std::vector<double> rtt;
    rtt.reserve(k_rounds);
    for (std::uint64_t i = 1; i <= k_rounds; ++i) {
        double t0 = now_us();
        w[0] = i;
        while (w[1] != i) {
        }
        rtt.push_back(now_us() - t0);
    }
    return median(rtt) / 2;
}

void pingpong_side_b(volatile std::uint64_t* w) {
    pin(1);
    for (std::uint64_t i = 1; i <= k_rounds; ++i) {
        while (w[0] != i) {
        }
        w[1] = i;
    }
}

double raw_pio() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    auto* w = static_cast<volatile std::uint64_t*>(p);
    w[0] = 0;
    w[1] = 0;
    pid_t b = ::fork();
    if (b == 0) {
        pingpong_side_b(w);
        ::_exit(0);
    }
    // Side a in a child too, so this process stays unpinned for the later measurements.
    int pr[2];
    [[maybe_unused]] int rc = ::pipe(pr);
    pid_t a = ::fork();
    if (a == 0) {
        double r = pingpong_side_a(w);
        [[maybe_unused]] auto n = ::write(pr[1], &r, sizeof(r));
        ::_exit(0);
    }
    reap(a);
    double one_way = 0;
    [[maybe_unused]] auto n = ::read(pr[0], &one_way, sizeof(one_way));
    reap(b);
    ::munmap(p, 4096);
    return one_way;
}

// Node 8 owns segment 1; a process of node 4 maps it remotely and plays side a.
double sisci_pio() {
    int ready[2];
    [[maybe_unused]] int rc = ::pipe(ready);
    pid_t owner = spawn(8, [&] {
        sci_desc_t sd = open_sisci();
        sci_error_t err;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, 1, 4096, nullptr, nullptr, 0, &err);
        check(err, "SCICreateSegment");
        SCIPrepareSegment(seg, 0, 0, &err);
        sci_map_t map;
        auto* w = static_cast<volatile std::uint64_t*>(
            SCIMapLocalSegment(seg, &map, 0, 4096, nullptr, 0, &err));
        w[0] = 0;
        w[1] = 0;
        SCISetSegmentAvailable(seg, 0, 0, &err);
        char c = 1;
        [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
        pingpong_side_b(w);
        return 0;
    });
    char c;
    [[maybe_unused]] auto n = ::read(ready[0], &c, 1);
    double result = 0;
    int pr[2];
    [[maybe_unused]] int rc2 = ::pipe(pr);
    pid_t user = spawn(4, [&] {
        sci_desc_t sd = open_sisci();
        sci_error_t err;
        sci_remote_segment_t rs;
        SCIConnectSegment(sd, &rs, 8, 1, 0, nullptr, nullptr, 5000, 0, &err);
        check(err, "SCIConnectSegment");
        sci_map_t map;
        auto* w = static_cast<volatile std::uint64_t*>(
            SCIMapRemoteSegment(rs, &map, 0, 4096, nullptr, 0, &err));
        check(err, "SCIMapRemoteSegment");
        double r = pingpong_side_a(w);
        [[maybe_unused]] auto m = ::write(pr[1], &r, sizeof(r));
        return 0;
    });
    reap(user);
    [[maybe_unused]] auto m = ::read(pr[0], &result, sizeof(result));
    ::kill(owner, SIGKILL);
    reap(owner);
    return result;
}

// Bandwidths in decimal GB/s of `raw()` and `fab()` moving `size` bytes: the two alternate, so
// that load changes on a shared machine hit both alike; medians of the repetitions.
std::pair<double, double> compare(std::size_t size, const std::function<void()>& raw,
                                  const std::function<void()>& fab) {
    int reps = static_cast<int>(std::max<std::size_t>(64, (256u << 20) / size));
    reps = std::min(reps, 2000);
    raw();
    fab();
    std::vector<double> a;
    std::vector<double> b;
    for (int i = 0; i < reps; ++i) {
        double t0 = now_us();
        raw();
        double t1 = now_us();
        fab();
        double t2 = now_us();
        a.push_back(static_cast<double>(size) / ((t1 - t0) * 1000.0));
        b.push_back(static_cast<double>(size) / ((t2 - t1) * 1000.0));
    }
    return {median(a), median(b)};
}

struct Pair {
    sci_desc_t sd;
    sci_local_segment_t local;
    sci_remote_segment_t remote;
    sci_map_t lmap;
    sci_map_t rmap;
    void* lp;
    void* rp;
};

// In a node-4 process: a local segment and a connection to node 8's segment 2 (both 16 MiB).
Pair setup_pair(std::size_t size) {
    Pair p{};
    p.sd = open_sisci();
    sci_error_t err;
    SCICreateSegment(p.sd, &p.local, 3, size, nullptr, nullptr, 0, &err);
    check(err, "SCICreateSegment local");
    SCIPrepareSegment(p.local, 0, 0, &err);
    p.lp = const_cast<void*>(SCIMapLocalSegment(p.local, &p.lmap, 0, size, nullptr, 0, &err));
    check(err, "SCIMapLocalSegment");
    SCIConnectSegment(p.sd, &p.remote, 8, 2, 0, nullptr, nullptr, 5000, 0, &err);
    check(err, "SCIConnectSegment");
    p.rp = const_cast<void*>(SCIMapRemoteSegment(p.remote, &p.rmap, 0, size, nullptr, 0, &err));
    check(err, "SCIMapRemoteSegment");
    std::memset(p.lp, 1, size);
    std::memset(p.rp, 2, size);
    return p;
}

void bandwidth_and_dma() {
    const std::size_t max = 16u << 20;
    int ready[2];
    [[maybe_unused]] int rc = ::pipe(ready);
    pid_t owner = spawn(8, [&] {
        sci_desc_t sd = open_sisci();
        sci_error_t err;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, 2, max, nullptr, nullptr, 0, &err);
        check(err, "SCICreateSegment");
        SCIPrepareSegment(seg, 0, 0, &err);
        SCISetSegmentAvailable(seg, 0, 0, &err);
        char c = 1;
        [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
        ::pause();
        return 0;
    });
    char c;
    [[maybe_unused]] auto n = ::read(ready[0], &c, 1);
    pid_t user = spawn(4, [&] {
        Pair p = setup_pair(max);
        sci_error_t err;
        // Raw baseline buffers, pre-faulted.
        std::vector<char> src(max, 3);
        std::vector<char> dst(max, 4);
        sci_sequence_t seq;
        SCICreateMapSequence(p.rmap, &seq, 0, &err);
        for (std::size_t size = 64 * 1024; size <= max; size *= 4) {
            auto [raw, sci] = compare(
                size, [&] { std::memcpy(dst.data(), src.data(), size); },
                [&] { SCIMemCpy(seq, src.data(), p.rmap, 0, size, 0, &err); });
            check(err, "SCIMemCpy");
            std::printf("memcpy_bw  size=%-9zu memcpy=%6.2f GB/s  SCIMemCpy=%6.2f GB/s  "
                        "ratio=%.2f (goal >= 0.90)\n",
                        size, raw, sci, sci / raw);
        }
        sci_dma_queue_t dq;
        SCICreateDMAQueue(p.sd, &dq, 0, 16, 0, &err);
        check(err, "SCICreateDMAQueue");
        for (std::size_t size = 1u << 20; size <= max; size *= 2) {
            auto [raw, dma] = compare(
                size, [&] { std::memcpy(dst.data(), src.data(), size); },
                [&] {
                    SCIStartDmaTransfer(dq, p.local, p.remote, 0, size, 0, nullptr, nullptr, 0,
                                        &err);
                    SCIWaitForDMAQueue(dq, SCI_INFINITE_TIMEOUT, 0, &err);
                });
            check(err, "DMA");
            std::printf("dma_bw     size=%-9zu memcpy=%6.2f GB/s  DMA=%6.2f GB/s  "
                        "ratio=%.2f (goal >= 0.80)\n",
                        size, raw, dma, dma / raw);
        }
        // Payload check: the last DMA's bytes arrived.
        std::memset(p.lp, 0x5C, 4096);
        SCIStartDmaTransfer(dq, p.local, p.remote, 0, 4096, 0, nullptr, nullptr, SCI_FLAG_DMA_WAIT,
                            &err);
        if (static_cast<unsigned char*>(p.rp)[4095] != 0x5C) {
            std::fprintf(stderr, "fabric_perf: DMA payload did not arrive\n");
            return 4;
        }
        // 64-byte post-to-completion latency.
        for (int poll_mode = 0; poll_mode < 2; ++poll_mode) {
            std::vector<double> lat;
            for (int i = 0; i < 20000; ++i) {
                double t0 = now_us();
                SCIStartDmaTransfer(dq, p.local, p.remote, 0, 64, 0, nullptr, nullptr, 0, &err);
                if (poll_mode != 0) {
                    while (SCIDMAQueueState(dq) == SCI_DMAQUEUE_POSTED) {
                    }
                } else {
                    SCIWaitForDMAQueue(dq, SCI_INFINITE_TIMEOUT, 0, &err);
                }
                lat.push_back(now_us() - t0);
                if (i % 1000 == 999) {
                    // Let the engine go to sleep now and then, as between real bursts.
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
            }
            std::printf("dma_latency 64 B %s mode: median %.2f us (goal <= %s us)\n",
                        poll_mode != 0 ? "poll" : "wait", median(lat), poll_mode != 0 ? "2" : "10");
        }
        return 0;
    });
    reap(user);
    ::kill(owner, SIGKILL);
    reap(owner);
}

double raw_irq() {
    int ab = ::eventfd(0, 0);
    int ba = ::eventfd(0, 0);
    const int rounds = 5000;
    pid_t b = ::fork();
    if (b == 0) {
        std::uint64_t v;
        for (int i = 0; i < rounds; ++i) {
            [[maybe_unused]] auto r = ::read(ab, &v, 8);
            v = 1;
            [[maybe_unused]] auto w = ::write(ba, &v, 8);
        }
        ::_exit(0);
    }
    std::vector<double> rtt;
    for (int i = 0; i < rounds; ++i) {
        std::uint64_t v = 1;
        double t0 = now_us();
        [[maybe_unused]] auto w = ::write(ab, &v, 8);
        [[maybe_unused]] auto r = ::read(ba, &v, 8);
        rtt.push_back(now_us() - t0);
    }
    reap(b);
    ::close(ab);
    ::close(ba);
    return median(rtt) / 2;
}

double sisci_irq() {
    const int rounds = 5000;
    int ready[2];
    [[maybe_unused]] int rc = ::pipe(ready);
    pid_t b = spawn(8, [&] {
        sci_desc_t sd = open_sisci();
        sci_error_t err;
        sci_local_interrupt_t mine;
        unsigned no = 20;
        SCICreateInterrupt(sd, &mine, 0, &no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &err);
        check(err, "SCICreateInterrupt");
        char c = 1;
        [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
        sci_remote_interrupt_t peer;
        SCIConnectInterrupt(sd, &peer, 4, 0, 10, 10000, 0, &err);
        check(err, "SCIConnectInterrupt");
        for (int i = 0; i < rounds; ++i) {
            SCIWaitForInterrupt(mine, SCI_INFINITE_TIMEOUT, 0, &err);
            SCITriggerInterrupt(peer, 0, &err);
        }
        return 0;
    });
    char c;
    [[maybe_unused]] auto n = ::read(ready[0], &c, 1);
    int pr[2];
    [[maybe_unused]] int rc2 = ::pipe(pr);
    pid_t a = spawn(4, [&] {
        sci_desc_t sd = open_sisci();
        sci_error_t err;
        sci_local_interrupt_t mine;
        unsigned no = 10;
        SCICreateInterrupt(sd, &mine, 0, &no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &err);
        check(err, "SCICreateInterrupt");
        sci_remote_interrupt_t peer;
        SCIConnectInterrupt(sd, &peer, 8, 0, 20, 10000, 0, &err);
        check(err, "SCIConnectInterrupt");
        std::vector<double> rtt;
        for (int i = 0; i < rounds; ++i) {
            double t0 = now_us();
            SCITriggerInterrupt(peer, 0, &err);
            SCIWaitForInterrupt(mine, SCI_INFINITE_TIMEOUT, 0, &err);
            rtt.push_back(now_us() - t0);
        }
        double r = median(rtt) / 2;
        [[maybe_unused]] auto m = ::write(pr[1], &r, sizeof(r));
        return 0;
    });
    reap(a);
    reap(b);
    double r = 0;
    [[maybe_unused]] auto m = ::read(pr[0], &r, sizeof(r));
    return r;
}

} // namespace

int main(int argc, char** argv) {
    std::string disd = argc > 1 ? argv[1] : DIS_DISD_PATH;
    char tmpl[] = "/tmp/dis-perf-XXXXXX";
    g_fabric = ::mkdtemp(tmpl);
    std::vector<pid_t> daemons;
    for (const char* node : {"4", "8"}) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::execl(disd.c_str(), disd.c_str(), "--node-id", node, "--fabric", g_fabric.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        daemons.push_back(pid);
    }
    for (int i = 0; i < 500; ++i) {
        if (std::filesystem::exists(g_fabric + "/node-4.sock") &&
            std::filesystem::exists(g_fabric + "/node-8.sock")) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    double raw = raw_pio();
    double sci = sisci_pio();
    std::printf("pio_latency raw store %.3f us, remote segment store %.3f us, ratio=%.2f "
                "(goal <= 1.25)\n",
                raw, sci, sci / raw);
    bandwidth_and_dma();
    double rawi = raw_irq();
    double scii = sisci_irq();
    std::printf("irq_latency raw eventfd %.2f us, SCITriggerInterrupt->SCIWaitForInterrupt "
                "%.2f us, ratio=%.2f (goal <= 1.30)\n",
                rawi, scii, scii / rawi);

    for (pid_t d : daemons) {
        ::kill(d, SIGTERM);
        reap(d);
    }
    std::filesystem::remove_all(g_fabric);
    return 0;
}
