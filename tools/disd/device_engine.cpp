// disd's device engine: one thread that executes the epf-test commands of every borrowed
// epf-test device (Device::poll: its "DMA engine" copies through the device's IO space).
// Latency when busy, no CPU when idle: it spins (with `pause`) while a command came in during
// the last 2 ms, else polls every 1 ms, and with no borrowed epf-test device it sleeps on a
// condition variable. It also watches for commands left pending past --command-timeout (a
// device that stopped responding): that device is quarantined and its borrowers told.
#include "cpu_relax.hpp"
#include "daemon.hpp"

#include "dis/lending_model.hpp"

namespace dis::disd {

namespace {

constexpr auto k_device_spin_window = std::chrono::milliseconds(2);
constexpr auto k_idle_poll = std::chrono::milliseconds(1);

} // namespace

void Daemon::wake_device_engine() {
    { std::lock_guard lock(m_dev_engine_mu); }
    m_dev_engine_cv.notify_all();
}

// Engine thread: straight to the lease's connections; a full socket gets it through the main
// loop (its outbound queue), a closed one not at all (the main loop is dropping it).
void Daemon::deliver_irq(LentDevice& d, int type, int number) {
    std::vector<std::pair<std::int64_t, int>> queued;
    {
        std::lock_guard lock(d.irq_mu);
        for (const auto& t : d.irq_targets) {
            json ev{{"event", "dev_irq"},
                    {"fdid", lending::to_string(d.fdid)},
                    {"lease_id", t.lease_id},
                    {"type", type},
                    {"number", number}};
            if (wire::send_frame(t.sock->get(), ev.dump()) == wire::SendStatus::again) {
                queued.emplace_back(t.lease_id, t.client);
            }
        }
    }
    for (const auto& [lease, client] : queued) {
        m_worker->post([this, fdid = d.fdid, lease = lease, client = client, type, number] {
            device_irq(fdid, lease, client, type, number);
        });
    }
}

void Daemon::device_engine_main() {
    using clock = std::chrono::steady_clock;
    std::vector<LentDevice*> epf;
    std::uint64_t generation = ~0ULL;
    // The epf-test devices; again whenever dev_add or dev_remove changed the table.
    auto refresh = [&] {
        std::shared_lock lock(m_devices_mu);
        generation = m_devices_generation.load();
        epf.clear();
        for (const auto& [fdid, d] : m_devices) {
            if (d->dev && d->kind == "epf-test") {
                epf.push_back(d.get());
            }
        }
    };
    auto last_work = clock::now() - k_device_spin_window;
    for (;;) {
        if (generation != m_devices_generation.load()) {
            refresh();
        }
        bool any = false;
        bool worked = false;
        auto now = clock::now();
        for (LentDevice* d : epf) {
            if (!d->polled.load(std::memory_order_acquire)) {
                continue;
            }
            any = true;
            lending::Fdid fdid = d->fdid;
            worked |=
                d->dev->poll([this, d](int type, int number) { deliver_irq(*d, type, number); });
            auto since = d->dev->command_pending_since();
            if (since && now - *since > m_opts.command_timeout && !d->faulted.exchange(true)) {
                d->polled = false;
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - *since);
                std::string why =
                    "command 0x" +
                    [&] {
                        char buf[16];
                        std::snprintf(buf, sizeof buf, "%x",
                                      d->dev->read_register(endpoint::epf::k_command));
                        return std::string(buf);
                    }() +
                    " pending for " + std::to_string(ms.count()) + " ms (--command-timeout " +
                    std::to_string(m_opts.command_timeout.count()) + " ms)";
                m_worker->post([this, fdid, why] { device_fault(fdid, why); });
            }
        }
        if (worked) {
            last_work = clock::now();
        }
        std::unique_lock lock(m_dev_engine_mu);
        if (m_dev_engine_stop) {
            return;
        }
        if (!any) {
            m_dev_engine_cv.wait(lock, [&] {
                return m_dev_engine_stop || generation != m_devices_generation.load() ||
                       std::any_of(epf.begin(), epf.end(), [](LentDevice* d) {
                           return d->polled.load(std::memory_order_acquire);
                       });
            });
            continue;
        }
        if (clock::now() - last_work < k_device_spin_window) {
            lock.unlock();
            for (int i = 0; i < 64; ++i) {
                cpu_relax();
            }
        } else {
            m_dev_engine_cv.wait_for(lock, k_idle_poll, [&] { return m_dev_engine_stop; });
        }
    }
}

} // namespace dis::disd
