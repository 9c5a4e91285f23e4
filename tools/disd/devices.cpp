// disd's lendable devices: declared in the fabric config and by --device, entered into the
// pool (state and audit log in SQLite), recovered after a restart; and the pool's hooks on the
// emulated endpoints (quiesce, reset), which run on the lending workers.
#include "daemon.hpp"

#include "dis/error.hpp"
#include "dis/lending_model.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <set>

namespace dis::disd {

namespace {

constexpr int k_worker_threads = 3;
constexpr long k_tick_ns = 250'000'000; // the lease clock: Pool::tick and waiters

class HookControl final : public lending::DeviceControl {
public:
    HookControl(
        std::function<void(const lending::DeviceInfo&, const lending::Lease&)> quiesce,
        std::function<lending::ResetOutcome(const lending::DeviceInfo&, std::chrono::milliseconds)>
            reset)
        : m_quiesce(std::move(quiesce)), m_reset(std::move(reset)) {}
    void quiesce(const lending::DeviceInfo& info, const lending::Lease& lease) override {
        m_quiesce(info, lease);
    }
    lending::ResetOutcome reset(const lending::DeviceInfo& info,
                                std::chrono::milliseconds timeout) override {
        return m_reset(info, timeout);
    }

private:
    std::function<void(const lending::DeviceInfo&, const lending::Lease&)> m_quiesce;
    std::function<lending::ResetOutcome(const lending::DeviceInfo&, std::chrono::milliseconds)>
        m_reset;
};

} // namespace

void Daemon::start_lending() {
    // Declared devices: the config's lines for this node, then --device, each PF followed by
    // its VFs; fdid = (node << 16) | index in that order.
    std::vector<std::string> texts;
    if (auto it = m_config.devices.find(m_opts.node_id); it != m_config.devices.end()) {
        texts = it->second;
    }
    texts.insert(texts.end(), m_opts.devices.begin(), m_opts.devices.end());
    std::uint32_t index = 0;
    for (const auto& text : texts) {
        endpoint::DeviceSpec spec;
        try {
            spec = endpoint::parse_device_spec(text);
        } catch (const Error& e) {
            throw Error(ErrorKind::invalid_input, "device '" + text + "': " + e.what());
        }
        std::optional<lending::Fdid> pf;
        for (auto& fn : endpoint::expand_functions(spec)) {
            auto d = std::make_unique<LentDevice>();
            d->fdid = lending::make_fdid(m_opts.node_id, index++);
            d->physfn = fn.vf_index >= 0 ? pf : std::nullopt;
            d->kind = endpoint::to_string(fn.kind);
            d->info = {d->fdid, fn.vendor_id, fn.device_id, fn.class_code, fn.name};
            d->dev = std::make_unique<endpoint::Device>(fn);
            if (fn.vf_index < 0) {
                pf = d->fdid;
            }
            m_device_order.push_back(d->fdid.value);
            m_devices.emplace(d->fdid.value, std::move(d));
        }
    }

    m_device_control = std::make_shared<HookControl>(
        [this](const lending::DeviceInfo& info, const lending::Lease& lease) {
            quiesce_hook(info, lease);
        },
        [this](const lending::DeviceInfo& info, std::chrono::milliseconds timeout) {
            return reset_hook(info, timeout);
        });
    lending::PoolOptions po;
    po.database = m_opts.lending_db ? *m_opts.lending_db
                                    : m_opts.fabric_dir + "/node-" +
                                          std::to_string(m_opts.node_id) + ".lending.sqlite";
    if (m_opts.lending_policy) {
        po.policy = lending::Policy::load(*m_opts.lending_policy);
    }
    po.device = m_device_control;
    po.reset_timeout = m_opts.reset_timeout;
    po.manual_checkpoints = true; // lending_tick() checkpoints on a worker thread
    m_pool_work = std::make_unique<lending::Pool>(po);
    m_pool = std::make_unique<lending::Pool>(po);
    m_worker = std::make_unique<LendingWorker>(k_worker_threads);

    // New devices enter the pool available; known ones keep their state (a device an admin
    // made unavailable stays so). Then the previous run's leases are reclaimed (nobody can
    // confirm them: their connections died with that daemon) and their devices reset, and
    // devices no longer declared leave the pool.
    const std::string actor = "lender node " + std::to_string(m_opts.node_id);
    std::map<std::uint32_t, lending::State> known;
    std::set<std::uint32_t> changed; // declared again, but as another device
    for (const auto& s : m_pool->devices()) {
        known[s.info.fdid.value] = s.state;
        auto d = m_devices.find(s.info.fdid.value);
        if (d != m_devices.end()) {
            const auto& now = d->second->info;
            if (now.name != s.info.name || now.vendor_id != s.info.vendor_id ||
                now.device_id != s.info.device_id || now.class_code != s.info.class_code) {
                changed.insert(s.info.fdid.value);
            }
        }
    }
    for (auto fdid : m_device_order) {
        auto it = known.find(fdid);
        if (it == known.end() || it->second == lending::State::removed) {
            m_pool->add_device(m_devices.at(fdid)->info, actor);
            m_pool->make_available(lending::Fdid{fdid}, actor);
        }
    }
    auto report = m_pool_work->recover([](const lending::Lease&) { return false; });
    if (!report.reclaimed.empty() || !report.reset.empty()) {
        log("recovery: " + std::to_string(report.reclaimed.size()) + " lease(s) reclaimed, " +
            std::to_string(report.reset.size()) + " device(s) reset");
    }
    for (const auto& [fdid, state] : known) {
        if (state == lending::State::removed) {
            continue; // gone before, or re-added above
        }
        bool gone = m_devices.count(fdid) == 0;
        if (gone || changed.count(fdid) != 0) {
            try {
                m_pool->remove(lending::Fdid{fdid}, actor);
            } catch (const lending::LendingError& e) {
                log(std::string("cannot remove an undeclared device: ") + e.what());
                continue;
            }
        }
        if (!gone && changed.count(fdid) != 0) {
            // The fdid names another device now: it enters the pool as new.
            m_pool->add_device(m_devices.at(fdid)->info, actor);
            m_pool->make_available(lending::Fdid{fdid}, actor);
        }
    }

    m_tick_timer = wire::Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!m_tick_timer.valid()) {
        throw os_error("timerfd", errno);
    }
    itimerspec its{};
    its.it_value.tv_nsec = k_tick_ns;
    its.it_interval.tv_nsec = k_tick_ns;
    ::timerfd_settime(m_tick_timer.get(), 0, &its, nullptr);
    m_dev_engine = std::thread([this] { device_engine_main(); });
}

