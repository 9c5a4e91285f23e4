// The qualification plan file (TOML, dis-tool-qualify(5)): read with Debian's tomlplusplus the
// way the lending policy is (lib/lending/policy.cpp), every key checked, every error naming
// its line and key.
#include "dis/qualify.hpp"

#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace dis::qualify {

namespace {

class Reader {
public:
    explicit Reader(std::string source) : m_source(std::move(source)) {}

    [[noreturn]] void fail(const toml::node& node, std::string_view key,
                           const std::string& why) const {
        fail_at(static_cast<int>(node.source().begin.line), key, why);
    }
    [[noreturn]] void fail_at(int line, std::string_view key, const std::string& why) const {
        throw Error(ErrorKind::invalid_input, m_source + ":" + std::to_string(line) + ": key '" +
                                                  std::string(key) + "': " + why);
    }

    void only_keys(const toml::table& table, const std::vector<std::string_view>& keys,
                   const std::string& where) const {
        for (auto&& [k, v] : table)
            if (std::find(keys.begin(), keys.end(), k.str()) == keys.end()) {
                std::string known;
                for (auto key : keys)
                    known += (known.empty() ? "" : ", ") + std::string(key);
                fail(v, k.str(), "unknown key in " + where + " (keys: " + known + ")");
            }
    }

    const toml::node& required(const toml::table& t, std::string_view key, int line,
                               const std::string& where) const {
        if (const auto* n = t.get(key))
            return *n;
        fail_at(line, key, "missing in " + where);
    }

    std::string string(const toml::node& n, std::string_view key) const {
        if (const auto* s = n.as_string())
            return s->get();
        fail(n, key, "expected a string");
    }

    bool boolean(const toml::node& n, std::string_view key) const {
        if (const auto* b = n.as_boolean())
            return b->get();
        fail(n, key, "expected true or false");
    }

    std::int64_t integer(const toml::node& n, std::string_view key, std::int64_t lo,
                         std::int64_t hi) const {
        const auto* i = n.as_integer();
        if (!i)
            fail(n, key, "expected an integer");
        std::int64_t v = i->get();
        if (v < lo || v > hi)
            fail(n, key,
                 "value " + std::to_string(v) + " out of range " + std::to_string(lo) + ".." +
                     std::to_string(hi));
        return v;
    }

    At<std::uint32_t> node(const toml::node& n, std::string_view key) const {
        auto v = integer(n, key, 4, 0xFFFFFFF0LL);
        if (v % 4 != 0)
            fail(n, key, "node ids are multiples of 4 (4, 8, 12, ...)");
        return {static_cast<std::uint32_t>(v), line(n)};
    }

    std::vector<At<std::uint32_t>> nodes(const toml::node& n, std::string_view key) const {
        const auto* arr = n.as_array();
        if (!arr || arr->empty())
            fail(n, key, "expected a non-empty array of node ids, e.g. [4, 12]");
        std::vector<At<std::uint32_t>> out;
        for (const auto& e : *arr)
            out.push_back(node(e, key));
        return out;
    }

    At<lending::Fdid> fdid(const toml::node& n, std::string_view key) const {
        if (!n.is_string())
            fail(n, key, "expected an fdid string like \"0x80000\"");
        try {
            return {lending::parse_fdid(n.as_string()->get()), line(n)};
        } catch (const Error& e) {
            fail(n, key, e.what());
        }
    }

    std::vector<At<lending::Fdid>> fdids(const toml::node& n, std::string_view key) const {
        const auto* arr = n.as_array();
        if (!arr || arr->empty())
            fail(n, key, "expected a non-empty array of fdids, e.g. [\"0x80000\"]");
        std::vector<At<lending::Fdid>> out;
        for (const auto& e : *arr)
            out.push_back(fdid(e, key));
        return out;
    }

