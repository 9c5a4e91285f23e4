// dis-tool monitor's screen as a pure function: layout at several sizes (tiny ones too),
// sorting, paging, the help overlay, the pause indicator and no-color, on synthetic snapshots.
#include "dis/monitor.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <string>

using namespace dis::monitor;

namespace {

// `nodes` answering nodes (ids 4, 8, ...), the last `down` of them down, and `segments`
// segments spread over the nodes with sizes 4 KiB * (i % 7 + 1).
Snapshot make_snapshot(int nodes, int down, int segments) {
    Snapshot s;
    s.fabric_dir = "/run/dis";
    s.time = "12:34:56";
    for (int i = 0; i < nodes; ++i) {
        NodeRow row;
        auto& n = row.sample;
        n.id = static_cast<std::uint32_t>(4 * (i + 1));
        n.up = i < nodes - down;
        if (!n.up) {
            n.error = "node " + std::to_string(n.id) + ": connection refused";
        } else {
            n.info.node_id = n.id;
            n.info.name = "node" + std::to_string(n.id);
            n.info.uptime_s = 100 + static_cast<std::uint64_t>(i);
            n.info.counters = {{"segments", 2}, {"clients", 1}, {"interrupts", 0}};
            for (int j = 0; j < nodes; ++j)
                if (j != i)
                    n.links.push_back({n.id, static_cast<std::uint32_t>(4 * (j + 1)),
                                       j < nodes - down ? "up" : "down", 4, "8GT/s"});
            row.rates.dma_transfers = 10.0 * i;
            row.rates.dma_bytes = 1024.0 * i;
            row.rates.dma_errors = 0;
        }
        s.nodes.push_back(row);
    }
    s.segments_fetched = true;
    for (int i = 0; i < segments; ++i) {
        dis::fabric::SegmentInfo seg;
        seg.node_id = static_cast<std::uint32_t>(4 * (i % std::max(nodes, 1) + 1));
        seg.segment_id = static_cast<std::uint32_t>(100 + i);
        seg.size = 4096ULL * static_cast<std::uint64_t>(i % 7 + 1);
        seg.state = "available";
        seg.owner_pid = 1000 + i;
        s.segments.push_back(seg);
    }
    s.devices.note = "no lending data: this build has no lending client";
    s.pcie.available = true;
    s.pcie.source = "live";
    PcieRow ok;
    ok.bdf = "0000:00:01.0";
    ok.name = "root port";
    ok.speed = ok.max_speed = "8GT/s";
    ok.width = ok.max_width = 8;
    ok.has_aer_counters = true;
    PcieRow slow = ok;
    slow.bdf = "0000:01:00.0";
    slow.name = "nic";
    slow.speed = "2.5GT/s";
    slow.downgraded = true;
    slow.correctable = 3;
    s.pcie.rows = {ok, slow};
    return s;
}

int find_row(const Grid& g, const std::string& text) {
    for (int y = 0; y < g.height(); ++y)
        if (g.row_text(y).find(text) != std::string::npos)
            return y;
    return -1;
}

bool contains(const Grid& g, const std::string& text) {
    return find_row(g, text) >= 0;
}

// The first words of the lines under the column header line containing `header`, while
// they are numbers (the pane's data rows, top to bottom).
std::vector<std::string> first_column(const Grid& g, const std::string& header) {
    std::vector<std::string> out;
    int y = find_row(g, header);
    REQUIRE(y >= 0);
    for (++y; y < g.height(); ++y) {
        const auto row = g.row_text(y);
        const auto start = row.find_first_not_of(' ');
        if (start == std::string::npos || !std::isdigit(static_cast<unsigned char>(row[start])))
            break;
        out.push_back(row.substr(start, row.find(' ', start) - start));
    }
    return out;
}

} // namespace

