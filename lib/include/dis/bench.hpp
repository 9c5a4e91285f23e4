// Fabric benchmarks: PIO, DMA and interrupt latency and bandwidth over the SISCI API, their
// statistics, and the host yardsticks ("baselines") measured in the same run.
//
// The data path uses the SISCI API only, so the same code runs on the software fabric and on
// a vendor fabric. The remote side is `serve()` (dis-tool bench serve) on the remote node; the
// two sides coordinate through SISCI segments and interrupts, never through a side channel.
#pragma once

#include "dis/output.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dis::bench {

enum class TestKind {
    pio_latency,
    pio_bw,
    dma_bw,
    dma_latency,
    intr_latency,
    data_intr_latency,
    device_cycle, // SmartIO: borrow + connect BAR + map + first register read + return
    device_copy,  // SmartIO: epf-test COPY with FLAG_USE_DMA against memcpy
};

const char* to_string(TestKind test) noexcept;
// Throws dis::Error(invalid_input) for an unknown name.
TestKind parse_test(const std::string& name);
bool is_latency_test(TestKind test) noexcept;
// The test names in CLI order.
std::vector<std::string> test_names();

// ---- sizes ----------------------------------------------------------------------------------

// "64", "4K", "4k", "2M", "1G" (binary multiples: K = 1024). Throws invalid_input.
std::uint64_t parse_size(const std::string& text);
// A comma-separated list of sizes and ranges; "A..B" is every power of two from A to B
// (A itself first if it is not a power of two). Sorted, duplicates removed. Throws
// invalid_input on an empty list, a zero size or a range whose end is below its start.
std::vector<std::uint64_t> parse_sizes(const std::string& text);
// 4096 -> "4K", 3000 -> "3000".
std::string format_size(std::uint64_t bytes);

// ---- statistics -----------------------------------------------------------------------------

struct LatencyStats {
    std::uint64_t iterations = 0;
    double min_us = 0;
    double max_us = 0;
    double median_us = 0; // perftest's "typical"
    double avg_us = 0;
    double stdev_us = 0; // sample standard deviation (n - 1); 0 for one sample
    double p99_us = 0;   // nearest-rank percentiles
    double p999_us = 0;
};

// Throws invalid_input on an empty sample set.
LatencyStats compute_latency_stats(std::vector<double> samples_us);
// Nearest-rank percentile (0 < p <= 100) of an ascending, non-empty sample set.
double percentile(const std::vector<double>& sorted, double p);

struct Bandwidth {
    std::uint64_t iterations = 0;
    double seconds = 0;
    double bandwidth_gbps = 0;  // decimal GB/s (1e9 bytes per second)
    double bandwidth_mibps = 0; // MiB/s (2^20 bytes per second)
    double msg_rate = 0;        // messages per second
};

// Throws invalid_input when seconds <= 0.
Bandwidth compute_bandwidth(std::uint64_t size, std::uint64_t iterations, double seconds);

// ---- report model ---------------------------------------------------------------------------

// What the waiting side of a test does until its answer or completion is there. A ratio is
// only given against a yardstick whose side waits the same way (see yardstick_wait).
enum class Wait {
    none,            // bandwidth: nothing waited for
    spin,            // polls memory or a queue state on a CPU of its own
    sleep,           // blocks in the kernel until woken
    spin_then_sleep, // spins for a while, then blocks (SCIWaitForDMAQueue on libsisci)
};
const char* to_string(Wait wait) noexcept;
// The yardstick kind a result of `wait` is compared with: a spin-then-sleep wait completes in
// its spinning phase whenever the answer is quick, so it is held to the spinning yardstick.
Wait yardstick_wait(Wait wait) noexcept;

// How a test's payload was checked, as found by the check itself.
enum class Payload {
    unchecked, // nothing was checked
    verified,  // checksums of what was sent and what arrived matched
    counted,   // every message arrived (counted; it carries no payload to checksum)
    failed,    // a checksum or a count did not match
};
const char* to_string(Payload payload) noexcept;
// The outcome of comparing what arrived with what was expected: verified or failed.
Payload checksum_check(std::uint64_t expected, std::uint64_t got) noexcept;
// The outcome of counting messages: counted or failed.
Payload count_check(std::uint64_t expected, std::uint64_t got) noexcept;

