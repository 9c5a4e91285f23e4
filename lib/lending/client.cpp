// Client of the lender daemons: one SOCK_SEQPACKET connection per lender node, speaking the
// wire protocol directly (as lib/fabric/admin.cpp does), with the daemon's events kept in a
// queue instead of dropped, since a lease holder must see dev_lost.
#include "dis/lending_client.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "wire.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <tuple>

namespace dis::lending {

namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// The vendor's codes the lender answers with (sisci_error.h; not included so that a vendor
// build keeps one set of SISCI headers, as in admin.cpp). The reply's "refusal" says more and
// is preferred; these are the fallback for replies without one.
constexpr int k_err_timeout = 0x90A;           // SCI_ERR_TIMEOUT
constexpr int k_err_illegal_operation = 0x916; // SCI_ERR_ILLEGAL_OPERATION
constexpr int k_err_not_available = 0x91C;     // SCI_ERR_NOT_AVAILABLE

// Slow operations: a reply deferred until the lender's worker has quiesced and reset the
// device (its reset timeout is 5 s by default, a hung reset is cut there).
constexpr ClientMillis k_slow_op{60000};

// Named in the audit log's actor of admin operations ("admin uid U pid P via dis-tool").
constexpr const char* k_via = "dis-tool";

ErrorKind kind_of_refusal(const std::string& refusal, int err) {
    if (refusal == "no_such_device" || refusal == "no_such_lease")
        return ErrorKind::not_found;
    if (refusal == "busy" || refusal == "guard_failed" || refusal == "wait_ended")
        return ErrorKind::busy;
    if (refusal == "policy" || refusal == "illegal_transition" || refusal == "invalid_request")
        return ErrorKind::invalid_input;
    if (err == wire::k_reply_access)
        return ErrorKind::permission;
    if (err == k_err_not_available || err == k_err_timeout)
        return ErrorKind::busy;
    if (err == k_err_illegal_operation)
        return ErrorKind::invalid_input;
    return ErrorKind::invalid_input;
}

} // namespace

std::string join_value(const HeldLease& held) {
    return to_string(held.lease.fdid) + ":" + std::to_string(held.lease.id) + ":" + held.token;
}

namespace {

// Reads a reply member through the model's strict readers; a reply that does not fit the
// schema is a daemon we cannot understand.
template <typename Read>
auto read_reply(const json& body, const char* key, const std::string& op, Read&& read) {
    auto it = body.find(key);
    if (it == body.end())
        throw Error(ErrorKind::fabric_down, "bad " + op + " reply: no '" + key + "'");
    try {
        return read(*it);
    } catch (const Error& e) {
        throw Error(ErrorKind::fabric_down, "bad " + op + " reply: " + e.what());
    } catch (const json::exception& e) {
        throw Error(ErrorKind::fabric_down, "bad " + op + " reply: " + e.what());
    }
}

template <typename T, typename Read> std::vector<T> read_array(const json& j, Read&& read) {
    if (!j.is_array())
        throw Error(ErrorKind::invalid_input, "not an array");
    std::vector<T> out;
    for (const auto& e : j)
        out.push_back(read(e));
    return out;
}

LenderEvent to_event(json body) {
    LenderEvent e;
    e.event = body.value("event", std::string());
    try {
        if (body.contains("fdid") && body["fdid"].is_string())
            e.fdid = parse_fdid(body["fdid"].get<std::string>());
        else if (body.contains("fdid") && body["fdid"].is_number_unsigned())
            e.fdid = Fdid{body["fdid"].get<std::uint32_t>()};
    } catch (const Error&) {
    }
    if (body.contains("lease_id") && body["lease_id"].is_number_integer())
        e.lease_id = body["lease_id"].get<std::int64_t>();
    if (body.contains("reason") && body["reason"].is_string())
        e.reason = body["reason"].get<std::string>();
    e.body = std::move(body);
    return e;
}

} // namespace

struct LenderClient::Impl {
    std::uint32_t node = 0;
    ClientMillis timeout{5000};
    wire::Fd fd;
    std::uint64_t seq = 0;
    std::deque<json> events;

    std::string who() const { return "lender node " + std::to_string(node); }

