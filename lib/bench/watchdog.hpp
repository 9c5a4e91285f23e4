// Lets a measured wait block without a timeout (the fast path of a raw wake-up, what the
// eventfd baseline does) and still never hang: when the waiter made no progress for
// `timeout`, the watchdog calls `wake` once (e.g. triggers the waiter's own interrupt through
// a loopback connection) and remembers that it fired. Internal to libdis.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace dis::bench::detail {

class Watchdog {
public:
    Watchdog(std::chrono::milliseconds timeout, std::function<void()> wake)
        : m_timeout(timeout), m_wake(std::move(wake)), m_thread([this] { run(); }) {}
    ~Watchdog() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_cv.notify_all();
        m_thread.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void progress() { m_progress.fetch_add(1, std::memory_order_relaxed); }
    bool fired() const { return m_fired.load(std::memory_order_acquire); }

private:
    void run() {
        std::unique_lock lock(m_mutex);
        std::uint64_t last = m_progress.load(std::memory_order_relaxed);
        auto since = std::chrono::steady_clock::now();
        while (!m_stop) {
            m_cv.wait_for(lock, std::chrono::milliseconds(50));
            if (m_stop)
                break;
            const auto now = std::chrono::steady_clock::now();
            const std::uint64_t p = m_progress.load(std::memory_order_relaxed);
            if (p != last) {
                last = p;
                since = now;
            } else if (!m_fired.load() && now - since > m_timeout) {
                m_fired.store(true, std::memory_order_release);
                try {
                    m_wake();
                } catch (...) {
                    // The waiter's own error path (a lost node) wakes it anyway.
                }
            }
        }
    }

    std::chrono::milliseconds m_timeout;
    std::function<void()> m_wake;
    std::atomic<std::uint64_t> m_progress{0};
    std::atomic<bool> m_fired{false};
    bool m_stop = false;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::thread m_thread; // last: starts after everything it uses exists
};

} // namespace dis::bench::detail
