// `dis-tool qualify` plan errors: each kind of mistake is found before anything runs (the
// audit log is unchanged) and reported as one line with the file, the line and the key; exit 2,
// with -o json one error object.
#include "qualify_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::test;
using nlohmann::json;

namespace {

// A good first step: had the plan run, it would have borrowed 0x80000.
const char* k_first = "[[step]]\nname = \"cycles\"\nkind = \"device-cycle\"\n"
                      "devices = [\"0x80000\"]\nborrowers = [4]\n\n";

struct Mistake {
    const char* what;
    std::string step; // the second step, from line 7 on
    std::string expected;
};

} // namespace

TEST_CASE("qualify: each kind of plan mistake is reported with its line and key, exit 2",
          "[cli][qualify]") {
    ToolFabric fabric(k_qualify_fabric);
    TempDir tmp;
    const std::string plan = (tmp.path() / "bad.toml").string();
    const std::vector<Mistake> mistakes = {
        {"unknown key",
         "[[step]]\nname = \"c2\"\nkind = \"device-cycle\"\ndevices = [\"0x80000\"]\n"
         "borrowers = [4]\ncycels = 3\n",
         plan + ":12: key 'cycels': unknown key in a device-cycle step"},
        {"wrong type",
         "[[step]]\nname = \"c2\"\nkind = \"device-cycle\"\ndevices = [\"0x80000\"]\n"
         "borrowers = [4]\ncycles = \"three\"\n",
         plan + ":12: key 'cycles': expected an integer"},
        {"missing device",
         "[[step]]\nname = \"c2\"\nkind = \"device-cycle\"\n"
         "devices = [\"0x80009\"]\nborrowers = [4]\n",
         plan + ":10: key 'devices': fdid 0x80009 is not in the fabric's pool (devices: "
                "0x80000, 0x80001)"},
        {"missing node",
         "[[step]]\nname = \"c2\"\nkind = \"device-cycle\"\n"
         "devices = [\"0x80000\"]\nborrowers = [4, 16]\n",
         plan + ":11: key 'borrowers': node 16 is not in the fabric (nodes: 4, 8, 12)"},
        {"missing key", "[[step]]\nname = \"c2\"\nkind = \"device-cycle\"\nborrowers = [4]\n",
         plan + ":7: key 'devices': missing in a device-cycle step"},
        {"unknown kind", "[[step]]\nname = \"c2\"\nkind = \"reboot\"\n",
         plan + ":9: key 'kind': unknown step kind 'reboot'"},
        {"unknown bench test",
         "[[step]]\nname = \"b\"\nkind = \"bench\"\ntest = \"pio-lat\"\n"
         "remote_node = 8\n",
         plan + ":10: key 'test': unknown test 'pio-lat'"},
        {"unknown threshold field",
         "[[step]]\nname = \"b\"\nkind = \"bench\"\ntest = \"pio-latency\"\nremote_node = 8\n"
         "thresholds = [\"p99_us <= 2\",\n  \"bandwidth_gbps >= 10\"]\n",
         plan + ":13: key 'thresholds': 'bandwidth_gbps >= 10': pio-latency has no field "
                "'bandwidth_gbps'"},
        {"bad threshold",
         "[[step]]\nname = \"b\"\nkind = \"bench\"\ntest = \"dma-bw\"\n"
         "remote_node = 8\nthresholds = [\"bandwidth_gbps => 10\"]\n",
         plan + ":12: key 'thresholds': 'bandwidth_gbps => 10': unknown operator '=>'"},
        {"duplicate step", "[[step]]\nname = \"cycles\"\nkind = \"diag\"\n",
         plan + ":8: key 'name': a second step named 'cycles'"},
        {"rebind of no PCI address",
         "[[step]]\nname = \"r\"\nkind = \"rebind\"\n"
         "device = \"nvme0\"\n",
         plan + ":10: key 'device': "},
        {"syntax error", "[[step]]\nname = \"c2\nkind = \"diag\"\n", plan + ":8: "},
    };
    const auto history_before =
        run_tool({"device", "history", "--fabric", fabric.dir(), "-o", "json"});
    REQUIRE(history_before.exit_code == 0);
    for (const auto& m : mistakes) {
        INFO(m.what);
        write_file(plan, k_first + m.step);
        auto r = run_tool({"qualify", "--plan", plan, "--fabric", fabric.dir()});
        INFO(r.out << r.err);
        CHECK(r.exit_code == 2);
        check_one_error_line(r);
        CHECK(r.err.find("dis-tool: error: " + m.expected) == 0);
        CHECK(r.out.empty());
        auto j = run_tool({"qualify", "--plan", plan, "--fabric", fabric.dir(), "-o", "json"});
        CHECK(j.exit_code == 2);
        auto doc = json::parse(j.out);
        CHECK(doc["error"]["kind"] == "invalid_input");
        CHECK(doc["error"]["message"].get<std::string>().find(m.expected) == 0);
        // --check finds the same mistake.
        CHECK(
            run_tool({"qualify", "--check", "--plan", plan, "--fabric", fabric.dir()}).exit_code ==
            2);
    }
    // Nothing ran: the first, valid step never borrowed anything.
    auto history_after = run_tool({"device", "history", "--fabric", fabric.dir(), "-o", "json"});
    CHECK(history_after.out == history_before.out);

    // The valid plan passes --check, runs nothing, exits 0.
    write_file(plan, k_first);
    auto ok = run_tool({"qualify", "--check", "--plan", plan, "--fabric", fabric.dir()});
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(ok.out == plan + ": plan 'bad' is valid (1 step)\n");
    CHECK(run_tool({"device", "history", "--fabric", fabric.dir(), "-o", "json"}).out ==
          history_before.out);
    // A plan that cannot be read is an input error too.
    auto missing = run_tool({"qualify", "--plan", plan + ".none", "--fabric", fabric.dir()});
    CHECK(missing.exit_code == 2);
    check_one_error_line(missing);
}

TEST_CASE("qualify: the shipped example plan for the software fabric is valid against its "
          "documented fabric",
          "[cli][qualify]") {
    ToolFabric fabric(k_qualify_fabric); // the config the plan's comment shows
    const std::string plan = std::string(DIS_SOURCE_DIR) + "/examples/plans/software-fabric.toml";
    auto r =
        run_tool({"qualify", "--check", "--plan", plan, "--fabric", fabric.dir(), "-o", "json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["valid"] == true);
    CHECK(doc["plan"] == "software-fabric");
    CHECK(doc["steps"] == 6);
}
