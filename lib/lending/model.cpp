// The lending model's JSON (dis/lending_model.hpp): writers and strict readers.
#include "dis/lending_model.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <cstdio>

namespace dis::lending {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const char* what, const std::string& key) {
    throw Error(ErrorKind::invalid_input, std::string("lending ") + what + ": field '" + key +
                                              "' missing or of the wrong type");
}

const json& field(const json& j, const char* what, const std::string& key) {
    auto it = j.find(key);
    if (!j.is_object() || it == j.end()) {
        bad(what, key);
    }
    return *it;
}

std::int64_t int_field(const json& j, const char* what, const std::string& key) {
    const json& v = field(j, what, key);
    if (!v.is_number_integer()) {
        bad(what, key);
    }
    return v.get<std::int64_t>();
}

std::string str_field(const json& j, const char* what, const std::string& key) {
    const json& v = field(j, what, key);
    if (!v.is_string()) {
        bad(what, key);
    }
    return v.get<std::string>();
}

// A hex string such as "0x104c" that fits `max`.
std::uint64_t hex_field(const json& j, const char* what, const std::string& key,
                        std::uint64_t max) {
    std::string s = str_field(j, what, key);
    try {
        std::size_t used = 0;
        unsigned long long v = std::stoull(s, &used, 16);
        if (used == s.size() && s.rfind("0x", 0) == 0 && v <= max) {
            return v;
        }
    } catch (const std::exception&) {
    }
    bad(what, key);
}

Fdid fdid_field(const json& j, const char* what, const std::string& key) {
    try {
        return parse_fdid(str_field(j, what, key));
    } catch (const Error&) {
        bad(what, key);
    }
}

json borrower_json(json j, const std::optional<Borrower>& b) {
    j["node_id"] = b ? json(b->node_id) : json(nullptr);
    j["pid"] = b ? json(b->pid) : json(nullptr);
    j["uid"] = b ? json(b->uid) : json(nullptr);
    return j;
}

} // namespace

std::int64_t to_unix_ms(TimePoint t) {
    return t.time_since_epoch().count();
}

TimePoint from_unix_ms(std::int64_t ms) {
    return TimePoint(Millis(ms));
}

json to_json(const Lease& l) {
    return {{"id", l.id},
            {"fdid", to_string(l.fdid)},
            {"node_id", l.borrower.node_id},
            {"pid", l.borrower.pid},
            {"uid", l.borrower.uid},
            {"mode", to_string(l.mode)},
            {"priority", l.priority},
            {"granted_ms", to_unix_ms(l.granted)},
            {"expires_ms", to_unix_ms(l.expires)},
            {"ttl_ms", l.ttl.count()},
            {"rule", l.rule},
            {"reset_on_release", l.reset_on_release}};
}

Lease lease_from_json(const json& j) {
    constexpr const char* w = "lease";
    Lease l;
    l.id = int_field(j, w, "id");
    l.fdid = fdid_field(j, w, "fdid");
    l.borrower.node_id = static_cast<std::uint32_t>(int_field(j, w, "node_id"));
    l.borrower.pid = int_field(j, w, "pid");
    l.borrower.uid = static_cast<std::uint32_t>(int_field(j, w, "uid"));
    std::string mode = str_field(j, w, "mode");
    if (mode != "exclusive" && mode != "shared") {
        bad(w, "mode");
    }
    l.mode = mode == "shared" ? Mode::shared : Mode::exclusive;
    l.priority = static_cast<int>(j.value("priority", 0));
    l.granted = from_unix_ms(int_field(j, w, "granted_ms"));
    l.expires = from_unix_ms(int_field(j, w, "expires_ms"));
    l.ttl = Millis(int_field(j, w, "ttl_ms"));
    l.rule = str_field(j, w, "rule");
    l.reset_on_release = j.value("reset_on_release", true);
    return l;
}

