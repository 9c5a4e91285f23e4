// disd's lending admin ops (reclaim, reset, available, unavailable) and the device engine's
// reports (an interrupt to forward, a device that stopped responding). Reclaims, resets and
// faults may quiesce or reset a device: they run on a lending worker and reply later.
#include "daemon.hpp"

#include "dis/lending_model.hpp"

namespace dis::disd {

using lending::LendingError;

// ---- admin

void Daemon::op_dev_reclaim(Request& r) {
    require_admin(r.client, "dev_reclaim");
    lending::Fdid fdid = fdid_arg(r.body);
    std::string reason =
        r.body.contains("reason") ? wire::get_str(r.body, "reason", 200) : "forced reclaim";
    std::string actor = admin_actor(r.client, r.body);
    defer(r, [this, fdid, reason, actor] {
        lost_context() = {"reclaimed by " + actor + ": " + reason, 0};
        json out = json::array();
        const auto leases = m_pool_work->reclaim(fdid, actor, reason);
        m_reclaims_admin += leases.size();
        for (const auto& l : leases) {
            out.push_back(lending::to_json(l));
        }
        return json{{"leases", std::move(out)}};
    });
}

void Daemon::op_dev_reset(Request& r) {
    require_admin(r.client, "dev_reset");
    lending::Fdid fdid = fdid_arg(r.body);
    std::string actor = admin_actor(r.client, r.body);
    defer(r, [this, fdid, actor] {
        auto outcome = m_pool_work->reset(fdid, actor);
        const char* name = outcome == lending::ResetOutcome::ok       ? "ok"
                           : outcome == lending::ResetOutcome::failed ? "failed"
                                                                      : "timed_out";
        json out{{"outcome", name}};
        out["device"] = lending::to_json(device_view(m_pool_work->device(fdid)));
        return out;
    });
}

void Daemon::op_dev_availability(Request& r) {
    std::string op = wire::get_str(r.body, "op", 32);
    require_admin(r.client, op);
    lending::Fdid fdid = fdid_arg(r.body);
    try {
        if (op == "dev_available") {
            m_pool->make_available(fdid, admin_actor(r.client, r.body));
        } else {
            m_pool->make_unavailable(fdid, admin_actor(r.client, r.body));
        }
        r.reply["device"] = lending::to_json(device_view(m_pool->device(fdid)));
    } catch (const LendingError& e) {
        throw refused_for(e);
    }
    check_waits(); // an offered device goes to its waiters at once
}

// ---- the device engine's reports (main loop)

void Daemon::device_irq(lending::Fdid fdid, std::int64_t lease_id, int client, int type,
                        int number) {
    send_to(client, json{{"event", "dev_irq"},
                         {"fdid", lending::to_string(fdid)},
                         {"lease_id", lease_id},
                         {"type", type},
                         {"number", number}});
}

// Main loop: the engine saw a command pending too long. Quarantined on a worker; the
// borrowers hear dev_lost.
void Daemon::device_fault(lending::Fdid fdid, const std::string& reason) {
    ++m_faults;
    log("device " + lending::to_string(fdid) + ": " + reason);
    m_worker->submit([this, fdid, reason] {
        try {
            auto leases = m_pool_work->fault(fdid, reason);
            m_reclaims_fault += leases.size();
            LentDevice* d = lent_device(fdid);
            if (d != nullptr) {
                std::lock_guard lock(d->mu);
                d->io_leases.clear();
            }
            if (d != nullptr) {
                d->clear_io();
            }
            m_worker->post([this, leases, reason] {
                for (const auto& l : leases) {
                    lease_gone(l.id, "device fault: " + reason, 0);
                }
            });
        } catch (const std::exception& e) {
            log("fault of " + lending::to_string(fdid) + ": " + e.what());
        }
    });
}

} // namespace dis::disd
