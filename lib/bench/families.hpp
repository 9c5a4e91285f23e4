// The test families of run_test(): each measures its sizes over an open session and appends
// its results (payload checks recorded on them) and yardsticks to the report. Internal to
// libdis.
#pragma once

#include "dis/bench.hpp"

#include "session.hpp"

namespace dis::bench::detail {

#ifdef SCI_MAX_DATA_INTERRUPT_SIZE
constexpr std::size_t k_data_intr_capacity = SCI_MAX_DATA_INTERRUPT_SIZE;
#else
constexpr std::size_t k_data_intr_capacity = 1024;
#endif

// pio.cpp
void pio_latency(Session& s, const BenchOptions& o, Report& rep);
void pio_bw(Session& s, const BenchOptions& o, Report& rep);
// dma.cpp
void dma_bw(Session& s, const BenchOptions& o, Report& rep);
void dma_latency(Session& s, const BenchOptions& o, Report& rep);
// interrupts.cpp
void intr_latency(Session& s, const BenchOptions& o, Report& rep);
void data_intr_latency(Session& s, const BenchOptions& o, Report& rep);
// device.cpp: device-cycle and device-copy (no responder; the lender's device is the peer)
void device_test(const BenchOptions& o, Report& rep);

} // namespace dis::bench::detail
