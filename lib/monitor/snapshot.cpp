// --once: the snapshot as JSON (schema in dis-tool-monitor(1)) or as the panes' tables.
#include "dis/monitor.hpp"

#include "dis/output.hpp"

#include <nlohmann/json.hpp>

#include <ostream>

namespace dis::monitor {

namespace {

using nlohmann::json;

json optional_number(const std::optional<double>& v) {
    return v ? json(*v) : json(nullptr);
}

json node_json(const NodeRow& row) {
    const auto& n = row.sample;
    json j = {{"node_id", n.id}, {"up", n.up}};
    if (!n.up) {
        j["error"] = n.error;
        return j;
    }
    j["name"] = n.info.name;
    j["pid"] = n.info.pid;
    j["uptime_s"] = n.info.uptime_s;
    j["counters"] = n.info.counters;
    j["links"] = n.links;
    j["rates"] = {{"dma_transfers_per_second", optional_number(row.rates.dma_transfers)},
                  {"dma_bytes_per_second", optional_number(row.rates.dma_bytes)},
                  {"dma_errors_per_second", optional_number(row.rates.dma_errors)},
                  {"interrupts_per_second", optional_number(row.rates.interrupts)}};
    return j;
}

json device_json(const DeviceRow& d) {
    return {{"fdid", d.fdid},
            {"node_id", d.node_id},
            {"kind", d.kind},
            {"name", d.name},
            {"state", d.state},
            {"holder", d.holder.empty() ? json(nullptr) : json(d.holder)},
            {"lease_id", d.lease_id ? json(*d.lease_id) : json(nullptr)},
            {"lease_left_s", optional_number(d.lease_left_s)},
            {"leases", d.leases},
            {"waiters", d.waiters},
            {"reason", d.reason}};
}

json pcie_json(const PcieRow& r) {
    return {{"bdf", r.bdf},
            {"name", r.name},
            {"port_type", r.port_type.empty() ? json(nullptr) : json(r.port_type)},
            {"speed", r.speed.empty() ? json(nullptr) : json(r.speed)},
            {"width", r.width},
            {"max_speed", r.max_speed.empty() ? json(nullptr) : json(r.max_speed)},
            {"max_width", r.max_width},
            {"downgraded", r.downgraded},
            {"dl_active", r.dl_active ? json(*r.dl_active) : json(nullptr)},
            {"aer_since_start", r.has_aer_counters ? json{{"correctable", r.correctable},
                                                          {"nonfatal", r.nonfatal},
                                                          {"fatal", r.fatal}}
                                                   : json(nullptr)}};
}

} // namespace

nlohmann::json to_json(const Snapshot& s) {
    json nodes = json::array();
    for (const auto& n : s.nodes)
        nodes.push_back(node_json(n));
    json devices = json::array();
    for (const auto& d : s.devices.rows)
        devices.push_back(device_json(d));
    json pcie = json::array();
    for (const auto& r : s.pcie.rows)
        pcie.push_back(pcie_json(r));
    return {{"time", s.time},
            {"fabric_dir", s.fabric_dir.empty() ? json(nullptr) : json(s.fabric_dir)},
            {"fabric_note", s.fabric_note.empty() ? json(nullptr) : json(s.fabric_note)},
            {"nodes", nodes},
            {"segments", s.segments_fetched ? json(s.segments) : json(nullptr)},
            {"devices",
             {{"available", s.devices.available},
              {"note", s.devices.note.empty() ? json(nullptr) : json(s.devices.note)},
              {"devices", devices}}},
            {"pcie",
             {{"available", s.pcie.available},
              {"source", s.pcie.source.empty() ? json(nullptr) : json(s.pcie.source)},
              {"note", s.pcie.note.empty() ? json(nullptr) : json(s.pcie.note)},
              {"functions", pcie}}}};
}

void render_text(std::ostream& out, const Snapshot& s) {
    out << "dis-tool monitor " << s.time << "  fabric "
        << (s.fabric_dir.empty() ? "-" : s.fabric_dir) << '\n';
    const ViewState defaults;
    for (int i = 0; i < k_pane_count; ++i) {
        const auto p = build_pane(static_cast<PaneId>(i), s, defaults.panes[i].sort);
        out << '\n' << p.title << ": " << p.summary << '\n';
        if (p.rows.empty()) {
            out << "  " << p.empty_note << '\n';
            continue;
        }
        std::vector<output::Column> columns;
        for (const auto& c : p.columns)
            columns.push_back(
                {c.header, c.align == Align::right ? output::Align::right : output::Align::left});
        output::Table table(columns);
        for (const auto& row : p.rows) {
            std::vector<std::string> cells;
            for (const auto& c : row)
                cells.push_back(c.text == "-" ? "" : c.text);
            table.add_row(std::move(cells));
        }
        table.render_text(out);
    }
}

} // namespace dis::monitor
