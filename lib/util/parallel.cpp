// dis/parallel.hpp
#include "dis/parallel.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
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

} // namespace dis
