// The exit-code contract of dis-tool(1), EXIT STATUS: 0 success, 1 a check ran and found
// problems, 2 usage or input error, 3 fabric or daemon unreachable, 4 internal or OS error.
// Every failure prints one "dis-tool: error:" line on stderr and, with -o json wherever it
// sits on the command line, exactly one JSON error object on stdout: CLI11's own parse
// errors included.
#include "lending_host.hpp"
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace dis::test;
using nlohmann::json;

namespace {

// stdout is exactly one complete JSON object {"error": {"kind", "message"}} of `kind`.
void check_json_error(const RunResult& r, const std::string& kind) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(!r.out.empty());
    json doc = json::parse(r.out, nullptr, false); // strict: trailing text fails too
    REQUIRE_FALSE(doc.is_discarded());
    REQUIRE(doc.is_object());
    CHECK(doc.size() == 1);
    REQUIRE(doc.contains("error"));
    const json& e = doc["error"];
    REQUIRE(e.is_object());
    REQUIRE(e.contains("kind"));
    REQUIRE(e.contains("message"));
    REQUIRE(e["kind"].is_string());
    REQUIRE(e["message"].is_string());
    CHECK(e["kind"] == kind);
    CHECK(!e["message"].get<std::string>().empty());
    // The JSON message is the stderr line's text.
    CHECK(r.err == "dis-tool: error: " + e["message"].get<std::string>() + "\n");
}

struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string kind;   // of the JSON error; empty for a success
    std::string needle; // in the stderr line
    // -o json may follow; false where the last option waits for a value (CLI11 takes
    // "-ojson" as that value), so -o json goes in front only.
    bool json_at_end = true;
};

} // namespace

TEST_CASE("every failure has its exit code, one stderr line and one JSON error object",
          "[cli][exit]") {
    TempDir tmp;
    const std::string dump = fixture("pci/cap-dpc.txt");
    const std::string missing = (tmp.path() / "missing.txt").string();
    const std::string empty_fabric = (tmp.path() / "fabric").string();
    std::filesystem::create_directories(empty_fabric);

    const std::vector<Case> cases = {
        {{"pci", "list", "--dump", dump}, 0, "", ""},
        {{"pci", "show", "05:01.0", "--dump", dump}, 0, "", ""},
        // CLI11 parse errors: unknown option, missing argument, missing option value, bad
        // option value, no subcommand, excluded options together, unknown command.
        {{"pci", "list", "--bogus"}, 2, "invalid_input", "--bogus"},
        {{"pci", "show", "--dump", dump}, 2, "invalid_input", "bdf is required"},
        {{"pci", "list", "--dump"}, 2, "invalid_input", "--dump", false},
        {{"pci", "list", "--dump", dump, "--sysfs-root", "/sys"}, 2, "invalid_input", "excludes"},
        {{"pci"}, 2, "invalid_input", ""},
        {{}, 2, "invalid_input", ""},
        {{"pci", "lst"}, 2, "invalid_input", "did you mean 'list'?"},
        {{"bnech"}, 2, "invalid_input", "did you mean 'bench'?"},
        {{"device", "check", "--window-size"}, 2, "invalid_input", "--window-size", false},
        // Input errors found by the library.
        {{"pci", "show", "zz:00.0", "--dump", dump}, 2, "invalid_input", "invalid PCI address"},
        {{"pci", "show", "07:00.0", "--dump", dump}, 2, "not_found", "no PCI device 0000:07:00.0"},
        {{"pci", "list", "--dump", missing}, 2, "not_found", "No such file"},
        {{"iommu", "--dump", missing}, 2, "not_found", "No such file"},
        {{"p2p", "--dump", dump, "05:01.0"}, 2, "invalid_input", "at least two devices"},
        {{"device", "check", "--dump", dump, "42:00.0"}, 2, "not_found", "no PCI device"},
        {{"device", "check", "--dump", dump, "05:01.0", "--window-size", "12X"},
         2,
         "invalid_input",
         "invalid window size"},
        // No fabric there: unreachable.
        {{"topology", "--fabric", empty_fabric}, 3, "fabric_down", ""},
    };

    for (const auto& c : cases) {
        INFO("dis-tool " << join_args(c.args));
        auto r = run_tool(c.args);
        CHECK(r.signal == 0);
        CHECK(r.exit_code == c.exit_code);
        if (c.exit_code == 0) {
            CHECK(r.err.empty());
            CHECK(!r.out.empty());
            continue;
        }
        check_one_error_line(r);
        CHECK(r.err.find(c.needle) != std::string::npos);
        CHECK(r.out.empty()); // text mode: nothing on stdout

        // -o json at the end, at the front, and in its other spellings.
        std::vector<std::vector<std::string>> json_forms;
        for (const std::vector<std::string>& form :
             {std::vector<std::string>{"-o", "json"}, {"-ojson"}, {"--output=json"}}) {
            auto at_end = c.args;
            at_end.insert(c.json_at_end ? at_end.end() : at_end.begin(), form.begin(), form.end());
            json_forms.push_back(at_end);
        }
        auto at_front = c.args;
        at_front.insert(at_front.begin(), {"--output", "json"});
        json_forms.push_back(at_front);
        for (const auto& args : json_forms) {
            INFO("dis-tool " << join_args(args));
            auto j = run_tool(args);
            CHECK(j.exit_code == c.exit_code);
            check_one_error_line(j);
            check_json_error(j, c.kind);
        }
    }
}

