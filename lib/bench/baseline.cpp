// The yardsticks: the host's own path for each fabric test, measured with the same protocol.
#include "dis/bench.hpp"
#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include "pingpong.hpp"
#include "process.hpp"
#include "rounds.hpp"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace dis::bench {

using detail::Clock;

namespace {

// Shared anonymous memory, inherited by forked children.
class SharedMemory {
public:
    explicit SharedMemory(std::size_t size) : m_size(size) {
        m_addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m_addr == MAP_FAILED)
            throw os_error("mmap shared memory", errno);
    }
    ~SharedMemory() { munmap(m_addr, m_size); }
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    unsigned char* bytes() const { return static_cast<unsigned char*>(m_addr); }

private:
    void* m_addr;
    std::size_t m_size;
};

// The peer's report, written into shared memory before it exits.
struct PeerReport {
    std::uint32_t stop;
    std::uint32_t done;
    std::uint32_t failed;
    std::uint32_t messages;
    std::uint64_t sent_sum;
    std::uint64_t received_sum;
};

constexpr auto k_baseline_timeout = std::chrono::milliseconds(10000);

} // namespace

LatencyStats baseline_store_pingpong(std::uint64_t size, std::uint64_t iterations,
                                     std::uint64_t warmup, int cpu) {
    return compute_latency_stats(detail::store_pingpong_samples(size, iterations, warmup, cpu));
}

std::vector<double> detail::store_pingpong_samples(std::uint64_t size, std::uint64_t iterations,
                                                   std::uint64_t warmup, int cpu) {
    const std::size_t window = detail::pingpong_window(size);
    // [report][to child window][to parent window]
    SharedMemory shm(4096 + 2 * window);
    auto* report = new (shm.bytes()) PeerReport{};
    unsigned char* to_child = shm.bytes() + 4096;
    unsigned char* to_parent = to_child + window;
    detail::Messenger parent_msgs(size, 1);
    detail::Messenger child_msgs(size, 2);

    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        throw os_error("fork", errno);
    if (pid == 0) {
        detail::die_with_parent(parent);
        try {
            detail::pin_to_cpu(cpu);
            auto stop = [report] { return detail::load_acquire(&report->stop) != 0; };
            auto r =
                detail::run_echo(child_msgs, to_parent, to_child, k_baseline_timeout, stop, [] {});
            report->messages = r.messages;
            report->sent_sum = r.sent_sum;
            report->received_sum = r.received_sum;
        } catch (...) {
            report->failed = 1;
        }
        detail::store_release(&report->done, 1);
        _exit(0);
    }
    detail::ChildProcess child(pid);
    auto r = detail::run_initiator(parent_msgs, to_child, to_parent, warmup, iterations, 0,
                                   k_baseline_timeout, [] {});
    detail::store_release(&report->stop, 1);
    child.wait(k_baseline_timeout);
    if (!detail::load_acquire(&report->done) || report->failed)
        throw Error(ErrorKind::os, "the baseline ping-pong peer failed (" + child.describe() + ")");
    if (report->messages != r.messages || report->received_sum != r.sent_sum ||
        report->sent_sum != r.received_sum)
        throw Error(ErrorKind::check_failed,
                    "baseline store ping-pong payload mismatch at size " + std::to_string(size));
    return std::move(r.samples_us);
}

MemcpyBaseline::MemcpyBaseline(std::uint64_t size)
    : m_size(size), m_src{std::vector<unsigned char>(size), std::vector<unsigned char>(size)},
      m_dst_bytes((size + 4095) / 4096 * 4096) {
    // Like the fabric tests: two private source buffers used alternately (so a stale copy is
    // detectable there, and the cache footprint is the same here), a page-aligned shared
    // destination.
    fill_pattern(m_src[0].data(), size, 7);
    fill_pattern(m_src[1].data(), size, 8);
    m_dst = mmap(nullptr, m_dst_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m_dst == MAP_FAILED)
        throw os_error("mmap shared memory", errno);
    std::memset(m_dst, 0, size); // fault the pages in now, not on the clock
}

MemcpyBaseline::~MemcpyBaseline() {
    munmap(m_dst, m_dst_bytes);
}

Bandwidth MemcpyBaseline::run(std::uint64_t iterations, std::uint64_t warmup) {
    if (iterations == 0)
        throw Error(ErrorKind::invalid_input, "memcpy baseline needs at least one iteration");
    auto* dst = static_cast<unsigned char*>(m_dst);
    for (std::uint64_t n = 0; n < warmup; ++n, ++m_next)
        std::memcpy(dst, m_src[m_next & 1].data(), m_size);
    auto t0 = Clock::now();
    for (std::uint64_t n = 0; n < iterations; ++n, ++m_next) {
        std::memcpy(dst, m_src[m_next & 1].data(), m_size);
        // Keep the compiler from merging or dropping the copies.
        asm volatile("" : : "r"(dst) : "memory");
    }
    auto t1 = Clock::now();
    if (checksum(dst, m_size) != checksum(m_src[(m_next - 1) & 1].data(), m_size))
        throw Error(ErrorKind::check_failed, "memcpy baseline copied wrong data");
    return compute_bandwidth(m_size, iterations, std::chrono::duration<double>(t1 - t0).count());
}

