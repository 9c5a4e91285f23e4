// `dis-tool device test`: the pci_endpoint_test suite through libsisci's SmartIO API against
// real disd lenders: every test OKAY on an epf-test device; a memory device and a busy device
// refused; a device that stops responding fails the run; and `device reset` of a device whose
// reset fails (exit 1) or of a quarantined one that resets fine (restored).
#include "lending_cli_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <regex>
#include <set>
#include <sstream>

using namespace dis::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The names the suite runs on a device with all six BARs and every interrupt type.
std::set<std::string> expected_tests() {
    std::set<std::string> names;
    for (int bar = 0; bar < 6; ++bar)
        names.insert("BAR_TEST.BAR" + std::to_string(bar));
    names.insert({"CONSECUTIVE_BAR_TEST", "LEGACY_IRQ_TEST", "MSI_TEST", "MSIX_TEST"});
    for (const char* op : {"READ_TEST", "WRITE_TEST", "COPY_TEST"})
        for (const char* mode : {"memcpy", "dma"})
            for (const char* size : {"1", "1024", "1025", "1024000", "1024001"})
                names.insert(std::string(op) + "." + mode + "." + size);
    return names;
}

} // namespace

TEST_CASE("device test: the pcitest suite through SmartIO passes on an epf-test device",
          "[cli][lending][pcitest]") {
    LendingFabric fabric({"epf-test name=ep0 reset_ms=5", "memory name=mem0"});

    auto r = fabric.tool({"device", "test", "0x80000", "-o", "json"});
    INFO("stderr: " << r.err);
    auto doc = parse_out(r);
    for (const auto& t : doc["tests"])
        if (t["outcome"] != "OKAY")
            UNSCOPED_INFO(t["name"].get<std::string>() << ": " << t["detail"].get<std::string>());
    CHECK(r.exit_code == 0);
    CHECK(doc["fdid"] == "0x80000");
    CHECK(doc["failed"] == 0);
    CHECK(doc["lost"].is_null());
    std::set<std::string> names;
    for (const auto& t : doc["tests"]) {
        names.insert(t["name"].get<std::string>());
        CHECK(t["outcome"] == "OKAY");
        CHECK(t["ok"] == true);
    }
    CHECK(names == expected_tests());
    CHECK(doc["passed"] == doc["tests"].size());

    // Returned afterwards; the history shows the exclusive borrow by the test.
    CHECK(fabric.wait_state("0x80000", "available"));
    auto history = fabric.tool({"device", "history", "0x80000", "-o", "json"});
    REQUIRE(history.exit_code == 0);
    bool exclusive_borrow = false;
    auto rows = parse_out(history)["rows"];
    INFO("history: " << rows.dump());
    for (const auto& row : rows)
        exclusive_borrow |= row["event"] == "borrow" &&
                            row["reason"].get<std::string>().find("exclusive") != std::string::npos;
    CHECK(exclusive_borrow);

    SECTION("text: one line per test, NAME: OKAY, then the count") {
        auto text = fabric.tool({"device", "test", "0x80000"});
        CHECK(text.exit_code == 0);
        std::istringstream in(text.out);
        std::string line;
        std::size_t okay = 0;
        std::regex result(R"(^([A-Z_]+(\.[A-Za-z0-9]+)*): +(OKAY|FAILED|SKIPPED)( .*)?$)");
        while (std::getline(in, line)) {
            std::smatch m;
            if (std::regex_match(line, m, result)) {
                CHECK(m[3] == "OKAY");
                ++okay;
            }
        }
        CHECK(okay == expected_tests().size());
        CHECK(text.out.find(std::to_string(okay) + " OKAY, 0 FAILED") != std::string::npos);
    }

    SECTION("a memory device is refused with exit 2, naming the fdid and its kind") {
        auto mem = fabric.tool({"device", "test", "0x80001", "-o", "json"});
        CHECK(mem.exit_code == 2);
        check_one_error_line(mem);
        CHECK(mem.err.find("0x80001") != std::string::npos);
        CHECK(mem.err.find("memory") != std::string::npos);
        CHECK(parse_out(mem)["error"]["kind"] == "invalid_input");
        CHECK(fabric.state("0x80001") == "available");
    }

    SECTION("a borrowed device is busy: exit 2 naming its state and holder") {
        Background holder(fabric.with_fabric({"device", "borrow", "0x80000", "--hold"}));
        REQUIRE(wait_until([&] { return fabric.show("0x80000")["leases"].size() == 1; }, 10s));
        auto busy = fabric.tool({"device", "test", "0x80000"});
        CHECK(busy.exit_code == 2);
        check_one_error_line(busy);
        CHECK(busy.err.find("0x80000") != std::string::npos);
        CHECK(busy.err.find("borrowed") != std::string::npos);
        CHECK(busy.err.find("pid " + std::to_string(holder.pid())) != std::string::npos);
        holder.signal(SIGTERM);
        CHECK(holder.wait(10s));
    }
}