    std::vector<std::string> strings(const toml::node& n, std::string_view key) const {
        const auto* arr = n.as_array();
        if (!arr)
            fail(n, key, "expected an array of strings");
        std::vector<std::string> out;
        for (const auto& e : *arr)
            out.push_back(string(e, key));
        return out;
    }

    std::chrono::milliseconds seconds(const toml::node& n, std::string_view key) const {
        double s = 0;
        if (n.is_integer())
            s = static_cast<double>(n.as_integer()->get());
        else if (n.is_floating_point())
            s = n.as_floating_point()->get();
        else
            fail(n, key, "expected a number of seconds");
        if (!(s > 0) || s > 86400)
            fail(n, key, "expected seconds between 0 (exclusive) and 86400");
        return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
    }

    static int line(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

private:
    std::string m_source;
};

const std::vector<std::string_view> k_common = {"name", "kind"};

std::vector<std::string_view> with_common(std::vector<std::string_view> keys) {
    keys.insert(keys.begin(), k_common.begin(), k_common.end());
    return keys;
}

StepKind parse_kind(const Reader& r, const toml::node& n) {
    const std::string s = r.string(n, "kind");
    for (auto k : {StepKind::device_cycle, StepKind::bench, StepKind::rebind, StepKind::isolation,
                   StepKind::recovery, StepKind::load, StepKind::diag})
        if (s == to_string(k))
            return k;
    r.fail(n, "kind",
           "unknown step kind '" + s +
               "' (kinds: device-cycle, bench, rebind, isolation, recovery, load, diag)");
}

Threshold parse_threshold(const Reader& r, const toml::node& n, bench::TestKind test) {
    const std::string text = r.string(n, "thresholds");
    std::istringstream in(text);
    Threshold t;
    t.text = text;
    t.line = Reader::line(n);
    std::string value;
    if (!(in >> t.field >> t.op >> value) || !(in >> std::ws).eof())
        r.fail(n, "thresholds", "'" + text + "': expected 'FIELD OP NUMBER', e.g. 'p99_us <= 2'");
    static const std::set<std::string> ops = {"<", "<=", ">", ">=", "==", "!="};
    if (!ops.count(t.op))
        r.fail(n, "thresholds",
               "'" + text + "': unknown operator '" + t.op + "' (operators: < <= > >= == !=)");
    try {
        std::size_t used = 0;
        t.value = std::stod(value, &used);
        if (used != value.size() || !std::isfinite(t.value))
            throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        r.fail(n, "thresholds", "'" + text + "': '" + value + "' is not a number");
    }
    auto fields = threshold_fields(test);
    if (std::find(fields.begin(), fields.end(), t.field) == fields.end()) {
        std::string known;
        for (const auto& f : fields)
            known += (known.empty() ? "" : ", ") + f;
        r.fail(n, "thresholds",
               "'" + text + "': " + std::string(bench::to_string(test)) + " has no field '" +
                   t.field + "' (fields: " + known + ")");
    }
    return t;
}

void read_device_cycle(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(t, with_common({"devices", "borrowers", "cycles", "reset", "test"}),
                "a device-cycle step");
    auto& d = s.device_cycle;
    d.devices = r.fdids(r.required(t, "devices", s.line, "a device-cycle step"), "devices");
    d.borrowers = r.nodes(r.required(t, "borrowers", s.line, "a device-cycle step"), "borrowers");
    if (const auto* n = t.get("cycles"))
        d.cycles = static_cast<unsigned>(r.integer(*n, "cycles", 1, 100000));
    if (const auto* n = t.get("reset"))
        d.reset = r.boolean(*n, "reset");
    if (const auto* n = t.get("test"))
        d.test = r.boolean(*n, "test");
}

void read_bench(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(t,
                with_common({"test", "local_node", "remote_node", "device", "sizes", "iterations",
                             "warmup", "thresholds"}),
                "a bench step");
    auto& b = s.bench;
    const auto& test = r.required(t, "test", s.line, "a bench step");
    try {
        b.test = bench::parse_test(r.string(test, "test"));
    } catch (const Error& e) {
        std::string names;
        for (const auto& n : bench::test_names())
            names += (names.empty() ? "" : ", ") + n;
        r.fail(test, "test", std::string(e.what()) + " (tests: " + names + ")");
    }
    const bool device_test =
        b.test == bench::TestKind::device_cycle || b.test == bench::TestKind::device_copy;
    if (const auto* n = t.get("local_node"))
        b.local_node = r.node(*n, "local_node");
    if (device_test) {
        b.device = r.fdid(r.required(t, "device", s.line, "a device bench step"), "device");
        if (const auto* n = t.get("remote_node"))
            r.fail(*n, "remote_node", "a device test's remote node is its lender (give device)");
    } else {
        b.remote_node =
            r.node(r.required(t, "remote_node", s.line, "a fabric bench step"), "remote_node");
        if (const auto* n = t.get("device"))
            r.fail(*n, "device", "only device-cycle and device-copy take a device");
    }
    if (const auto* n = t.get("sizes")) {
        if (b.test == bench::TestKind::intr_latency || b.test == bench::TestKind::device_cycle)
            r.fail(*n, "sizes", std::string(bench::to_string(b.test)) + " takes no sizes");
        b.sizes = r.string(*n, "sizes");
        try {
            bench::parse_sizes(b.sizes);
        } catch (const Error& e) {
            r.fail(*n, "sizes", e.what());
        }
    }
    if (const auto* n = t.get("iterations"))
        b.iterations = static_cast<std::uint64_t>(r.integer(*n, "iterations", 1, 100000000));
    if (const auto* n = t.get("warmup"))
        b.warmup = static_cast<std::uint64_t>(r.integer(*n, "warmup", 0, 100000000));
    if (const auto* n = t.get("thresholds")) {
        const auto* arr = n->as_array();
        if (!arr)
            r.fail(*n, "thresholds", "expected an array of strings like [\"p99_us <= 2\"]");
        for (const auto& e : *arr)
            b.thresholds.push_back(parse_threshold(r, e, b.test));
    }
}

void read_isolation(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(
        t, with_common({"devices", "dump", "sysfs_root", "allow_warnings", "require_isolated"}),
        "an isolation step");
    auto& i = s.isolation;
    const auto& devices = r.required(t, "devices", s.line, "an isolation step");
    const auto* arr = devices.as_array();
    if (!arr || arr->empty())
        r.fail(devices, "devices", "expected a non-empty array of PCI addresses like \"01:00.0\"");
    for (const auto& e : *arr)
        i.bdfs.push_back({r.string(e, "devices"), Reader::line(e)});
    if (const auto* n = t.get("dump"))
        i.dump = r.string(*n, "dump");
    if (const auto* n = t.get("sysfs_root"))
        i.sysfs_root = r.string(*n, "sysfs_root");
    if (!i.dump.empty() && !i.sysfs_root.empty())
        r.fail(*t.get("sysfs_root"), "sysfs_root", "give dump or sysfs_root, not both");
    if (const auto* n = t.get("allow_warnings"))
        i.allow_warnings = r.boolean(*n, "allow_warnings");
    if (const auto* n = t.get("require_isolated"))
        i.require_isolated = r.boolean(*n, "require_isolated");
}

void read_recovery(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(t, with_common({"device", "borrower", "kill", "bound"}), "a recovery step");
    auto& rc = s.recovery;
    rc.device = r.fdid(r.required(t, "device", s.line, "a recovery step"), "device");
    rc.borrower = r.node(r.required(t, "borrower", s.line, "a recovery step"), "borrower");
    if (const auto* n = t.get("kill")) {
        const auto* arr = n->as_array();
        if (!arr || arr->empty())
            r.fail(*n, "kill", "expected a non-empty array of what to kill");
        for (const auto& e : *arr) {
            const std::string k = r.string(e, "kill");
            bool found = false;
            for (auto kind : {Kill::borrower, Kill::borrower_daemon, Kill::lender_daemon})
                if (k == to_string(kind)) {
                    rc.kills.push_back(kind);
                    found = true;
                }
            if (!found)
                r.fail(e, "kill", "unknown '" + k + "' (borrower, borrower-daemon, lender-daemon)");
        }
    } else {
        rc.kills = {Kill::borrower, Kill::borrower_daemon, Kill::lender_daemon};
    }
    if (const auto* n = t.get("bound"))
        rc.bound = r.seconds(*n, "bound");
    if (rc.borrower.value == rc.device.value.node_id())
        r.fail_at(rc.borrower.line, "borrower",
                  "the borrower must be another node than the lender");
}

void read_load(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(
        t, with_common({"devices", "borrowers", "duration", "dma_local", "dma_remote", "dma_size"}),
        "a load step");
    auto& l = s.load;
    l.devices = r.fdids(r.required(t, "devices", s.line, "a load step"), "devices");
    l.borrowers = r.nodes(r.required(t, "borrowers", s.line, "a load step"), "borrowers");
    if (const auto* n = t.get("duration"))
        l.duration = r.seconds(*n, "duration");
    const auto* dl = t.get("dma_local");
    const auto* dr = t.get("dma_remote");
    if (dl)
        l.dma_local = r.node(*dl, "dma_local");
    if (dr)
        l.dma_remote = r.node(*dr, "dma_remote");
    if (static_cast<bool>(dl) != static_cast<bool>(dr))
        r.fail(dl ? *dl : *dr, dl ? "dma_local" : "dma_remote",
               "give both dma_local and dma_remote (or neither: no DMA)");
    if (const auto* n = t.get("dma_size")) {
        try {
            l.dma_size = bench::parse_size(r.string(*n, "dma_size"));
        } catch (const Error& e) {
            r.fail(*n, "dma_size", e.what());
        }
    }
}

void read_rebind(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(
        t,
        with_common({"device", "cycles", "node", "sysfs_root", "proc_root", "state_dir", "check"}),
        "a rebind step");
    auto& b = s.rebind;
    const auto& dev = r.required(t, "device", s.line, "a rebind step");
    b.bdf = {r.string(dev, "device"), Reader::line(dev)};
    try {
        pci::Bdf::parse(b.bdf.value);
    } catch (const Error& e) {
        r.fail(dev, "device", e.what());
    }
    if (const auto* n = t.get("cycles"))
        b.cycles = static_cast<unsigned>(r.integer(*n, "cycles", 1, 10000));
    if (const auto* n = t.get("node"))
        b.node = r.node(*n, "node");
    if (const auto* n = t.get("sysfs_root"))
        b.sysfs_root = r.string(*n, "sysfs_root");
    if (const auto* n = t.get("proc_root"))
        b.proc_root = r.string(*n, "proc_root");
    if (const auto* n = t.get("state_dir"))
        b.state_dir = r.string(*n, "state_dir");
    if (const auto* n = t.get("check"))
        b.check = r.string(*n, "check");
}

void read_diag(const Reader& r, const toml::table& t, Step& s) {
    r.only_keys(t, with_common({"strict", "config", "sysfs_root", "lendable"}), "a diag step");
    if (const auto* n = t.get("strict"))
        s.diag.strict = r.boolean(*n, "strict");
    if (const auto* n = t.get("config"))
        s.diag.config = r.string(*n, "config");
    if (const auto* n = t.get("sysfs_root"))
        s.diag.sysfs_root = r.string(*n, "sysfs_root");
    if (const auto* n = t.get("lendable"))
        s.diag.lendable = r.strings(*n, "lendable");
}

} // namespace

const char* to_string(StepKind kind) noexcept {
    switch (kind) {
    case StepKind::device_cycle:
        return "device-cycle";
    case StepKind::bench:
        return "bench";
    case StepKind::rebind:
        return "rebind";
    case StepKind::isolation:
        return "isolation";
    case StepKind::recovery:
        return "recovery";
    case StepKind::load:
        return "load";
    case StepKind::diag:
        return "diag";
    }
    return "unknown";
}

const char* to_string(Kill kill) noexcept {
    switch (kill) {
    case Kill::borrower:
        return "borrower";
    case Kill::borrower_daemon:
        return "borrower-daemon";
    case Kill::lender_daemon:
        return "lender-daemon";
    }
    return "unknown";
}

std::vector<std::string> threshold_fields(bench::TestKind test) {
    if (bench::is_latency_test(test))
        return {"iterations", "min_us", "max_us",  "median_us",     "avg_us",
                "stdev_us",   "p99_us", "p999_us", "baseline_ratio"};
    return {"iterations", "bandwidth_gbps", "bandwidth_mibps", "msg_rate", "baseline_ratio"};
}

bool holds(const Threshold& t, double measured) noexcept {
    if (t.op == "<")
        return measured < t.value;
    if (t.op == "<=")
        return measured <= t.value;
    if (t.op == ">")
        return measured > t.value;
    if (t.op == ">=")
        return measured >= t.value;
    if (t.op == "==")
        return measured == t.value;
    return measured != t.value;
}

Plan parse_plan(std::string_view text, const std::string& source) {
    Reader r(source);
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw Error(ErrorKind::invalid_input, source + ":" + std::to_string(e.source().begin.line) +
                                                  ": " + std::string(e.description()));
    }
    r.only_keys(doc, {"plan", "step"}, "the plan file");
    Plan plan;
    plan.source = source;
    if (const auto* n = doc.get("plan")) {
        const auto* t = n->as_table();
        if (!t)
            r.fail(*n, "plan", "expected a [plan] table");
        r.only_keys(*t, {"name", "fabric"}, "[plan]");
        if (const auto* v = t->get("name"))
            plan.name = r.string(*v, "name");
        if (const auto* v = t->get("fabric"))
            plan.fabric_dir = r.string(*v, "fabric");
    }
    if (plan.name.empty()) { // the file's name without directory and extension
        auto slash = source.rfind('/');
        plan.name = source.substr(slash == std::string::npos ? 0 : slash + 1);
        if (auto dot = plan.name.rfind('.'); dot != std::string::npos && dot > 0)
            plan.name.erase(dot);
    }
    const auto* steps = doc.get("step");
    if (!steps)
        r.fail_at(1, "step", "the plan has no [[step]]");
    const auto* arr = steps->as_array();
    if (!arr || !arr->is_array_of_tables())
        r.fail(*steps, "step", "expected [[step]] tables");
    std::set<std::string> names;
    for (const auto& e : *arr) {
        const auto& t = *e.as_table();
        Step s;
        s.line = Reader::line(e);
        s.kind = parse_kind(r, r.required(t, "kind", s.line, "a [[step]]"));
        const auto& name = r.required(t, "name", s.line, "a [[step]]");
        s.name = r.string(name, "name");
        if (s.name.empty() || s.name.find_first_of(" \t.\"<>&") != std::string::npos)
            r.fail(name, "name", "a step name is one word without '.', quotes or <>&");
        if (!names.insert(s.name).second)
            r.fail(name, "name", "a second step named '" + s.name + "'");
        switch (s.kind) {
        case StepKind::device_cycle:
            read_device_cycle(r, t, s);
            break;
        case StepKind::bench:
            read_bench(r, t, s);
            break;
        case StepKind::isolation:
            read_isolation(r, t, s);
            break;
        case StepKind::recovery:
            read_recovery(r, t, s);
            break;
        case StepKind::load:
            read_load(r, t, s);
            break;
        case StepKind::diag:
            read_diag(r, t, s);
            break;
        case StepKind::rebind:
            read_rebind(r, t, s);
            break;
        }
        plan.steps.push_back(std::move(s));
    }
    return plan;
}

Plan load_plan(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw Error(ErrorKind::not_found, "plan file " + path + " cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_plan(ss.str(), path);
}

} // namespace dis::qualify