// CPU time the two sides spent during a latency result's measured loops.
struct CpuTime {
    double local_s = 0;             // this process (all its threads)
    std::optional<double> remote_s; // the other side; nullopt when it cannot be read
    std::string remote;             // who the other side is, e.g. "responder", "disd node 4"
};

struct Result {
    std::uint64_t size = 0;
    std::string method; // how the bytes moved, e.g. "scimemcpy", "store", "memcpy", "eventfd"
    Wait wait = Wait::none;
    std::optional<LatencyStats> latency;
    std::optional<Bandwidth> bandwidth;
    // Latency: median / the yardstick's median round (1.0 = as fast as the host path, higher
    // is slower). Bandwidth: bandwidth / the yardstick's median round (lower is slower). Only
    // against a yardstick of the matching kind (yardstick_wait).
    std::optional<double> baseline_ratio;
    std::optional<double> baseline_ratio_best; // the same against the yardstick's best round
    Payload payload = Payload::unchecked;
    std::string payload_detail; // what was checked, or what did not match
    std::optional<CpuTime> cpu; // latency results
    // Yardsticks only: the per-round figure (median us, or GB/s) and when the rounds ran,
    // "interleaved" with the fabric rounds or "after" them.
    std::vector<double> rounds;
    std::string schedule;
};

// A yardstick's best round (lowest latency, highest bandwidth) and its median round; 0 when
// it has no rounds.
double best_round(const Result& yardstick);
double median_round(const Result& yardstick);

// Which CPUs the two sides were pinned to.
struct Pinning {
    int local_cpu = -1;      // this process (-1: not pinned)
    int remote_cpu = -1;     // the started responder and the yardsticks' peer processes
    bool by_default = false; // chosen by bench, not given with --cpu/--remote-cpu
    std::string warning;     // why the two sides could not be given CPUs of their own
};
// The software fabric's default: the two sides on two different CPUs of `allowed` (this
// process's affinity), explicit choices (>= 0) kept; with `no_pin` only explicit choices.
// Fewer than two CPUs: nothing is chosen and `warning` says so.
Pinning plan_pinning(int cpu, int remote_cpu, bool no_pin, const std::vector<int>& allowed);
// This process's allowed CPUs (sched_getaffinity), ascending.
std::vector<int> allowed_cpus();

struct Report {
    TestKind test = TestKind::pio_latency;
    std::uint32_t local_node = 0;
    std::uint32_t remote_node = 0;
    std::string mode;       // "push"/"pull", "write"/"read", "wait"/"sleep"/"poll"/"callback"
    std::string completion; // how the measuring side waits, in words
    std::vector<Result> results;
    std::vector<Result> baseline;
    std::optional<Pinning> pinning;
};

// Sets each result's ratios against the yardstick of its size (or the only one) whose kind
// matches (yardstick_wait); results without one get none.
void attach_ratios(Report& report);
// One line derived from the results' payload checks ("payload verified: ...", "payload
// counted: ...", "payload check FAILED: ...").
std::string payload_summary(const Report& report);

// The fixed JSON schema of dis-tool-bench(1).
nlohmann::json to_json(const Report& report);
// One row per result with its baseline and ratio (the text and CSV renderings).
output::Table to_table(const Report& report);

// ---- payload patterns -----------------------------------------------------------------------

// Deterministic payload for `seed`; both sides of a test can generate and check it.
void fill_pattern(void* dst, std::size_t size, std::uint64_t seed);
// A position-dependent 64-bit checksum (not cryptographic; catches lost, stale or moved data).
std::uint64_t checksum(const void* data, std::size_t size);

// ---- baselines (the host's raw path; no fabric needed) --------------------------------------

// One-way latency of a store ping-pong between this process and a forked child through
// shared memory, using exactly the message protocol of pio-latency. `cpu` pins the child
// (-1: no pinning). Throws check_failed if a payload arrived corrupted.
LatencyStats baseline_store_pingpong(std::uint64_t size, std::uint64_t iterations,
                                     std::uint64_t warmup, int cpu = -1);
