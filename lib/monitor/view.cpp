// The monitor's view: the grid, the keys, the layout and the one render function that turns
// a snapshot and the view state into the screen's cells.
#include "dis/monitor.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace dis::monitor {

// ---- Grid

Grid::Grid(int width, int height)
    : m_width(std::max(width, 0)), m_height(std::max(height, 0)),
      m_cells(static_cast<std::size_t>(m_width) * static_cast<std::size_t>(m_height)) {}

const Cell& Grid::at(int x, int y) const {
    return m_cells.at(static_cast<std::size_t>(y) * static_cast<std::size_t>(m_width) +
                      static_cast<std::size_t>(x));
}

Cell& Grid::cell(int x, int y) {
    return m_cells[static_cast<std::size_t>(y) * static_cast<std::size_t>(m_width) +
                   static_cast<std::size_t>(x)];
}

void Grid::unpair(int x, int y) {
    if (x < 0 || x >= m_width)
        return;
    if (cell(x, y).ch.empty() && x > 0)
        cell(x - 1, y).ch = " "; // x was the right half: the glyph's left half goes too
    if (!cell(x, y).ch.empty() && x + 1 < m_width && cell(x + 1, y).ch.empty())
        cell(x + 1, y).ch = " "; // x was the left half
}

void Grid::put(int x, int y, std::string_view text, Style style) {
    if (y < 0 || y >= m_height)
        return;
    for (const auto& g : glyphs(text)) {
        if (x >= m_width)
            break;
        if (x + g.width > m_width || x < 0) {
            // Cut by an edge: the columns it would take on the grid are blanked.
            for (int i = std::max(x, 0); i < std::min(x + g.width, m_width); ++i) {
                unpair(i, y);
                cell(i, y) = {" ", style};
            }
            x += g.width;
            continue;
        }
        unpair(x, y);
        unpair(x + g.width - 1, y);
        cell(x, y) = {g.bytes, style};
        if (g.width == 2)
            cell(x + 1, y) = {std::string(), style};
        x += g.width;
    }
}

void Grid::fill(int x, int y, int n, Style style) {
    put(x, y, std::string(static_cast<std::size_t>(std::max(n, 0)), ' '), style);
}

void Grid::set_style(int x, int y, int n, Style style) {
    if (y < 0 || y >= m_height)
        return;
    for (int i = std::max(x, 0); i < std::min(x + n, m_width); ++i)
        m_cells[static_cast<std::size_t>(y) * static_cast<std::size_t>(m_width) +
                static_cast<std::size_t>(i)]
            .style = style;
}

std::string Grid::row_text(int y) const {
    std::string out;
    for (int x = 0; x < m_width; ++x)
        out += at(x, y).ch;
    return out;
}

std::string Grid::text() const {
    std::string out;
    for (int y = 0; y < m_height; ++y)
        out += row_text(y) + '\n';
    return out;
}

bool is_color_style(Style s) {
    return s == Style::good || s == Style::warn || s == Style::bad || s == Style::dim;
}

ViewState::ViewState() {
    // Problems first in the PCIe pane: by HEALTH, worst first.
    panes[static_cast<int>(PaneId::pcie)].sort = {5, true};
}

// ---- keys

namespace {

constexpr int k_delays[] = {1, 2, 5, 10, 20, 30, 50, 100, 200, 300, 600};

int index_of(PaneId id) {
    return static_cast<int>(id);
}

} // namespace

int faster_delay(int tenths) {
    int best = k_delays[0];
    for (int d : k_delays)
        if (d < tenths)
            best = d;
    return best;
}

int slower_delay(int tenths) {
    for (int d : k_delays)
        if (d > tenths)
            return d;
    return std::max(tenths, k_delays[std::size(k_delays) - 1]);
}

