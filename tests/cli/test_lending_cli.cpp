// `dis-tool device list|show|borrow|return` against real disd lender daemons started by
// `dis-tool fabric start --config` (node 8 lends two epf-test devices and a memory device):
// the pool in table, JSON and CSV; a command run with the device borrowed; a holder in the
// background returned from another process; a busy device refused and waited for.
#include "lending_cli_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <unistd.h>

using namespace dis::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> k_devices = {"epf-test name=ep0 reset_ms=5",
                                            "epf-test name=ep1 reset_ms=5", "memory name=mem0"};

std::size_t column(const std::vector<std::vector<std::string>>& rows, const std::string& name) {
    auto it = std::find(rows.front().begin(), rows.front().end(), name);
    REQUIRE(it != rows.front().end());
    return static_cast<std::size_t>(it - rows.front().begin());
}

// A holder of `fdid` in the background, seen borrowed before returning.
std::unique_ptr<Background> start_holder(const LendingFabric& fabric, const std::string& fdid,
                                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"device", "borrow", fdid, "--hold", "-o", "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto holder = std::make_unique<Background>(fabric.with_fabric(args));
    bool held = wait_until(
        [&] {
            if (!holder->running())
                return true;
            auto r = fabric.tool({"device", "show", fdid, "-o", "json"});
            return r.exit_code == 0 && parse_out(r)["leases"].size() == 1;
        },
        10s);
    INFO("holder stderr: " << holder->err());
    REQUIRE(held);
    REQUIRE(holder->running());
    return holder;
}

} // namespace

