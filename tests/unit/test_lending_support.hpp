// Shared helpers for the lending pool's unit tests: a manual clock, a scripted device, and a
// check that the audit log replays to the pool's current states.
#pragma once

#include "support.hpp"

#include "dis/lending.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

namespace dis::lending::test {

class ManualClock final : public Clock {
public:
    TimePoint now() const override { return TimePoint(Millis(m_ms.load())); }
    void advance(Millis d) { m_ms += d.count(); }

private:
    std::atomic<std::int64_t> m_ms{1'790'000'000'000}; // late 2026
};

// A device whose resets go as scripted (ok unless told), counting every call.
class FakeDevice final : public DeviceControl {
public:
    void quiesce(const DeviceInfo& d, const Lease& lease) override {
        std::function<void(const DeviceInfo&, const Lease&)> hook;
        {
            std::lock_guard lock(m_mu);
            ++m_quiesces[d.fdid.value];
            m_quiesced_leases.push_back(lease.id);
            hook = on_quiesce;
        }
        if (hook)
            hook(d, lease);
    }
    ResetOutcome reset(const DeviceInfo& d, Millis) override {
        std::function<void(const DeviceInfo&)> hook;
        ResetOutcome outcome = ResetOutcome::ok;
        {
            std::lock_guard lock(m_mu);
            ++m_resets[d.fdid.value];
            auto& script = m_script[d.fdid.value];
            if (!script.empty()) {
                outcome = script.front();
                script.pop_front();
            }
            hook = on_reset;
        }
        if (hook)
            hook(d);
        return outcome;
    }
    void script(Fdid f, std::initializer_list<ResetOutcome> outcomes) {
        std::lock_guard lock(m_mu);
        m_script[f.value].insert(m_script[f.value].end(), outcomes);
    }
    int resets(Fdid f) {
        std::lock_guard lock(m_mu);
        return m_resets[f.value];
    }
    int quiesces(Fdid f) {
        std::lock_guard lock(m_mu);
        return m_quiesces[f.value];
    }
    std::vector<std::int64_t> quiesced_leases() {
        std::lock_guard lock(m_mu);
        return m_quiesced_leases;
    }

    std::function<void(const DeviceInfo&, const Lease&)> on_quiesce;
    std::function<void(const DeviceInfo&)> on_reset;

private:
    std::mutex m_mu;
    std::map<std::uint32_t, int> m_resets, m_quiesces;
    std::map<std::uint32_t, std::deque<ResetOutcome>> m_script;
    std::vector<std::int64_t> m_quiesced_leases;
};

inline DeviceInfo device_info(std::uint32_t index, std::uint32_t node = 8) {
    return DeviceInfo{Fdid::make(node, index), 0x104c, 0xb500, 0xff0000,
                      "epf-test-" + std::to_string(index)};
}

inline Borrower borrower(std::uint32_t node, std::int64_t pid, std::uint32_t uid = 1000) {
    return Borrower{node, pid, uid};
}

struct PoolFixture {
    dis::test::TempDir dir;
    std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
    std::shared_ptr<FakeDevice> dev = std::make_shared<FakeDevice>();

    std::filesystem::path db() const { return dir.path() / "lending.db"; }
    PoolOptions options(Policy policy = {}) const {
        PoolOptions o;
        o.database = db();
        o.policy = std::move(policy);
        o.clock = clock;
        o.device = dev;
        return o;
    }
    std::unique_ptr<Pool> open(Policy policy = {}) const {
        return std::make_unique<Pool>(options(std::move(policy)));
    }
};

// Adds a device and makes it available (two transitions).
inline Fdid add_available(Pool& pool, std::uint32_t index) {
    auto info = device_info(index);
    pool.add_device(info, "test");
    pool.make_available(info.fdid, "test");
    return info.fdid;
}

// State and history never disagree: each device's audit rows chain (from == previous to),
// start from removed and end in the state the pool reports.
inline void require_history_replays(const Pool& pool) {
    std::map<std::uint32_t, State> replay;
    for (const auto& row : pool.history()) {
        auto it = replay.find(row.fdid.value);
        State before = it == replay.end() ? State::removed : it->second;
        INFO("audit row " << row.id << " fdid " << to_string(row.fdid) << " "
                          << to_string(row.event));
        REQUIRE(row.from == before);
        replay[row.fdid.value] = row.to;
    }
    for (const auto& d : pool.devices()) {
        INFO("fdid " << to_string(d.info.fdid));
        REQUIRE(replay.count(d.info.fdid.value) == 1);
        REQUIRE(replay[d.info.fdid.value] == d.state);
    }
}

} // namespace dis::lending::test
