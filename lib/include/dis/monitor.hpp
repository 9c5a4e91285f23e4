// `dis-tool monitor`'s model, curses-free: a Snapshot of the fabric (nodes and links, devices
// and leases, segments, DMA rates, PCIe health), the view state the keys change, and the one
// function that turns both into a grid of styled characters. The ncurses front end
// (tools/dis-tool/monitor_tty.cpp) only paints the grid and reads keys; --once prints the same
// panes as tables or JSON. Panes, keys and columns: dis-tool-monitor(1).
#pragma once

#include "dis/text_width.hpp"

#include "dis/fabric_sample.hpp"
#include "dis/pci.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dis::monitor {

// ---- the data

// Per-second rates of a node's counters between the last two samples; nullopt before the
// second sample (or after a daemon restart reset its counters).
struct NodeRates {
    std::optional<double> dma_transfers;
    std::optional<double> dma_bytes;
    std::optional<double> dma_errors;
    std::optional<double> interrupts; // triggers of the node's interrupts (plain and data)
};

struct NodeRow {
    fabric::NodeSample sample;
    NodeRates rates;
};

// One lendable device, as the devices pane shows it (filled from the lending client).
struct DeviceRow {
    std::string fdid; // "0x80000"
    std::uint32_t node_id = 0;
    std::string kind;   // "epf-test", "memory"
    std::string name;   // "ep0"
    std::string state;  // the pool's state name ("available", "borrowed", ...)
    std::string holder; // "node 4 pid 1234 uid 1000", empty when not lent
    std::optional<std::int64_t> lease_id;
    std::optional<double> lease_left_s; // seconds until the (first) lease expires
    std::size_t leases = 0;
    std::size_t waiters = 0;
    std::string reason; // why it is in this state
};

struct DeviceData {
    bool available = false; // false: `note` says why there is no lending data
    std::string note;
    std::vector<DeviceRow> rows;
};

// Where the devices pane gets its rows.
class DeviceSource {
public:
    virtual ~DeviceSource() = default;
    virtual DeviceData fetch() = 0;
};
// The lending client's pool view when this build has one, else a source that says honestly
// that there is no lending data.
std::unique_ptr<DeviceSource> make_device_source(const std::string& fabric_dir);

// One PCIe function with a link or AER counters, and its AER errors since the monitor began.
struct PcieRow {
    std::string bdf;
    std::string name; // class or device name
    std::string port_type;
    std::string speed, max_speed;
    int width = 0, max_width = 0;
    bool downgraded = false;
    std::optional<bool> dl_active;
    bool has_aer_counters = false;
    // Sums of the kernel's aer_dev_* counters (TOTAL_ lines left out), minus the first sample.
    std::uint64_t correctable = 0, nonfatal = 0, fatal = 0;
};

struct PcieData {
    bool available = false;
    std::string note;   // the error, or where the data came from
    std::string source; // "live", "sysfs DIR", "dump FILE"
    std::vector<PcieRow> rows;
    double age_s = 0; // seconds since the scan
};

struct Snapshot {
    std::string fabric_dir;  // empty: no fabric directory
    std::string fabric_note; // why there are no nodes, when there are none
    std::vector<NodeRow> nodes;
    bool segments_fetched = false;
    std::vector<fabric::SegmentInfo> segments;
    DeviceData devices;
    PcieData pcie;
    std::string time; // wall clock, "HH:MM:SS"
};

nlohmann::json to_json(const Snapshot& s);
// Every pane as a table with a title line, blank line between panes.
void render_text(std::ostream& out, const Snapshot& s);

// ---- the panes, their columns and sorting

enum class PaneId { nodes, devices, segments, pcie };
inline constexpr int k_pane_count = 4;

enum class Style : std::uint8_t {
    normal,
    title_bar,    // the top line
    pane_title,   // an unfocused pane's title line
    pane_focused, // the focused pane's title line
    column_header,
    column_sorted, // the header of the column the pane is sorted by
    selected,      // the focused pane's selected row
    good,          // "up", "available"
    warn,          // downgraded, borrowed, nonzero correctable errors
    bad,           // down, fault, uncorrectable errors
    dim,           // "-", notes
    key_hint,      // the bottom line's key names
    help,          // the help overlay
    paused,        // the PAUSED indicator
    strong,        // warn and bad without color (bold)
};
// Styles that mean a color (good, warn, bad, dim). With color off the grid has none of them:
// warn and bad become strong, good and dim normal; states are always spelled out in text.
bool is_color_style(Style s);

// One terminal column. A double-width glyph (CJK, most emoji) takes two cells: the first holds
// it, the second is its continuation (`ch` empty).
struct Cell {
    std::string ch = " "; // one glyph in UTF-8, with any combining marks after it
    Style style = Style::normal;
};

// Text measured in terminal columns (dis/text_width.hpp), the monitor's unit of layout.
using text::display_width;
using text::fit_width;
using text::Glyph;
using text::glyphs;
using text::to_wide;

