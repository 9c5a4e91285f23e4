// The monitor's panes as tables: one function per pane turns the snapshot into columns and
// rows (text, sort key, style), shared by the screen and by --once's text output.
#include "dis/monitor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace dis::monitor {

namespace {

TableCell text(std::string t, Style style = Style::normal) {
    if (t.empty())
        return {"-", 0, Style::dim};
    return {std::move(t), 0, style};
}

TableCell number(double v, std::string t, Style style = Style::normal) {
    return {std::move(t), v, style};
}

TableCell count(std::uint64_t v, Style style = Style::normal) {
    return {std::to_string(v), static_cast<double>(v), style};
}

// An unknown value sorts below every known one.
TableCell dash() {
    return {"-", -1, Style::dim};
}

TableCell rate(const std::optional<double>& v, bool bytes) {
    if (!v)
        return dash();
    return number(*v, bytes ? format_bytes(*v) : format_rate(*v),
                  *v > 0 ? Style::normal : Style::dim);
}

std::string format_uptime(std::uint64_t s) {
    std::uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    char buf[32];
    if (d)
        std::snprintf(buf, sizeof buf, "%llud%02lluh", static_cast<unsigned long long>(d),
                      static_cast<unsigned long long>(h));
    else if (h)
        std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(h),
                      static_cast<unsigned long long>(m));
    else
        std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(m),
                      static_cast<unsigned long long>(sec));
    return buf;
}

Style state_style(const std::string& state) {
    if (state == "available" || state == "up")
        return Style::good;
    if (state == "fault" || state == "down" || state == "quarantined" || state == "removed")
        return Style::bad;
    if (state == "borrowed" || state == "resetting" || state == "reclaiming")
        return Style::warn;
    return Style::normal;
}

PaneTable nodes_pane(const Snapshot& s) {
    PaneTable p;
    p.title = "Nodes & links";
    p.columns = {{"NODE", Align::right, true},
                 {"NAME", Align::left, false, 20},
                 {"STATE", Align::left},
                 {"UPTIME", Align::right, true},
                 {"LINKS", Align::right, true},
                 {"DOWN TO", Align::left, false, 24},
                 {"CLIENTS", Align::right, true},
                 {"SEGS", Align::right, true},
                 {"SEG BYTES", Align::right, true},
                 {"DMA/s", Align::right, true},
                 {"DMA B/s", Align::right, true},
                 {"DMA ERR/s", Align::right, true},
                 {"INTRS", Align::right, true},
                 {"INTR/s", Align::right, true},
                 {"NOTE", Align::left, false, 60}};
    std::size_t up = 0;
    for (const auto& row : s.nodes) {
        const auto& n = row.sample;
        std::vector<TableCell> r;
        r.push_back(count(n.id));
        if (!n.up) {
            r.push_back(text(""));
            r.push_back(text("down", Style::bad));
            for (int i = 0; i < 11; ++i)
                r.push_back(dash());
            r.push_back(text(n.error, Style::dim));
            p.rows.push_back(std::move(r));
            continue;
        }
        ++up;
        r.push_back(text(n.info.name));
        r.push_back(text("up", Style::good));
        r.push_back(number(static_cast<double>(n.info.uptime_s), format_uptime(n.info.uptime_s)));
        std::size_t links_up = 0;
        std::string down;
        for (const auto& l : n.links) {
            if (l.state == "up")
                ++links_up;
            else
                down += (down.empty() ? "" : ",") + std::to_string(l.remote_node);
        }
        const bool all = links_up == n.links.size();
        r.push_back(number(static_cast<double>(links_up),
                           std::to_string(links_up) + "/" + std::to_string(n.links.size()),
                           all ? Style::normal : Style::warn));
        r.push_back(text(down, Style::bad));
        r.push_back(count(n.info.counter("clients")));
        r.push_back(count(n.info.counter("segments")));
        const auto bytes = n.info.counter("segment_bytes");
        r.push_back(number(static_cast<double>(bytes), format_bytes(static_cast<double>(bytes))));
        r.push_back(rate(row.rates.dma_transfers, false));
        r.push_back(rate(row.rates.dma_bytes, true));
        auto err = rate(row.rates.dma_errors, false);
        if (row.rates.dma_errors && *row.rates.dma_errors > 0)
            err.style = Style::bad;
        r.push_back(err);
        r.push_back(count(n.info.counter("interrupts")));
        r.push_back(rate(row.rates.interrupts, false));
        r.push_back(text(""));
        p.rows.push_back(std::move(r));
    }
    p.summary = std::to_string(s.nodes.size()) + " nodes, " + std::to_string(up) + " up";
    p.empty_note = s.fabric_note.empty() ? "no nodes" : s.fabric_note;
    return p;
}

