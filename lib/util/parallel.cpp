// dis/parallel.hpp
#include "dis/parallel.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace dis {

unsigned worker_count(std::size_t items, std::size_t parallel_from) {
    if (items < parallel_from)
        return 1;
    return std::clamp(std::thread::hardware_concurrency(), 1u, 2u);
}

void run_on_threads(unsigned threads, const std::function<void(unsigned index)>& work) {
    std::mutex mutex;
    std::exception_ptr failed;
    auto run = [&](unsigned index) {
        try {
            work(index);
        } catch (...) {
            std::lock_guard lock(mutex);
            if (!failed)
                failed = std::current_exception();
        }
    };
    std::vector<std::thread> others;
    std::vector<unsigned> here{0}; // what the calling thread runs itself
    for (unsigned i = 1; i < threads; ++i) {
        try {
            others.emplace_back(run, i);
        } catch (const std::system_error&) {
            here.push_back(i); // no thread to be had: the work is done all the same
        }
    }
    for (auto i : here)
        run(i);
    for (auto& t : others)
        t.join();
    if (failed)
        std::rethrow_exception(failed);
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_work.notify_all();
    for (auto& t : m_threads)
        t.join();
}

std::size_t WorkerPool::threads() const {
    std::lock_guard lock(m_mutex);
    return m_threads.size();
}

void WorkerPool::run(std::size_t count, const std::function<void(std::size_t index)>& job) {
    if (count == 0)
        return;
    std::unique_lock lock(m_mutex);
    while (m_threads.size() < count) {
        try {
            m_threads.emplace_back([this] { serve(); });
        } catch (const std::system_error&) {
            if (m_threads.empty())
                throw;
            break; // no more threads to be had: the jobs share those there are
        }
    }
    m_job = &job;
    m_next = 0;
    m_count = count;
    m_unfinished = count;
    m_failed = nullptr;
    m_work.notify_all();
    m_done.wait(lock, [this] { return m_unfinished == 0; });
    m_job = nullptr;
    m_count = 0;
    if (auto failed = std::exchange(m_failed, nullptr))
        std::rethrow_exception(failed);
}

void WorkerPool::serve() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        m_work.wait(lock, [this] { return m_stop || m_next < m_count; });
        if (m_next >= m_count)
            return; // stopping, with no job of a round left
        const std::size_t index = m_next++;
        const auto* job = m_job;
        lock.unlock();
        std::exception_ptr failed;
        try {
            (*job)(index);
        } catch (...) {
            failed = std::current_exception();
        }
        lock.lock();
        if (failed && !m_failed)
            m_failed = failed;
        if (--m_unfinished == 0)
            m_done.notify_one();
    }
}

} // namespace dis
