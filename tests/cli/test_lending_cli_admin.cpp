// The lender's guarded state changes through `dis-tool device reclaim|reset|available|
// unavailable` and the audit log through `device history`, against real disd daemons.
#include "lending_cli_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <poll.h>
#include <pty.h>
#include <set>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>

using namespace dis::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> k_devices = {"epf-test name=ep0 reset_ms=5",
                                            "epf-test name=ep1 reset_ms=5"};

std::unique_ptr<Background> start_holder(const LendingFabric& fabric, const std::string& fdid) {
    auto holder = std::make_unique<Background>(
        fabric.with_fabric({"device", "borrow", fdid, "--exclusive", "--hold"}));
    bool held = wait_until(
        [&] { return !holder->running() || fabric.show(fdid)["leases"].size() == 1; }, 10s);
    INFO("holder stderr: " << holder->err());
    REQUIRE(held);
    REQUIRE(holder->running());
    return holder;
}

using Step = std::tuple<std::string, std::string, std::string>; // event, from, to

std::vector<Step> steps(const json& rows) {
    std::vector<Step> out;
    for (const auto& r : rows)
        out.emplace_back(r["event"], r["from"], r["to"]);
    return out;
}

} // namespace

TEST_CASE("device reclaim: --dry-run changes nothing, --yes drops the holder", "[cli][lending]") {
    LendingFabric fabric(k_devices);
    auto holder = start_holder(fabric, "0x80000");
    const std::string pid = std::to_string(holder->pid());
    const auto lease_id = fabric.show("0x80000")["leases"][0]["id"];

    auto dry = fabric.tool({"device", "reclaim", "0x80000", "--dry-run"});
    INFO(dry.err);
    REQUIRE(dry.exit_code == 0);
    CHECK(dry.out.find("dry run") != std::string::npos);
    CHECK(dry.out.find("pid " + pid) != std::string::npos); // it shows the borrower
    auto dry_json = fabric.tool({"device", "reclaim", "0x80000", "--dry-run", "-o", "json"});
    REQUIRE(dry_json.exit_code == 0);
    auto plan = parse_out(dry_json);
    CHECK(plan["dry_run"] == true);
    CHECK(plan["from"] == "borrowed");
    REQUIRE(plan["leases"].size() == 1);
    CHECK(plan["leases"][0]["pid"] == holder->pid());
    // Nothing changed: still borrowed by the same lease, the holder still holds it.
    auto still = fabric.show("0x80000");
    CHECK(still["state"] == "borrowed");
    CHECK(still["leases"][0]["id"] == lease_id);
    CHECK(holder->running());

    auto r = fabric.tool(
        {"device", "reclaim", "0x80000", "--yes", "--reason", "maintenance", "-o", "json"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto doc = parse_out(r);
    CHECK(doc["dry_run"] == false);
    REQUIRE(doc["leases"].size() == 1);
    CHECK(doc["leases"][0]["id"] == lease_id);
    // The holder was told (dev_lost) and exits 0.
    REQUIRE(holder->wait(10s));
    CHECK(holder->exit_code() == 0);
    CHECK(holder->err().find("maintenance") != std::string::npos);
    CHECK(fabric.wait_state("0x80000", "available"));

    auto history = fabric.tool({"device", "history", "0x80000", "-o", "json"});
    REQUIRE(history.exit_code == 0);
    auto rows = parse_out(history)["rows"];
    auto reclaim = std::find_if(rows.begin(), rows.end(),
                                [](const json& row) { return row["event"] == "reclaim"; });
    REQUIRE(reclaim != rows.end());
    CHECK((*reclaim)["reason"].get<std::string>().find("maintenance") != std::string::npos);
    CHECK((*reclaim)["pid"] == holder->pid());

    SECTION("nothing to reclaim on an available device: exit 2 naming fdid and state") {
        auto none = fabric.tool({"device", "reclaim", "0x80000", "--dry-run"});
        CHECK(none.exit_code == 2);
        check_one_error_line(none);
        CHECK(none.err.find("0x80000") != std::string::npos);
        CHECK(none.err.find("available") != std::string::npos);
    }
}

TEST_CASE("device unavailable, available and reset, and history rows for each transition",
          "[cli][lending]") {
    LendingFabric fabric(k_devices);
    const std::string fdid = "0x80001";
    auto before = fabric.tool({"device", "history", fdid, "-o", "json"});
    REQUIRE(before.exit_code == 0);
    const std::size_t rows_before = parse_out(before)["rows"].size();

    auto r = fabric.tool({"device", "unavailable", fdid, "--yes", "-o", "json"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(parse_out(r)["to"] == "unavailable");
    CHECK(fabric.state(fdid) == "unavailable");

    auto dry = fabric.tool({"device", "available", fdid, "--dry-run"});
    REQUIRE(dry.exit_code == 0);
    CHECK(dry.out.find("unavailable -> available") != std::string::npos);
    CHECK(fabric.state(fdid) == "unavailable");

    // Not allowed from here: refused before asking, naming the fdid and the state.
    auto refused = fabric.tool({"device", "unavailable", fdid, "--yes"});
    CHECK(refused.exit_code == 2);
    check_one_error_line(refused);
    CHECK(refused.err.find(fdid) != std::string::npos);
    CHECK(refused.err.find("unavailable") != std::string::npos);

    auto avail = fabric.tool({"device", "available", fdid, "--yes"});
    INFO(avail.err);
    REQUIRE(avail.exit_code == 0);
    CHECK(fabric.state(fdid) == "available");

    auto reset = fabric.tool({"device", "reset", fdid, "--yes", "-o", "json"});
    INFO(reset.err);
    REQUIRE(reset.exit_code == 0);
    auto reset_doc = parse_out(reset);
    CHECK(reset_doc["outcome"] == "ok");
    CHECK(reset_doc["to"] == "available");

    auto history = fabric.tool({"device", "history", fdid, "-o", "json"});
    REQUIRE(history.exit_code == 0);
    auto rows = parse_out(history)["rows"];
    std::vector<json> mine(rows.begin() + static_cast<long>(rows_before), rows.end());
    CHECK(steps(mine) == std::vector<Step>{{"make_unavailable", "available", "unavailable"},
                                           {"make_available", "unavailable", "available"},
                                           {"reset", "available", "resetting"},
                                           {"reset_ok", "resetting", "available"}});
    for (const auto& row : mine) {
        CHECK(row["fdid"] == fdid);
        CHECK(row["actor"].get<std::string>().find("dis-tool") != std::string::npos);
    }

    SECTION("history: every node without FDID, --since, and CSV") {
        auto all = fabric.tool({"device", "history", "-o", "json"});
        REQUIRE(all.exit_code == 0);
        auto all_rows = parse_out(all)["rows"];
        std::set<std::string> fdids;
        for (const auto& row : all_rows)
            fdids.insert(row["fdid"]);
        CHECK(fdids == std::set<std::string>{"0x80000", "0x80001"});
        CHECK(std::is_sorted(all_rows.begin(), all_rows.end(), [](const json& a, const json& b) {
            return a["time_ms"] < b["time_ms"];
        }));

        auto recent = fabric.tool({"device", "history", fdid, "--since", "1h", "-o", "json"});
        REQUIRE(recent.exit_code == 0);
        CHECK(parse_out(recent)["rows"].size() == rows.size());
        auto future = fabric.tool(
            {"device", "history", fdid, "--since", "2999-01-01T00:00:00Z", "-o", "json"});
        REQUIRE(future.exit_code == 0);
        CHECK(parse_out(future)["rows"].empty());
        auto bad = fabric.tool({"device", "history", "--since", "yesterday-ish"});
        CHECK(bad.exit_code == 2);
        check_one_error_line(bad);
        // A text without '-' is tried as a time ago; its error still names both forms.
        auto word = fabric.tool({"device", "history", "--since", "yesterday"});
        CHECK(word.exit_code == 2);
        check_one_error_line(word);
        CHECK(word.err.find("ISO 8601") != std::string::npos);

        auto csv = fabric.tool({"device", "history", fdid, "-o", "csv"});
        REQUIRE(csv.exit_code == 0);
        auto table = parse_csv(csv.out);
        REQUIRE(table.size() == rows.size() + 1);
        CHECK(table.front()[0] == "TIME");
        CHECK(table.back()[2] == "reset_ok");
    }
}

TEST_CASE("on a terminal, state changes ask first: no keeps the state, yes changes it",
          "[cli][lending]") {
    LendingFabric fabric(k_devices);

    auto no = run_on_tty(fabric.with_fabric({"device", "unavailable", "0x80000"}), "n");
    INFO("terminal: " << no.output);
    CHECK(no.output.find("unavailable 0x80000 (ep0): available -> unavailable: proceed? [y/N]") !=
          std::string::npos);
    CHECK(no.exit_code == 2);
    CHECK(no.output.find("dis-tool: error: not confirmed") != std::string::npos);
    CHECK(fabric.state("0x80000") == "available");

    auto yes = run_on_tty(fabric.with_fabric({"device", "unavailable", "0x80000"}), "y");
    INFO("terminal: " << yes.output);
    CHECK(yes.exit_code == 0);
    CHECK(fabric.state("0x80000") == "unavailable");

    // --yes does not ask.
    auto forced = run_on_tty(fabric.with_fabric({"device", "available", "0x80000", "--yes"}), "n");
    CHECK(forced.output.find("[y/N]") == std::string::npos);
    CHECK(forced.exit_code == 0);
    CHECK(fabric.state("0x80000") == "available");

    // reclaim shows the borrower in its question.
    auto holder = start_holder(fabric, "0x80001");
    auto reclaim = run_on_tty(fabric.with_fabric({"device", "reclaim", "0x80001"}), "n");
    INFO("terminal: " << reclaim.output);
    CHECK(reclaim.output.find("pid " + std::to_string(holder->pid())) != std::string::npos);
    CHECK(reclaim.exit_code == 2);
    CHECK(holder->running());
    CHECK(fabric.state("0x80001") == "borrowed");
}
