// The lending policy file (TOML, see dis-tool-lending-policy(5)) and its decisions.
#include "dis/lending_policy.hpp"

#include "dis/error.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace dis::lending {

namespace {

using Millis = std::chrono::milliseconds;

class Reader {
public:
    explicit Reader(std::string_view source) : m_source(source) {}

    [[noreturn]] void fail(const toml::node& node, std::string_view key,
                           const std::string& why) const {
        throw Error(ErrorKind::invalid_input, m_source + ":" +
                                                  std::to_string(node.source().begin.line) +
                                                  ": key '" + std::string(key) + "': " + why);
    }
    [[noreturn]] void fail_at(int line, const std::string& why) const {
        throw Error(ErrorKind::invalid_input, m_source + ":" + std::to_string(line) + ": " + why);
    }

    void only_keys(const toml::table& table, const std::vector<std::string_view>& keys,
                   const std::string& where) const {
        for (auto&& [k, v] : table)
            if (std::find(keys.begin(), keys.end(), k.str()) == keys.end())
                fail(v, k.str(), "unknown key in " + where);
    }

    bool boolean(const toml::node& n, std::string_view key) const {
        if (auto b = n.value<bool>(); b && n.is_boolean())
            return *b;
        fail(n, key, "expected true or false");
    }

    std::int64_t integer(const toml::node& n, std::string_view key, std::int64_t lo,
                         std::int64_t hi) const {
        std::optional<std::int64_t> v;
        if (n.is_integer())
            v = n.as_integer()->get();
        else if (n.is_string()) // "0x10de" as well as 0x10de
            v = parse_hex(n.as_string()->get());
        if (!v)
            fail(n, key, "expected an integer");
        if (*v < lo || *v > hi)
            fail(n, key,
                 "value " + std::to_string(*v) + " out of range " + std::to_string(lo) + ".." +
                     std::to_string(hi));
        return *v;
    }

    std::vector<std::uint32_t> id_list(const toml::node& n, std::string_view key) const {
        const auto* arr = n.as_array();
        if (!arr)
            fail(n, key, "expected an array of integers, e.g. [4, 8]");
        std::vector<std::uint32_t> out;
        for (const auto& e : *arr)
            out.push_back(static_cast<std::uint32_t>(integer(e, key, 0, 0xffffffffLL)));
        return out;
    }

    Fdid fdid(const toml::node& n, std::string_view key) const {
        if (n.is_integer())
            return Fdid{static_cast<std::uint32_t>(integer(n, key, 0, 0xffffffffLL))};
        if (!n.is_string())
            fail(n, key, "expected an fdid like \"0x80000\"");
        try {
            return parse_fdid(n.as_string()->get());
        } catch (const Error& e) {
            fail(n, key, e.what());
        }
    }