Bandwidth baseline_memcpy(std::uint64_t size, std::uint64_t iterations, std::uint64_t warmup) {
    return MemcpyBaseline(size).run(iterations, warmup);
}

// The peer: a forked child that answers every ping with a pong until told to stop. A
// watchdog thread reaps it; if it dies early the watchdog wakes the waiting parent with a
// value no ordinary wake-up carries, so a vanished peer is an error, not a hang. The timed
// path stays a plain write and a blocking read.
struct EventfdBaseline::Peer {
    UniqueFd ping{eventfd(0, EFD_CLOEXEC)};
    UniqueFd pong{eventfd(0, EFD_CLOEXEC)};
    SharedMemory shm{4096};
    PeerReport* report = nullptr;
    pid_t pid = -1;
    std::thread watchdog;
    std::uint64_t sent = 0;
    bool finished = false;

    static constexpr std::uint64_t k_peer_died = 1ull << 40;

    void stop() {
        if (finished)
            return;
        finished = true;
        detail::store_release(&report->stop, 1);
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = write(ping.get(), &one, 8);
        if (watchdog.joinable())
            watchdog.join();
    }
};

EventfdBaseline::EventfdBaseline(int cpu) : m_peer(std::make_unique<Peer>()) {
    Peer& p = *m_peer;
    if (p.ping.get() < 0 || p.pong.get() < 0)
        throw os_error("eventfd", errno);
    p.report = new (p.shm.bytes()) PeerReport{};
    const pid_t parent = getpid();
    p.pid = fork();
    if (p.pid < 0)
        throw os_error("fork", errno);
    if (p.pid == 0) {
        detail::die_with_parent(parent);
        PeerReport* report = p.report;
        try {
            detail::pin_to_cpu(cpu);
        } catch (...) {
            report->failed = 1;
        }
        for (;;) {
            std::uint64_t v = 0;
            if (read(p.ping.get(), &v, 8) != 8) {
                if (errno == EINTR)
                    continue;
                report->failed = 1;
                break;
            }
            if (detail::load_acquire(&report->stop))
                break;
            ++report->messages;
            std::uint64_t one = 1;
            if (write(p.pong.get(), &one, 8) != 8) {
                report->failed = 1;
                break;
            }
        }
        detail::store_release(&report->done, 1);
        _exit(0);
    }
    p.watchdog = std::thread([&p] {
        int status = 0;
        while (waitpid(p.pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (!detail::load_acquire(&p.report->stop)) {
            std::uint64_t v = Peer::k_peer_died;
            [[maybe_unused]] auto n = write(p.pong.get(), &v, 8);
        }
    });
}

EventfdBaseline::~EventfdBaseline() {
    m_peer->stop();
}

void EventfdBaseline::run(std::uint64_t iterations, std::uint64_t warmup,
                          std::vector<double>& samples_us) {
    Peer& p = *m_peer;
    if (p.finished)
        throw Error(ErrorKind::invalid_input, "eventfd baseline already finished");
    for (std::uint64_t i = 0; i < warmup + iterations; ++i) {
        std::uint64_t one = 1, v = 0;
        auto t0 = Clock::now();
        if (write(p.ping.get(), &one, 8) != 8)
            throw os_error("eventfd write", errno);
        ssize_t n;
        while ((n = read(p.pong.get(), &v, 8)) < 0 && errno == EINTR) {
        }
        auto t1 = Clock::now();
        if (n != 8 || v != 1)
            throw Error(ErrorKind::os, "the eventfd baseline peer died");
        ++p.sent;
        if (i >= warmup)
            samples_us.push_back(detail::elapsed_us(t0, t1) / 2);
    }
}

void EventfdBaseline::finish() {
    Peer& p = *m_peer;
    p.stop();
    if (p.report->failed || !detail::load_acquire(&p.report->done))
        throw Error(ErrorKind::os, "the eventfd baseline peer failed");
    if (p.report->messages != p.sent)
        throw Error(ErrorKind::check_failed,
                    "eventfd baseline lost wake-ups: " + std::to_string(p.report->messages) +
                        " of " + std::to_string(p.sent));
}

LatencyStats baseline_eventfd_pingpong(std::uint64_t iterations, std::uint64_t warmup, int cpu) {
    EventfdBaseline baseline(cpu);
    std::vector<double> samples;
    samples.reserve(iterations);
    baseline.run(iterations, warmup, samples);
    baseline.finish();
    return compute_latency_stats(std::move(samples));
}

} // namespace dis::bench