TEST_CASE("device list and show: the pool in table, JSON and CSV", "[cli][lending]") {
    LendingFabric fabric(k_devices);

    auto r = fabric.tool({"device", "list", "-o", "json"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto doc = parse_out(r);
    CHECK(doc["fabric_dir"] == fabric.dir());
    CHECK(doc["nodes"] == json::array({4, 8}));
    CHECK(doc["unreachable"].empty());
    const json& devices = doc["devices"];
    REQUIRE(devices.size() == 3);
    CHECK(devices[0]["fdid"] == "0x80000");
    CHECK(devices[0]["name"] == "ep0");
    CHECK(devices[0]["kind"] == "epf-test");
    CHECK(devices[0]["vendor_id"] == "0x104c");
    CHECK(devices[0]["device_id"] == "0xb500");
    CHECK(devices[0]["bars"] == json::array({512, 512, 1024, 16384, 131072, 1048576}));
    CHECK(devices[1]["fdid"] == "0x80001");
    CHECK(devices[2]["fdid"] == "0x80002");
    CHECK(devices[2]["kind"] == "memory");
    for (const auto& d : devices) {
        CHECK(d["node_id"] == 8);
        CHECK(d["state"] == "available");
        CHECK(d["leases"].empty());
    }

    auto csv = fabric.tool({"device", "list", "-o", "csv"});
    REQUIRE(csv.exit_code == 0);
    auto rows = parse_csv(csv.out);
    REQUIRE(rows.size() == devices.size() + 1);
    CHECK(rows.front() == std::vector<std::string>{"FDID", "NODE", "IDS", "KIND", "NAME", "STATE",
                                                   "BORROWER", "LEASE_LEFT"});
    for (std::size_t i = 0; i < devices.size(); ++i) {
        const auto& row = rows[i + 1];
        CHECK(row[column(rows, "FDID")] == devices[i]["fdid"]);
        CHECK(row[column(rows, "NODE")] == "8");
        CHECK(row[column(rows, "NAME")] == devices[i]["name"]);
        CHECK(row[column(rows, "STATE")] == devices[i]["state"]);
        CHECK(row[column(rows, "BORROWER")].empty());
    }
    CHECK(rows[1][column(rows, "IDS")] == "104c:b500");

    auto text = fabric.tool({"device", "list"});
    REQUIRE(text.exit_code == 0);
    CHECK(text.err.empty());
    CHECK(count_lines(text.out) == 4);
    CHECK(text.out.find("0x80001") != std::string::npos);
    CHECK(text.out.find("mem0") != std::string::npos);

    auto show = fabric.show("0x80001");
    CHECK(show["fdid"] == "0x80001");
    CHECK(show["index"] == 1);
    CHECK(show["name"] == "ep1");
    CHECK(show["state"] == "available");
    CHECK(show["class"] == "0xff0000");
    auto show_text = fabric.tool({"device", "show", "0x80001"});
    REQUIRE(show_text.exit_code == 0);
    CHECK(show_text.out.find("ep1") != std::string::npos);
    CHECK(show_text.out.find("available since") != std::string::npos);
    // A decimal fdid names the same device.
    CHECK(fabric.show(std::to_string(0x80001))["fdid"] == "0x80001");

    SECTION("an unknown fdid is not found, a node without a daemon unreachable") {
        auto missing = fabric.tool({"device", "show", "0x80009", "-o", "json"});
        CHECK(missing.exit_code == 2);
        check_one_error_line(missing);
        CHECK(missing.err.find("0x80009") != std::string::npos);
        CHECK(parse_out(missing)["error"]["kind"] == "not_found");

        auto down = fabric.tool({"device", "show", "0x300000"});
        CHECK(down.exit_code == 3);
        check_one_error_line(down);
        CHECK(down.err.find("node 48") != std::string::npos);

        auto junk = fabric.tool({"device", "show", "ep0"});
        CHECK(junk.exit_code == 2);
        check_one_error_line(junk);
    }
}

TEST_CASE("device borrow -- CMD: CMD runs with the device borrowed and its status is passed on",
          "[cli][lending]") {
    LendingFabric fabric(k_devices);
    TempDir tmp;
    const std::string seen = (tmp.path() / "seen.json").string();
    const std::string env_file = (tmp.path() / "env.txt").string();
    // CMD looks at the device through dis-tool itself, records what it was handed and who
    // its parent (the borrowing dis-tool) is, and exits 7.
    const std::string script = "\"$TOOL\" -o json device show \"$DIS_FDID\" > \"$SEEN\" && "
                               "printf '%s\\n%s\\n%s\\n' \"$DIS_SMARTIO_JOIN\" \"$DIS_FDID\" "
                               "\"$PPID\" > \"$ENVF\"; exit 7";
    auto r = run_tool(fabric.with_fabric({"device", "borrow", "0x80000", "--exclusive", "--lease",
                                          "5", "--", "/bin/sh", "-c", script}),
                      {std::string("TOOL=") + DIS_TOOL_PATH, "SEEN=" + seen, "ENVF=" + env_file});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 7);
    CHECK(r.err.empty());

    auto during = json::parse(read_file(seen));
    CHECK(during["state"] == "borrowed");
    REQUIRE(during["leases"].size() == 1);
    const json& lease = during["leases"][0];
    CHECK(lease["mode"] == "exclusive");
    CHECK(lease["uid"] == ::getuid());
    CHECK(lease["ttl_ms"] == 5000);

    std::ifstream env(env_file);
    std::string join, fdid, parent;
    std::getline(env, join);
    std::getline(env, fdid);
    std::getline(env, parent);
    CHECK(fdid == "0x80000");
    CHECK(lease["pid"] == std::stol(parent)); // the lease is the borrowing dis-tool's
    const std::string prefix = "0x80000:" + std::to_string(lease["id"].get<long>()) + ":";
    CHECK(join.rfind(prefix, 0) == 0);
    CHECK(join.size() > prefix.size()); // the token

    // Returned when CMD ended (and reset: reset_ms=5).
    CHECK(fabric.wait_state("0x80000", "available"));
    CHECK(fabric.show("0x80000")["leases"].empty());

    SECTION("status 0 and a signal are passed on too; a missing command is 127") {
        auto ok = fabric.tool({"device", "borrow", "0x80000", "--", "/bin/true"});
        CHECK(ok.exit_code == 0);
        auto killed =
            fabric.tool({"device", "borrow", "0x80000", "--", "/bin/sh", "-c", "kill -TERM $$"});
        CHECK(killed.exit_code == 128 + SIGTERM);
        auto missing = fabric.tool({"device", "borrow", "0x80000", "--", "/no/such/command"});
        CHECK(missing.exit_code == 127);
        check_one_error_line(missing);
        CHECK(fabric.wait_state("0x80000", "available"));
    }

    SECTION("neither a command nor --hold, or both, is a usage error") {
        auto none = fabric.tool({"device", "borrow", "0x80000"});
        CHECK(none.exit_code == 2);
        check_one_error_line(none);
        auto both = fabric.tool({"device", "borrow", "0x80000", "--hold", "--", "/bin/true"});
        CHECK(both.exit_code == 2);
        auto bad_lease =
            fabric.tool({"device", "borrow", "0x80000", "--lease", "soon", "--", "/bin/true"});
        CHECK(bad_lease.exit_code == 2);
        check_one_error_line(bad_lease);
        CHECK(fabric.state("0x80000") == "available");
    }
}

TEST_CASE("device borrow --hold: held until `device return` from another process or a signal",
          "[cli][lending]") {
    LendingFabric fabric(k_devices);
    auto holder = start_holder(fabric, "0x80001", {"--exclusive"});
    auto device = fabric.show("0x80001");
    CHECK(device["state"] == "borrowed");
    const json lease = device["leases"][0];
    CHECK(lease["pid"] == holder->pid());

    SECTION("device return ends the holder, which exits 0 having printed the lease once") {
        auto r = fabric.tool({"device", "return", "0x80001", "-o", "json"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        auto doc = parse_out(r);
        CHECK(doc["lease"]["id"] == lease["id"]);
        REQUIRE(holder->wait(10s));
        INFO("holder stderr: " << holder->err());
        CHECK(holder->exit_code() == 0);
        auto printed = json::parse(holder->out()); // exactly one document
        CHECK(printed["fdid"] == "0x80001");
        CHECK(printed["lease"]["id"] == lease["id"]);
        CHECK(printed["join"].get<std::string>().rfind(
                  "0x80001:" + std::to_string(lease["id"].get<long>()) + ":", 0) == 0);
        CHECK(fabric.wait_state("0x80001", "available"));
        // Nothing left to return.
        auto again = fabric.tool({"device", "return", "0x80001"});
        CHECK(again.exit_code == 2);
        check_one_error_line(again);
        CHECK(again.err.find("0x80001") != std::string::npos);
    }

    SECTION("SIGTERM returns the lease and exits 0") {
        holder->signal(SIGTERM);
        REQUIRE(holder->wait(10s));
        CHECK(holder->exit_code() == 0);
        CHECK(fabric.wait_state("0x80001", "available"));
    }

    SECTION("the lease is renewed while held") {
        // A 1 s lease outlives 3 of its TTLs because the holder renews it.
        holder->signal(SIGTERM);
        REQUIRE(holder->wait(10s));
        REQUIRE(fabric.wait_state("0x80001", "available"));
        auto short_holder = start_holder(fabric, "0x80001", {"--lease", "1"});
        auto first = fabric.show("0x80001")["leases"][0]["expires_ms"].get<std::int64_t>();
        bool renewed = wait_until(
            [&] {
                auto d = fabric.show("0x80001");
                return !d["leases"].empty() &&
                       d["leases"][0]["expires_ms"].get<std::int64_t>() > first + 1500;
            },
            10s);
        CHECK(renewed);
        CHECK(short_holder->running());
        CHECK(fabric.state("0x80001") == "borrowed");
        short_holder->signal(SIGINT);
        REQUIRE(short_holder->wait(10s));
        CHECK(short_holder->exit_code() == 0);
    }
}

TEST_CASE("device borrow of a busy device: refused with exit 2 naming the holder, or waited for",
          "[cli][lending]") {
    LendingFabric fabric(k_devices);
    auto holder = start_holder(fabric, "0x80000", {"--exclusive"});

    auto r = fabric.tool(
        {"device", "borrow", "0x80000", "--exclusive", "-o", "json", "--", "/bin/true"});
    CHECK(r.exit_code == 2);
    check_one_error_line(r);
    CHECK(r.err.find("0x80000") != std::string::npos);
    CHECK(r.err.find("borrowed") != std::string::npos);
    CHECK(r.err.find("pid " + std::to_string(holder->pid())) != std::string::npos);
    CHECK(parse_out(r)["error"]["kind"] == "busy");

    SECTION("--wait that runs out is busy too") {
        auto waited =
            fabric.tool({"device", "borrow", "0x80000", "--wait", "1", "--", "/bin/true"});
        CHECK(waited.exit_code == 2);
        check_one_error_line(waited);
        CHECK(waited.err.find("0x80000") != std::string::npos);
    }

    SECTION("--wait is granted when the holder returns it") {
        Background waiter(
            fabric.with_fabric({"device", "borrow", "0x80000", "--wait", "30", "--", "/bin/true"}));
        CHECK(wait_until([&] { return fabric.show("0x80000")["waiters"] == 1; }, 10s));
        CHECK(waiter.running());
        holder->signal(SIGTERM);
        REQUIRE(holder->wait(10s));
        REQUIRE(waiter.wait(20s));
        INFO("waiter stderr: " << waiter.err());
        CHECK(waiter.exit_code() == 0);
        CHECK(fabric.wait_state("0x80000", "available"));
    }
}
