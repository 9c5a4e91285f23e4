// `dis-tool diag` against real daemons: a 3-node software fabric started by the built
// `dis-tool fabric start --config` (node 8 lends epf-test devices) and a fake /sys of a lending
// host (tests/support/lending_host.hpp). A healthy fabric passes; a killed node, a failed
// device, an expired lease and AER errors are found; --clear remembers counters; the exit
// codes, -V levels and the JSON schema of dis-tool-diag(1).
#include "lending_cli_support.hpp"
#include "lending_host.hpp"
#include "support.hpp"
#include "sysfs_tree.hpp"
#include "tool_fabric.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <set>

using namespace dis::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string k_config = "node 4 name=alpha\n"
                             "node 8 name=beta\n"
                             "node 12 name=gamma\n"
                             "device 8 epf-test name=ep0 reset_ms=5\n"
                             "device 8 epf-test name=bad reset_ms=5 fail_reset=1\n";

// A diag run's environment: a fake /sys, a config file and a baseline path of its own.
struct DiagEnv {
    TempDir tmp;
    SysfsTree tree{tmp.path() / "sys"};
    std::string config = (tmp.path() / "fabric.conf").string();
    std::string state = (tmp.path() / "state" / "baseline.json").string();

    explicit DiagEnv(const std::string& config_text = k_config) {
        build_lending_host(tree, {});
        write_file(config, config_text);
    }
    std::vector<std::string> args(const std::string& fabric_dir,
                                  std::vector<std::string> extra = {}) const {
        std::vector<std::string> a = {"diag", "--fabric",     fabric_dir,          "--state",
                                      state,  "--sysfs-root", tree.root().string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

const json* find_check(const json& doc, const std::string& group, const std::string& name) {
    for (const auto& c : doc["checks"])
        if (c["group"] == group && c["name"] == name)
            return &c;
    return nullptr;
}

json check_of(const json& doc, const std::string& group, const std::string& name) {
    const json* c = find_check(doc, group, name);
    INFO("no check " << group << "/" << name << " in " << doc.dump(1));
    REQUIRE(c != nullptr);
    return *c;
}

// The fixed schema of dis-tool-diag(1), and a summary that counts the rows.
void check_schema(const json& doc) {
    REQUIRE(doc.is_object());
    CHECK(doc.size() == 4);
    REQUIRE(doc["fabric_dir"].is_string());
    REQUIRE(doc["fabric_unreachable"].is_boolean());
    REQUIRE(doc["checks"].is_array());
    REQUIRE(doc["summary"].is_object());
    std::size_t pass = 0, warn = 0, fail = 0;
    const std::set<std::string> groups = {"versions", "nodes", "adapter", "link",
                                          "loopback", "pcie",  "pool",    "iommu"};
    for (const auto& c : doc["checks"]) {
        INFO(c.dump());
        REQUIRE(c.size() == 5);
        REQUIRE(c["group"].is_string());
        CHECK(groups.count(c["group"].get<std::string>()) == 1);
        REQUIRE(c["name"].is_string());
        CHECK(!c["name"].get<std::string>().empty());
        REQUIRE(c["reason"].is_string());
        CHECK(!c["reason"].get<std::string>().empty());
        CHECK(c["reason"].get<std::string>().find('\n') == std::string::npos);
        REQUIRE(c["counters"].is_object());
        const std::string v = c["verdict"].get<std::string>();
        REQUIRE((v == "pass" || v == "warn" || v == "fail"));
        (v == "pass" ? pass : v == "warn" ? warn : fail)++;
    }
    const json& s = doc["summary"];
    CHECK(s["checks"] == doc["checks"].size());
    CHECK(s["passed"] == pass);
    CHECK(s["warnings"] == warn);
    CHECK(s["failed"] == fail);
}

std::string summary_text(const json& doc) {
    const json& s = doc["summary"];
    auto n = [&](const char* k) { return std::to_string(s[k].get<std::size_t>()); };
    return n("checks") + " checks: " + n("passed") + " passed, " + n("warnings") +
           (s["warnings"] == 1 ? " warning, " : " warnings, ") + n("failed") + " failed";
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

} // namespace

TEST_CASE("diag: a healthy 3-node fabric with epf-test devices passes every check (exit 0)",
          "[cli][diag]") {
    DiagEnv env("node 4 name=alpha\nnode 8 name=beta\nnode 12 name=gamma\n"
                "device 8 epf-test name=ep0 reset_ms=5\n");
    ToolFabric fabric(read_file(env.config));
    auto r = run_tool(
        env.args(fabric.dir(), {"--config", env.config, "--lendable", "01:00.0", "-o", "json"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    auto doc = parse_out(r);
    check_schema(doc);
    CHECK(doc["fabric_dir"] == fabric.dir());
    CHECK(doc["fabric_unreachable"] == false);
    for (const auto& c : doc["checks"]) {
        INFO(c.dump());
        CHECK(c["verdict"] == "pass");
    }
    CHECK(check_of(doc, "nodes", "node ids")["counters"]["live"] == json({4, 8, 12}));
    CHECK(check_of(doc, "nodes", "node 8")["reason"].get<std::string>().find("beta") !=
          std::string::npos);
    CHECK(check_of(doc, "versions", "sisci")["counters"]["implementation"] == "software");
    // The daemons' own counters come with the node rows (-V 9).
    auto node4 = check_of(doc, "nodes", "node 4")["counters"];
    CHECK(node4["pid"] == fabric.pid_of(4));
    CHECK(node4["daemon"].is_object());
    CHECK(!node4["daemon"].empty());
    for (auto node : {"4", "8", "12"}) {
        CHECK(check_of(doc, "adapter",
                       std::string("node ") + node + " adapter 0")["counters"]["link_width"] == 8);
        for (auto step : {"pio write", "pio read", "dma", "interrupt"}) {
            auto c = check_of(doc, "loopback", std::string("node ") + node + " " + step);
            CHECK(c["counters"]["payload"] == "verified");
        }
    }
    for (auto link : {"link 4-8", "link 4-12", "link 8-12"})
        CHECK(check_of(doc, "link", link)["counters"]["state"] == "up");
    CHECK(check_of(doc, "pool", "fdid 0x80000")["counters"]["state"] == "available");
    CHECK(check_of(doc, "pcie", "0000:01:00.0")["counters"]["aer"].is_object());
    CHECK(check_of(doc, "iommu", "0000:01:00.0")["counters"]["isolated"] == true);
    CHECK(check_of(doc, "iommu", "iommu")["counters"]["iommu_present"] == true);

    // The text form: one row per check and the summary line, the same verdicts.
    auto text = run_tool(env.args(fabric.dir(), {"--config", env.config, "--no-loopback"}));
    INFO(text.out << text.err);
    CHECK(text.exit_code == 0);
    auto lines = count_lines(text.out);
    CHECK(text.out.find("FAIL") == std::string::npos);
    CHECK(text.out.find("WARN") == std::string::npos);
    auto nl =
        run_tool(env.args(fabric.dir(), {"--config", env.config, "--no-loopback", "-o", "json"}));
    auto nl_doc = parse_out(nl);
    CHECK(nl_doc["checks"].size() + 2 == lines); // header, rows, summary
    CHECK(text.out.find("\n" + summary_text(nl_doc) + "\n") != std::string::npos);
    CHECK(find_check(nl_doc, "loopback", "node 8 dma") == nullptr);
}

TEST_CASE("diag: a killed node is a FAIL row and exit 1", "[cli][diag]") {
    DiagEnv env;
    ToolFabric fabric(k_config);
    pid_t victim = fabric.pid_of(12);
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE(wait_until([&] { return !pid_alive(victim); }, 5s));

    auto r = run_tool(env.args(fabric.dir(), {"--config", env.config, "-o", "json"}));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto doc = parse_out(r);
    check_schema(doc);
    CHECK(doc["fabric_unreachable"] == false);
    auto ids = check_of(doc, "nodes", "node ids");
    CHECK(ids["verdict"] == "fail");
    CHECK(ids["counters"]["missing"] == json({12}));
    auto node = check_of(doc, "nodes", "node 12");
    CHECK(node["verdict"] == "fail");
    CHECK(node["reason"].get<std::string>().find("not reachable") != std::string::npos);
    CHECK(check_of(doc, "nodes", "node 8")["verdict"] == "pass");
    // No loopback is attempted to the dead node; the live ones still pass theirs.
    CHECK(find_check(doc, "loopback", "node 12 dma") == nullptr);
    CHECK(check_of(doc, "loopback", "node 8 dma")["verdict"] == "pass");
    CHECK(check_of(doc, "link", "link 8-12")["verdict"] == "fail");
    CHECK(doc["summary"]["failed"].get<int>() >= 2);

    // The same without the config: the local fabric's record names node 12.
    auto rec = run_tool(env.args(fabric.dir(), {"--no-loopback", "-V", "0"}));
    INFO(rec.out << rec.err);
    CHECK(rec.exit_code == 1);
    CHECK(rec.out.find("node 12") != std::string::npos);
    CHECK(rec.out.find("12 missing") != std::string::npos);
    CHECK(rec.out.find("PASS") == std::string::npos); // -V 0: problems only
}

TEST_CASE("diag: an unreachable fabric exits 3 with one error line (JSON: one error object)",
          "[cli][diag]") {
    DiagEnv env;
    TempDir fab;
    const std::string dir = (fab.path() / "fabric").string();
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all);

    auto r = run_tool(env.args(dir));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 3);
    check_one_error_line(r);
    CHECK(r.err.find("unreachable") != std::string::npos);
    // The report of what could still be judged is printed, its fabric rows failing.
    CHECK(r.out.find("FAIL") != std::string::npos);
    CHECK(r.out.find("checks: ") != std::string::npos);

    auto j = run_tool(env.args(dir, {"-o", "json"}));
    CHECK(j.exit_code == 3);
    check_one_error_line(j);
    auto doc = parse_out(j);
    CHECK(doc.size() == 1);
    CHECK(doc["error"]["kind"] == "fabric_down");
    CHECK(j.err == "dis-tool: error: " + doc["error"]["message"].get<std::string>() + "\n");
}

TEST_CASE("diag: a device in the failed state is a FAIL row", "[cli][diag]") {
    DiagEnv env;
    ToolFabric fabric(k_config);
    // fail_reset=1: the admin reset quarantines it.
    auto reset = run_tool({"device", "reset", "0x80001", "--yes", "--fabric", fabric.dir()});
    INFO(reset.out << reset.err);
    REQUIRE(reset.exit_code == 1);

    auto r = run_tool(env.args(fabric.dir(), {"--no-loopback", "-o", "json"}));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto doc = parse_out(r);
    check_schema(doc);
    auto bad = check_of(doc, "pool", "fdid 0x80001");
    CHECK(bad["verdict"] == "fail");
    CHECK(bad["counters"]["state"] == "failed");
    CHECK(bad["counters"]["resets_failed_new"] == 1);
    CHECK(bad["reason"].get<std::string>().find("failed") == 0);
    CHECK(check_of(doc, "pool", "fdid 0x80000")["verdict"] == "pass");
}

TEST_CASE("diag: an expired lease warns (exit 0, 1 with --strict) until --clear", "[cli][diag]") {
    DiagEnv env;
    ToolFabric fabric(k_config);
    // A holder that stops renewing: its lease runs out on the lender's clock.
    Background holder(
        {"device", "borrow", "0x80000", "--hold", "--lease", "1", "--fabric", fabric.dir()});
    auto state = [&] {
        auto s = run_tool({"device", "show", "0x80000", "--fabric", fabric.dir(), "-o", "json"});
        return s.exit_code == 0 ? parse_out(s)["state"].get<std::string>() : std::string();
    };
    REQUIRE(wait_until([&] { return state() == "borrowed"; }, 10s));
    holder.signal(SIGSTOP);
    REQUIRE(wait_until([&] { return state() == "available"; }, 10s));
    holder.signal(SIGKILL);
    holder.signal(SIGCONT);

    auto r = run_tool(env.args(fabric.dir(), {"--no-loopback", "-o", "json"}));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    auto doc = parse_out(r);
    check_schema(doc);
    auto c = check_of(doc, "pool", "fdid 0x80000");
    CHECK(c["verdict"] == "warn");
    CHECK(c["counters"]["leases_expired_new"] == 1);
    CHECK(c["reason"].get<std::string>().find("expired") != std::string::npos);
    CHECK(doc["summary"]["failed"] == 0);

    auto strict = run_tool(env.args(fabric.dir(), {"--no-loopback", "--strict"}));
    INFO(strict.out << strict.err);
    CHECK(strict.exit_code == 1);
    CHECK(strict.out.find("WARN") != std::string::npos);

    // --clear remembers the audit log: the expiry is no longer new.
    auto clear = run_tool(env.args(fabric.dir(), {"--no-loopback", "--clear"}));
    CHECK(clear.exit_code == 0);
    CHECK(clear.out.find("counters stored in " + env.state) != std::string::npos);
    REQUIRE(std::filesystem::exists(env.state));
    auto after = run_tool(env.args(fabric.dir(), {"--no-loopback", "--strict", "-o", "json"}));
    INFO(after.out << after.err);
    CHECK(after.exit_code == 0);
    CHECK(check_of(parse_out(after), "pool", "fdid 0x80000")["verdict"] == "pass");
}

TEST_CASE("diag --clear: after a clear only new AER errors are reported", "[cli][diag]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_lending_host(tree, {});
    const auto aer_file = tree.device_dir("0000:01:00.0") / "aer_dev_correctable";
    const auto nonfatal_file = tree.device_dir("0000:01:00.0") / "aer_dev_nonfatal";
    write_file(aer_file, "RxErr 5\nBadTLP 2\nTOTAL_ERR_COR 7\n");
    ToolFabric fabric(2);
    const std::string state = (tmp.path() / "baseline.json").string();
    auto diag = [&](std::vector<std::string> extra) {
        return run_tool(plus({"diag", "--fabric", fabric.dir(), "--state", state, "--sysfs-root",
                              tree.root().string(), "--no-loopback"},
                             extra));
    };

    // Before any clear every error counts: correctable errors warn.
    auto first = diag({"-o", "json"});
    INFO(first.out << first.err);
    CHECK(first.exit_code == 0);
    auto c = check_of(parse_out(first), "pcie", "0000:01:00.0");
    CHECK(c["verdict"] == "warn");
    CHECK(c["reason"].get<std::string>().find("RxErr +5") != std::string::npos);
    CHECK(c["reason"].get<std::string>().find("BadTLP +2") != std::string::npos);
    CHECK(c["counters"]["aer"]["aer_dev_correctable"]["RxErr"] == 5);

    REQUIRE(diag({"--clear"}).exit_code == 0);
    auto cleared = diag({"-o", "json", "--strict"});
    INFO(cleared.out << cleared.err);
    CHECK(cleared.exit_code == 0);
    auto c2 = check_of(parse_out(cleared), "pcie", "0000:01:00.0");
    CHECK(c2["verdict"] == "pass");
    CHECK(c2["counters"]["aer"]["aer_dev_correctable"]["RxErr"] == 5);
    CHECK(c2["counters"]["aer"]["aer_dev_correctable"]["RxErr_new"] == 0);

    // One new correctable error: only it is reported.
    write_file(aer_file, "RxErr 6\nBadTLP 2\nTOTAL_ERR_COR 8\n");
    auto one = diag({"-o", "json"});
    INFO(one.out << one.err);
    CHECK(one.exit_code == 0);
    auto c3 = check_of(parse_out(one), "pcie", "0000:01:00.0");
    CHECK(c3["verdict"] == "warn");
    CHECK(c3["reason"] == "aer_dev_correctable RxErr +1");
    CHECK(c3["counters"]["aer"]["aer_dev_correctable"]["RxErr_new"] == 1);

    // A new non-fatal error fails.
    write_file(nonfatal_file, "CmpltTO 1\nTOTAL_ERR_NONFATAL 1\n");
    auto fatal = diag({});
    INFO(fatal.out << fatal.err);
    CHECK(fatal.exit_code == 1);
    CHECK(fatal.out.find("aer_dev_nonfatal CmpltTO +1") != std::string::npos);
}

TEST_CASE("diag -V 0, 1 and 9: problems only, every check, every counter", "[cli][diag]") {
    DiagEnv env("node 4\nnode 8\ndefault width=16\n");
    ToolFabric fabric(read_file(env.config));
    auto run_v = [&](const std::string& level) {
        auto r = run_tool(
            env.args(fabric.dir(), {"--config", env.config, "--no-loopback", "-V", level}));
        INFO(r.out << r.err);
        CHECK(r.exit_code == 0); // downgraded links warn
        return r.out;
    };
    auto doc = parse_out(
        run_tool(env.args(fabric.dir(), {"--config", env.config, "--no-loopback", "-o", "json"})));
    // The daemons are configured x16 and run x16, so nothing is downgraded ...
    CHECK(check_of(doc, "adapter", "node 4 adapter 0")["verdict"] == "pass");

    // ... but judged against a config that expects x32 both adapters warn.
    const std::string wide = (env.tmp.path() / "wide.conf").string();
    write_file(wide, "node 4\nnode 8\ndefault width=32\n");
    auto w = run_tool(env.args(fabric.dir(), {"--config", wide, "--no-loopback", "-o", "json"}));
    INFO(w.out << w.err);
    CHECK(w.exit_code == 0);
    auto wdoc = parse_out(w);
    auto a = check_of(wdoc, "adapter", "node 8 adapter 0");
    CHECK(a["verdict"] == "warn");
    CHECK(a["reason"] == "link downgraded: width x16 below x32");
    CHECK(check_of(wdoc, "link", "link 4-8")["verdict"] == "warn");
    auto ws = run_tool(env.args(fabric.dir(), {"--config", wide, "--no-loopback", "--strict"}));
    CHECK(ws.exit_code == 1);

    auto v0 = run_v("0");
    auto v1 = run_v("1");
    auto v9 = run_v("9");
    CHECK(v0.find("PASS") == std::string::npos);
    CHECK(v0 == summary_text(doc) + "\n"); // the summary alone: nothing is wrong
    CHECK(v1.find("PASS") != std::string::npos);
    CHECK(count_lines(v1) == doc["checks"].size() + 2);
    CHECK(v1.find("serial") == std::string::npos);
    CHECK(v9.find("serial:") != std::string::npos); // the adapter's counters
    CHECK(v9.find("link_width:") != std::string::npos);
    CHECK(count_lines(v9) > count_lines(v1));

    auto wv0 = run_tool(env.args(fabric.dir(), {"--config", wide, "--no-loopback", "-V", "0"}));
    CHECK(wv0.out.find("WARN") != std::string::npos);
    CHECK(wv0.out.find("PASS") == std::string::npos);

    auto bad = run_tool(env.args(fabric.dir(), {"-V", "5"}));
    CHECK(bad.exit_code == 2);
    check_one_error_line(bad);

    // CSV: the table with a header line, each row standing alone.
    auto csv =
        run_tool(env.args(fabric.dir(), {"--config", env.config, "--no-loopback", "-o", "csv"}));
    CHECK(csv.exit_code == 0);
    auto rows = parse_csv(csv.out);
    REQUIRE(rows.size() == doc["checks"].size() + 1);
    CHECK(rows[0] == std::vector<std::string>{"VERDICT", "GROUP", "CHECK", "REASON"});
}

TEST_CASE("diag: the man page has every section and a malformed baseline is a usage error",
          "[cli][diag]") {
    check_man_page("dis-tool-diag.1");
    DiagEnv env;
    write_file(env.state, "not json");
    ToolFabric fabric(2);
    auto r = run_tool(env.args(fabric.dir(), {"--no-loopback", "-o", "json"}));
    CHECK(r.exit_code == 2);
    check_one_error_line(r);
    CHECK(r.err.find(env.state) != std::string::npos);
    CHECK(parse_out(r)["error"]["kind"] == "invalid_input");
}

TEST_CASE("diag: a downgraded PCIe link on the host warns", "[cli][diag]") {
    DiagEnv env;
    // A root port able to run x16 at 16GT/s, trained at x4 8GT/s.
    FakeDevice port{"0000:00:03.0",
                    "",
                    ConfigSpace(0x8086, 0x1901, 0x060400, 1)
                        .bus_numbers(0, 3, 3)
                        .pcie(PcieType::root_port, false, 4, 16, 3, 4),
                    std::string("pcieport"),
                    std::nullopt,
                    -1,
                    {},
                    {}};
    env.tree.add(port);
    ToolFabric fabric(2);
    auto r = run_tool(env.args(fabric.dir(), {"--no-loopback", "-o", "json"}));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    auto doc = parse_out(r);
    auto c = check_of(doc, "pcie", "0000:00:03.0");
    CHECK(c["verdict"] == "warn");
    CHECK(c["reason"].get<std::string>().find("link downgraded") == 0);
    CHECK(c["counters"]["link_downgraded"] == true);
    CHECK(c["counters"]["link_width"] == 4);
    CHECK(check_of(doc, "pcie", "0000:01:00.0")["verdict"] == "pass");
    CHECK(run_tool(env.args(fabric.dir(), {"--no-loopback", "--strict"})).exit_code == 1);
}