void Daemon::stop_lending() {
    // The engine first (it posts to the workers), then the workers: their queued releases
    // and resets finish.
    {
        std::lock_guard lock(m_dev_engine_mu);
        m_dev_engine_stop = true;
    }
    m_dev_engine_cv.notify_all();
    if (m_dev_engine.joinable()) {
        m_dev_engine.join();
    }
    // Not reset: jobs still running post through it.
    if (m_worker) {
        m_worker->shutdown();
    }
}

LentDevice* Daemon::lent_device(lending::Fdid fdid) const {
    std::shared_lock lock(m_devices_mu);
    auto it = m_devices.find(fdid.value);
    // A retired entry (dev_remove) is no device any more.
    return it == m_devices.end() || !it->second->dev ? nullptr : it->second.get();
}

// Worker thread. The lease's memory leaves the device's reach here; its connections hear of
// it (dev_lost) on the main loop, which also forgets its records.
void Daemon::quiesce_hook(const lending::DeviceInfo& info, const lending::Lease& lease) {
    if (LentDevice* d = lent_device(info.fdid)) {
        std::vector<std::uint64_t> addrs;
        {
            std::lock_guard lock(d->mu);
            for (auto it = d->io_leases.begin(); it != d->io_leases.end();) {
                if (it->second == lease.id) {
                    addrs.push_back(it->first);
                    it = d->io_leases.erase(it);
                } else {
                    ++it;
                }
            }
            if (d->io_leases.empty()) {
                d->dev->quiesce(); // nothing else is mapped: a command in flight finishes
            }
        }
        for (auto a : addrs) {
            d->dev->io().unmap(a);
        }
    }
    const LostContext& ctx = lost_context();
    std::string reason = ctx.reason.empty() ? "lease ended" : ctx.reason;
    int skip = ctx.skip_client;
    if (m_worker) {
        m_worker->post([this, id = lease.id, reason, skip] { lease_gone(id, reason, skip); });
    }
}

// Worker thread.
lending::ResetOutcome Daemon::reset_hook(const lending::DeviceInfo& info,
                                         std::chrono::milliseconds timeout) {
    LentDevice* d = lent_device(info.fdid);
    if (d == nullptr) {
        return lending::ResetOutcome::ok; // not declared any more: nothing to reset
    }
    ++m_resets;
    d->resetting = true;
    d->polled = false;
    {
        std::lock_guard lock(d->mu);
        d->io_leases.clear();
    }
    auto result = d->dev->reset(timeout);
    d->resetting = false;
    if (result == endpoint::ResetResult::ok) {
        d->faulted = false;
        return lending::ResetOutcome::ok;
    }
    ++m_reset_failures;
    return result == endpoint::ResetResult::failed ? lending::ResetOutcome::failed
                                                   : lending::ResetOutcome::timed_out;
}

lending::DeviceView Daemon::device_view(const lending::DeviceStatus& status) const {
    lending::DeviceView v;
    v.status = status;
    v.node_id = m_opts.node_id;
    if (LentDevice* d = lent_device(status.info.fdid)) {
        v.kind = d->kind;
        for (int b = 0; b < d->dev->bar_count(); ++b) {
            v.bars.push_back(d->dev->bar_size(b));
        }
        v.physfn = d->physfn;
    }
    return v;
}

std::string Daemon::admin_actor(const Client& c, const json& body) const {
    std::string s = "admin uid " + std::to_string(c.uid) + " pid " + std::to_string(c.pid);
    if (auto it = body.find("via");
        it != body.end() && it->is_string() && it->get_ref<const std::string&>().size() <= 32) {
        s += " via " + it->get<std::string>();
    }
    return s;
}

} // namespace dis::disd