// A width x height grid of cells; text outside it is clipped. Text is measured in display
// columns (see glyphs()): a double-width glyph that does not fit before the right edge is
// left out, never split, and writing over half of one blanks its other half.
class Grid {
public:
    Grid(int width, int height);
    int width() const { return m_width; }
    int height() const { return m_height; }
    const Cell& at(int x, int y) const;
    void put(int x, int y, std::string_view text, Style style);
    void fill(int x, int y, int n, Style style); // spaces
    void set_style(int x, int y, int n, Style style);
    std::string row_text(int y) const; // UTF-8; display_width() of it is width()
    std::string text() const;          // every row, '\n' after each

private:
    Cell& cell(int x, int y);
    void unpair(int x, int y); // x stops being half of a double-width glyph

    int m_width, m_height;
    std::vector<Cell> m_cells;
};

enum class Align { left, right };

struct Column {
    std::string header;
    Align align = Align::left;
    bool numeric = false; // sorts by number, descending first
    int max_width = 40;
};

struct TableCell {
    std::string text;
    double number = 0; // the sort key of numeric columns
    Style style = Style::normal;
};

struct PaneTable {
    PaneId id = PaneId::nodes;
    std::string title;   // "Nodes & links"
    std::string summary; // "16 nodes, 16 up"
    std::vector<Column> columns;
    std::vector<std::vector<TableCell>> rows;
    std::string empty_note; // shown when there are no rows
};

struct Sort {
    int column = 0;
    bool descending = false;
};

// The pane's table from the snapshot, sorted by `sort` (ties keep the pane's natural order).
PaneTable build_pane(PaneId id, const Snapshot& s, const Sort& sort);
const char* pane_name(PaneId id); // "nodes", "devices", "segments", "pcie"
std::vector<Column> pane_columns(PaneId id);
// Each pane's row count in this snapshot (what handle_key pages over).
void pane_rows(const Snapshot& s, int (&rows)[k_pane_count]);

// ---- the view: what the keys change

enum class Key {
    quit,      // q, F10
    help,      // h, ?, F1
    next_pane, // Tab
    prev_pane, // Shift-Tab
    up,
    down,
    page_up,
    page_down,
    home,
    end,
    sort,   // s, F6: the next column
    invert, // I: reverse the order
    pause,  // p
    faster, // +
    slower, // -
    redraw, // Ctrl-L
    resize, // the terminal changed size
    other,
};

struct PaneView {
    Sort sort;
    int selected = 0; // row index in the sorted table
    int top = 0;      // first row shown
    int page = 1;     // rows the last layout showed (PgUp/PgDn step)
};

struct ViewState {
    PaneId focus = PaneId::nodes;
    PaneView panes[k_pane_count];
    bool help = false;
    bool paused = false;
    bool color = true;
    int delay_tenths = 10;
    ViewState();
};

// What the front end has to do after a key.
enum class Action { none, repaint, refresh, redraw, quit };

// Applies a key. `rows` is each pane's current row count (paging clamps to it). While the
// help overlay is shown, any key but quit closes it.
Action handle_key(ViewState& view, Key key, const int (&rows)[k_pane_count]);

// The delay steps of +/-, in tenths of a second.
int faster_delay(int tenths);
int slower_delay(int tenths);

// Which panes the layout shows at this size: the collector fetches only those.
struct Demand {
    bool nodes = true;
    bool devices = true;
    bool segments = true;
    bool pcie = true;
};

struct Layout {
    struct Placed {
        PaneId id;
        int y = 0;
        int height = 0; // title + header + rows
    };
    std::vector<Placed> panes; // top to bottom
    bool too_small = false;
};
Layout layout(const ViewState& view, const int (&rows)[k_pane_count], int width, int height);
// Which panes are shown depends on the size and the focus only, not on the rows: the
// collector is told before it samples.
Demand demand(const ViewState& view, int width, int height);

// The screen: title bar, the panes the layout places, the key bar, the help overlay.
// Scroll positions in `view` are brought into range (the selected row stays visible) and
// each pane's page size recorded.
Grid render(const Snapshot& s, ViewState& view, int width, int height);

// ---- collection

struct CollectorOptions {
    std::optional<std::string> fabric_dir; // nullopt: no fabric
    std::string fabric_note;               // why there is none
    std::optional<pci::Source> pci;        // nullopt: no PCIe pane data
    std::chrono::milliseconds node_timeout{500};
    // PCIe scans read configuration space (about 1 ms per read on a VM): at most this often.
    std::chrono::milliseconds pcie_interval{30000};
    std::unique_ptr<DeviceSource> devices; // default: make_device_source(fabric_dir)
};

// Samples the sources into snapshots; keeps one admin connection per node, the previous
// counters (for rates) and the first AER counters (for deltas since start). No threads of
// its own beyond the per-node tasks of one sample.
class Collector {
public:
    explicit Collector(CollectorOptions options);
    ~Collector();
    Snapshot sample(const Demand& demand);

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Per-second rate of a counter between two samples `seconds` apart; nullopt when it went
// backwards (a restarted daemon) or no time passed.
std::optional<double> counter_rate(std::uint64_t before, std::uint64_t after, double seconds);
// "1.5 KiB", "12.0 MiB"; "512 B".
std::string format_bytes(double bytes);
// "3.2k", "12", "0.50".
std::string format_rate(double per_second);

} // namespace dis::monitor
