// disd's host-device ops (issue 10): devices entering and leaving the pool while the daemon
// runs, and audit notes. `dis-tool device lend` binds a host device to vfio-pci and then
// asks the node for `dev_add {spec}` (the text `disd --device` takes, e.g.
// "vfio:0000:03:00.0,name=nvme0"; memory and epf-test specs work too); `device unlend` asks
// for `dev_remove {fdid, force}` before it gives the device back to its driver. Each step
// they take on the host is an `audit_note` row in the pool's audit log.
//
// A device added here is not declared: a restarted daemon removes it from the pool (its
// binding record on the host stays, so `device unlend` still works).
#include "daemon.hpp"

#include "dis/error.hpp"
#include "dis/lending_model.hpp"
#include "sisci_error.h"

#include <map>
#include <mutex>

namespace dis::disd {

namespace {

// The audit rows of the lender's host itself (not of one pool device) use this index.
constexpr std::uint32_t k_host_index = 0xffff;
constexpr int k_err_no_such_fdid = 0xB06; // as in lending.cpp

bool holds_leases(lending::State s) {
    return s == lending::State::borrowed || s == lending::State::returning;
}

} // namespace

void Daemon::op_dev_add(Request& r) {
    require_admin(r.client, "dev_add");
    const std::string text = wire::get_str(r.body, "spec", 512);
    const std::string actor = admin_actor(r.client, r.body);
    endpoint::DeviceSpec spec;
    try {
        spec = endpoint::parse_device_spec(text);
    } catch (const Error& e) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "device '" + text + "': " + e.what());
    }
    // Open the device (a vfio device opens its group here) before anything is recorded.
    std::vector<endpoint::DeviceSpec> fns = endpoint::expand_functions(spec);
    std::vector<std::unique_ptr<endpoint::Device>> devs;
    try {
        for (const auto& fn : fns) {
            devs.push_back(std::make_unique<endpoint::Device>(fn));
        }
    } catch (const std::exception& e) {
        refuse(SCI_ERR_ILLEGAL_PARAMETER, "device '" + text + "': " + e.what());
    }

    // The lowest free indices: no device here (or a removed one's slot) and none in the pool.
    std::map<std::uint32_t, lending::State> in_pool;
    for (const auto& s : m_pool->devices()) {
        in_pool[s.info.fdid.value] = s.state;
    }
    std::vector<lending::Fdid> fdids;
    for (std::uint32_t index = 0; index < k_host_index && fdids.size() < fns.size(); ++index) {
        lending::Fdid f = lending::make_fdid(m_opts.node_id, index);
        auto d = m_devices.find(f.value);
        bool slot_free = d == m_devices.end() || !d->second->dev;
        auto p = in_pool.find(f.value);
        bool pool_free = p == in_pool.end() || p->second == lending::State::removed;
        if (slot_free && pool_free) {
            fdids.push_back(f);
        }
    }
    if (fdids.size() < fns.size()) {
        refuse(SCI_ERR_NOSPC, "no free device index on node " + std::to_string(m_opts.node_id));
    }

    std::optional<lending::Fdid> pf;
    {
        std::unique_lock lock(m_devices_mu);
        for (std::size_t i = 0; i < fns.size(); ++i) {
            auto& slot = m_devices[fdids[i].value];
            if (!slot) {
                slot = std::make_unique<LentDevice>();
                m_device_order.push_back(fdids[i].value);
            }
            LentDevice& d = *slot;
            std::lock_guard dev_lock(d.mu);
            d.fdid = fdids[i];
            d.physfn = fns[i].vf_index >= 0 ? pf : std::nullopt;
            d.kind = endpoint::to_string(fns[i].kind);
            d.info = {d.fdid, fns[i].vendor_id, fns[i].device_id, fns[i].class_code, fns[i].name};
            d.dev = std::move(devs[i]);
            d.io_leases.clear();
            d.polled = false;
            d.faulted = false;
            d.resetting = false;
            if (fns[i].vf_index < 0) {
                pf = d.fdid;
            }
        }
    }
    json added = json::array();
    try {
        for (std::size_t i = 0; i < fns.size(); ++i) {
            m_pool->add_device(m_devices.at(fdids[i].value)->info, actor);
            m_pool->make_available(fdids[i], actor);
            added.push_back(lending::to_json(device_view(m_pool->device(fdids[i]))));
        }
    } catch (const lending::LendingError& e) {
        retire_devices(fdids);
        throw refused_for(e);
    }
    ++m_devices_generation;
    wake_device_engine();
    log("dev_add " + text + ": " + lending::to_string(fdids.front()) + " by " + actor);
    r.reply["fdid"] = lending::to_string(fdids.front());
    r.reply["devices"] = std::move(added);
    check_waits(); // someone may be waiting for it
}

