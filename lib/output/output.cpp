#include "dis/output.hpp"
#include "dis/text_width.hpp"

#include "dis/error.hpp"

#include <algorithm>
#include <ostream>

namespace dis::output {

Format parse_format(const std::string& name) {
    if (name == "table" || name == "text")
        return Format::text;
    if (name == "json")
        return Format::json;
    if (name == "csv")
        return Format::csv;
    throw Error(ErrorKind::invalid_input,
                "unknown output format '" + name + "' (table, json, csv)");
}

Table::Table(std::vector<Column> columns) : m_columns(std::move(columns)) {}

Table::Table(std::initializer_list<std::string> headers) {
    for (const auto& h : headers)
        m_columns.push_back(Column{h, Align::left});
}

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(m_columns.size());
    m_rows.push_back(std::move(cells));
}

namespace {

// Display width in terminal columns (wide glyphs count two), so tree glyphs and UTF-8 names
// align.
std::size_t display_width(const std::string& s) {
    return static_cast<std::size_t>(text::display_width(s));
}

} // namespace

void Table::render_text(std::ostream& out) const {
    std::vector<std::size_t> widths(m_columns.size());
    for (std::size_t i = 0; i < m_columns.size(); ++i)
        widths[i] = display_width(m_columns[i].header);
    for (const auto& row : m_rows)
        for (std::size_t i = 0; i < row.size(); ++i)
            widths[i] = std::max(widths[i], display_width(row[i].empty() ? "-" : row[i]));

    auto emit = [&](const std::vector<std::string>& cells) {
        std::string line;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            const std::string& cell = cells[i].empty() ? std::string("-") : cells[i];
            std::size_t pad = widths[i] - display_width(cell);
            bool last = i + 1 == cells.size();
            if (m_columns[i].align == Align::right)
                line.append(pad, ' ').append(cell);
            else
                line.append(cell).append(last ? 0 : pad, ' ');
            if (!last)
                line.append("  ");
        }
        out << line << '\n';
    };
    std::vector<std::string> headers;
    for (const auto& c : m_columns)
        headers.push_back(c.header);
    emit(headers);
    for (const auto& row : m_rows)
        emit(row);
}

namespace {

std::string csv_escape(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos)
        return s;
    std::string r = "\"";
    for (char c : s) {
        if (c == '"')
            r += '"';
        r += c;
    }
    return r + '"';
}

} // namespace

void Table::render_csv(std::ostream& out) const {
    auto emit = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i)
            out << (i ? "," : "") << csv_escape(cells[i]);
        out << '\n';
    };
    std::vector<std::string> headers;
    for (const auto& c : m_columns)
        headers.push_back(c.header);
    emit(headers);
    for (const auto& row : m_rows)
        emit(row);
}

void render_json(std::ostream& out, const nlohmann::json& doc) {
    // Invalid UTF-8 from device names or files must not abort the dump.
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void KeyValues::add(std::string key, std::string value, int indent) {
    m_entries.push_back(Entry{std::move(key), std::move(value), indent});
}

void KeyValues::render_text(std::ostream& out) const {
    std::size_t width = 0;
    for (const auto& e : m_entries)
        width = std::max(width, e.key.size() + static_cast<std::size_t>(e.indent) * 2);
    for (const auto& e : m_entries) {
        std::string key = std::string(static_cast<std::size_t>(e.indent) * 2, ' ') + e.key;
        if (e.value.empty())
            out << key << '\n';
        else
            out << key << ':' << std::string(width - key.size() + 1, ' ') << e.value << '\n';
    }
}

} // namespace dis::output
