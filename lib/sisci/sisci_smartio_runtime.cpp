// libsisci runtime, the SmartIO part: borrowed devices in the event routing (their loss) and
// the per-process lease renewal thread.
#include "client.hpp"

#include <algorithm>

namespace dis::sisci {

void Runtime::lose_device_locked(const std::shared_ptr<DeviceState>& d, const std::string& reason,
                                 sci_error_t err) {
    {
        std::lock_guard lock(d->mutex);
        if (d->lost) {
            return;
        }
        d->lost = true;
        d->lost_reason = reason;
        d->lost_err = err;
    }
    d->cv.notify_all();
    for (auto* s : m_remote) {
        if (s->dev == d && !s->lost.exchange(true) && !s->disconnected.load()) {
            deliver_remote(s, {SCI_CB_LOST, s->node, err});
        }
    }
}

void Runtime::device_lost(const std::shared_ptr<DeviceState>& d, const std::string& reason,
                          sci_error_t err) {
    std::lock_guard reg(m_reg_mutex);
    lose_device_locked(d, reason, err);
}

void Runtime::add(const std::shared_ptr<DeviceState>& d) {
    {
        std::lock_guard l(m_reg_mutex);
        m_devices.insert(d);
    }
    std::lock_guard lock(m_renew_mutex);
    if (!m_renew_thread.joinable()) {
        m_renew_thread = std::thread([this] { renewer(); });
    }
    m_renew_cv.notify_all();
}

void Runtime::remove(const std::shared_ptr<DeviceState>& d) {
    std::lock_guard l(m_reg_mutex);
    m_devices.erase(d);
}

// Renews every lease this process holds at a third of its TTL, but only while this process's
// own node answers: a borrower node that is lost stops renewing, and its leases run out.
void Runtime::renewer() {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(m_renew_mutex);
    while (!m_renew_stop) {
        auto now = clock::now();
        auto next = now + std::chrono::seconds(1);
        std::vector<std::shared_ptr<DeviceState>> due;
        {
            std::lock_guard reg(m_reg_mutex);
            for (const auto& d : m_devices) {
                std::lock_guard dl(d->mutex);
                if (d->joined || d->lost || d->returned) {
                    continue;
                }
                if (d->next_renew <= now) {
                    due.push_back(d);
                } else {
                    next = std::min(next, d->next_renew);
                }
            }
        }
        if (due.empty()) {
            m_renew_cv.wait_until(lock, next, [&] { return m_renew_stop; });
            continue;
        }
        lock.unlock();
        sci_error_t err = SCI_ERR_OK;
        bool home_ok = conn(m_node, err) != nullptr;
        for (const auto& d : due) {
            if (!home_ok) {
                std::lock_guard dl(d->mutex);
                d->next_renew = clock::now() + std::chrono::milliseconds(200);
                continue;
            }
            std::uint32_t ttl;
            {
                std::lock_guard dl(d->mutex);
                ttl = d->ttl_ms;
            }
            Reply r =
                d->conn->call({{"op", "dev_renew"}, {"lease_id", d->lease_id}, {"lease_ms", ttl}});
            if (r.err == SCI_ERR_OK) {
                std::uint32_t granted = ttl;
                if (auto l = r.body.find("lease"); l != r.body.end() && l->is_object()) {
                    granted = l->value("ttl_ms", ttl);
                }
                std::lock_guard dl(d->mutex);
                d->ttl_ms = granted;
                d->next_renew = clock::now() + std::chrono::milliseconds(std::max(granted / 3, 1u));
            } else if (r.err == SCI_ERR_NODE_NOT_RESPONDING) {
                // The lender is gone: its EOF marks the device lost.
                std::lock_guard dl(d->mutex);
                d->next_renew = clock::now() + std::chrono::milliseconds(200);
            } else {
                device_lost(d, "lease renewal refused: " + r.body.value("message", std::string()),
                            SCI_ERR_NOT_AVAILABLE);
            }
        }
        lock.lock();
    }
}

} // namespace dis::sisci
