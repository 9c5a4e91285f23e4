// disd's device lending (internal): the devices this node lends, the threads that serve them
// and the main loop's records of who holds what. Threads: the main loop (requests, the lease
// records below), the lending workers (slow pool operations: release, reclaim, reset, tick;
// the pool's device hooks run there) and the device engine (epf-test commands). Workers and
// the engine hand results back to the main loop through LendingWorker::post (an eventfd).
#pragma once

#include "dis/endpoint.hpp"
#include "dis/lending.hpp"
#include "dis/lending_model.hpp"
#include "dis/vfio.hpp"
#include "wire.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace dis::disd {

// One lendable function (a PF or one of its VFs) and what the daemon's threads share of it.
struct LentDevice {
    lending::Fdid fdid;
    std::optional<lending::Fdid> physfn;
    std::string kind; // "epf-test", "memory" or "vfio"
    lending::DeviceInfo info;
    std::unique_ptr<endpoint::Device> dev; // the emulated kinds
    std::unique_ptr<vfio::Device> vfio;    // kind "vfio": a real function bound to vfio-pci
    int bar_count() const { return vfio ? vfio->bar_count() : dev->bar_count(); }
    std::uint64_t bar_size(int bar) const {
        return vfio ? vfio->bar_size(bar) : dev->bar_size(bar);
    }
    // Takes the mapping at io_addr out of the device's reach (IoSpace or IOMMU).
    void unmap_io(std::uint64_t io_addr) {
        if (vfio) {
            vfio->unmap_dma(io_addr);
        } else {
            dev->io().unmap(io_addr);
        }
    }
    void clear_io() {
        if (vfio) {
            vfio->unmap_all();
        } else {
            dev->io().clear();
        }
    }
    // Guards the device itself: the engine's poll, the IO space, reset. The engine only
    // try_locks it, so a device in a long reset never stalls the others.
    std::mutex mu;
    std::map<std::uint64_t, std::int64_t> io_leases; // io_addr -> lease id (under mu)
    std::atomic<bool> polled{false};    // borrowed: the engine polls it (epf-test only)
    std::atomic<bool> resetting{false}; // a reset is running (dev_map refuses)
    std::atomic<bool> faulted{false};   // stopped responding; polled no more until a reset
    // Where the engine sends dev_irq itself (one wake-up less than through the main loop):
    // duplicates of the sockets of the connections holding or joined to a lease, kept by
    // the main loop. A socket that is full gets it through the main loop's queue instead.
    struct IrqTarget {
        std::int64_t lease_id = 0;
        int client = 0;
        std::shared_ptr<wire::Fd> sock;
    };
    std::mutex irq_mu;
    std::vector<IrqTarget> irq_targets; // under irq_mu
};

// A lease as the main loop sees it: the connection holding it and those joined to it.
struct LeaseLink {
    std::int64_t lease_id = 0;
    lending::Fdid fdid;
    int holder = 0; // client id; 0 once the holder's connection is gone
    std::set<int> joined;
    std::string token; // hands the lease's access to another process (dev_borrow "join")
};

// A device segment a lease's connection connected (dev_connect).
struct DevSegment {
    std::uint32_t id = 0;
    lending::Fdid fdid;
    std::int64_t lease_id = 0;
    int client = 0;
    std::string memtype;      // "bar", "private", "shared"
    std::uint32_t number = 0; // the BAR, or the device segment's id
    std::uint64_t size = 0;
};

// Memory created for a device (SCICreateDeviceSegment): a private segment lives as long as its
// lease, a shared one as long as the device is borrowed at all.
struct DevMemory {
    wire::Fd memfd;
    std::uint64_t size = 0;
    int creator = 0; // client charged for it
};
// (fdid, shared, lease id (0 for shared), segment id)
using DevMemoryKey = std::tuple<std::uint32_t, bool, std::int64_t, std::uint32_t>;

// Borrower memory mapped for a device (dev_map), as the main loop accounts it.
struct DevMapping {
    lending::Fdid fdid;
    std::int64_t lease_id = 0;
    int client = 0;
    std::uint64_t bytes = 0;
};

// A dev_borrow with wait_ms whose reply waits for the hand-over.
struct PendingWait {
    int client = 0;
    nlohmann::json seq;
    lending::WaitTicket ticket = 0;
    lending::Fdid fdid;
};

// A few threads for slow pool operations, and the way back to the main loop.
class LendingWorker {
public:
    explicit LendingWorker(int threads);
    ~LendingWorker(); // shutdown()
    // Finishes the queued jobs and joins the threads; post() still works (nothing runs what
    // it posts any more).
    void shutdown();
    LendingWorker(const LendingWorker&) = delete;
    LendingWorker& operator=(const LendingWorker&) = delete;

    void submit(std::function<void()> job);
    // Any thread: runs `fn` on the main loop (which polls event_fd()).
    void post(std::function<void()> fn);
    int event_fd() const { return m_efd.get(); }
    // Main loop: everything posted so far, in order.
    std::vector<std::function<void()>> take_posted();

private:
    void run();

    std::mutex m_mu;
    std::condition_variable m_cv;
    std::deque<std::function<void()>> m_jobs;
    bool m_stop = false;
    std::vector<std::thread> m_threads;
    std::mutex m_post_mu;
    std::vector<std::function<void()>> m_posted;
    wire::Fd m_efd;
};

// The reason the current worker job's quiesce hook gives borrowers (dev_lost), and the
// client that asked for it itself (told nothing).
struct LostContext {
    std::string reason;
    int skip_client = 0;
};
LostContext& lost_context(); // thread-local

} // namespace dis::disd