PaneTable devices_pane(const Snapshot& s) {
    PaneTable p;
    p.title = "Devices & leases";
    p.columns = {{"FDID", Align::left},           {"NODE", Align::right, true},
                 {"KIND", Align::left},           {"NAME", Align::left, false, 20},
                 {"STATE", Align::left},          {"HOLDER", Align::left, false, 32},
                 {"LEASE", Align::right, true},   {"LEFT", Align::right, true},
                 {"WAITERS", Align::right, true}, {"REASON", Align::left, false, 50}};
    std::size_t lent = 0;
    for (const auto& d : s.devices.rows) {
        std::vector<TableCell> r;
        r.push_back(text(d.fdid));
        r.push_back(count(d.node_id));
        r.push_back(text(d.kind));
        r.push_back(text(d.name));
        r.push_back(text(d.state, state_style(d.state)));
        r.push_back(text(d.holder));
        r.push_back(d.lease_id ? count(static_cast<std::uint64_t>(*d.lease_id)) : dash());
        if (d.lease_left_s) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.1fs", std::max(0.0, *d.lease_left_s));
            r.push_back(
                number(*d.lease_left_s, buf, *d.lease_left_s < 2 ? Style::warn : Style::normal));
        } else {
            r.push_back(dash());
        }
        r.push_back(count(d.waiters, d.waiters ? Style::warn : Style::normal));
        r.push_back(text(d.reason, Style::dim));
        if (d.leases)
            ++lent;
        p.rows.push_back(std::move(r));
    }
    if (s.devices.available)
        p.summary =
            std::to_string(s.devices.rows.size()) + " devices, " + std::to_string(lent) + " lent";
    if (!s.devices.note.empty())
        p.summary += (p.summary.empty() ? "" : "; ") + s.devices.note;
    p.empty_note = s.devices.available ? "no devices" : s.devices.note;
    return p;
}

PaneTable segments_pane(const Snapshot& s) {
    PaneTable p;
    p.title = "Segments & DMA";
    p.columns = {{"NODE", Align::right, true},  {"SEGMENT", Align::right, true},
                 {"SIZE", Align::right, true},  {"STATE", Align::left},
                 {"PID", Align::right, true},   {"UID", Align::right, true},
                 {"CONNS", Align::right, true}, {"MAPS", Align::right, true}};
    for (const auto& seg : s.segments) {
        std::vector<TableCell> r;
        r.push_back(count(seg.node_id));
        r.push_back(count(seg.segment_id));
        r.push_back(
            number(static_cast<double>(seg.size), format_bytes(static_cast<double>(seg.size))));
        r.push_back(text(seg.state, seg.state == "available" ? Style::good : Style::normal));
        r.push_back(count(static_cast<std::uint64_t>(seg.owner_pid)));
        r.push_back(count(seg.owner_uid));
        r.push_back(count(seg.connections));
        r.push_back(count(seg.mappings));
        p.rows.push_back(std::move(r));
    }
    // The fabric's totals from the node counters (there even when the list is not fetched).
    std::uint64_t segs = 0, bytes = 0, intrs = 0;
    double transfers = 0, dma_bytes = 0, triggers = 0;
    bool rates = false, intr_rates = false;
    for (const auto& row : s.nodes) {
        if (!row.sample.up)
            continue;
        segs += row.sample.info.counter("segments");
        bytes += row.sample.info.counter("segment_bytes");
        intrs += row.sample.info.counter("interrupts");
        if (row.rates.dma_transfers) {
            rates = true;
            transfers += *row.rates.dma_transfers;
            dma_bytes += row.rates.dma_bytes.value_or(0);
        }
        if (row.rates.interrupts) {
            intr_rates = true;
            triggers += *row.rates.interrupts;
        }
    }
    p.summary = std::to_string(segs) + " segments, " + format_bytes(static_cast<double>(bytes)) +
                "; DMA " +
                (rates ? format_rate(transfers) + "/s " + format_bytes(dma_bytes) + "/s"
                       : std::string("-/s")) +
                "; " + std::to_string(intrs) + " interrupts, " +
                (intr_rates ? format_rate(triggers) : std::string("-")) + " triggers/s";
    p.empty_note = s.nodes.empty()       ? s.fabric_note
                   : !s.segments_fetched ? "not fetched"
                                         : "no segments";
    return p;
}