TEST_CASE("monitor grid: every size gives exactly that many cells, tiny ones included",
          "[monitor]") {
    const auto s = make_snapshot(16, 1, 1000);
    for (auto [w, h] : {std::pair{1, 1},
                        {5, 1},
                        {1, 5},
                        {10, 2},
                        {20, 3},
                        {20, 4},
                        {30, 5},
                        {40, 10},
                        {80, 24},
                        {120, 40},
                        {250, 80}}) {
        ViewState view;
        const auto g = render(s, view, w, h);
        INFO(w << "x" << h << "\n" << g.text());
        REQUIRE(g.width() == w);
        REQUIRE(g.height() == h);
        for (int y = 0; y < h; ++y)
            CHECK(static_cast<int>(g.row_text(y).size()) == w);
        CHECK(g.row_text(0).rfind(std::string(" dis-tool monitor").substr(0, w), 0) == 0);
    }
    ViewState view;
    CHECK(render(s, view, 0, 0).height() == 0);
    CHECK(render(s, view, -3, 7).width() == 0);
}

TEST_CASE("monitor grid: small terminals show the focused pane, then too small", "[monitor]") {
    const auto s = make_snapshot(3, 0, 5);
    ViewState view;
    // 80x24: every pane with its title.
    auto g = render(s, view, 80, 24);
    for (const char* title : {"Nodes & links", "Devices & leases", "Segments & DMA", "PCIe health"})
        CHECK(contains(g, title));
    CHECK(contains(g, "F1Help"));
    CHECK(find_row(g, "F10Quit") == 23);

    // 8 lines: 6 for panes, two panes of 3; the focused one (segments) and the next.
    view.focus = PaneId::segments;
    g = render(s, view, 80, 8);
    INFO(g.text());
    CHECK(contains(g, "[Segments & DMA]"));
    CHECK(contains(g, "PCIe health"));
    CHECK_FALSE(contains(g, "Nodes & links"));
    auto d = demand(view, 80, 8);
    CHECK(d.segments);
    CHECK(d.pcie);
    CHECK_FALSE(d.devices);

    // 5 lines: only the focused pane.
    g = render(s, view, 80, 5);
    CHECK(contains(g, "[Segments & DMA]"));
    CHECK_FALSE(contains(g, "PCIe health"));
    d = demand(view, 80, 5);
    CHECK(d.segments);
    CHECK_FALSE(d.pcie);
    CHECK(d.nodes); // the title bar's node count

    // A narrow pane title keeps the rows shown and drops the sort.
    view.focus = PaneId::nodes;
    g = render(s, view, 40, 24);
    CHECK(g.row_text(1).find("1-3/3") != std::string::npos);
    CHECK(g.row_text(1).find("sort") == std::string::npos);
    CHECK(render(s, view, 80, 24).row_text(1).find("sort NODE asc  1-3/3") != std::string::npos);
    view.focus = PaneId::segments;

    // 4 lines: no pane fits.
    g = render(s, view, 80, 4);
    CHECK(contains(g, "terminal too small (80x4)"));
    d = demand(view, 80, 4);
    CHECK_FALSE(d.segments);
}

TEST_CASE("monitor grid: the focused pane gets the room its rows need", "[monitor]") {
    const auto s = make_snapshot(16, 0, 1000);
    ViewState view;
    int rows[k_pane_count];
    pane_rows(s, rows);
    CHECK(rows[static_cast<int>(PaneId::segments)] == 1000);
    auto l = layout(view, rows, 120, 40);
    REQUIRE(l.panes.size() == 4);
    // Nodes focused: title + header + 16 rows; the panes fill rows 1..38 without overlap.
    CHECK(l.panes[0].id == PaneId::nodes);
    CHECK(l.panes[0].height == 18);
    int y = 1;
    for (const auto& p : l.panes) {
        CHECK(p.y == y);
        CHECK(p.height >= 3);
        y += p.height;
    }
    CHECK(y == 39);
    view.focus = PaneId::segments;
    l = layout(view, rows, 120, 40);
    CHECK(l.panes[2].id == PaneId::segments);
    CHECK(l.panes[2].height == 38 - 3 * 3);
}