// memcpy bandwidth from two alternating private buffers (as pio-bw and dma-bw use them) into
// page-aligned shared memory.
Bandwidth baseline_memcpy(std::uint64_t size, std::uint64_t iterations, std::uint64_t warmup);

// The same yardstick kept across rounds: its buffers are allocated and filled once, so that a
// round interleaved with fabric rounds finds the caches as the fabric rounds do.
class MemcpyBaseline {
public:
    explicit MemcpyBaseline(std::uint64_t size);
    ~MemcpyBaseline();
    MemcpyBaseline(const MemcpyBaseline&) = delete;
    MemcpyBaseline& operator=(const MemcpyBaseline&) = delete;
    // `warmup` untimed copies, then `iterations` timed ones (at least one); checks the result.
    Bandwidth run(std::uint64_t iterations, std::uint64_t warmup);

private:
    std::uint64_t m_size;
    std::vector<unsigned char> m_src[2];
    void* m_dst = nullptr; // page-aligned shared mapping
    std::size_t m_dst_bytes = 0;
    std::uint64_t m_next = 0; // alternation index, continued across runs
};
// One-way wake-up latency between this process and a forked child through two eventfds.
LatencyStats baseline_eventfd_pingpong(std::uint64_t iterations, std::uint64_t warmup,
                                       int cpu = -1);

// The same yardstick kept across rounds: one peer process (pinned to `cpu`, -1: not pinned)
// answers every round, so that rounds interleaved with fabric rounds see the same load and
// the same CPUs. Throws dis::Error when the peer fails or loses a wake-up.
class EventfdBaseline {
public:
    explicit EventfdBaseline(int cpu = -1);
    ~EventfdBaseline(); // stops and reaps the peer
    EventfdBaseline(const EventfdBaseline&) = delete;
    EventfdBaseline& operator=(const EventfdBaseline&) = delete;
    // `warmup` untimed, then `iterations` timed round trips; appends one-way samples (us).
    void run(std::uint64_t iterations, std::uint64_t warmup, std::vector<double>& samples_us);
    // Stops the peer and checks that it answered every wake-up of every run.
    void finish();

private:
    struct Peer;
    std::unique_ptr<Peer> m_peer;
};

// ---- the fabric tests -----------------------------------------------------------------------

enum class DmaMode { wait, sleep, poll, callback };
const char* to_string(DmaMode mode) noexcept;
DmaMode parse_dma_mode(const std::string& name);

struct BenchOptions {
    TestKind test = TestKind::pio_latency;
    std::uint32_t remote_node = 0;
    std::uint32_t adapter = 0;
    std::vector<std::uint64_t> sizes;
    std::uint64_t iterations = 1000;
    std::uint64_t warmup = 100;
    double duration_s = 0;    // > 0: run each size this long instead of `iterations` times
    bool read = false;        // pio-bw: remote loads instead of stores
    bool pull = false;        // dma-bw: remote to local
    std::uint32_t vector = 0; // dma-bw: entries per vector transfer (0: plain transfers)
    DmaMode dma_mode = DmaMode::wait;
    bool baseline = true;
    int cpu = -1;        // pin this process
    int remote_cpu = -1; // pin the baseline's peer process
    // When not empty, the responder is started as this command (argv[0] a path) with
    // `responder_env` added to the environment, and stopped when the test ends.
    std::vector<std::string> responder_argv;
    std::vector<std::string> responder_env;
    std::chrono::milliseconds timeout{10000}; // per handshake and per message
    std::optional<std::uint32_t> device;      // device-cycle, device-copy: the fdid
};

// Runs one test against the responder on `remote_node`. Throws check_failed when a payload
// did not arrive intact (the results' payload fields say which), fabric_down/timeout when the
// responder is not there or stops answering, invalid_input for options the test cannot use.
Report run_test(const BenchOptions& options);

struct ServeOptions {
    std::uint32_t adapter = 0;
    bool once = false;                    // exit after the first client says goodbye
    std::chrono::seconds idle_timeout{0}; // exit after this long without a client (0: never)
    int cpu = -1;
};

// The responder. Returns when `once` and the client finished, or on the idle timeout
// (throws timeout then). A client that disappears mid-test is given up on after the
// per-message timeout and the responder waits for the next one.
void serve(const ServeOptions& options);

} // namespace dis::bench
