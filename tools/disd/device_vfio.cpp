// disd's interrupt thread for vfio devices: VFIO signals each MSI/MSI-X vector on an eventfd
// (VFIO_DEVICE_SET_IRQS); this thread waits on all of them and sends the lease's connections
// the same dev_irq event an emulated device's engine sends (type 1 MSI or 2 MSI-X, number =
// vector + 1). Nobody borrowing the device: the interrupt is counted and dropped.
// Devices added and removed at run time (host_devices.cpp): vfio_irq_resync() has the thread
// take the current set of devices and waits until it has, so that a removed device's eventfds
// are out of its epoll set before they close.
#include "daemon.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dis::disd {

namespace {

constexpr std::uint64_t k_max_events_per_wake = 64; // one read may count many interrupts

} // namespace

void Daemon::vfio_irq_main() {
    struct Source {
        LentDevice* dev = nullptr;
        int fd = -1;
        int number = 0;
        int type = 0;
    };
    std::vector<Source> sources;
    wire::Fd ep;
    // The devices' eventfds as they are now; the control eventfd (stop or resync) is u64 max.
    auto rebuild = [&]() -> bool {
        ep = wire::Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep.valid()) {
            log(std::string("vfio interrupts: epoll_create1: ") + std::strerror(errno));
            return false;
        }
        sources.clear();
        {
            std::shared_lock lock(m_devices_mu);
            for (const auto& [fdid, d] : m_devices) {
                if (!d->vfio) {
                    continue;
                }
                const auto& fds = d->vfio->irq_fds();
                int type = static_cast<int>(d->vfio->irqs().type);
                for (std::size_t i = 0; i < fds.size(); ++i) {
                    sources.push_back({d.get(), fds[i].get(), static_cast<int>(i) + 1, type});
                }
            }
        }
        epoll_event ctl{};
        ctl.events = EPOLLIN;
        ctl.data.u64 = UINT64_MAX;
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, m_vfio_irq_ctl.get(), &ctl);
        for (std::size_t i = 0; i < sources.size(); ++i) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sources[i].fd, &ev);
        }
        return true;
    };
    auto acknowledge = [&] {
        std::lock_guard lock(m_vfio_irq_mu);
        m_vfio_irq_seen = m_vfio_irq_want;
        m_vfio_irq_cv.notify_all();
    };
    if (!rebuild()) {
        return;
    }
    acknowledge();
    epoll_event events[32];
    for (;;) {
        int n = ::epoll_wait(ep.get(), events, 32, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log(std::string("vfio interrupts: epoll_wait: ") + std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            if (events[i].data.u64 == UINT64_MAX) {
                std::uint64_t v = 0;
                (void)!::read(m_vfio_irq_ctl.get(), &v, sizeof v);
                if (m_vfio_irq_quit.load()) {
                    return;
                }
                if (!rebuild()) {
                    return;
                }
                acknowledge();
                break; // the other events index the old set
            }
            const Source& s = sources[events[i].data.u64];
            std::uint64_t count = 0;
            if (::read(s.fd, &count, sizeof count) != sizeof count || count == 0) {
                continue;
            }
            for (std::uint64_t k = 0; k < std::min(count, k_max_events_per_wake); ++k) {
                deliver_irq(*s.dev, s.type, s.number);
            }
        }
    }
}

// Main loop.
void Daemon::vfio_irq_resync() {
    bool any_vfio = std::any_of(m_devices.begin(), m_devices.end(),
                                [](const auto& kv) { return kv.second->vfio != nullptr; });
    if (!m_vfio_irq.joinable()) {
        if (!any_vfio) {
            return;
        }
        if (!m_vfio_irq_ctl.valid()) {
            m_vfio_irq_ctl = wire::Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
            if (!m_vfio_irq_ctl.valid()) {
                throw os_error("eventfd", errno);
            }
        }
        m_vfio_irq = std::thread([this] { vfio_irq_main(); });
        return;
    }
    std::uint64_t want = 0;
    {
        std::lock_guard lock(m_vfio_irq_mu);
        want = ++m_vfio_irq_want;
    }
    std::uint64_t one = 1;
    (void)!::write(m_vfio_irq_ctl.get(), &one, sizeof one);
    std::unique_lock lock(m_vfio_irq_mu);
    if (!m_vfio_irq_cv.wait_for(lock, std::chrono::seconds(5),
                                [&] { return m_vfio_irq_seen >= want; })) {
        log("vfio interrupts: the interrupt thread did not take the new device set within 5 s");
    }
}

} // namespace dis::disd
