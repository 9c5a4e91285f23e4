// The one fdid parser and formatter.
#include "dis/error.hpp"
#include "dis/lending_fdid.hpp"

#include <catch2/catch.hpp>

using namespace dis::lending;

TEST_CASE("fdid packs node id and index and prints like the vendor", "[lending][fdid]") {
    Fdid f = Fdid::make(8, 0);
    CHECK(f.value == 0x80000u);
    CHECK(to_string(f) == "0x80000");
    CHECK(f.node_id() == 8);
    CHECK(f.index() == 0);
    Fdid g = make_fdid(12, 3);
    CHECK(to_string(g) == "0xc0003");
    CHECK(g.node_id() == 12);
    CHECK(g.index() == 3);
    CHECK_THROWS_AS(make_fdid(0x10000, 0), dis::Error);
    CHECK_THROWS_AS(make_fdid(1, 0x10000), dis::Error);
}

TEST_CASE("fdid parser accepts what the formatter prints, hex any case and decimal",
          "[lending][fdid]") {
    for (std::uint32_t v : {0u, 1u, 0x80000u, 0x80001u, 0xffff0000u, 0xffffffffu})
        CHECK(parse_fdid(to_string(Fdid{v})).value == v);
    CHECK(parse_fdid("0X8000A").value == 0x8000au);
    CHECK(parse_fdid("524288").value == 0x80000u);
}

TEST_CASE("fdid parser refuses junk with an invalid_input error naming the text",
          "[lending][fdid]") {
    for (const char* bad :
         {"", "0x", "x80000", "0x8g000", "80000h", "0x100000000", "-1", "99999999999", " 0x1"}) {
        INFO("input '" << bad << "'");
        try {
            parse_fdid(bad);
            FAIL("accepted");
        } catch (const dis::Error& e) {
            CHECK(e.kind() == dis::ErrorKind::invalid_input);
            CHECK(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos);
        }
    }
}
