// dis-tool monitor in a real terminal: tmux (its own server on a private socket in the
// test's directory, killed at the end) runs the built tool against a real 3-node software fabric;
// the test sends keys, reads the screen with capture-pane, resizes the window, kills a node, quits
// and checks the exit code. Every wait polls the pane with a deadline.
#include "support.hpp"
#include "tmux.hpp"
#include "tool_fabric.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace dis::test;

namespace {

std::string monitor_command(const ToolFabric& f, const std::string& extra = "") {
    return quote(DIS_TOOL_PATH) + " monitor --fabric " + quote(f.dir()) + " " + extra;
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        auto end = s.find('\n', start);
        if (end == std::string::npos)
            end = s.size();
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// The first word of the line after the one that starts the nodes pane's column header.
std::string first_node(const std::string& screen) {
    const auto l = lines(screen);
    for (std::size_t i = 0; i + 1 < l.size(); ++i)
        if (l[i].rfind("NODE NAME", 0) == 0) {
            const auto& row = l[i + 1];
            const auto start = row.find_first_not_of(' ');
            return start == std::string::npos ? ""
                                              : row.substr(start, row.find(' ', start) - start);
        }
    return {};
}

} // namespace

TEST_CASE("monitor in tmux: live panes, keys, resize, a killed node, q exits 0",
          "[monitor][tmux]") {
    ToolFabric fabric(3);
    Tmux t(monitor_command(fabric, "-d 5"), 120, 40);
    auto s = t.wait_for_text("3/3 nodes up");
    INFO(s);
    CHECK(s.find("[Nodes & links] 3 nodes, 3 up") != std::string::npos);
    CHECK(s.find("Devices & leases") != std::string::npos);
    CHECK(s.find("Segments & DMA") != std::string::npos);
    CHECK(s.find("PCIe health") != std::string::npos);
    CHECK(s.find("every 0.5s") != std::string::npos);
    CHECK(first_node(s) == "4");
    CHECK(lines(s).size() == 40);

    // Help, closed by any key.
    t.keys({"h"});
    t.wait_for_text("dis-tool monitor keys");
    t.keys({"x"});
    t.wait_for([](const std::string& v) { return v.find("dis-tool monitor keys") == v.npos; },
               "the help to close");
    t.keys({"F1"});
    t.wait_for_text("dis-tool monitor keys");
    t.keys({"Escape"});
    t.wait_for([](const std::string& v) { return v.find("dis-tool monitor keys") == v.npos; },
               "the help to close");

    // I inverts the nodes pane; Tab moves the focus; s sorts the segments pane.
    t.keys({"I"});
    s = t.wait_for([](const std::string& v) { return first_node(v) == "12"; }, "node 12 first");
    CHECK(s.find("sort NODE desc") != std::string::npos);
    t.keys({"Tab", "Tab"});
    t.wait_for_text("[Segments & DMA]");
    t.keys({"F6"});
    t.wait_for_text("sort SEGMENT desc");
    t.keys({"BTab", "BTab"});
    t.wait_for_text("[Nodes & links]");

    // Pause: the indicator shows and the clock stops; p again resumes.
    t.keys({"p"});
    s = t.wait_for_text("PAUSED");
    const auto title = lines(s).at(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500)); // longer than 2 refreshes
    CHECK(lines(t.screen()).at(0) == title);
    t.keys({"p"});
    t.wait_for([&](const std::string& v) { return lines(v).at(0) != title; }, "refreshes again");
    CHECK(t.screen().find("PAUSED") == std::string::npos);
    // + refreshes more often.
    t.keys({"+"});
    t.wait_for_text("every 0.2s");

    // A smaller window: every line redrawn at the new size, fewer panes.
    t.resize(70, 12);
    s = t.wait_for(
        [](const std::string& v) {
            const auto l = lines(v);
            return l.size() == 12 && l.back().find("F1Help") != std::string::npos &&
                   v.find("PCIe health") == std::string::npos;
        },
        "the 70x12 layout");
    for (const auto& line : lines(s))
        CHECK(line.size() <= 70);
    CHECK(s.find("[Nodes & links]") != std::string::npos);
    t.resize(120, 40);
    t.wait_for_text("PCIe health");
    t.keys({"C-l"});
    t.wait_for_text("3/3 nodes up");

    // A killed node shows as down within a few refreshes.
    ::kill(fabric.pid_of(8), SIGKILL);
    s = t.wait_for_text("2/3 nodes up");
    CHECK(s.find("down") != std::string::npos);

    t.keys({"q"});
    CHECK(t.exit_code() == 0);
}

