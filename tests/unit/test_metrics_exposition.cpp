// The /metrics body: render_text against prometheus-cpp's own serializer, gzip_compress read
// back by the real gzip, and Accept-Encoding as RFC 9110 reads it.
#include "support.hpp"

#include "dis/error.hpp"
#include "dis/metrics.hpp"
#include "dis/metrics_exposition.hpp"

#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

using namespace dis::metrics;
using namespace dis::test;

namespace {

// `families` families of `per_family` samples each, counters and gauges by turns, with label
// values that need escaping (help texts that do are in their own test: prometheus-cpp 1.0.1
// writes help as it is, a line feed included).
std::vector<prometheus::MetricFamily> make_families(int families, int per_family) {
    std::vector<prometheus::MetricFamily> out;
    for (int f = 0; f < families; ++f) {
        const std::string name = "dis_test_" + std::to_string(f);
        auto family =
            f % 2 ? counter_family(name + "_total", "A counter.") : gauge_family(name, "A gauge.");
        for (int i = 0; i < per_family; ++i)
            add_sample(family, {{"index", std::to_string(i)}, {"quoted", "a\"b\\c\nd"}},
                       i * 0.5 + f);
        out.push_back(std::move(family));
    }
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        auto eol = text.find('\n', at);
        REQUIRE(eol != std::string::npos); // every line ends with a line feed
        lines.push_back(text.substr(at, eol - at));
        at = eol + 1;
    }
    return lines;
}

// A sample's value as Prometheus reads it (Go's ParseFloat; strtod takes the same spellings).
double parse_value(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    REQUIRE(end == text.c_str() + text.size());
    return v;
}

} // namespace

TEST_CASE("render_text writes the series prometheus-cpp's TextSerializer writes, in order",
          "[metrics]") {
    // prometheus-cpp's serializer is the oracle: the same comment lines, the same series in the
    // same order, each value the same double (the two spell some differently: 8e+09 here,
    // 8000000000 there).
    auto input = make_families(12, 1000);
    auto odd = gauge_family("dis_test_values", "Values spelled in many ways.");
    for (double v :
         {0.0, -0.0, 1.0, -3.0, 8e9, 2.5e9, 0.1, 1.0 / 3, 1e-300, 1.7976931348623157e308 / 3,
          std::nan(""), HUGE_VAL, -HUGE_VAL, 12345678901234.0})
        add_sample(odd, {{"v", std::to_string(odd.metric.size())}}, v);
    input.push_back(std::move(odd));
    input.push_back(counter_family("dis_test_empty_total", "A family without samples."));
    auto bare = gauge_family("dis_test_bare", "A sample without labels.");
    add_sample(bare, {}, 42);
    input.push_back(std::move(bare));

    const auto ours = split_lines(render_text(input));
    const auto theirs = split_lines(prometheus::TextSerializer().Serialize(input));
    REQUIRE(ours.size() == theirs.size());
    for (std::size_t i = 0; i < ours.size(); ++i) {
        INFO("line " << i + 1 << ": " << ours[i] << " | " << theirs[i]);
        if (ours[i].rfind("#", 0) == 0) {
            CHECK(ours[i] == theirs[i]);
            continue;
        }
        const auto space = ours[i].rfind(' ');
        const auto their_space = theirs[i].rfind(' ');
        REQUIRE(space != std::string::npos);
        REQUIRE(their_space != std::string::npos);
        CHECK(ours[i].substr(0, space) == theirs[i].substr(0, their_space));
        const double mine = parse_value(ours[i].substr(space + 1));
        const double other = parse_value(theirs[i].substr(their_space + 1));
        // TextSerializer writes 16 significant digits, which do not always read back exactly.
        if (std::isnan(other))
            CHECK(std::isnan(mine));
        else
            CHECK(mine == Approx(other).epsilon(1e-15));
    }
    // Ours read back exactly.
    const auto& values = input[12].metric;
    std::size_t at = 0;
    for (std::size_t i = 0; i < ours.size(); ++i)
        if (ours[i].rfind("dis_test_values{", 0) == 0) {
            INFO(ours[i]);
            const double v = parse_value(ours[i].substr(ours[i].rfind(' ') + 1));
            const double want = values.at(at++).gauge.value;
            if (std::isnan(want))
                CHECK(std::isnan(v));
            else
                CHECK(v == want);
        }
    CHECK(at == values.size());
    // Round-trip spellings, as Go writes them.
    const std::string text = render_text(input);
    CHECK(text.find("dis_test_values{v=\"4\"} 8e+09\n") != std::string::npos);
    CHECK(text.find("dis_test_values{v=\"6\"} 0.1\n") != std::string::npos);
    CHECK(text.find("dis_test_values{v=\"10\"} NaN\n") != std::string::npos);
    CHECK(text.find("dis_test_values{v=\"11\"} +Inf\n") != std::string::npos);
    CHECK(text.find("dis_test_values{v=\"12\"} -Inf\n") != std::string::npos);
    CHECK(text.find("\ndis_test_bare 42\n") != std::string::npos);
    CHECK(render_text({}).empty());
}

