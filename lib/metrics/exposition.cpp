// A scrape's families as the text Prometheus reads, and that text gzipped
// (dis/metrics_exposition.hpp).
#include "dis/metrics_exposition.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace dis::metrics {

namespace {

// The text format's escapes: backslash and line feed everywhere, the double quote in label
// values only.
void append_escaped(std::string& out, const std::string& text, bool quote) {
    if (text.find_first_of(quote ? "\\\n\"" : "\\\n") == std::string::npos) {
        out += text;
        return;
    }
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
}

// Go's spelling of a float, as node_exporter writes it: the shortest text that reads back to
// the same value ("8e+09", "0.25"), and NaN, +Inf, -Inf.
void append_value(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
    } else if (std::isinf(value)) {
        out += value < 0 ? "-Inf" : "+Inf";
    } else {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
        out.append(buf, end);
    }
}

const char* type_name(const prometheus::MetricFamily& f) {
    switch (f.type) {
    case prometheus::MetricType::Counter:
        return "counter";
    case prometheus::MetricType::Gauge:
        return "gauge";
    case prometheus::MetricType::Untyped:
        return "untyped";
    default:
        // Summaries and histograms are several series per sample; no collector makes them.
        throw Error(ErrorKind::internal,
                    "metric family " + f.name +
                        ": only counters, gauges and untyped families are written");
    }
}

double value_of(prometheus::MetricType type, const prometheus::ClientMetric& m) {
    switch (type) {
    case prometheus::MetricType::Counter:
        return m.counter.value;
    case prometheus::MetricType::Gauge:
        return m.gauge.value;
    default:
        return m.untyped.value;
    }
}

bool same_word(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The weight of one Accept-Encoding element ("gzip;q=0.5"): false for q=0, true otherwise
// (a weight that cannot be read counts as given).
bool weight_positive(std::string_view params) {
    while (!params.empty()) {
        const auto semi = params.find(';');
        const auto param = trim(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
        const auto eq = param.find('=');
        if (eq == std::string_view::npos || !same_word(trim(param.substr(0, eq)), "q"))
            continue;
        const auto value = trim(param.substr(eq + 1));
        return value.empty() || value.find_first_not_of("0.") != std::string_view::npos;
    }
    return true;
}

} // namespace

std::string render_text(const std::vector<prometheus::MetricFamily>& families) {
    std::size_t samples = 0;
    for (const auto& f : families)
        samples += f.metric.size();
    std::string out;
    out.reserve(samples * 96);
    for (const auto& f : families) {
        const char* type = type_name(f);
        out += "# HELP ";
        out += f.name;
        out += ' ';
        append_escaped(out, f.help, false);
        out += "\n# TYPE ";
        out += f.name;
        out += ' ';
        out += type;
        out += '\n';
        for (const auto& m : f.metric) {
            out += f.name;
            if (!m.label.empty()) {
                char sep = '{';
                for (const auto& l : m.label) {
                    out += sep;
                    out += l.name;
                    out += "=\"";
                    append_escaped(out, l.value, true);
                    out += '"';
                    sep = ',';
                }
                out += '}';
            }
            out += ' ';
            append_value(out, value_of(f.type, m));
            if (m.timestamp_ms != 0) {
                out += ' ';
                out += std::to_string(m.timestamp_ms);
            }
            out += '\n';
        }
    }
    return out;
}

std::string gzip_compress(std::string_view data) {
    // One deflate call reads and writes at most 4 GiB (uInt): under 2 GiB in, the room for
    // what comes out fits too. A scrape is megabytes.
    if (data.size() > std::numeric_limits<uInt>::max() / 2)
        throw Error(ErrorKind::internal, "zlib: " + std::to_string(data.size()) +
                                             " bytes are too many to gzip in one piece");
    z_stream zs{};
    // windowBits + 16: a gzip header and trailer around the deflate stream.
    if (deflateInit2(&zs, 1, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw Error(ErrorKind::internal, "zlib: cannot start a gzip stream");
    std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    const auto written = zs.total_out;
    deflateEnd(&zs);
    // deflateBound is room for all of it: anything but the end of the stream is zlib's fault.
    if (rc != Z_STREAM_END)
        throw Error(ErrorKind::internal,
                    "zlib: gzip stream not finished (" + std::to_string(rc) + ")");
    out.resize(written);
    return out;
}

bool accepts_gzip(std::string_view accept_encoding) {
    std::optional<bool> gzip;
    std::optional<bool> any;
    while (!accept_encoding.empty()) {
        const auto comma = accept_encoding.find(',');
        const auto element = accept_encoding.substr(0, comma);
        accept_encoding = comma == std::string_view::npos ? std::string_view()
                                                          : accept_encoding.substr(comma + 1);
        const auto semi = element.find(';');
        const auto coding = trim(element.substr(0, semi));
        const auto params =
            semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1);
        if (same_word(coding, "gzip") || same_word(coding, "x-gzip"))
            gzip = weight_positive(params);
        else if (coding == "*")
            any = weight_positive(params);
    }
    // A coding named outright outweighs "*".
    return gzip.value_or(any.value_or(false));
}

} // namespace dis::metrics
