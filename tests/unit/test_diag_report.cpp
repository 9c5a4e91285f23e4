// dis::diag's report without a fabric: the summary and its line, the exit-code rules of
// dis-tool(1), the one JSON schema and the baseline file's round trip.
#include "dis/diag.hpp"
#include "dis/error.hpp"

#include "support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>

using namespace dis::diag;

namespace {

Report report_of(std::initializer_list<Verdict> verdicts) {
    Report r;
    r.fabric_dir = "/tmp/fabric";
    int i = 0;
    for (auto v : verdicts) {
        Check c;
        c.group = "nodes";
        c.name = "node " + std::to_string(4 * ++i);
        c.verdict = v;
        c.reason = "because";
        r.checks.push_back(c);
    }
    return r;
}

} // namespace

TEST_CASE("diag report: summary line and exit codes follow the verdicts", "[unit][diag]") {
    auto ok = report_of({Verdict::pass, Verdict::pass});
    CHECK(summary_line(ok) == "2 checks: 2 passed, 0 warnings, 0 failed");
    CHECK(exit_code(ok, false) == dis::k_exit_ok);
    CHECK(exit_code(ok, true) == dis::k_exit_ok);

    auto warned = report_of({Verdict::pass, Verdict::warn});
    CHECK(summary_line(warned) == "2 checks: 1 passed, 1 warning, 0 failed");
    CHECK(exit_code(warned, false) == dis::k_exit_ok);
    CHECK(exit_code(warned, true) == dis::k_exit_check_failed);

    auto failed = report_of({Verdict::fail, Verdict::warn, Verdict::warn, Verdict::pass});
    CHECK(summary_line(failed) == "4 checks: 1 passed, 2 warnings, 1 failed");
    CHECK(exit_code(failed, false) == dis::k_exit_check_failed);

    failed.fabric_unreachable = true;
    CHECK(exit_code(failed, false) == dis::k_exit_fabric);
    CHECK(exit_code(failed, true) == dis::k_exit_fabric);
}

TEST_CASE("diag report: the JSON schema", "[unit][diag]") {
    auto r = report_of({Verdict::pass, Verdict::warn, Verdict::fail});
    r.checks[1].counters = {{"link_width", 4}};
    auto j = to_json(r);
    CHECK(j["fabric_dir"] == "/tmp/fabric");
    CHECK(j["fabric_unreachable"] == false);
    REQUIRE(j["checks"].size() == 3);
    CHECK(j["checks"][0] == nlohmann::json({{"group", "nodes"},
                                            {"name", "node 4"},
                                            {"verdict", "pass"},
                                            {"reason", "because"},
                                            {"counters", nlohmann::json::object()}}));
    CHECK(j["checks"][1]["verdict"] == "warn");
    CHECK(j["checks"][1]["counters"]["link_width"] == 4);
    CHECK(j["checks"][2]["verdict"] == "fail");
    CHECK(j["summary"] ==
          nlohmann::json({{"checks", 3}, {"passed", 1}, {"warnings", 1}, {"failed", 1}}));
    CHECK(std::string(to_string(Verdict::warn)) == "warn");
}

TEST_CASE("diag baseline: saved atomically with mode 0600, default under XDG_STATE_HOME",
          "[unit][diag]") {
    dis::test::TempDir tmp;
    Report r;
    r.baseline = {{"pcie/0000:01:00.0/aer_dev_correctable/RxErr", 5}, {"pool/audit_ms", 17}};
    const std::string path = (tmp.path() / "a" / "b" / "baseline.json").string();
    save_baseline(r, path);
    auto doc = nlohmann::json::parse(dis::test::read_file(path));
    CHECK(doc["version"] == 1);
    CHECK(doc["counters"] == r.baseline);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // Saved again over the old one: replaced, no temporary left beside it.
    r.baseline["pool/audit_ms"] = 18;
    save_baseline(r, path);
    CHECK(nlohmann::json::parse(dis::test::read_file(path))["counters"]["pool/audit_ms"] == 18);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator(tmp.path() / "a" / "b"))
        ++files;
    CHECK(files == 1);

    const char* old = std::getenv("XDG_STATE_HOME");
    std::string saved = old ? old : "";
    ::setenv("XDG_STATE_HOME", "/var/tmp/xdg", 1);
    CHECK(default_baseline_file() == "/var/tmp/xdg/dis/diag-baseline.json");
    if (old)
        ::setenv("XDG_STATE_HOME", saved.c_str(), 1);
    else
        ::unsetenv("XDG_STATE_HOME");
}
