// Every subcommand a user can reach must have a man page and shell completion: this walks the
// built binary's own --help output, so a new command without docs fails here.
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

using dis::test::read_file;
using dis::test::run_tool;

namespace {

// Names listed under "Subcommands:" in CLI11's help text.
std::vector<std::string> subcommands_of(const std::vector<std::string>& path) {
    std::vector<std::string> args = path;
    args.push_back("--help");
    auto r = run_tool(args);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> names;
    std::istringstream in(r.out);
    std::string line;
    bool in_section = false;
    std::regex entry(R"(^  ([a-z0-9][a-z0-9-]*)\b.*)");
    while (std::getline(in, line)) {
        if (line.rfind("Subcommands:", 0) == 0) {
            in_section = true;
            continue;
        }
        std::smatch m;
        if (in_section && std::regex_match(line, m, entry))
            names.push_back(m[1]);
        else if (in_section && !line.empty() && line[0] != ' ')
            in_section = false;
    }
    return names;
}

// Long options ("--dump") listed in a command's help text.
std::set<std::string> options_of(const std::vector<std::string>& path) {
    std::vector<std::string> args = path;
    args.push_back("--help");
    auto r = run_tool(args);
    REQUIRE(r.exit_code == 0);
    std::set<std::string> opts;
    std::regex opt(R"((--[a-z0-9][a-z0-9-]*))");
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        // Only option lines (indented, starting with a dash), not descriptions.
        auto first = line.find_first_not_of(' ');
        if (first == std::string::npos || line[first] != '-')
            continue;
        for (std::sregex_iterator it(line.begin(), line.end(), opt), end; it != end; ++it)
            opts.insert((*it)[1]);
    }
    return opts;
}

bool contains_word(const std::string& text, const std::string& word) {
    std::regex re("(^|[^a-z0-9-])" + std::regex_replace(word, std::regex("-"), "\\-") +
                  "($|[^a-z0-9-])");
    return std::regex_search(text, re);
}

} // namespace

TEST_CASE("every subcommand has a man page and bash and zsh completion", "[docs]") {
    const std::filesystem::path src = DIS_SOURCE_DIR;
    const std::string bash = read_file(src / "completions/dis-tool.bash");
    const std::string zsh = read_file(src / "completions/_dis-tool");
    REQUIRE_FALSE(bash.empty());
    REQUIRE_FALSE(zsh.empty());

    auto nouns = subcommands_of({});
    REQUIRE(nouns.size() >= 4);
    for (const auto& noun : nouns) {
        INFO("subcommand " << noun);
        auto page = src / "man" / ("dis-tool-" + noun + ".1");
        CHECK(std::filesystem::exists(page));
        CHECK(contains_word(bash, noun));
        CHECK(contains_word(zsh, noun));
        std::string man_text = std::filesystem::exists(page) ? read_file(page) : "";
        for (const auto& verb : subcommands_of({noun})) {
            INFO("verb " << noun << " " << verb);
            CHECK((contains_word(man_text, verb) ||
                   man_text.find(std::regex_replace(verb, std::regex("-"), "\\-")) !=
                       std::string::npos));
            CHECK(contains_word(bash, verb));
            CHECK(contains_word(zsh, verb));
            for (const auto& o : options_of({noun, verb})) {
                if (o == "--help")
                    continue; // CLI11 adds it everywhere; dis-tool(1) documents it once
                INFO("option " << o);
                CHECK(contains_word(bash, o));
                CHECK(contains_word(zsh, o));
                const std::string escaped = std::regex_replace(o, std::regex("-"), "\\-");
                CHECK((man_text.find(o) != std::string::npos ||
                       man_text.find(escaped) != std::string::npos));
            }
        }
        for (const auto& o : options_of({noun})) {
            INFO("option " << o);
            CHECK(contains_word(bash, o));
            CHECK(contains_word(zsh, o));
        }
    }
    CHECK(std::filesystem::exists(src / "man/dis-tool.1"));
}

TEST_CASE("unknown subcommands and options are usage errors with one stderr line", "[cli]") {
    for (std::vector<std::string> args : {std::vector<std::string>{"no-such-command"},
                                          std::vector<std::string>{"--no-such-option"},
                                          std::vector<std::string>{}}) {
        auto r = run_tool(args);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
    }
}

TEST_CASE("the version flag prints the project version", "[cli]") {
    auto r = run_tool({"--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("0.1.0") != std::string::npos);
}

TEST_CASE("shell completions parse and complete nouns, verbs and option values", "[docs]") {
    const std::string dir = std::string(DIS_SOURCE_DIR) + "/completions";
    auto bash_syntax = dis::test::run({"/bin/bash", "-n", dir + "/dis-tool.bash"});
    CHECK(bash_syntax.exit_code == 0);
    INFO("zsh is installed by scripts/install-deps.sh");
    REQUIRE(std::filesystem::exists("/usr/bin/zsh"));
    auto zsh_syntax = dis::test::run({"/usr/bin/zsh", "-n", dir + "/_dis-tool"});
    CHECK(zsh_syntax.exit_code == 0);

    // Drive the bash function the way readline does and read COMPREPLY back.
    auto complete = [&](const std::string& words) {
        std::string script = "source " + dir + "/dis-tool.bash; COMP_WORDS=(" + words +
                             "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _dis_tool; "
                             "printf '%s\\n' \"${COMPREPLY[@]}\"";
        auto r = dis::test::run({"/bin/bash", "-c", script});
        REQUIRE(r.exit_code == 0);
        return r.out;
    };
    CHECK(complete("dis-tool ''").find("fabric\n") != std::string::npos);
    CHECK(complete("dis-tool pci ''") == "list\ntree\nshow\n");
    CHECK(complete("dis-tool bench dma-latency --mode ''") == "wait\nsleep\npoll\ncallback\n");
    CHECK(complete("dis-tool -o json fabric start --n").find("--nodes\n") != std::string::npos);
    CHECK(complete("dis-tool pci list -o ''") == "table\njson\ncsv\n");
}