TEST_CASE("a mistyped command names the word and the nearest valid command", "[cli][exit]") {
    auto r = run_tool({"pci", "lst"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "dis-tool: error: unknown command 'lst' for 'dis-tool pci'; did you mean "
                   "'list'?\n");
    // Transposed letters and the top level; global options before the word are skipped.
    CHECK(run_tool({"-o", "table", "pcii", "list"}).err ==
          "dis-tool: error: unknown command 'pcii' for 'dis-tool'; did you mean 'pci'?\n");
    CHECK(run_tool({"device", "chekc"}).err ==
          "dis-tool: error: unknown command 'chekc' for 'dis-tool device'; did you mean "
          "'check'?\n");
    // Nothing near: the valid commands are listed instead of a guess.
    auto far = run_tool({"pci", "frobnicate"});
    CHECK(far.exit_code == 2);
    CHECK(far.err == "dis-tool: error: unknown command 'frobnicate' for 'dis-tool pci' "
                     "(commands: list, tree, show)\n");
    auto j = run_tool({"pci", "lst", "-o", "json"});
    CHECK(j.exit_code == 2);
    check_json_error(j, "invalid_input");
    // A positional argument is not a command: a bad BDF stays an input error about the BDF.
    auto bdf = run_tool({"iommu", "--dump", fixture("pci/cap-dpc.txt"), "lst"});
    CHECK(bdf.exit_code == 2);
    CHECK(bdf.err.find("invalid PCI address") != std::string::npos);
}

TEST_CASE("an OS error exits 4 with a JSON error object", "[cli][exit]") {
    // An unreadable dump, read as nobody (root reads any file): permission is kind
    // "permission", an OS error, not a usage error.
    REQUIRE(std::filesystem::exists("/usr/bin/setpriv"));
    TempDir dir;
    REQUIRE(chmod(dir.path().c_str(), 0711) == 0);
    auto dump = dir.path() / "secret.txt";
    write_file(dump, read_file(fixture("pci/cap-dpc.txt")));
    REQUIRE(chmod(dump.c_str(), 0000) == 0);
    std::vector<std::string> argv{"/usr/bin/setpriv",
                                  "--reuid=65534",
                                  "--regid=65534",
                                  "--clear-groups",
                                  DIS_TOOL_PATH,
                                  "-o",
                                  "json",
                                  "pci",
                                  "list",
                                  "--dump",
                                  dump.string()};
    if (geteuid() != 0)
        argv.erase(argv.begin(), argv.begin() + 4); // already unprivileged
    auto r = run(argv);
    CHECK(r.exit_code == 4);
    check_one_error_line(r);
    check_json_error(r, "permission");
}

TEST_CASE("device check: a verdict is not an error", "[cli][exit][device]") {
    struct Verdict {
        const char* name;
        Lender lender;
        std::string verdict, text;
        int exit_code, strict_exit_code;
    };
    Lender warned;
    warned.driver = "i40e"; // bound to a driver: a warning
    Lender too_big;
    too_big.bar = 1ull << 30; // over the default 512 MiB window: not ready
    const std::vector<Verdict> verdicts = {
        {"ready", {}, "ready", "Verdict: ready\n", 0, 0},
        {"warnings", warned, "ready_with_warnings", "Verdict: ready with warnings\n", 0, 1},
        {"not ready", too_big, "not_ready", "Verdict: not ready\n", 1, 1},
    };
    for (const auto& v : verdicts) {
        INFO(v.name);
        TempDir tmp;
        SysfsTree tree(tmp.path() / "sys");
        build_lending_host(tree, v.lender);
        std::vector<std::string> args{"device", "check", "--sysfs-root", tree.root().string(),
                                      "01:00.0"};
        for (bool strict : {false, true}) {
            INFO("strict " << strict);
            auto a = args;
            if (strict)
                a.push_back("--strict");
            int expected = strict ? v.strict_exit_code : v.exit_code;

            auto text = run_tool(a);
            CHECK(text.exit_code == expected);
            CHECK(text.err.empty()); // a verdict prints no error line
            CHECK(text.out.find(v.text) != std::string::npos);

            a.insert(a.end(), {"-o", "json"});
            auto j = run_tool(a);
            CHECK(j.exit_code == expected);
            CHECK(j.err.empty());
            auto doc = parse_out(j);
            CHECK(doc["verdict"] == v.verdict);
            CHECK_FALSE(doc.contains("error"));

            a.back() = "csv";
            auto csv = run_tool(a);
            CHECK(csv.exit_code == expected);
            auto rows = parse_csv(csv.out);
            REQUIRE(rows.size() >= 2);
            CHECK(rows.front() == std::vector<std::string>{"CHECK", "RESULT", "DETAILS"});
            CHECK(rows.back() == std::vector<std::string>{"verdict", v.verdict, ""});
        }
    }
}