    Millis seconds(const toml::node& n, std::string_view key) const {
        double s = 0;
        if (n.is_integer())
            s = static_cast<double>(n.as_integer()->get());
        else if (n.is_floating_point())
            s = n.as_floating_point()->get();
        else
            fail(n, key, "expected a number of seconds");
        if (!(s > 0) || s > 365.0 * 86400)
            fail(n, key, "expected seconds between 0 (exclusive) and one year");
        return Millis(static_cast<std::int64_t>(s * 1000));
    }

private:
    static std::optional<std::int64_t> parse_hex(const std::string& s) {
        if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
            return std::nullopt;
        std::size_t used = 0;
        try {
            auto v = std::stoll(s.substr(2), &used, 16);
            return used == s.size() - 2 ? std::optional(v) : std::nullopt;
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    std::string m_source;
};

const std::vector<std::string_view> k_grant_keys = {"allow", "exclusive_only", "max_lease",
                                                    "priority", "reset_on_release"};

// The grant keys shared by [default] and [[rule]]; returns whether `allow` was given.
void read_grant(const Reader& r, const toml::table& t, Grant& g, bool& allow) {
    if (auto* n = t.get("allow"))
        allow = r.boolean(*n, "allow");
    if (auto* n = t.get("exclusive_only"))
        g.exclusive_only = r.boolean(*n, "exclusive_only");
    if (auto* n = t.get("max_lease"))
        g.max_lease = r.seconds(*n, "max_lease");
    if (auto* n = t.get("priority"))
        g.priority = static_cast<int>(r.integer(*n, "priority", -1000000, 1000000));
    if (auto* n = t.get("reset_on_release"))
        g.reset_on_release = r.boolean(*n, "reset_on_release");
}

std::string label(const PolicyRule& rule) {
    std::string s = "rule " + std::to_string(rule.number) + " (";
    if (!rule.name.empty())
        s += rule.name + ", ";
    return s + "line " + std::to_string(rule.line) + ")";
}

std::string who(const Borrower& b, bool node, bool uid) {
    if (node && !uid)
        return "node " + std::to_string(b.node_id);
    if (uid && !node)
        return "uid " + std::to_string(b.uid);
    return "node " + std::to_string(b.node_id) + " uid " + std::to_string(b.uid);
}

} // namespace

const char* to_string(Mode mode) noexcept {
    return mode == Mode::exclusive ? "exclusive" : "shared";
}

bool PolicyRule::matches_device(const DeviceInfo& d) const {
    if (!fdids.empty() && std::find(fdids.begin(), fdids.end(), d.fdid) == fdids.end())
        return false;
    if (vendor_id && *vendor_id != d.vendor_id)
        return false;
    if (device_id && *device_id != d.device_id)
        return false;
    if (class_value) {
        int shift = 4 * (6 - class_digits);
        if ((d.class_code >> shift) != (*class_value >> shift))
            return false;
    }
    return true;
}

bool PolicyRule::matches_borrower(const Borrower& b) const {
    auto in = [](const std::vector<std::uint32_t>& v, std::uint32_t x) {
        return v.empty() || std::find(v.begin(), v.end(), x) != v.end();
    };
    return in(nodes, b.node_id) && in(uids, b.uid);
}

Policy Policy::parse(std::string_view text, std::string_view source_name) {
    Reader r(source_name);
    toml::table doc;
    try {
        doc = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        r.fail_at(static_cast<int>(e.source().begin.line), std::string(e.description()));
    }
    Policy p;
    r.only_keys(doc, {"default", "rule"}, "the policy (expected [default] or [[rule]])");
    if (auto* def = doc.get("default")) {
        const auto* t = def->as_table();
        if (!t)
            r.fail(*def, "default", "expected a table [default]");
        r.only_keys(*t, k_grant_keys, "[default]");
        read_grant(r, *t, p.m_default, p.m_default_allow);
    }
    if (auto* rules = doc.get("rule")) {
        const auto* arr = rules->as_array();
        if (!arr || !arr->is_array_of_tables())
            r.fail(*rules, "rule", "expected [[rule]] tables");
        int number = 0;
        for (const auto& node : *arr) {
            const auto& t = *node.as_table();
            PolicyRule rule;
            rule.number = ++number;
            rule.line = static_cast<int>(t.source().begin.line);
            std::string where = "[[rule]] " + std::to_string(rule.number);
            r.only_keys(t,
                        {"name", "fdid", "fdids", "vendor", "device", "class", "nodes", "uids",
                         "allow", "exclusive_only", "max_lease", "priority", "reset_on_release"},
                        where);
            if (auto* n = t.get("name")) {
                if (!n->is_string())
                    r.fail(*n, "name", "expected a string");
                rule.name = n->as_string()->get();
            }
            if (auto* n = t.get("fdid"))
                rule.fdids.push_back(r.fdid(*n, "fdid"));
            if (auto* n = t.get("fdids")) {
                const auto* list = n->as_array();
                if (!list)
                    r.fail(*n, "fdids", "expected an array of fdids");
                for (const auto& e : *list)
                    rule.fdids.push_back(r.fdid(e, "fdids"));
            }
            if (auto* n = t.get("vendor"))
                rule.vendor_id = static_cast<std::uint16_t>(r.integer(*n, "vendor", 0, 0xffff));
            if (auto* n = t.get("device"))
                rule.device_id = static_cast<std::uint16_t>(r.integer(*n, "device", 0, 0xffff));
            if (auto* n = t.get("class")) {
                const std::string text_class = n->is_string() ? n->as_string()->get() : "";
                std::size_t digits = text_class.size() > 2 ? text_class.size() - 2 : 0;
                if (digits != 2 && digits != 4 && digits != 6)
                    r.fail(*n, "class",
                           "expected a string of 2, 4 or 6 hex digits like \"0x0300\"");
                auto v = r.integer(*n, "class", 0, 0xffffff);
                rule.class_digits = static_cast<int>(digits);
                rule.class_value = static_cast<std::uint32_t>(v << (4 * (6 - digits)));
            }
            if (auto* n = t.get("nodes"))
                rule.nodes = r.id_list(*n, "nodes");
            if (auto* n = t.get("uids"))
                rule.uids = r.id_list(*n, "uids");
            rule.grant = p.m_default; // unset keys inherit [default]
            read_grant(r, t, rule.grant, rule.allow);
            p.m_rules.push_back(std::move(rule));
        }
    }
    return p;
}

Policy Policy::load(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
        throw Error(ErrorKind::not_found, "policy file " + path.string() + ": cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path.string());
}

Decision Policy::decide(const DeviceInfo& device, const Borrower& borrower, Mode mode) const {
    Decision d;
    for (const auto& rule : m_rules) {
        if (!rule.matches_device(device) || !rule.matches_borrower(borrower))
            continue;
        d.rule = label(rule);
        d.grant = rule.grant;
        if (!rule.allow) {
            d.why = "not allowed for " + who(borrower, !rule.nodes.empty(), !rule.uids.empty()) +
                    " by " + d.rule;
            return d;
        }
        if (mode == Mode::shared && rule.grant.exclusive_only) {
            d.why = "shared borrow not allowed by " + d.rule + ": exclusive only";
            return d;
        }
        d.allowed = true;
        return d;
    }
    d.rule = "the default";
    d.grant = m_default;
    if (!m_default_allow) {
        d.why =
            "not allowed for " + who(borrower, true, true) + " by the default (no rule matches)";
        return d;
    }
    if (mode == Mode::shared && m_default.exclusive_only) {
        d.why = "shared borrow not allowed by the default: exclusive only";
        return d;
    }
    d.allowed = true;
    return d;
}

} // namespace dis::lending