PaneTable pcie_pane(const Snapshot& s) {
    PaneTable p;
    p.title = "PCIe health";
    p.columns = {{"BDF", Align::left},         {"NAME", Align::left, false, 32},
                 {"TYPE", Align::left},        {"LINK", Align::left},
                 {"MAX", Align::left},         {"HEALTH", Align::left, true},
                 {"COR", Align::right, true},  {"NONFATAL", Align::right, true},
                 {"FATAL", Align::right, true}};
    std::size_t downgraded = 0;
    std::uint64_t cor = 0, nonfatal = 0, fatal = 0;
    for (const auto& d : s.pcie.rows) {
        std::vector<TableCell> r;
        r.push_back(text(d.bdf));
        r.push_back(text(d.name));
        r.push_back(text(d.port_type));
        auto link = [](const std::string& speed, int width) {
            return speed.empty() ? std::string() : speed + " x" + std::to_string(width);
        };
        r.push_back(text(link(d.speed, d.width), d.downgraded ? Style::warn : Style::normal));
        r.push_back(text(link(d.max_speed, d.max_width)));
        std::string health = "ok";
        Style hs = Style::good;
        if (d.dl_active && !*d.dl_active) {
            health = "link down";
            hs = Style::bad;
        } else if (d.downgraded) {
            health = "downgraded";
            hs = Style::warn;
        }
        if (d.fatal || d.nonfatal) {
            health = health == "ok" ? "aer errors" : health + ", aer errors";
            hs = Style::bad;
        } else if (d.correctable && health == "ok") {
            health = "corrected errors";
            hs = Style::warn;
        }
        // Sorting by HEALTH puts problems first (descending).
        r.push_back(number(hs == Style::bad ? 2 : hs == Style::warn ? 1 : 0, health, hs));
        auto aer = [&](std::uint64_t v, Style nonzero) {
            if (!d.has_aer_counters)
                return dash();
            return count(v, v ? nonzero : Style::dim);
        };
        r.push_back(aer(d.correctable, Style::warn));
        r.push_back(aer(d.nonfatal, Style::bad));
        r.push_back(aer(d.fatal, Style::bad));
        downgraded += d.downgraded ? 1 : 0;
        cor += d.correctable;
        nonfatal += d.nonfatal;
        fatal += d.fatal;
        p.rows.push_back(std::move(r));
    }
    if (s.pcie.available) {
        char age[32];
        std::snprintf(age, sizeof age, "%.0fs", s.pcie.age_s);
        p.summary = std::to_string(s.pcie.rows.size()) + " functions, " +
                    std::to_string(downgraded) + " downgraded; AER since start " +
                    std::to_string(cor) + " cor, " + std::to_string(nonfatal) + " nonfatal, " +
                    std::to_string(fatal) + " fatal; " + s.pcie.source + ", scanned " + age +
                    " ago";
    } else {
        p.summary = s.pcie.note;
    }
    p.empty_note = s.pcie.available ? "no PCIe functions with a link" : s.pcie.note;
    return p;
}

} // namespace

std::string format_bytes(double bytes) {
    static const char* const k_units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", bytes, k_units[u]);
    return buf;
}

std::string format_rate(double v) {
    char buf[32];
    if (v >= 1e6)
        std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else if (v >= 100 || v == 0)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

const char* pane_name(PaneId id) {
    switch (id) {
    case PaneId::nodes:
        return "nodes";
    case PaneId::devices:
        return "devices";
    case PaneId::segments:
        return "segments";
    case PaneId::pcie:
        return "pcie";
    }
    return "";
}

void pane_rows(const Snapshot& s, int (&rows)[k_pane_count]) {
    rows[static_cast<int>(PaneId::nodes)] = static_cast<int>(s.nodes.size());
    rows[static_cast<int>(PaneId::devices)] = static_cast<int>(s.devices.rows.size());
    rows[static_cast<int>(PaneId::segments)] = static_cast<int>(s.segments.size());
    rows[static_cast<int>(PaneId::pcie)] = static_cast<int>(s.pcie.rows.size());
}

std::vector<Column> pane_columns(PaneId id) {
    return build_pane(id, Snapshot{}, Sort{}).columns;
}

PaneTable build_pane(PaneId id, const Snapshot& s, const Sort& sort) {
    PaneTable p;
    switch (id) {
    case PaneId::nodes:
        p = nodes_pane(s);
        break;
    case PaneId::devices:
        p = devices_pane(s);
        break;
    case PaneId::segments:
        p = segments_pane(s);
        break;
    case PaneId::pcie:
        p = pcie_pane(s);
        break;
    }
    p.id = id;
    const int c = std::clamp(sort.column, 0, static_cast<int>(p.columns.size()) - 1);
    const bool numeric = p.columns[static_cast<std::size_t>(c)].numeric;
    auto less = [&](const std::vector<TableCell>& a, const std::vector<TableCell>& b) {
        const auto& x = a[static_cast<std::size_t>(c)];
        const auto& y = b[static_cast<std::size_t>(c)];
        if (numeric)
            return sort.descending ? y.number < x.number : x.number < y.number;
        return sort.descending ? y.text < x.text : x.text < y.text;
    };
    std::stable_sort(p.rows.begin(), p.rows.end(), less);
    return p;
}

} // namespace dis::monitor