json to_json(const DeviceView& d) {
    const DeviceStatus& s = d.status;
    json leases = json::array();
    for (const auto& l : s.leases) {
        leases.push_back(to_json(l));
    }
    return {{"fdid", to_string(s.info.fdid)},
            {"node_id", d.node_id},
            {"index", s.info.fdid.index()},
            {"kind", d.kind},
            {"name", s.info.name},
            {"vendor_id", hex(s.info.vendor_id)},
            {"device_id", hex(s.info.device_id)},
            {"class", hex(s.info.class_code)},
            {"bars", d.bars},
            {"physfn", d.physfn ? json(to_string(*d.physfn)) : json(nullptr)},
            {"state", to_string(s.state)},
            {"since_ms", to_unix_ms(s.since)},
            {"reason", s.reason},
            {"waiters", s.waiters},
            {"leases", leases}};
}

DeviceView device_from_json(const json& j) {
    constexpr const char* w = "device";
    DeviceView d;
    DeviceStatus& s = d.status;
    s.info.fdid = fdid_field(j, w, "fdid");
    d.node_id = static_cast<std::uint32_t>(int_field(j, w, "node_id"));
    d.kind = str_field(j, w, "kind");
    s.info.name = str_field(j, w, "name");
    s.info.vendor_id = static_cast<std::uint16_t>(hex_field(j, w, "vendor_id", 0xffff));
    s.info.device_id = static_cast<std::uint16_t>(hex_field(j, w, "device_id", 0xffff));
    s.info.class_code = static_cast<std::uint32_t>(hex_field(j, w, "class", 0xffffff));
    const json& bars = field(j, w, "bars");
    if (!bars.is_array()) {
        bad(w, "bars");
    }
    for (const auto& b : bars) {
        if (!b.is_number_unsigned()) {
            bad(w, "bars");
        }
        d.bars.push_back(b.get<std::uint64_t>());
    }
    if (const json& pf = field(j, w, "physfn"); !pf.is_null()) {
        d.physfn = fdid_field(j, w, "physfn");
    }
    auto state = parse_state(str_field(j, w, "state"));
    if (!state) {
        bad(w, "state");
    }
    s.state = *state;
    s.since = from_unix_ms(int_field(j, w, "since_ms"));
    s.reason = str_field(j, w, "reason");
    s.waiters = static_cast<std::size_t>(int_field(j, w, "waiters"));
    const json& leases = field(j, w, "leases");
    if (!leases.is_array()) {
        bad(w, "leases");
    }
    for (const auto& l : leases) {
        s.leases.push_back(lease_from_json(l));
    }
    return d;
}

json to_json(const AuditRow& r) {
    json j{{"id", r.id},
           {"time_ms", to_unix_ms(r.time)},
           {"fdid", to_string(r.fdid)},
           {"event", to_string(r.event)},
           {"from", to_string(r.from)},
           {"to", to_string(r.to)},
           {"lease_id", r.lease_id ? json(*r.lease_id) : json(nullptr)},
           {"actor", r.actor},
           {"reason", r.reason}};
    return borrower_json(std::move(j), r.borrower);
}

AuditRow audit_from_json(const json& j) {
    constexpr const char* w = "audit row";
    AuditRow r;
    r.id = int_field(j, w, "id");
    r.time = from_unix_ms(int_field(j, w, "time_ms"));
    r.fdid = fdid_field(j, w, "fdid");
    auto event = parse_event(str_field(j, w, "event"));
    auto from = parse_state(str_field(j, w, "from"));
    auto to = parse_state(str_field(j, w, "to"));
    if (!event || !from || !to) {
        bad(w, !event ? "event" : !from ? "from" : "to");
    }
    r.event = *event;
    r.from = *from;
    r.to = *to;
    if (!field(j, w, "node_id").is_null()) {
        r.borrower =
            Borrower{static_cast<std::uint32_t>(int_field(j, w, "node_id")), int_field(j, w, "pid"),
                     static_cast<std::uint32_t>(int_field(j, w, "uid"))};
    }
    if (!field(j, w, "lease_id").is_null()) {
        r.lease_id = int_field(j, w, "lease_id");
    }
    r.actor = str_field(j, w, "actor");
    r.reason = str_field(j, w, "reason");
    return r;
}

} // namespace dis::lending