TEST_CASE("monitor grid: s sorts by the next column, I inverts, rows follow", "[monitor]") {
    auto s = make_snapshot(4, 0, 0);
    ViewState view;
    auto g = render(s, view, 160, 30);
    CHECK(first_column(g, "NODE NAME") == std::vector<std::string>{"4", "8", "12", "16"});
    CHECK(contains(g, "sort NODE asc"));

    int rows[k_pane_count];
    pane_rows(s, rows);
    CHECK(handle_key(view, Key::invert, rows) == Action::repaint);
    g = render(s, view, 160, 30);
    CHECK(first_column(g, "NODE NAME") == std::vector<std::string>{"16", "12", "8", "4"});
    CHECK(contains(g, "sort NODE desc"));

    // Sort by DMA/s: numeric columns start descending (node 16 has the highest rate).
    const auto columns = pane_columns(PaneId::nodes);
    const auto dma = std::find_if(columns.begin(), columns.end(),
                                  [](const Column& c) { return c.header == "DMA/s"; }) -
                     columns.begin();
    while (view.panes[0].sort.column != dma)
        handle_key(view, Key::sort, rows);
    CHECK(view.panes[0].sort.descending);
    g = render(s, view, 160, 30);
    CHECK(contains(g, "sort DMA/s desc"));
    CHECK(first_column(g, "NODE NAME") == std::vector<std::string>{"16", "12", "8", "4"});
    // The sorted column's header is marked by its style.
    const int hy = find_row(g, "NODE NAME");
    const int hx = static_cast<int>(g.row_text(hy).find("DMA/s"));
    CHECK(g.at(hx, hy).style == Style::column_sorted);
    CHECK(g.at(0, hy).style == Style::column_header);

    // Sorting a text column by name: ascending, "node12" < "node16" < "node4" < "node8".
    view.panes[0].sort = {1, false};
    g = render(s, view, 160, 30);
    CHECK(first_column(g, "NODE NAME") == std::vector<std::string>{"12", "16", "4", "8"});

    // Sorting wraps around to the first column.
    for (std::size_t i = 1; i < columns.size(); ++i)
        handle_key(view, Key::sort, rows);
    CHECK(view.panes[0].sort.column == 0);
}

TEST_CASE("monitor grid: arrows and PgUp/PgDn page through a long pane", "[monitor]") {
    const auto s = make_snapshot(2, 0, 100);
    ViewState view;
    view.focus = PaneId::segments;
    int rows[k_pane_count];
    pane_rows(s, rows);
    auto g = render(s, view, 100, 30);
    const int page = view.panes[2].page;
    CHECK(page == 30 - 2 - 3 * 3 - 2); // the middle minus the other panes minus title+header
    CHECK(contains(g, "1-" + std::to_string(page) + "/100"));

    // The selected row is highlighted; Down moves it.
    const int first = find_row(g, "SEGMENT") + 1;
    CHECK(g.at(0, first).style == Style::selected);
    handle_key(view, Key::down, rows);
    g = render(s, view, 100, 30);
    CHECK(g.at(0, first).style != Style::selected);
    CHECK(g.at(0, first + 1).style == Style::selected);

    // PgDn moves by a page and scrolls.
    handle_key(view, Key::page_down, rows);
    g = render(s, view, 100, 30);
    CHECK(view.panes[2].selected == 1 + page);
    CHECK(contains(g, "3-" + std::to_string(page + 2) + "/100"));
    // End: the last row at the bottom; PgDn stays there; Home back to the top.
    handle_key(view, Key::end, rows);
    g = render(s, view, 100, 30);
    CHECK(contains(g, std::to_string(100 - page + 1) + "-100/100"));
    CHECK(contains(g, " 199 ")); // segment id of the last row
    handle_key(view, Key::page_down, rows);
    CHECK(view.panes[2].selected == 99);
    handle_key(view, Key::home, rows);
    handle_key(view, Key::up, rows);
    g = render(s, view, 100, 30);
    CHECK(view.panes[2].selected == 0);
    CHECK(contains(g, "1-" + std::to_string(page) + "/100"));

    // Tab and Shift-Tab move the focus around the panes; only the focused pane has a selection.
    CHECK(handle_key(view, Key::next_pane, rows) == Action::repaint);
    CHECK(view.focus == PaneId::pcie);
    handle_key(view, Key::next_pane, rows);
    CHECK(view.focus == PaneId::nodes);
    handle_key(view, Key::prev_pane, rows);
    CHECK(view.focus == PaneId::pcie);
    g = render(s, view, 100, 30);
    CHECK(contains(g, "[PCIe health]"));
    CHECK(g.at(0, first).style != Style::selected);
}