Action handle_key(ViewState& view, Key key, const int (&rows)[k_pane_count]) {
    if (key == Key::quit)
        return Action::quit;
    if (key == Key::resize)
        return Action::redraw;
    if (key == Key::redraw)
        return Action::redraw;
    if (view.help) {
        view.help = false; // any other key closes it (htop)
        return Action::repaint;
    }
    auto& pane = view.panes[index_of(view.focus)];
    const int n = rows[index_of(view.focus)];
    auto select = [&](int row) {
        pane.selected = std::clamp(row, 0, std::max(n - 1, 0));
        return Action::repaint;
    };
    switch (key) {
    case Key::help:
        view.help = true;
        return Action::repaint;
    case Key::next_pane:
        view.focus = static_cast<PaneId>((index_of(view.focus) + 1) % k_pane_count);
        return Action::repaint;
    case Key::prev_pane:
        view.focus = static_cast<PaneId>((index_of(view.focus) + k_pane_count - 1) % k_pane_count);
        return Action::repaint;
    case Key::up:
        return select(pane.selected - 1);
    case Key::down:
        return select(pane.selected + 1);
    case Key::page_up:
        return select(pane.selected - std::max(pane.page, 1));
    case Key::page_down:
        return select(pane.selected + std::max(pane.page, 1));
    case Key::home:
        return select(0);
    case Key::end:
        return select(n - 1);
    case Key::sort: {
        const auto columns = pane_columns(view.focus);
        pane.sort.column = (pane.sort.column + 1) % static_cast<int>(columns.size());
        pane.sort.descending = columns[static_cast<std::size_t>(pane.sort.column)].numeric;
        pane.selected = pane.top = 0;
        return Action::repaint;
    }
    case Key::invert:
        pane.sort.descending = !pane.sort.descending;
        pane.selected = pane.top = 0;
        return Action::repaint;
    case Key::pause:
        view.paused = !view.paused;
        return view.paused ? Action::repaint : Action::refresh;
    case Key::faster:
        view.delay_tenths = faster_delay(view.delay_tenths);
        return Action::repaint;
    case Key::slower:
        view.delay_tenths = slower_delay(view.delay_tenths);
        return Action::repaint;
    default:
        return Action::none;
    }
}

// ---- layout