    [[noreturn]] void lost(const std::string& what) const {
        throw Error(ErrorKind::fabric_down, who() + ": " + what);
    }

    // Receives one message, waiting at most until `deadline`; false when none came.
    bool receive(Steady::time_point deadline, wire::Message& m) {
        for (;;) {
            auto left = std::chrono::duration_cast<ClientMillis>(deadline - Steady::now()).count();
            pollfd p{fd.get(), POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                lost(std::string("poll: ") + std::strerror(errno));
            if (r == 0)
                return false;
            auto st = wire::recv_message(fd.get(), m);
            if (st == wire::RecvStatus::again)
                continue;
            if (st == wire::RecvStatus::malformed)
                lost("malformed message from the daemon");
            if (st != wire::RecvStatus::ok)
                lost("the daemon closed the connection");
            return true;
        }
    }

    // Sends `req` and waits for its reply, queueing events; a refusal throws.
    json call(json req, std::optional<Fdid> about, ClientMillis wait) {
        const std::uint64_t my_seq = ++seq;
        const std::string op = req.value("op", std::string());
        req["seq"] = my_seq;
        if (!wire::send_message(fd.get(), req))
            lost(op + ": " + std::strerror(errno));
        const auto deadline = Steady::now() + wait;
        for (;;) {
            wire::Message m;
            if (!receive(deadline, m))
                throw Error(ErrorKind::timeout, who() + ": no reply to " + op + " within " +
                                                    std::to_string(wait.count()) + " ms");
            auto it = m.body.find("seq");
            if (it == m.body.end()) {
                if (m.body.contains("event"))
                    events.push_back(std::move(m.body));
                continue;
            }
            if (!it->is_number_unsigned() || it->get<std::uint64_t>() != my_seq)
                continue; // a late reply to a call given up on
            int err = m.body.value("err", -1);
            if (err != wire::k_reply_ok)
                refuse(m.body, err, op, about);
            return std::move(m.body);
        }
    }

    json call(json req, std::optional<Fdid> about) { return call(std::move(req), about, timeout); }

    [[noreturn]] void refuse(const json& body, int err, const std::string& op,
                             std::optional<Fdid> about) const {
        std::string refusal = body.contains("refusal") && body["refusal"].is_string()
                                  ? body["refusal"].get<std::string>()
                                  : std::string();
        std::string message = body.contains("message") && body["message"].is_string()
                                  ? body["message"].get<std::string>()
                                  : op + " refused (error 0x" +
                                        [err] {
                                            char hex[16];
                                            std::snprintf(hex, sizeof hex, "%x", err);
                                            return std::string(hex);
                                        }() +
                                        ")";
        // The lender's message names the fdid, the state and why; say which device when a
        // generic refusal does not.
        if (about && message.find(to_string(*about)) == std::string::npos) {
            std::string state = body.contains("state") && body["state"].is_string()
                                    ? " (" + body["state"].get<std::string>() + ")"
                                    : std::string();
            message = "fdid " + to_string(*about) + state + ": " + message;
        }
        throw Error(kind_of_refusal(refusal, err), message);
    }
};

LenderClient::LenderClient(const std::string& fabric_dir, std::uint32_t lender_node,
                           std::uint32_t client_node, ClientMillis timeout)
    : m_impl(std::make_unique<Impl>()) {
    m_impl->node = lender_node;
    m_impl->timeout = timeout;
    const std::string where = "lender node " + std::to_string(lender_node) + " in " + fabric_dir;
    m_impl->fd =
        wire::Fd(wire::connect_socket(wire::socket_path(fabric_dir, lender_node), timeout));
    if (!m_impl->fd.valid())
        throw Error(ErrorKind::fabric_down, "cannot reach " + where + ": " + std::strerror(errno) +
                                                " (is its daemon running? dis-tool fabric status)");
    if (auto why = wire::check_daemon_peer(m_impl->fd.get(), "node " + std::to_string(lender_node));
        !why.empty())
        throw Error(ErrorKind::permission, "refusing " + where + ": " + why);
    m_impl->call({{"op", "hello"}, {"version", wire::k_protocol_version}, {"node_id", client_node}},
                 std::nullopt);
}

LenderClient::~LenderClient() = default;
LenderClient::LenderClient(LenderClient&&) noexcept = default;
LenderClient& LenderClient::operator=(LenderClient&&) noexcept = default;

std::uint32_t LenderClient::lender_node() const {
    return m_impl->node;
}

int LenderClient::fd() const {
    return m_impl->fd.get();
}

std::vector<DeviceView> LenderClient::list() {
    return read_reply(m_impl->call({{"op", "dev_list"}}, std::nullopt), "devices", "dev_list",
                      [](const json& j) { return read_array<DeviceView>(j, device_from_json); });
}

DeviceView LenderClient::show(Fdid fdid) {
    return read_reply(m_impl->call({{"op", "dev_show"}, {"fdid", fdid.value}}, fdid), "device",
                      "dev_show", device_from_json);
}

HeldLease LenderClient::borrow(const BorrowOptions& options) {
    json req = {{"op", "dev_borrow"},
                {"fdid", options.fdid.value},
                {"exclusive", options.exclusive},
                {"lease_ms", options.lease.count()}};
    ClientMillis wait = m_impl->timeout;
    if (options.wait) {
        req["wait_ms"] = std::max<long long>(options.wait->count(), 1);
        wait += *options.wait; // the reply is deferred until granted or timed out
    }
    auto body = m_impl->call(std::move(req), options.fdid, wait);
    HeldLease held;
    held.lease = read_reply(body, "lease", "dev_borrow", lease_from_json);
    held.token = read_reply(body, "lease", "dev_borrow",
                            [](const json& l) { return l.at("token").get<std::string>(); });
    if (body.contains("device"))
        held.device = read_reply(body, "device", "dev_borrow", device_from_json);
    return held;
}

Lease LenderClient::renew(std::int64_t lease_id, ClientMillis ttl) {
    return read_reply(
        m_impl->call({{"op", "dev_renew"}, {"lease_id", lease_id}, {"lease_ms", ttl.count()}},
                     std::nullopt),
        "lease", "dev_renew", lease_from_json);
}

void LenderClient::release(std::int64_t lease_id) {
    m_impl->call({{"op", "dev_return"}, {"lease_id", lease_id}}, std::nullopt, k_slow_op);
}

void LenderClient::return_lease(Fdid fdid, std::int64_t lease_id) {
    m_impl->call(
        {{"op", "dev_return"}, {"via", k_via}, {"fdid", fdid.value}, {"lease_id", lease_id}}, fdid,
        k_slow_op);
}

std::vector<Lease> LenderClient::reclaim(Fdid fdid, const std::string& reason) {
    auto body = m_impl->call(
        {{"op", "dev_reclaim"}, {"via", k_via}, {"fdid", fdid.value}, {"reason", reason}}, fdid,
        k_slow_op);
    if (!body.contains("leases"))
        return {};
    return read_reply(body, "leases", "dev_reclaim",
                      [](const json& j) { return read_array<Lease>(j, lease_from_json); });
}

std::string LenderClient::reset(Fdid fdid) {
    auto body =
        m_impl->call({{"op", "dev_reset"}, {"via", k_via}, {"fdid", fdid.value}}, fdid, k_slow_op);
    return read_reply(body, "outcome", "dev_reset",
                      [](const json& j) { return j.get<std::string>(); });
}

void LenderClient::make_available(Fdid fdid) {
    m_impl->call({{"op", "dev_available"}, {"via", k_via}, {"fdid", fdid.value}}, fdid);
}

void LenderClient::make_unavailable(Fdid fdid) {
    m_impl->call({{"op", "dev_unavailable"}, {"via", k_via}, {"fdid", fdid.value}}, fdid);
}

std::vector<AuditRow> LenderClient::history(std::optional<Fdid> fdid,
                                            std::optional<std::int64_t> since_ms,
                                            std::optional<std::uint32_t> limit) {
    json req = {{"op", "dev_history"}};
    if (fdid)
        req["fdid"] = fdid->value;
    if (since_ms)
        req["since_ms"] = *since_ms;
    if (limit)
        req["limit"] = *limit;
    return read_reply(m_impl->call(std::move(req), fdid), "rows", "dev_history",
                      [](const json& j) { return read_array<AuditRow>(j, audit_from_json); });
}

std::vector<DeviceView> LenderClient::add_device(const std::string& spec) {
    auto body = m_impl->call({{"op", "dev_add"}, {"via", k_via}, {"spec", spec}}, std::nullopt);
    return read_reply(body, "devices", "dev_add",
                      [](const json& j) { return read_array<DeviceView>(j, device_from_json); });
}

std::vector<DeviceView> LenderClient::remove_device(Fdid fdid, bool force) {
    auto body =
        m_impl->call({{"op", "dev_remove"}, {"via", k_via}, {"fdid", fdid.value}, {"force", force}},
                     fdid, k_slow_op);
    return read_reply(body, "devices", "dev_remove",
                      [](const json& j) { return read_array<DeviceView>(j, device_from_json); });
}

AuditRow LenderClient::audit_note(std::optional<Fdid> fdid, const std::string& subject,
                                  const std::string& action, const std::string& result,
                                  const std::string& detail) {
    json req = {{"op", "audit_note"},
                {"via", k_via},
                {"subject", subject.substr(0, 64)},
                {"action", action.substr(0, 200)},
                {"result", result.substr(0, 32)},
                {"detail", detail.substr(0, 512)}};
    if (fdid)
        req["fdid"] = fdid->value;
    return read_reply(m_impl->call(std::move(req), fdid), "row", "audit_note", audit_from_json);
}

std::optional<LenderEvent> LenderClient::next_event(ClientMillis wait) {
    const auto deadline = Steady::now() + wait;
    while (m_impl->events.empty()) {
        wire::Message m;
        if (!m_impl->receive(deadline, m))
            return std::nullopt;
        if (!m.body.contains("seq") && m.body.contains("event"))
            m_impl->events.push_back(std::move(m.body));
    }
    json e = std::move(m_impl->events.front());
    m_impl->events.pop_front();
    return to_event(std::move(e));
}

// ---- across the fabric ----------------------------------------------------------------------

PoolView list_pool(const std::string& fabric_dir, ClientMillis timeout) {
    PoolView view;
    auto nodes = fabric::discover_nodes(fabric_dir);
    if (nodes.empty())
        throw Error(ErrorKind::fabric_down, "no fabric nodes in " + fabric_dir +
                                                " (start one with: dis-tool fabric start)");
    for (auto id : nodes) {
        try {
            LenderClient c(fabric_dir, id, 0, timeout);
            for (auto& d : c.list())
                view.devices.push_back(std::move(d));
            view.nodes.push_back(id);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::permission)
                throw;
            view.unreachable.push_back({id, e.what()});
        }
    }
    std::sort(view.devices.begin(), view.devices.end(),
              [](const DeviceView& a, const DeviceView& b) {
                  return a.status.info.fdid < b.status.info.fdid;
              });
    return view;
}

