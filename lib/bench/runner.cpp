// run_test(): validates the options, opens the session, runs the test family, and turns a
// failed payload check into the check_failed error dis-tool-bench(1) documents.
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include "families.hpp"
#include "process.hpp"

namespace dis::bench {

using namespace detail;

namespace {

bool is_device_test(TestKind test) {
    return test == TestKind::device_cycle || test == TestKind::device_copy;
}

void validate(const BenchOptions& o) {
    if (o.iterations == 0 && o.duration_s <= 0)
        throw Error(ErrorKind::invalid_input, "--iterations must be at least 1");
    if (is_device_test(o.test) != o.device.has_value())
        throw Error(ErrorKind::invalid_input,
                    o.device ? "--device applies to device-cycle and device-copy only"
                             : std::string(to_string(o.test)) + " needs --device FDID");
    if (o.test == TestKind::device_copy && o.dma_mode != DmaMode::sleep &&
        o.dma_mode != DmaMode::poll)
        throw Error(ErrorKind::invalid_input, "device-copy --mode is sleep or poll");
    if (o.sizes.empty() && o.test != TestKind::intr_latency && o.test != TestKind::device_cycle)
        throw Error(ErrorKind::invalid_input, "no sizes to test");
    const bool pingpong = o.test == TestKind::pio_latency;
    for (auto size : o.sizes)
        if (pingpong && size % 4 != 0)
            throw Error(ErrorKind::invalid_input,
                        "pio-latency sizes must be multiples of 4 bytes, got " +
                            std::to_string(size));
    if (o.read && o.test != TestKind::pio_bw)
        throw Error(ErrorKind::invalid_input, "--read applies to pio-bw only");
    if (o.pull && o.test != TestKind::dma_bw && o.test != TestKind::dma_latency)
        throw Error(ErrorKind::invalid_input, "--pull applies to dma-bw and dma-latency only");
    if (o.vector > 1 && o.test != TestKind::dma_bw)
        throw Error(ErrorKind::invalid_input, "--vector applies to dma-bw only");
    for (auto size : o.sizes) {
        if (o.test == TestKind::data_intr_latency && size > k_data_intr_capacity)
            throw Error(ErrorKind::invalid_input,
                        "data interrupts carry at most " + std::to_string(k_data_intr_capacity) +
                            " bytes; size " + std::to_string(size) + " is too large");
        if (o.vector > 1 && size < 64ull * o.vector)
            throw Error(ErrorKind::invalid_input, "size " + std::to_string(size) +
                                                      " is too small for a vector of " +
                                                      std::to_string(o.vector) + " entries");
    }
}

Report checked(const BenchOptions& options, Report& rep) {
    for (const auto& r : rep.results)
        if (r.payload == Payload::failed)
            throw Error(ErrorKind::check_failed,
                        std::string(to_string(options.test)) + ": payload check failed at size " +
                            std::to_string(r.size) + ": " + r.payload_detail);
    attach_ratios(rep);
    return std::move(rep);
}

} // namespace

Report run_test(const BenchOptions& options) {
    validate(options);
    pin_to_cpu(options.cpu);
    Report rep;
    rep.test = options.test;
    rep.remote_node = options.remote_node;
    if (is_device_test(options.test)) {
        device_test(options, rep);
        return checked(options, rep);
    }
    Session session(options);
    rep.local_node = session.local_node();
    switch (options.test) {
    case TestKind::pio_latency:
        pio_latency(session, options, rep);
        break;
    case TestKind::pio_bw:
        pio_bw(session, options, rep);
        break;
    case TestKind::dma_bw:
        dma_bw(session, options, rep);
        break;
    case TestKind::dma_latency:
        dma_latency(session, options, rep);
        break;
    case TestKind::intr_latency:
        intr_latency(session, options, rep);
        break;
    case TestKind::data_intr_latency:
        data_intr_latency(session, options, rep);
        break;
    case TestKind::device_cycle:
    case TestKind::device_copy:
        break; // above
    }
    session.finish();
    return checked(options, rep);
}

} // namespace dis::bench