TEST_CASE("monitor in tmux: -n exits by itself, F10 quits", "[monitor][tmux]") {
    ToolFabric fabric(2);
    {
        Tmux t(monitor_command(fabric, "-n 3 -d 2"), 100, 30);
        CHECK(t.exit_code() == 0);
    }
    Tmux t(monitor_command(fabric), 100, 30);
    t.wait_for_text("2/2 nodes up");
    t.keys({"F10"});
    CHECK(t.exit_code() == 0);
}

TEST_CASE("monitor in tmux: colors unless -C or NO_COLOR", "[monitor][tmux]") {
    ToolFabric fabric(2);
    // Foreground color codes 30-37 (the green "up").
    auto has_color = [](const std::string& s) {
        return s.find("\x1b[32m") != std::string::npos || s.find(";32m") != std::string::npos ||
               s.find("[32;") != std::string::npos;
    };
    auto has_reverse = [](const std::string& s) {
        return s.find("\x1b[7m") != std::string::npos || s.find(";7m") != std::string::npos ||
               s.find("[7;") != std::string::npos;
    };
    {
        Tmux t(monitor_command(fabric), 100, 30);
        auto s = t.wait_for([&](const std::string& v) { return has_color(v); }, "colors", true);
        t.keys({"q"});
        CHECK(t.exit_code() == 0);
    }
    for (const char* how : {"-C", "--no-color"}) {
        Tmux t(monitor_command(fabric, how), 100, 30);
        auto s =
            t.wait_for([&](const std::string& v) { return has_reverse(v); }, "reverse video", true);
        INFO(how);
        CHECK_FALSE(has_color(s));
        t.keys({"q"});
        CHECK(t.exit_code() == 0);
    }
    Tmux t("NO_COLOR=1 " + monitor_command(fabric), 100, 30);
    auto s =
        t.wait_for([&](const std::string& v) { return has_reverse(v); }, "reverse video", true);
    CHECK_FALSE(has_color(s));
    t.keys({"q"});
    CHECK(t.exit_code() == 0);
}

TEST_CASE("monitor in tmux: an unknown TERM prints the snapshot with one line saying why",
          "[monitor][tmux]") {
    ToolFabric fabric(2);
    Tmux t("TERM=no-such-terminal " + monitor_command(fabric), 120, 40);
    const auto code = t.exit_code();
    const auto s = t.screen();
    INFO(s);
    CHECK(code == 0);
    CHECK(s.find("dis-tool: monitor: unknown terminal type 'no-such-terminal'; printing one "
                 "snapshot instead") != std::string::npos);
    CHECK(s.find("Nodes & links: 2 nodes, 2 up") != std::string::npos);
    CHECK(s.find("[Nodes & links]") == std::string::npos); // no screen was drawn
}

TEST_CASE("monitor in tmux: UTF-8 node names are painted intact and line up", "[monitor][tmux]") {
    const std::string angstrom = "GPU-\xc3\x85ngstr\xc3\xb6m"; // GPU-Ångström
    const std::string cjk =
        "\xe6\x9d\xb1\xe4\xba\xac\xe3\x83\x8e\xe3\x83\xbc\xe3\x83\x89"; // 東京ノード
    ToolFabric fabric("node 4 name=" + angstrom + "\nnode 8 name=" + cjk + "\n");
    Tmux t("LC_ALL=C.UTF-8 " + monitor_command(fabric), 120, 40);
    auto s = t.wait_for_text("2/2 nodes up");
    INFO(s);
    CHECK(s.find(angstrom) != std::string::npos);
    CHECK(s.find(cjk) != std::string::npos);
    // The STATE column starts at the same terminal column on both rows: GPU-Ångström is 12
    // columns in 14 bytes, 東京ノード 10 columns in 15 bytes.
    const auto l = lines(s);
    std::vector<std::size_t> state_columns;
    for (const auto& line : l) {
        for (const auto* name : {&angstrom, &cjk}) {
            const auto at = line.find(*name);
            if (at == std::string::npos)
                continue;
            const auto up = line.find(" up ", at);
            REQUIRE(up != std::string::npos);
            std::size_t columns = 0; // UTF-8 lead bytes; the CJK glyphs are 2 columns each
            for (std::size_t i = 0; i <= up; ++i) {
                const auto c = static_cast<unsigned char>(line[i]);
                if ((c & 0xc0) != 0x80)
                    columns += c >= 0xe0 ? 2 : 1;
            }
            state_columns.push_back(columns);
        }
    }
    REQUIRE(state_columns.size() == 2);
    CHECK(state_columns[0] == state_columns[1]);
    t.keys({"q"});
    CHECK(t.exit_code() == 0);
}