TEST_CASE("device test: a device that stops responding fails the run (exit 1) and is "
          "quarantined, and device reset restores it",
          "[cli][lending][pcitest]") {
    SpawnedFabric fabric(
        {"--device", "epf-test name=hung unresponsive=1", "--command-timeout", "300"});
    auto r = fabric.tool({"device", "test", "0x80000", "-o", "json"});
    INFO("stderr: " << r.err);
    auto doc = parse_out(r);
    INFO("report: " << doc.dump(2));
    CHECK(r.exit_code == 1);
    CHECK(doc["failed"].get<int>() >= 1);
    bool failed_line = false;
    for (const auto& t : doc["tests"])
        failed_line |= t["outcome"] == "FAILED";
    CHECK(failed_line);
    // Register-only tests need no command: they still pass.
    CHECK(doc["tests"][0]["name"] == "BAR_TEST.BAR0");
    CHECK(doc["tests"][0]["outcome"] == "OKAY");

    auto show = fabric.tool({"device", "show", "0x80000", "-o", "json"});
    REQUIRE(show.exit_code == 0);
    CHECK(parse_out(show)["state"] == "failed");

    // A reset that succeeds clears the quarantine.
    auto reset = fabric.tool({"device", "reset", "0x80000", "--yes", "-o", "json"});
    INFO("reset: " << reset.err);
    CHECK(reset.exit_code == 0);
    auto reset_doc = parse_out(reset);
    CHECK(reset_doc["from"] == "failed");
    CHECK(reset_doc["outcome"] == "ok");
    CHECK(reset_doc["to"] == "available");
}

TEST_CASE("device reset of a device whose reset fails: the result, one error line, exit 1",
          "[cli][lending]") {
    LendingFabric fabric({"epf-test name=bad fail_reset=1"});
    auto r = fabric.tool({"device", "reset", "0x80000", "--yes", "-o", "json"});
    CHECK(r.exit_code == 1);
    check_one_error_line(r);
    CHECK(r.err.find("0x80000") != std::string::npos);
    CHECK(r.err.find("failed") != std::string::npos);
    auto doc = parse_out(r);
    CHECK(doc["outcome"] == "failed");
    CHECK(doc["to"] == "failed");
    CHECK(fabric.state("0x80000") == "failed");
    // Quarantined: not lendable.
    auto borrow = fabric.tool({"device", "borrow", "0x80000", "--", "/bin/true"});
    CHECK(borrow.exit_code == 2);
    check_one_error_line(borrow);
    CHECK(borrow.err.find("failed") != std::string::npos);
}

TEST_CASE("device borrow -- CMD hands the lease over: CMD's own SCIBorrowDevice joins it",
          "[cli][lending][pcitest]") {
    LendingFabric fabric({"epf-test name=ep0 reset_ms=5"});
    // CMD is a SmartIO program (dis-tool device test borrows exclusively through libsisci):
    // with DIS_SMARTIO_JOIN it joins the holder's exclusive lease instead of being refused.
    auto r = fabric.tool({"device", "borrow", "0x80000", "--exclusive", "--", DIS_TOOL_PATH,
                          "device", "test", "0x80000", "-o", "json"});
    INFO("stderr: " << r.err);
    auto doc = parse_out(r);
    REQUIRE(doc.contains("tests"));
    CHECK(doc["tests"].size() == expected_tests().size());
    CHECK(doc["tests"][0]["name"] == "BAR_TEST.BAR0");
    CHECK(doc["tests"][0]["outcome"] == "OKAY");
    CHECK(r.exit_code == (doc["failed"] == 0 ? 0 : 1)); // CMD's status, passed on

    // One lease only: the holder's (the test's borrow made none of its own).
    CHECK(fabric.wait_state("0x80000", "available"));
    auto history = fabric.tool({"device", "history", "0x80000", "-o", "json"});
    REQUIRE(history.exit_code == 0);
    int borrows = 0;
    const json rows = parse_out(history)["rows"]; // a copy: never iterate a temporary
    for (const auto& row : rows)
        borrows += row["event"] == "borrow";
    CHECK(borrows == 1);
}