TEST_CASE("monitor grid: the help overlay opens on h, ? and F1 and any key closes it",
          "[monitor]") {
    const auto s = make_snapshot(3, 0, 3);
    int rows[k_pane_count];
    pane_rows(s, rows);
    ViewState view;
    CHECK_FALSE(contains(render(s, view, 100, 30), "dis-tool monitor keys"));
    CHECK(handle_key(view, Key::help, rows) == Action::repaint);
    auto g = render(s, view, 100, 30);
    CHECK(contains(g, "dis-tool monitor keys"));
    CHECK(contains(g, "q, F10"));
    const int y = find_row(g, "q, F10");
    CHECK(g.at(static_cast<int>(g.row_text(y).find("q, F10")), y).style == Style::help);
    // A key other than quit closes it without acting.
    CHECK(handle_key(view, Key::down, rows) == Action::repaint);
    CHECK(view.panes[0].selected == 0);
    CHECK_FALSE(view.help);
    CHECK_FALSE(contains(render(s, view, 100, 30), "dis-tool monitor keys"));
    // Quit quits from the help too; a tiny terminal clips the box.
    handle_key(view, Key::help, rows);
    g = render(s, view, 12, 4);
    CHECK(g.width() == 12);
    CHECK(handle_key(view, Key::quit, rows) == Action::quit);
}

TEST_CASE("monitor grid: p pauses with an indicator, +/- step the delay", "[monitor]") {
    const auto s = make_snapshot(3, 0, 3);
    int rows[k_pane_count];
    pane_rows(s, rows);
    ViewState view;
    CHECK_FALSE(contains(render(s, view, 100, 30), "PAUSED"));
    CHECK(contains(render(s, view, 100, 30), "every 1.0s"));
    CHECK(handle_key(view, Key::pause, rows) == Action::repaint);
    auto g = render(s, view, 100, 30);
    const auto title = g.row_text(0);
    REQUIRE(title.find("PAUSED") != std::string::npos);
    CHECK(title.find("PAUSED") + 7 == 100); // at the right edge
    CHECK(g.at(99 - 2, 0).style == Style::paused);
    // Even a narrow title keeps the indicator.
    CHECK(render(s, view, 30, 10).row_text(0).find("PAUSED") != std::string::npos);
    // Unpausing asks for a refresh at once.
    CHECK(handle_key(view, Key::pause, rows) == Action::refresh);

    handle_key(view, Key::faster, rows);
    CHECK(view.delay_tenths == 5);
    CHECK(contains(render(s, view, 100, 30), "every 0.5s"));
    for (int i = 0; i < 10; ++i)
        handle_key(view, Key::faster, rows);
    CHECK(view.delay_tenths == 1);
    for (int i = 0; i < 20; ++i)
        handle_key(view, Key::slower, rows);
    CHECK(view.delay_tenths == 600);
    CHECK(slower_delay(15) == 20);
    CHECK(faster_delay(15) == 10);
    CHECK(handle_key(view, Key::redraw, rows) == Action::redraw);
    CHECK(handle_key(view, Key::resize, rows) == Action::redraw);
    CHECK(handle_key(view, Key::other, rows) == Action::none);
}

TEST_CASE("monitor grid: no-color uses no color styles and states stay spelled out", "[monitor]") {
    const auto s = make_snapshot(4, 1, 10);
    ViewState view;
    view.focus = PaneId::pcie;
    auto colored = render(s, view, 140, 40);
    bool any_color = false;
    for (int y = 0; y < colored.height(); ++y)
        for (int x = 0; x < colored.width(); ++x)
            any_color = any_color || is_color_style(colored.at(x, y).style);
    CHECK(any_color);

    view.color = false;
    const auto mono = render(s, view, 140, 40);
    for (int y = 0; y < mono.height(); ++y)
        for (int x = 0; x < mono.width(); ++x)
            CHECK_FALSE(is_color_style(mono.at(x, y).style));
    // The same text either way: the meaning never rests on color alone.
    CHECK(mono.text() == colored.text());
    CHECK(contains(mono, "down"));
    CHECK(contains(mono, "downgraded"));
    // A down node is emphasised (bold) without color.
    const int y = find_row(mono, "connection refused");
    REQUIRE(y >= 0);
    const int x = static_cast<int>(mono.row_text(y).find("down"));
    CHECK(mono.at(x, y).style == Style::strong);
}

