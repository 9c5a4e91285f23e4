// `dis-tool qualify` and terminals and signals: the progress bar with the current step is drawn
// in a real terminal (tmux) and not when piped; SIGINT mid-run stops after the current step,
// returns every borrowed device and still writes both reports.
#include "lending_cli_support.hpp"
#include "qualify_support.hpp"
#include "tmux.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <chrono>
#include <thread>

using namespace dis::test;
using nlohmann::json;

namespace {

// A load step long enough to be seen (or interrupted) while it runs, then two quick steps.
std::string slow_plan() {
    return "[plan]\nname = \"slow\"\n"
           "[[step]]\nname = \"soak\"\nkind = \"load\"\ndevices = [\"0x80000\", \"0x80001\"]\n"
           "borrowers = [4, 12]\nduration = 3\ndma_local = 4\ndma_remote = 12\n"
           "[[step]]\nname = \"cycles\"\nkind = \"device-cycle\"\ndevices = [\"0x80000\"]\n"
           "borrowers = [12]\n"
           "[[step]]\nname = \"pio\"\nkind = \"bench\"\ntest = \"pio-latency\"\n"
           "remote_node = 8\niterations = 50\n";
}

// Whether the lender shows a lease of `fdid`.
bool borrowed(const ToolFabric& fabric, const std::string& fdid) {
    auto r = run_tool({"device", "show", fdid, "--fabric", fabric.dir(), "-o", "json"});
    return r.exit_code == 0 && !json::parse(r.out)["leases"].empty();
}

} // namespace

TEST_CASE("qualify: a progress bar with the current step on a terminal, none when piped",
          "[cli][qualify][tmux]") {
    ToolFabric fabric(k_qualify_fabric);
    TempDir tmp;
    const auto plan = (tmp.path() / "slow.toml").string();
    write_file(plan, slow_plan());
    Tmux t(quote(DIS_TOOL_PATH) + " qualify --plan " + quote(plan) + " --fabric " +
               quote(fabric.dir()),
           120, 30);
    auto s = t.wait_for_text("] 1/3 soak");
    CHECK(s.find("[..............................] 1/3 soak") != std::string::npos);
    s = t.wait_for_text("plan slow: 3 steps");
    INFO(s);
    CHECK(t.exit_code() == 0);
    // The bar was cleared before the summary: no bar is left on the screen.
    CHECK(s.find("] 1/3 soak") == std::string::npos);
    CHECK(s.find("] 3/3 pio") == std::string::npos);
    CHECK(s.find("STEP") != std::string::npos);

    // Ctrl-C in the terminal: the signal goes to the foreground process group, but the
    // run's helpers (the DMA responder, borrowers) have groups of their own, so the current
    // step still finishes and passes; the rest is skipped; nothing stays borrowed.
    {
        Tmux c(quote(DIS_TOOL_PATH) + " qualify --plan " + quote(plan) + " --fabric " +
                   quote(fabric.dir()),
               120, 30);
        c.wait_for_text("] 1/3 soak");
        c.keys({"C-c"});
        auto screen = c.wait_for_text("(interrupted)");
        INFO(screen);
        CHECK(c.exit_code() == 1);
        CHECK(screen.find("stopping after the current step") != std::string::npos);
        CHECK(screen.find("soak    load          passed") != std::string::npos);
        CHECK(screen.find("cycles  device-cycle  skipped") != std::string::npos);
        check_nothing_borrowed(fabric);
    }

    // Piped (stdout and stderr pipes): the same run draws nothing on stderr.
    auto r = run_tool({"qualify", "--plan", plan, "--fabric", fabric.dir()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("1/3") == std::string::npos);
    CHECK(r.out.find("plan slow: 3 steps, ") != std::string::npos);
}

TEST_CASE("qualify: SIGINT mid-run stops after the current step, returns every device, "
          "writes the reports",
          "[cli][qualify]") {
    ToolFabric fabric(k_qualify_fabric);
    TempDir tmp;
    const auto plan = (tmp.path() / "slow.toml").string();
    const auto junit = (tmp.path() / "junit.xml").string();
    const auto report = (tmp.path() / "report.json").string();
    write_file(plan, slow_plan());
    Background q({"qualify", "--plan", plan, "--fabric", fabric.dir(), "--junit", junit, "--report",
                  report});
    // Mid-step: the load step holds a device right now.
    REQUIRE(wait_until([&] { return borrowed(fabric, "0x80000") || borrowed(fabric, "0x80001"); },
                       std::chrono::seconds(10)));
    q.signal(SIGINT);
    REQUIRE(q.wait(std::chrono::seconds(30)));
    INFO(q.out() << q.err());
    CHECK(q.exit_code() == 1);
    CHECK(q.err().find("stopping after the current step") != std::string::npos);
    CHECK(q.out().find("(interrupted)") != std::string::npos);
    check_nothing_borrowed(fabric);

    auto doc = json::parse(read_file(report));
    CHECK(doc["interrupted"] == true);
    CHECK(doc["passed"] == false);
    REQUIRE(doc["steps"].size() == 3);
    CHECK(doc["steps"][0]["result"] == "passed"); // the current step ran to its end
    CHECK(doc["steps"][1]["result"] == "skipped");
    CHECK(doc["steps"][2]["result"] == "skipped");
    auto xml = read_file(junit);
    CHECK(xml.find("<skipped message=\"the run was interrupted before this step\"/>") !=
          std::string::npos);
    auto lint = run({"/usr/bin/xmllint", "--xpath", "count(//testcase/skipped)", junit});
    CHECK(lint.out == "2\n");
}