// Main loop. The devices' endpoints (for vfio: the device and group descriptors) close here,
// so that the host can unbind vfio-pci.
void Daemon::retire_devices(const std::vector<lending::Fdid>& fdids) {
    std::vector<std::unique_ptr<endpoint::Device>> gone;
    // The engine touches a device only while it is polled (not any more: it left the pool);
    // its last pass over the device ended before it released this lock.
    { std::lock_guard engine(m_dev_engine_mu); }
    {
        std::unique_lock lock(m_devices_mu);
        for (auto f : fdids) {
            auto it = m_devices.find(f.value);
            if (it == m_devices.end() || !it->second->dev) {
                continue;
            }
            LentDevice& d = *it->second;
            std::lock_guard dev_lock(d.mu);
            d.polled = false;
            d.io_leases.clear();
            gone.push_back(std::move(d.dev));
        }
    }
    ++m_devices_generation;
    wake_device_engine();
    gone.clear();
}

void Daemon::op_dev_remove(Request& r) {
    require_admin(r.client, "dev_remove");
    const lending::Fdid fdid = fdid_arg(r.body);
    const bool force = wire::get_bool(r.body, "force", false);
    const std::string actor = admin_actor(r.client, r.body);
    LentDevice* d = lent_device(fdid);
    if (d == nullptr) {
        refuse(k_err_no_such_fdid,
               "fdid " + lending::to_string(fdid) + ": no such device on this node");
    }
    // The device and its VFs leave together.
    std::vector<lending::Fdid> family{fdid};
    for (auto v : m_device_order) {
        LentDevice* vf = lent_device(lending::Fdid{v});
        if (vf != nullptr && vf->physfn && *vf->physfn == fdid) {
            family.push_back(vf->fdid);
        }
    }
    try {
        for (auto f : family) {
            auto s = m_pool->device(f);
            if (holds_leases(s.state) && !force) {
                Refused busy{SCI_ERR_BUSY,
                             "fdid " + lending::to_string(f) + " is " +
                                 lending::to_string(s.state) +
                                 ": dev_remove refused while borrowed (force reclaims it first)"};
                busy.extra["refusal"] = "busy";
                busy.extra["state"] = lending::to_string(s.state);
                throw busy;
            }
        }
    } catch (const lending::LendingError& e) {
        throw refused_for(e);
    }
    defer(r, [this, family, actor] {
        json out = json::array();
        for (auto f : family) {
            auto s = m_pool_work->device(f);
            if (holds_leases(s.state)) {
                lost_context() = {"reclaimed by " + actor + ": the device leaves the pool", 0};
                m_pool_work->reclaim(f, actor, "the device leaves the pool (dev_remove force)");
                s = m_pool_work->device(f);
            }
            if (s.state != lending::State::removed) {
                m_pool_work->remove(f, actor);
            }
            out.push_back(lending::to_json(device_view(m_pool_work->device(f))));
        }
        // Before the reply (posts run in order): the endpoints close on the main loop.
        m_worker->post([this, family] { retire_devices(family); });
        return json{{"devices", std::move(out)}};
    });
}

void Daemon::op_audit_note(Request& r) {
    require_admin(r.client, "audit_note");
    lending::Fdid fdid = r.body.contains("fdid") ? fdid_arg(r.body)
                                                 : lending::make_fdid(m_opts.node_id, k_host_index);
    std::string reason = wire::get_str(r.body, "subject", 64) + ": " +
                         wire::get_str(r.body, "action", 200) + ": " +
                         wire::get_str(r.body, "result", 32);
    if (r.body.contains("detail")) {
        std::string detail = wire::get_str(r.body, "detail", 512);
        if (!detail.empty()) {
            reason += " (" + detail + ")";
        }
    }
    try {
        r.reply["row"] =
            lending::to_json(m_pool->note(fdid, admin_actor(r.client, r.body), reason));
    } catch (const lending::LendingError& e) {
        throw refused_for(e);
    }
}

} // namespace dis::disd
