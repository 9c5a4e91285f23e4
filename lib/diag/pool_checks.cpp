// The pool group of dis::diag: every lender's devices (dis/lending_client.hpp list_pool) and
// their audit rows since the baseline (pool_history): a failed (quarantined) device fails; a
// reset that failed or timed out since the baseline, a lease past its TTL, or a lease that
// expired since the baseline (its borrower stopped renewing) warns.
#include "checks.hpp"

#include "dis/error.hpp"
#include "dis/lending_client.hpp"

#include <chrono>
#include <map>

namespace dis::diag::detail {

namespace lend = dis::lending;

namespace {

constexpr const char* k_audit_key = "pool/audit_ms";

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Events {
    std::uint64_t reset_failed = 0;
    std::uint64_t expired = 0;
    std::string last_reset_reason;
};

} // namespace

void check_pool(const Options& o, const Baseline& b, nlohmann::json& baseline,
                std::vector<Check>& out) {
    lend::PoolView pool;
    try {
        pool = lend::list_pool(o.fabric_dir, o.timeout);
    } catch (const Error& e) {
        out.push_back(make_check("pool", "devices", Verdict::fail,
                                 std::string("pool not readable: ") + e.what()));
        return;
    }
    for (const auto& f : pool.unreachable)
        out.push_back(make_check("pool", "node " + std::to_string(f.node_id), Verdict::fail,
                                 "lender not answering: " + f.error, {{"node_id", f.node_id}}));

    std::optional<std::int64_t> since;
    if (auto it = b.counters.find(k_audit_key); it != b.counters.end() && it->is_number_integer())
        since = it->get<std::int64_t>() + 1;
    std::int64_t newest = since ? *since - 1 : 0;
    std::map<std::string, Events> events; // by fdid text
    try {
        auto history =
            lend::pool_history(o.fabric_dir, std::nullopt, since, std::nullopt, o.timeout);
        for (const auto& row : history.rows) {
            std::int64_t t = lend::to_unix_ms(row.time);
            newest = std::max(newest, t);
            auto& e = events[lend::to_string(row.fdid)];
            if (row.event == lend::Event::reset_failed || row.event == lend::Event::reset_timeout) {
                ++e.reset_failed;
                e.last_reset_reason = row.reason;
            } else if (row.event == lend::Event::expire) {
                ++e.expired;
            }
        }
    } catch (const Error& e) {
        out.push_back(make_check("pool", "history", Verdict::fail,
                                 std::string("audit log not readable: ") + e.what()));
    }
    baseline[k_audit_key] = std::max<std::int64_t>(newest, since ? *since - 1 : 0);

    if (pool.devices.empty()) {
        out.push_back(make_check("pool", "devices", Verdict::pass,
                                 "no lendable devices on nodes " +
                                     [&] {
                                         std::string s;
                                         for (auto n : pool.nodes)
                                             s += (s.empty() ? "" : ", ") + std::to_string(n);
                                         return s.empty() ? std::string("none") : s;
                                     }(),
                                 {{"nodes", pool.nodes}}));
        return;
    }
    const std::int64_t now = now_ms();
    for (const auto& d : pool.devices) {
        const auto& st = d.status;
        std::string fdid = lend::to_string(st.info.fdid);
        std::string what = "fdid " + fdid;
        const Events& ev = events[fdid];
        std::vector<std::string> past_ttl;
        for (const auto& l : st.leases) {
            std::int64_t over = now - lend::to_unix_ms(l.expires);
            if (over > 0)
                past_ttl.push_back("lease " + std::to_string(l.id) + " past its TTL by " +
                                   std::to_string(over) + " ms");
        }
        nlohmann::json counters = {{"node_id", d.node_id},
                                   {"state", lend::to_string(st.state)},
                                   {"leases", st.leases.size()},
                                   {"leases_past_ttl", past_ttl.size()},
                                   {"waiters", st.waiters},
                                   {"resets_failed_new", ev.reset_failed},
                                   {"leases_expired_new", ev.expired}};
        std::string name = st.info.name.empty() ? "" : " (" + st.info.name + ")";
        if (st.state == lend::State::failed) {
            out.push_back(
                make_check("pool", what, Verdict::fail,
                           "failed" + name + ": " + (st.reason.empty() ? "quarantined" : st.reason),
                           counters));
            continue;
        }
        std::string warn;
        if (!past_ttl.empty())
            warn = past_ttl.front();
        else if (ev.reset_failed)
            warn = std::to_string(ev.reset_failed) + " failed reset(s) since the last clear" +
                   (ev.last_reset_reason.empty() ? "" : " (" + ev.last_reset_reason + ")");
        else if (ev.expired)
            warn = std::to_string(ev.expired) +
                   " lease(s) expired since the last clear (the borrower stopped renewing)";
        if (!warn.empty()) {
            out.push_back(make_check("pool", what, Verdict::warn,
                                     std::string(lend::to_string(st.state)) + name + ": " + warn,
                                     counters));
            continue;
        }
        out.push_back(make_check("pool", what, Verdict::pass,
                                 std::string(lend::to_string(st.state)) + name + ", lender node " +
                                     std::to_string(d.node_id),
                                 counters));
    }
}

} // namespace dis::diag::detail
