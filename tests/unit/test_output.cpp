#include "dis/error.hpp"
#include "dis/output.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace dis::output;

TEST_CASE("table aligns columns and marks empty cells", "[output]") {
    Table t({Column{"NAME", Align::left}, Column{"SIZE", Align::right}});
    t.add_row({"alpha", "1"});
    t.add_row({"b", ""});
    std::ostringstream out;
    t.render_text(out);
    CHECK(out.str() == "NAME   SIZE\n"
                       "alpha     1\n"
                       "b         -\n");
}

TEST_CASE("table pads by display width, not bytes", "[output]") {
    Table t{"TREE", "X"};
    t.add_row({"\u2514\u2500a", "1"});
    t.add_row({"abcd", "2"});
    std::ostringstream out;
    t.render_text(out);
    CHECK(out.str() == "TREE  X\n\u2514\u2500a   1\nabcd  2\n");
}

TEST_CASE("table pads double-width glyphs by two columns and combining marks by none", "[output]") {
    Table t{"NAME", "X"};
    t.add_row({"\u6771\u4eac", "1"});   // two CJK glyphs: four columns
    t.add_row({"Ang\u030astrom", "2"}); // A, n, g+ring: eight columns for nine code points
    t.add_row({"ab", "3"});
    std::ostringstream out;
    t.render_text(out);
    CHECK(out.str() == "NAME      X\n"
                       "\u6771\u4eac      1\n"
                       "Ang\u030astrom  2\n"
                       "ab        3\n");
}

TEST_CASE("csv quotes commas, quotes and newlines", "[output]") {
    Table t{"a", "b"};
    t.add_row({"x,y", "say \"hi\""});
    std::ostringstream out;
    t.render_csv(out);
    CHECK(out.str() == "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
}

TEST_CASE("format names parse and unknown ones are input errors", "[output]") {
    CHECK(parse_format("json") == Format::json);
    CHECK(parse_format("table") == Format::text);
    CHECK(parse_format("csv") == Format::csv);
    try {
        parse_format("yaml");
        FAIL("no error thrown");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::invalid_input);
        CHECK(dis::exit_code_for(e.kind()) == dis::k_exit_usage);
    }
}

TEST_CASE("json rendering survives invalid UTF-8", "[output]") {
    std::ostringstream out;
    render_json(out, nlohmann::json{{"name", std::string("bad\xff")}});
    CHECK(out.str().find("bad") != std::string::npos);
}
