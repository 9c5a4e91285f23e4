// PIO tests: the store ping-pong through mapped segments and PIO bandwidth.
#include "families.hpp"
#include "rounds.hpp"

#include <cstring>

namespace dis::bench::detail {

void pio_latency(Session& s, const BenchOptions& o, Report& rep) {
    rep.completion = "both sides spin on the other's last message in their mapped segments";
    for (auto size : o.sizes) {
        Messenger messenger(size, 1);
        std::memset(s.local().bytes(), 0, pingpong_window(size));
        s.begin_phase(Op::ping_pio, size, 0);
        const double remote0 = s.responder_cpu_s(), local0 = process_cpu_s();
        auto r = run_initiator(messenger, s.data().bytes(), s.local().bytes(), o.warmup,
                               o.iterations, o.duration_s, o.timeout, flush);
        const double local_s = process_cpu_s() - local0;
        auto remote = s.end_phase();
        const auto n = r.samples_us.size();
        auto result = latency_result(size, "store", Wait::spin, std::move(r.samples_us),
                                     {local_s, s.responder_cpu_s() - remote0, "responder"});
        if (remote.messages != r.messages)
            set_payload(result, Payload::failed,
                        "the responder saw " + std::to_string(remote.messages) + " of " +
                            std::to_string(r.messages) + " messages");
        else if (checksum_check(r.sent_sum, remote.received_sum) == Payload::failed)
            set_payload(result, Payload::failed, "messages to the responder arrived corrupted");
        else if (checksum_check(remote.sent_sum, r.received_sum) == Payload::failed)
            set_payload(result, Payload::failed, "replies from the responder arrived corrupted");
        else
            set_payload(result, Payload::verified,
                        "checksums of every message and reply match on both sides");
        rep.results.push_back(std::move(result));
        if (o.baseline)
            rep.baseline.push_back(store_yardstick_after(o, size, n));
    }
}

void pio_bw(Session& s, const BenchOptions& o, Report& rep) {
    rep.mode = o.read ? "read" : "write";
    sci::MapSequence sequence(s.data().map());
    const std::string methods[2] = {"scimemcpy", o.read ? "load" : "store"};
    for (auto size : o.sizes) {
        if (2 * size > s.data().size())
            throw Error(ErrorKind::invalid_input, "size larger than the remote segment");
        // Each method has its own region of the remote segment, checked after the last round.
        std::vector<unsigned char> buf[2] = {std::vector<unsigned char>(size),
                                             std::vector<unsigned char>(size)};
        std::uint64_t expected[2] = {0, 0};
        if (o.read) {
            for (std::uint64_t m = 0; m < 2; ++m)
                expected[m] = s.request(Op::fill, size, m * size, size * 4 + 5 + m);
        } else {
            // Two source patterns used alternately; the regions are poisoned first so that
            // stale data cannot pass the final check.
            fill_pattern(buf[0].data(), size, size * 4 + 1);
            fill_pattern(buf[1].data(), size, size * 4 + 2);
            for (std::uint64_t m = 0; m < 2; ++m)
                s.request(Op::fill, size, m * size, size * 4 + 3 + m);
        }
        Totals totals[2];
        MemcpyRounds yardstick(o, size);
        const auto rounds = rounds_for(o);
        for (std::uint64_t r = 0; r < rounds; ++r) {
            const auto ro = round_options(o, r, rounds);
            std::uint64_t measured = 0;
            for (std::size_t m = 0; m < 2; ++m) {
                const std::size_t off = m * size;
                const bool sci = m == 0;
                LoopResult loop;
                if (!o.read) {
                    loop = timed_loop(ro, [&](std::uint64_t i) {
                        auto& from = buf[i & 1];
                        if (sci) {
                            sci_error_t err = SCI_ERR_OK;
                            SCIMemCpy(sequence.get(), from.data(), s.data().map(), off, size,
                                      SCI_NO_FLAGS, &err);
                            sci::check(err, "SCIMemCpy");
                        } else {
                            std::memcpy(s.data().bytes() + off, from.data(), size);
                            asm volatile("" : : : "memory");
                        }
                    });
                } else {
                    auto& to = buf[m];
                    loop = timed_loop(ro, [&](std::uint64_t) {
                        if (sci) {
                            sci_error_t err = SCI_ERR_OK;
                            SCIMemCpy(sequence.get(), to.data(), s.data().map(), off, size,
                                      SCI_FLAG_BLOCK_READ, &err);
                            sci::check(err, "SCIMemCpy(SCI_FLAG_BLOCK_READ)");
                        } else {
                            std::memcpy(to.data(), s.data().bytes() + off, size);
                        }
                        asm volatile("" : : "r"(to.data()) : "memory");
                    });
                }
                totals[m].add(loop);
                measured = std::max(measured, loop.iterations);
            }
            yardstick.round(ro, measured);
        }
        flush();
        for (std::size_t m = 0; m < 2; ++m) {
            const Payload check =
                o.read ? checksum_check(expected[m], checksum(buf[m].data(), size))
                       : checksum_check(checksum(buf[totals[m].last & 1].data(), size),
                                        s.request(Op::verify, size, m * size, 0));
            auto result = bandwidth_result(size, methods[m], totals[m].loop());
            if (check == Payload::failed)
                set_payload(result, check,
                            methods[m] +
                                (o.read ? " read wrong data" : " data did not arrive intact"));
            else
                set_payload(result, check, "checksum of the last copy matches on both sides");
            rep.results.push_back(std::move(result));
        }
        yardstick.finish(rep);
    }
}

} // namespace dis::bench::detail
