// The ncurses painter of `dis-tool monitor`: newterm (not initscr, which exits the process
// on an unknown terminal), then a loop that blocks in getch with the time left until the
// next refresh as its timeout, so an idle monitor sleeps between refreshes. The screen is
// lib/monitor's render(); this file only maps its styles to attributes and keys to Keys, and
// paints the grid's glyphs with ncursesw's wide-character functions (a double-width glyph's
// second cell is the glyph's own second column).
#include "monitor_tty.hpp"

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>
#include <term.h>

#include <langinfo.h>

#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dis::cli {

namespace {

using monitor::Key;
using monitor::Style;
using Clock = std::chrono::steady_clock;

// endwin + delscreen whatever way the loop ends.
class Screen {
public:
    explicit Screen(SCREEN* s) : m_screen(s) {}
    ~Screen() {
        endwin();
        delscreen(m_screen);
    }
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

private:
    SCREEN* m_screen;
};

constexpr int k_styles = static_cast<int>(Style::strong) + 1;

struct Palette {
    attr_t attr[k_styles] = {};
};

Palette make_palette(bool color) {
    Palette p;
    auto set = [&](Style s, attr_t a) { p.attr[static_cast<int>(s)] = a; };
    if (!color) {
        set(Style::title_bar, A_REVERSE);
        set(Style::pane_title, A_BOLD | A_UNDERLINE);
        set(Style::pane_focused, A_REVERSE | A_BOLD);
        set(Style::column_header, A_UNDERLINE);
        set(Style::column_sorted, A_UNDERLINE | A_BOLD);
        set(Style::selected, A_REVERSE);
        set(Style::key_hint, A_BOLD);
        set(Style::help, A_REVERSE);
        set(Style::paused, A_REVERSE | A_BOLD);
        set(Style::strong, A_BOLD);
        return p;
    }
    start_color();
    use_default_colors();
    struct Pair {
        Style style;
        short fg, bg;
        attr_t extra;
    };
    const Pair pairs[] = {
        {Style::title_bar, COLOR_BLACK, COLOR_CYAN, 0},
        {Style::pane_title, COLOR_WHITE, COLOR_BLUE, 0},
        {Style::pane_focused, COLOR_BLACK, COLOR_GREEN, A_BOLD},
        {Style::column_header, COLOR_BLACK, COLOR_WHITE, 0},
        {Style::column_sorted, COLOR_BLACK, COLOR_CYAN, A_BOLD},
        {Style::selected, COLOR_BLACK, COLOR_CYAN, 0},
        {Style::good, COLOR_GREEN, -1, 0},
        {Style::warn, COLOR_YELLOW, -1, A_BOLD},
        {Style::bad, COLOR_RED, -1, A_BOLD},
        {Style::dim, COLOR_BLUE, -1, A_BOLD},
        {Style::key_hint, -1, -1, A_BOLD},
        {Style::help, COLOR_WHITE, COLOR_BLUE, 0},
        {Style::paused, COLOR_BLACK, COLOR_YELLOW, A_BOLD},
    };
    short n = 1;
    for (const auto& pr : pairs) {
        init_pair(n, pr.fg, pr.bg);
        set(pr.style, COLOR_PAIR(n) | pr.extra);
        ++n;
    }
    set(Style::strong, A_BOLD);
    return p;
}

// `utf8`: the terminal's locale is UTF-8, so glyphs are painted as they are; otherwise each
// column of a glyph outside ASCII is painted as '?' (the layout stays the same).
void paint(const monitor::Grid& g, const Palette& palette, bool utf8) {
    for (int y = 0; y < g.height(); ++y) {
        int x = 0;
        while (x < g.width()) {
            const Style s = g.at(x, y).style;
            std::string run;
            int end = x;
            // A double-width glyph's second cell always goes with its first.
            while (end < g.width() && (g.at(end, y).style == s || g.at(end, y).ch.empty())) {
                const auto& ch = g.at(end++, y).ch;
                if (utf8)
                    run += ch;
                else
                    run += ch.size() == 1 ? ch : std::string("?");
            }
            attrset(palette.attr[static_cast<int>(s)]);
            // The bottom-right cell makes the add functions return ERR (the cursor cannot
            // advance); the character is written all the same.
            if (utf8) {
                const std::wstring wide = monitor::to_wide(run);
                mvaddnwstr(y, x, wide.c_str(), static_cast<int>(wide.size()));
            } else {
                mvaddnstr(y, x, run.c_str(), static_cast<int>(run.size()));
            }
            x = end;
        }
    }
    attrset(A_NORMAL);
    refresh();
}

Key map_key(int ch) {
    switch (ch) {
    case 'q':
    case 'Q':
    case KEY_F(10):
        return Key::quit;
    case 'h':
    case '?':
    case KEY_F(1):
        return Key::help;
    case '\t':
        return Key::next_pane;
    case KEY_BTAB:
        return Key::prev_pane;
    case KEY_UP:
        return Key::up;
    case KEY_DOWN:
        return Key::down;
    case KEY_PPAGE:
        return Key::page_up;
    case KEY_NPAGE:
        return Key::page_down;
    case KEY_HOME:
        return Key::home;
    case KEY_END:
        return Key::end;
    case 's':
    case KEY_F(6):
        return Key::sort;
    case 'I':
        return Key::invert;
    case 'p':
        return Key::pause;
    case '+':
    case '=':
        return Key::faster;
    case '-':
        return Key::slower;
    case 12: // Ctrl-L
        return Key::redraw;
    case KEY_RESIZE:
        return Key::resize;
    default:
        return Key::other;
    }
}

bool same(const monitor::Demand& a, const monitor::Demand& b) {
    return a.nodes == b.nodes && a.devices == b.devices && a.segments == b.segments &&
           a.pcie == b.pcie;
}

// A pane that became visible and was not fetched.
bool wants_more(const monitor::Demand& now, const monitor::Demand& had) {
    return (now.devices && !had.devices) || (now.segments && !had.segments) ||
           (now.pcie && !had.pcie);
}

} // namespace

