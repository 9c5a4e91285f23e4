// Work split over threads: over the machine's cores for the few loops that read a large
// machine in one go (a PCI scan of a thousand devices and the exporter's samples of them), and
// over threads kept between rounds for blocking requests to many nodes at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dis {

// How many threads run_on_threads uses for `items` items: one below `parallel_from`, else
// one per core up to two (the work is system calls and allocation, which do not scale far).
unsigned worker_count(std::size_t items, std::size_t parallel_from = 256);

// Runs work(0) .. work(threads - 1), work(0) on the calling thread and the others each on a
// thread of its own, and returns when all have finished. The first exception any of them
// threw is then rethrown.
void run_on_threads(unsigned threads, const std::function<void(unsigned index)>& work);

// Threads kept between rounds of blocking jobs, one job per thread so that a job that blocks
// (a frozen node) delays no other. The monitor asks every node each second: starting a thread
// per node per round cost more CPU than the requests themselves.
class WorkerPool {
public:
    WorkerPool() = default;
    ~WorkerPool(); // waits for the threads to finish their jobs
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Runs job(0) .. job(count - 1) at once, each on a thread of its own (the pool grows to
    // `count` threads), and returns when all have returned; then the first exception any of
    // them threw is rethrown. One run at a time: run() from one thread, not from a job.
    void run(std::size_t count, const std::function<void(std::size_t index)>& job);

    std::size_t threads() const;

private:
    void serve();

    mutable std::mutex m_mutex;
    std::condition_variable m_work; // a job was queued, or the pool stops
    std::condition_variable m_done; // a job of the running round returned
    const std::function<void(std::size_t)>* m_job = nullptr;
    std::size_t m_next = 0, m_count = 0, m_unfinished = 0;
    std::exception_ptr m_failed;
    bool m_stop = false;
    std::vector<std::thread> m_threads;
};

} // namespace dis
