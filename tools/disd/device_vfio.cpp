// disd's interrupt thread for vfio devices: VFIO signals each MSI/MSI-X vector on an eventfd
// (VFIO_DEVICE_SET_IRQS); this thread waits on all of them and sends the lease's connections
// the same dev_irq event an emulated device's engine sends (type 1 MSI or 2 MSI-X, number =
// vector + 1). Nobody borrowing the device: the interrupt is counted and dropped.
#include "daemon.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dis::disd {

namespace {

constexpr std::uint64_t k_max_events_per_wake = 64; // one read may count many interrupts

} // namespace

void Daemon::vfio_irq_main() {
    wire::Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep.valid()) {
        log(std::string("vfio interrupts: epoll_create1: ") + std::strerror(errno));
        return;
    }
    struct Source {
        LentDevice* dev = nullptr;
        int fd = -1;
        int number = 0;
    };
    std::vector<Source> sources;
    for (auto fdid : m_device_order) {
        LentDevice* d = m_devices.at(fdid).get();
        if (!d->vfio) {
            continue;
        }
        const auto& fds = d->vfio->irq_fds();
        for (std::size_t i = 0; i < fds.size(); ++i) {
            sources.push_back({d, fds[i].get(), static_cast<int>(i) + 1});
        }
    }
    epoll_event stop{};
    stop.events = EPOLLIN;
    stop.data.u64 = UINT64_MAX;
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, m_vfio_irq_stop.get(), &stop);
    for (std::size_t i = 0; i < sources.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sources[i].fd, &ev);
    }
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
                return;
            }
            const Source& s = sources[events[i].data.u64];
            std::uint64_t count = 0;
            if (::read(s.fd, &count, sizeof count) != sizeof count || count == 0) {
                continue;
            }
            auto type = static_cast<int>(s.dev->vfio->irqs().type);
            for (std::uint64_t k = 0; k < std::min(count, k_max_events_per_wake); ++k) {
                deliver_irq(*s.dev, type, s.number);
            }
        }
    }
}

} // namespace dis::disd