TtyOutcome run_monitor_tty(monitor::Collector& collector, monitor::ViewState& view,
                           std::optional<int> iterations) {
    const char* term = std::getenv("TERM");
    if (term == nullptr || *term == '\0')
        return {false, "TERM is not set"};
    // ncursesw writes wide characters in the encoding of LC_CTYPE: the user's.
    std::setlocale(LC_CTYPE, "");
    const bool utf8 = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    SCREEN* scr = newterm(term, stdout, stdin);
    if (scr == nullptr)
        return {false, std::string("unknown terminal type '") + term + "'"};
    Screen guard(scr);
    set_term(scr);
    const char* cup = tigetstr(const_cast<char*>("cup"));
    if (cup == nullptr || cup == reinterpret_cast<char*>(-1))
        return {false, std::string("terminal '") + term + "' cannot position the cursor"};
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    view.color = view.color && has_colors();
    const Palette palette = make_palette(view.color);

    int samples = 0;
    monitor::Snapshot snap;
    monitor::Demand had{};
    Clock::time_point sampled;
    auto take = [&] {
        had = monitor::demand(view, COLS, LINES);
        snap = collector.sample(had);
        sampled = Clock::now();
        ++samples;
    };
    auto show = [&] { paint(monitor::render(snap, view, COLS, LINES), palette, utf8); };

    take();
    show();
    for (;;) {
        if (iterations && samples >= *iterations)
            return {true, {}};
        int wait_ms = -1; // paused: wait for a key only
        if (!view.paused) {
            const auto next = sampled + std::chrono::milliseconds(view.delay_tenths * 100);
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
            if (left.count() <= 0) {
                take();
                show();
                continue;
            }
            wait_ms = static_cast<int>(left.count());
        }
        timeout(wait_ms);
        const int ch = getch();
        if (ch == ERR)
            continue; // the timeout: the loop head refreshes when it is time
        int rows[monitor::k_pane_count];
        monitor::pane_rows(snap, rows);
        const auto action = monitor::handle_key(view, map_key(ch), rows);
        if (action == monitor::Action::quit)
            return {true, {}};
        if (action == monitor::Action::none)
            continue;
        if (action == monitor::Action::redraw)
            clearok(curscr, TRUE);
        const auto now_demand = monitor::demand(view, COLS, LINES);
        if (action == monitor::Action::refresh ||
            (!view.paused && !same(now_demand, had) && wants_more(now_demand, had)))
            take();
        show();
    }
}

} // namespace dis::cli