namespace {

constexpr int k_min_pane = 3; // title, column header, one row

// The panes shown at this size: all four when each gets its minimum, else the focused one
// and those after it.
std::vector<PaneId> shown_panes(const ViewState& view, int height) {
    const int middle = height - 2;
    const int k = std::min(k_pane_count, std::max(middle, 0) / k_min_pane);
    std::vector<PaneId> out;
    for (int i = 0; i < k; ++i)
        out.push_back(static_cast<PaneId>((index_of(view.focus) + i) % k_pane_count));
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

Layout layout(const ViewState& view, const int (&rows)[k_pane_count], int width, int height) {
    Layout l;
    const auto ids = shown_panes(view, height);
    if (ids.empty() || width < 1) {
        l.too_small = true;
        return l;
    }
    int extra = height - 2 - k_min_pane * static_cast<int>(ids.size());
    std::vector<int> heights(ids.size(), k_min_pane);
    auto grow = [&](std::size_t i) {
        const int need = 2 + std::max(rows[index_of(ids[i])], 1) - heights[i];
        const int add = std::clamp(need, 0, extra);
        heights[i] += add;
        extra -= add;
    };
    const auto focused =
        static_cast<std::size_t>(std::find(ids.begin(), ids.end(), view.focus) - ids.begin());
    grow(focused);
    for (std::size_t i = 0; i < ids.size(); ++i)
        grow(i);
    heights[focused] += extra; // what is left stays with the focused pane
    int y = 1;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        l.panes.push_back({ids[i], y, heights[i]});
        y += heights[i];
    }
    return l;
}

Demand demand(const ViewState& view, int /*width*/, int height) {
    Demand d{true, false, false, false};
    for (auto id : shown_panes(view, height)) {
        d.devices = d.devices || id == PaneId::devices;
        d.segments = d.segments || id == PaneId::segments;
        d.pcie = d.pcie || id == PaneId::pcie;
    }
    return d;
}

// ---- render

namespace {

// Widths are display columns: a name with double-width glyphs is cut between glyphs.
std::string fit(const std::string& s, int width) {
    if (width <= 0)
        return {};
    return fit_width(s, width);
}

std::string pad(const std::string& s, int width, Align align) {
    std::string t = fit(s, width);
    const std::string space(static_cast<std::size_t>(std::max(width - display_width(t), 0)), ' ');
    return align == Align::right ? space + t : t + space;
}

std::vector<int> column_widths(const PaneTable& p) {
    std::vector<int> w;
    for (const auto& c : p.columns)
        w.push_back(display_width(c.header));
    for (const auto& row : p.rows)
        for (std::size_t i = 0; i < row.size() && i < w.size(); ++i)
            w[i] = std::max(w[i], std::min(display_width(row[i].text), p.columns[i].max_width));
    return w;
}

void draw_pane(Grid& g, const PaneTable& p, PaneView& v, bool focused, int y, int height) {
    const int width = g.width();
    const int page = std::max(height - 2, 1);
    const int n = static_cast<int>(p.rows.size());
    v.page = page;
    v.selected = std::clamp(v.selected, 0, std::max(n - 1, 0));
    v.top = std::clamp(v.top, 0, std::max(n - page, 0));
    if (v.selected < v.top)
        v.top = v.selected;
    if (v.selected >= v.top + page)
        v.top = v.selected - page + 1;

    // Title: name, summary, and on the right the sort and the rows shown.
    const Style ts = focused ? Style::pane_focused : Style::pane_title;
    g.fill(0, y, width, ts);
    const auto& sorted = p.columns[static_cast<std::size_t>(
        std::clamp(v.sort.column, 0, static_cast<int>(p.columns.size()) - 1))];
    char rows[48];
    std::snprintf(rows, sizeof rows, "%d-%d/%d ", n ? v.top + 1 : 0, std::min(v.top + page, n), n);
    const std::string sort =
        std::string(" sort ") + sorted.header + (v.sort.descending ? " desc  " : " asc  ") + rows;
    const std::string title =
        (focused ? "[" : " ") + p.title + (focused ? "]" : " ") + " " + p.summary;
    // The right side as room allows: sort and rows, the rows alone, or nothing.
    const int name = display_width(p.title) + 2;
    std::string right;
    if (width - static_cast<int>(sort.size()) >= name + 20)
        right = sort;
    else if (width - static_cast<int>(std::strlen(rows)) > name + 1)
        right = std::string(" ") + rows;
    const int rw = static_cast<int>(right.size());
    g.put(0, y, fit(title, width - rw - (rw ? 1 : 0)), ts);
    if (rw)
        g.put(width - rw, y, right, ts);
    if (height < 2)
        return;

    const auto widths = column_widths(p);
    g.fill(0, y + 1, width, Style::column_header);
    int x = 0;
    for (std::size_t c = 0; c < p.columns.size() && x < width; ++c) {
        const bool is_sorted = static_cast<int>(c) == v.sort.column;
        g.put(x, y + 1, pad(p.columns[c].header, widths[c], p.columns[c].align),
              is_sorted ? Style::column_sorted : Style::column_header);
        x += widths[c] + 1;
    }
    if (n == 0) {
        g.put(1, y + 2, p.empty_note, Style::dim);
        return;
    }
    for (int i = 0; i < page && v.top + i < n; ++i) {
        const int row_y = y + 2 + i;
        const auto& row = p.rows[static_cast<std::size_t>(v.top + i)];
        const bool selected = focused && v.top + i == v.selected;
        x = 0;
        for (std::size_t c = 0; c < row.size() && c < widths.size() && x < width; ++c) {
            g.put(x, row_y, pad(row[c].text, widths[c], p.columns[c].align),
                  selected ? Style::selected : row[c].style);
            if (selected)
                g.put(x + widths[c], row_y, " ", Style::selected);
            x += widths[c] + 1;
        }
        if (selected)
            g.set_style(0, row_y, width, Style::selected);
    }
}

void draw_title(Grid& g, const Snapshot& s, const ViewState& view) {
    g.fill(0, 0, g.width(), Style::title_bar);
    std::size_t up = 0;
    for (const auto& n : s.nodes)
        up += n.sample.up ? 1 : 0;
    char delay[32];
    std::snprintf(delay, sizeof delay, "%d.%ds", view.delay_tenths / 10, view.delay_tenths % 10);
    std::string text = " dis-tool monitor  " + (s.time.empty() ? "" : s.time + "  ") +
                       std::to_string(up) + "/" + std::to_string(s.nodes.size()) +
                       " nodes up  every " + delay + "  fabric " +
                       (s.fabric_dir.empty() ? "-" : s.fabric_dir);
    const std::string paused = " PAUSED ";
    const int room = view.paused ? g.width() - static_cast<int>(paused.size()) : g.width();
    g.put(0, 0, fit(text, room), Style::title_bar);
    if (view.paused)
        g.put(std::max(room, 0), 0, paused, Style::paused);
}

void draw_keys(Grid& g, int y) {
    static const std::pair<const char*, const char*> k_keys[] = {
        {"F1", "Help"}, {"Tab", "Pane"}, {"F6", "Sort"},  {"I", "Invert"},
        {"p", "Pause"}, {"+-", "Delay"}, {"F10", "Quit"},
    };
    g.fill(0, y, g.width(), Style::normal);
    int x = 0;
    for (const auto& [key, label] : k_keys) {
        g.put(x, y, key, Style::key_hint);
        x += static_cast<int>(std::string_view(key).size());
        const std::string l = std::string(label) + " ";
        g.put(x, y, l, Style::title_bar);
        x += static_cast<int>(l.size());
    }
}

constexpr const char* k_help[] = {
    "dis-tool monitor keys",
    "",
    "q, F10           quit",
    "h, ?, F1         this help (any key closes it)",
    "Tab, Shift-Tab   next, previous pane",
    "Up, Down         select a row",
    "PgUp, PgDn       one page up, down",
    "Home, End        first, last row",
    "s, F6            sort by the next column",
    "I                invert the sort order",
    "p                pause (keys still work)",
    "+, -             refresh more, less often",
    "Ctrl-L           redraw the screen",
    "",
    "Rates are counter deltas between refreshes;",
    "AER counts are errors since the monitor began.",
};

void draw_help(Grid& g) {
    int w = 0;
    for (const char* line : k_help)
        w = std::max(w, static_cast<int>(std::string_view(line).size()));
    const int h = static_cast<int>(std::size(k_help));
    const int bw = std::min(w + 4, g.width());
    const int bh = std::min(h + 2, g.height());
    const int x0 = std::max((g.width() - bw) / 2, 0);
    const int y0 = std::max((g.height() - bh) / 2, 0);
    for (int y = 0; y < bh; ++y)
        g.fill(x0, y0 + y, bw, Style::help);
    for (int i = 0; i < h && i + 1 < bh; ++i)
        g.put(x0 + 2, y0 + 1 + i, fit(k_help[i], bw - 3), Style::help);
}

Style mono(Style s) {
    switch (s) {
    case Style::warn:
    case Style::bad:
        return Style::strong;
    case Style::good:
    case Style::dim:
        return Style::normal;
    default:
        return s;
    }
}

} // namespace

Grid render(const Snapshot& s, ViewState& view, int width, int height) {
    Grid g(width, height);
    if (g.width() == 0 || g.height() == 0)
        return g;
    PaneTable tables[k_pane_count];
    int rows[k_pane_count];
    for (int i = 0; i < k_pane_count; ++i) {
        tables[i] = build_pane(static_cast<PaneId>(i), s, view.panes[i].sort);
        rows[i] = static_cast<int>(tables[i].rows.size());
    }
    draw_title(g, s, view);
    const auto l = layout(view, rows, width, height);
    if (l.too_small) {
        char msg[64];
        std::snprintf(msg, sizeof msg, "terminal too small (%dx%d)", width, height);
        if (height >= 2)
            g.put(0, 1, fit(msg, width), Style::strong);
    }
    for (const auto& placed : l.panes) {
        const int i = index_of(placed.id);
        draw_pane(g, tables[i], view.panes[i], placed.id == view.focus, placed.y, placed.height);
    }
    if (height >= 3)
        draw_keys(g, height - 1);
    if (view.help)
        draw_help(g);
    if (!view.color) {
        for (int y = 0; y < g.height(); ++y)
            for (int x = 0; x < g.width(); ++x)
                g.set_style(x, y, 1, mono(g.at(x, y).style));
    }
    return g;
}

} // namespace dis::monitor