TEST_CASE("monitor grid: the PCIe pane puts problems first and counts AER since start",
          "[monitor]") {
    const auto s = make_snapshot(1, 0, 0);
    ViewState view;
    const auto p = build_pane(PaneId::pcie, s, view.panes[static_cast<int>(PaneId::pcie)].sort);
    REQUIRE(p.rows.size() == 2);
    CHECK(p.rows[0][0].text == "0000:01:00.0"); // downgraded sorts before ok
    CHECK(p.rows[0][5].text == "downgraded");
    CHECK(p.rows[0][6].text == "3");
    CHECK(p.rows[1][5].text == "ok");
    CHECK(p.summary.find("1 downgraded") != std::string::npos);
    CHECK(p.summary.find("AER since start 3 cor, 0 nonfatal, 0 fatal") != std::string::npos);
}

// Every row of the grid is exactly its width in display columns, and no cell holds a
// control character.
void check_columns(const Grid& g) {
    for (int y = 0; y < g.height(); ++y) {
        const auto row = g.row_text(y);
        INFO("row " << y << ": " << row);
        CHECK(display_width(row) == g.width());
        for (char c : row)
            CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
    }
}

TEST_CASE("monitor grid: control bytes and invalid UTF-8 are shown as '?', UTF-8 intact",
          "[monitor]") {
    auto s = make_snapshot(1, 0, 0);
    s.nodes[0].sample.info.name = "n\x1b[31m\xc3\xa9\xff\xe6\x9d";
    ViewState view;
    const auto g = render(s, view, 100, 20);
    INFO(g.text());
    // ESC, then é kept, then a stray byte and a cut 3-byte sequence: one '?' per byte.
    CHECK(contains(g, "n?[31m\xc3\xa9???"));
    check_columns(g);
}

TEST_CASE("monitor grid: cells are display columns, double-width glyphs are never split",
          "[monitor]") {
    CHECK(display_width("GPU-\xc3\x85ngstr\xc3\xb6m") == 12);          // GPU-Ångström
    CHECK(display_width("\xe6\x9d\xb1\xe4\xba\xac") == 4);             // 東京
    CHECK(display_width("e\xcc\x81") == 1);                            // e + combining acute
    CHECK(fit_width("\xe6\x9d\xb1\xe4\xba\xac", 3) == "\xe6\x9d\xb1"); // not half of 京
    CHECK(fit_width("a\xe6\x9d\xb1", 2) == "a");
    CHECK(to_wide("\xc3\x85x") == L"\u00c5x");

    Grid g(5, 2);
    g.put(0, 0, "\xe6\x9d\xb1\xe4\xba\xac\xe3\x83\x8e", Style::normal); // 東京ノ: 6 columns
    CHECK(g.row_text(0) == "\xe6\x9d\xb1\xe4\xba\xac "); // ノ does not fit in the last column
    CHECK(g.at(0, 0).ch == "\xe6\x9d\xb1");
    CHECK(g.at(1, 0).ch.empty()); // the second column of 東
    // Writing over half of a double-width glyph blanks its other half.
    g.put(1, 0, "x", Style::normal);
    CHECK(g.row_text(0) == " x\xe4\xba\xac ");
    g.put(2, 0, "y", Style::normal);
    CHECK(g.row_text(0) == " xy  ");
    // Cut by the left edge: the column it would have on the grid is blank.
    g.put(-1, 1,
          "\xe6\x9d\xb1"
          "ab",
          Style::normal);
    CHECK(g.row_text(1) == " ab  ");
    check_columns(g);
}

