// The one table renderer and the one JSON renderer shared by every command. Commands build
// a model, then either fill a Table from it or convert it to JSON; nothing else prints.
#pragma once

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <string>
#include <vector>

namespace dis::output {

enum class Format { text, json, csv };

// Parses "table"/"text", "json", "csv"; throws dis::Error(invalid_input) otherwise.
Format parse_format(const std::string& name);

enum class Align { left, right };

struct Column {
    std::string header;
    Align align = Align::left;
};

class Table {
public:
    explicit Table(std::vector<Column> columns);
    Table(std::initializer_list<std::string> headers);

    void add_row(std::vector<std::string> cells);
    std::size_t rows() const { return m_rows.size(); }

    // Aligned columns with a header line; empty cells print as "-".
    void render_text(std::ostream& out) const;
    // CSV (RFC 4180 quoting, LF line ends) with a header line.
    void render_csv(std::ostream& out) const;

private:
    std::vector<Column> m_columns;
    std::vector<std::vector<std::string>> m_rows;
};

// Pretty-printed JSON followed by a newline. The whole document is built before anything
// is written, so an error never leaves half a document on stdout.
void render_json(std::ostream& out, const nlohmann::json& doc);

// "key: value" lines for a single object's details (used by `show` style commands).
class KeyValues {
public:
    void add(std::string key, std::string value, int indent = 0);
    void render_text(std::ostream& out) const;

private:
    struct Entry {
        std::string key;
        std::string value;
        int indent;
    };
    std::vector<Entry> m_entries;
};

} // namespace dis::output