HistoryView pool_history(const std::string& fabric_dir, std::optional<Fdid> fdid,
                         std::optional<std::int64_t> since_ms, std::optional<std::uint32_t> limit,
                         ClientMillis timeout) {
    HistoryView view;
    std::vector<std::uint32_t> nodes;
    if (fdid)
        nodes.push_back(fdid->node_id());
    else
        nodes = fabric::discover_nodes(fabric_dir);
    if (nodes.empty())
        throw Error(ErrorKind::fabric_down, "no fabric nodes in " + fabric_dir +
                                                " (start one with: dis-tool fabric start)");
    for (auto id : nodes) {
        try {
            LenderClient c(fabric_dir, id, 0, timeout);
            for (auto& r : c.history(fdid, since_ms, limit))
                view.rows.push_back(std::move(r));
            view.nodes.push_back(id);
        } catch (const Error& e) {
            if (fdid || e.kind() == ErrorKind::permission)
                throw; // the one lender asked about: its failure is the answer
            view.unreachable.push_back({id, e.what()});
        }
    }
    auto key = [](const AuditRow& r) { return std::make_tuple(r.time, r.fdid, r.id); };
    std::stable_sort(view.rows.begin(), view.rows.end(),
                     [&](const AuditRow& a, const AuditRow& b) { return key(a) < key(b); });
    return view;
}

} // namespace dis::lending
