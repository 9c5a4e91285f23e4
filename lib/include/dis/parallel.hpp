// Work split over the machine's cores for the few loops that read a large machine in one go
// (a PCI scan of a thousand devices and the exporter's samples of them).
#pragma once

#include <cstddef>
#include <functional>

namespace dis {

// How many threads run_on_threads uses for `items` items: one below `parallel_from`, else
// one per core up to two (the work is system calls and allocation, which do not scale far).
unsigned worker_count(std::size_t items, std::size_t parallel_from = 256);

// Runs work(0) .. work(threads - 1), work(0) on the calling thread and the others each on a
// thread of its own, and returns when all have finished. The first exception any of them
// threw is then rethrown.
void run_on_threads(unsigned threads, const std::function<void(unsigned index)>& work);

} // namespace dis
