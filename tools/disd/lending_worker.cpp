// The lending workers: a few threads for the pool's slow operations (a reset may take up to
// --reset-timeout), and the eventfd through which their results reach the main loop.
#include "lending.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dis::disd {

LostContext& lost_context() {
    thread_local LostContext ctx;
    return ctx;
}

LendingWorker::LendingWorker(int threads) : m_efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!m_efd.valid()) {
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    for (int i = 0; i < threads; ++i) {
        m_threads.emplace_back([this] { run(); });
    }
}

LendingWorker::~LendingWorker() {
    shutdown();
}

void LendingWorker::shutdown() {
    {
        std::lock_guard lock(m_mu);
        m_stop = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) {
        if (t.joinable()) {
            t.join();
        }
    }
}

void LendingWorker::submit(std::function<void()> job) {
    {
        std::lock_guard lock(m_mu);
        m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
}

void LendingWorker::post(std::function<void()> fn) {
    {
        std::lock_guard lock(m_post_mu);
        m_posted.push_back(std::move(fn));
    }
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_efd.get(), &one, sizeof one);
}

std::vector<std::function<void()>> LendingWorker::take_posted() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(m_efd.get(), &count, sizeof count);
    std::lock_guard lock(m_post_mu);
    return std::exchange(m_posted, {});
}

void LendingWorker::run() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(m_mu);
            // Queued jobs are finished even when stopping: a release or reset left half
            // done would only be redone by the next start's recovery.
            m_cv.wait(lock, [this] { return m_stop || !m_jobs.empty(); });
            if (m_jobs.empty()) {
                return;
            }
            job = std::move(m_jobs.front());
            m_jobs.pop_front();
        }
        lost_context() = {};
        job();
    }
}

} // namespace dis::disd