TEST_CASE("render_text escapes label values and help text as the text format says", "[metrics]") {
    auto f = gauge_family("dis_test_escapes", "Back\\slash and\nnewline, \"quoted\".");
    add_sample(f, {{"path", "C:\\dir\n\"x\""}}, 1);
    const std::string text = render_text({f});
    // In help: backslash and line feed; in label values also the double quote.
    CHECK(text == "# HELP dis_test_escapes Back\\\\slash and\\nnewline, \"quoted\".\n"
                  "# TYPE dis_test_escapes gauge\n"
                  "dis_test_escapes{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
    // A timestamp, when a family has one, after the value.
    prometheus::MetricFamily stamped = gauge_family("dis_test_stamped", "Stamped.");
    add_sample(stamped, {}, 2);
    stamped.metric.back().timestamp_ms = 1700000000123;
    CHECK(render_text({stamped}).find("dis_test_stamped 2 1700000000123\n") != std::string::npos);
    // Histograms and summaries are not written (no collector makes them): an error, not text.
    prometheus::MetricFamily hist;
    hist.name = "dis_test_histogram";
    hist.type = prometheus::MetricType::Histogram;
    CHECK_THROWS_AS(render_text({hist}), dis::Error);
}

TEST_CASE("gzip_compress makes one gzip member that the real gzip reads back", "[metrics]") {
    TempDir tmp;
    const std::string text = render_text(make_families(12, 1000));
    const std::string packed = gzip_compress(text);
    REQUIRE(packed.size() > 18);
    // RFC 1952: magic 1f 8b, method 8 (deflate).
    CHECK(static_cast<unsigned char>(packed[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(packed[1]) == 0x8b);
    CHECK(packed[2] == 8);
    CHECK(packed.size() * 4 < text.size());
    CHECK(gunzip(tmp.path(), packed) == text);
    CHECK(gunzip(tmp.path(), gzip_compress("")).empty());
}

TEST_CASE("accepts_gzip reads Accept-Encoding with weights", "[metrics]") {
    CHECK(accepts_gzip("gzip"));
    CHECK(accepts_gzip("gzip, deflate, br"));    // curl --compressed
    CHECK(accepts_gzip("identity, GZIP;q=0.5")); // case and a weight
    CHECK(accepts_gzip("x-gzip"));
    CHECK(accepts_gzip("*"));
    CHECK(accepts_gzip("br ;q=1, gzip ; q=1.0")); // blanks around the parameters
    CHECK_FALSE(accepts_gzip(""));
    CHECK_FALSE(accepts_gzip("identity"));
    CHECK_FALSE(accepts_gzip("deflate, br"));
    CHECK_FALSE(accepts_gzip("gzip;q=0"));
    CHECK_FALSE(accepts_gzip("gzip;q=0.000, identity"));
    CHECK_FALSE(accepts_gzip("*;q=0"));
    CHECK_FALSE(accepts_gzip("gzip;q=0, *")); // the named coding outweighs "*"
    CHECK(accepts_gzip("*, deflate;q=0"));
    CHECK_FALSE(accepts_gzip("gzipped"));
}
