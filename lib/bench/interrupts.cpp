// Interrupt tests: the round trip of plain and data interrupts, interleaved with the eventfd
// wake-up yardstick in rounds (where the kernel's placement and the host's load decide a
// wake-up's cost, both must see the same).
#include "families.hpp"
#include "rounds.hpp"
#include "watchdog.hpp"

namespace dis::bench::detail {

namespace {

constexpr const char* k_interrupt_wait =
    "SCIWaitForInterrupt without a timeout: both sides sleep in the kernel until woken";

} // namespace

void intr_latency(Session& s, const BenchOptions& o, Report& rep) {
    rep.completion = k_interrupt_wait;
    sci::LocalInterrupt mine(s.sd(), o.adapter);
    const auto theirs_no = s.begin_phase(Op::ping_intr, 0, mine.number());
    const double remote0 = s.responder_cpu_s();
    EventfdRounds yardstick(o);
    std::vector<double> samples;
    std::uint64_t total = 0;
    CpuMeter cpu;
    {
        sci::RemoteInterrupt theirs(s.sd(), o.remote_node, o.adapter,
                                    static_cast<std::uint32_t>(theirs_no), o.timeout);
        // The measured wait blocks without a timeout, like the eventfd baseline's read; a
        // loopback connection to our own interrupt lets the watchdog end a hung wait.
        sci::RemoteInterrupt self(s.sd(), s.local_node(), o.adapter, mine.number(), o.timeout);
        Watchdog dog(o.timeout, [&] { self.trigger(); });
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = latency_round_options(o, r, rounds);
            cpu.start();
            auto loop = timed_loop(ro, [&](std::uint64_t i) {
                auto t0 = Clock::now();
                theirs.trigger();
                mine.wait(SCI_INFINITE_TIMEOUT);
                auto t1 = Clock::now();
                if (dog.fired())
                    throw Error(ErrorKind::timeout,
                                "no interrupt back from node " + std::to_string(o.remote_node));
                dog.progress();
                if (i >= ro.warmup)
                    samples.push_back(elapsed_us(t0, t1) / 2);
            });
            cpu.stop();
            total += loop.last + 1;
            yardstick.round(ro, loop.iterations);
            dog.progress();
        }
        s.request_stop();
        theirs.trigger(); // wakes the responder's blocking wait to see the stop
    }
    auto remote = s.end_phase();
    // The responder sleeps while the yardstick runs, so its CPU time is the phase's.
    auto result = latency_result(0, "interrupt", Wait::sleep, std::move(samples),
                                 {cpu.seconds(), s.responder_cpu_s() - remote0, "responder"});
    set_payload(result, count_check(total, remote.messages),
                "the responder saw " + std::to_string(remote.messages) + " of " +
                    std::to_string(total) + " interrupts");
    rep.results.push_back(std::move(result));
    yardstick.finish(rep);
}

void data_intr_latency(Session& s, const BenchOptions& o, Report& rep) {
    rep.completion = k_interrupt_wait;
    EventfdRounds yardstick(o);
    for (auto size : o.sizes) {
        if (size > k_data_intr_capacity)
            throw Error(ErrorKind::invalid_input,
                        "data interrupts carry at most " + std::to_string(k_data_intr_capacity) +
                            " bytes; size " + std::to_string(size) + " is too large");
        sci::LocalDataInterrupt mine(s.sd(), o.adapter);
        const auto theirs_no = s.begin_phase(Op::ping_data_intr, size, mine.number());
        const double remote0 = s.responder_cpu_s();
        std::vector<unsigned char> payload[2] = {std::vector<unsigned char>(size),
                                                 std::vector<unsigned char>(size)};
        fill_pattern(payload[0].data(), size, size * 2 + 1);
        fill_pattern(payload[1].data(), size, size * 2 + 2);
        const std::uint64_t sums[2] = {checksum(payload[0].data(), size),
                                       checksum(payload[1].data(), size)};
        std::vector<unsigned char> echo(k_data_intr_capacity);
        std::vector<double> samples;
        samples.reserve(o.duration_s > 0 ? 1 << 16 : o.iterations);
        std::uint64_t sent_sum = 0, echo_sum = 0, total = 0;
        CpuMeter cpu;
        {
            sci::RemoteDataInterrupt theirs(s.sd(), o.remote_node, o.adapter,
                                            static_cast<std::uint32_t>(theirs_no), o.timeout);
            sci::RemoteDataInterrupt self(s.sd(), s.local_node(), o.adapter, mine.number(),
                                          o.timeout);
            const std::uint32_t wake_word = 0;
            Watchdog dog(o.timeout, [&] { self.trigger(&wake_word, sizeof wake_word); });
            const auto rounds = rounds_for(o);
            for (std::uint64_t r = 0; r < rounds; ++r) {
                const auto ro = latency_round_options(o, r, rounds);
                cpu.start();
                auto loop = timed_loop(ro, [&](std::uint64_t i) {
                    const std::uint64_t k = total + i; // alternates across rounds
                    unsigned int length = static_cast<unsigned int>(echo.size());
                    auto t0 = Clock::now();
                    theirs.trigger(payload[k & 1].data(), static_cast<unsigned int>(size));
                    mine.wait(echo.data(), &length, SCI_INFINITE_TIMEOUT);
                    auto t1 = Clock::now();
                    if (dog.fired())
                        throw Error(ErrorKind::timeout, "no data interrupt back from node " +
                                                            std::to_string(o.remote_node));
                    dog.progress();
                    if (i >= ro.warmup)
                        samples.push_back(elapsed_us(t0, t1) / 2);
                    sent_sum = fold(sent_sum, sums[k & 1]);
                    echo_sum = fold(echo_sum, checksum(echo.data(), length));
                });
                cpu.stop();
                total += loop.last + 1;
                // One yardstick for every size: wake-ups do not depend on the payload.
                if (size == o.sizes.front())
                    yardstick.round(ro, loop.iterations);
                dog.progress();
            }
            s.request_stop();
            theirs.trigger(&wake_word, sizeof wake_word); // wakes the responder to see the stop
        }
        auto remote = s.end_phase();
        auto result = latency_result(size, "data-interrupt", Wait::sleep, std::move(samples),
                                     {cpu.seconds(), s.responder_cpu_s() - remote0, "responder"});
        if (count_check(total, remote.messages) == Payload::failed)
            set_payload(result, Payload::failed,
                        "the responder saw " + std::to_string(remote.messages) + " of " +
                            std::to_string(total) + " data interrupts");
        else if (checksum_check(sent_sum, remote.received_sum) == Payload::failed)
            set_payload(result, Payload::failed,
                        "data interrupts to the responder arrived corrupted");
        else if (checksum_check(sent_sum, echo_sum) == Payload::failed)
            set_payload(result, Payload::failed, "echoed data interrupts arrived corrupted");
        else
            set_payload(result, Payload::verified,
                        "checksums of every data interrupt and its echo match");
        rep.results.push_back(std::move(result));
    }
    yardstick.finish(rep);
}

} // namespace dis::bench::detail