TEST_CASE("monitor grid: Ångström and CJK names line up their columns and are cut whole",
          "[monitor]") {
    auto s = make_snapshot(3, 0, 0);
    const std::string angstrom = "GPU-\xc3\x85ngstr\xc3\xb6m";
    const std::string cjk =
        "\xe6\x9d\xb1\xe4\xba\xac\xe3\x83\x8e\xe3\x83\xbc\xe3\x83\x89"; // 東京ノード
    std::string long_cjk;                                               // 21 glyphs: 42 columns
    for (int i = 0; i < 21; ++i)
        long_cjk += "\xe6\x9d\xb1";
    s.nodes[0].sample.info.name = angstrom;
    s.nodes[1].sample.info.name = cjk;
    s.nodes[2].sample.info.name = "a" + long_cjk; // the NAME column is at most 20 wide
    ViewState view;
    for (int width : {120, 33, 20, 7}) {
        const auto g = render(s, view, width, 30);
        INFO("width " << width << "\n" << g.text());
        check_columns(g);
        if (width != 120)
            continue;
        const int header = find_row(g, "NODE NAME");
        REQUIRE(header >= 0);
        const std::string h = g.row_text(header);
        const auto state_col = display_width(h.substr(0, h.find("STATE")));
        for (int i = 1; i <= 3; ++i) {
            const std::string row = g.row_text(header + i);
            // The STATE column ("up") starts at the same display column on every row.
            CHECK(display_width(row.substr(0, row.find(" up ") + 1)) == state_col);
        }
        CHECK(contains(g, angstrom));
        CHECK(contains(g, cjk));
        // 'a' and 9 whole glyphs (19 columns); the 10th would need 21.
        std::string cut = "a";
        for (int i = 0; i < 9; ++i)
            cut += "\xe6\x9d\xb1";
        CHECK(contains(g, cut + "  up"));
        CHECK_FALSE(contains(g, cut + "\xe6\x9d\xb1"));
    }
}

TEST_CASE("monitor formats bytes, rates and counter deltas", "[monitor]") {
    CHECK(format_bytes(0) == "0 B");
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(12.0 * 1024 * 1024) == "12.0 MiB");
    CHECK(format_rate(0) == "0");
    CHECK(format_rate(0.5) == "0.50");
    CHECK(format_rate(250) == "250");
    CHECK(format_rate(32000) == "32.0k");
    CHECK(format_rate(2.5e6) == "2.5M");
    CHECK(counter_rate(10, 40, 2.0) == std::optional<double>(15.0));
    CHECK_FALSE(counter_rate(40, 10, 2.0)); // a restarted daemon
    CHECK_FALSE(counter_rate(1, 2, 0.0));
}

TEST_CASE("monitor grid: interrupt trigger rates per node and in the segments pane's total",
          "[monitor]") {
    auto s = make_snapshot(3, 0, 0);
    for (auto& row : s.nodes)
        row.sample.info.counters["interrupts"] = 1;
    // Before a second sample there is no rate.
    auto p = build_pane(PaneId::segments, s, Sort{});
    CHECK(p.summary.find("3 interrupts, - triggers/s") != std::string::npos);
    CHECK(p.summary.find("not counted") == std::string::npos);
    const auto columns = pane_columns(PaneId::nodes);
    const auto col = static_cast<std::size_t>(
        std::find_if(columns.begin(), columns.end(),
                     [](const Column& c) { return c.header == "INTR/s"; }) -
        columns.begin());
    REQUIRE(col < columns.size());
    CHECK(columns[col].numeric);
    CHECK(build_pane(PaneId::nodes, s, Sort{}).rows[0][col].text == "-");

    s.nodes[0].rates.interrupts = 0;
    s.nodes[1].rates.interrupts = 40;
    s.nodes[2].rates.interrupts = 210;
    p = build_pane(PaneId::segments, s, Sort{});
    INFO(p.summary);
    CHECK(p.summary.find("3 interrupts, 250 triggers/s") != std::string::npos);
    const auto nodes = build_pane(PaneId::nodes, s, Sort{static_cast<int>(col), true});
    CHECK(nodes.rows[0][0].text == "12"); // sorted by INTR/s, busiest first
    CHECK(nodes.rows[0][col].text == "210");
    CHECK(nodes.rows[1][col].text == "40.00");
    CHECK(nodes.rows[2][col].text == "0");
    ViewState view;
    const auto g = render(s, view, 160, 30);
    CHECK(contains(g, "INTR/s"));
    CHECK(contains(g, "250 triggers/s"));
}
