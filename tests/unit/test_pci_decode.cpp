// Config-space decoding edge cases through hand-written dumps, BDF parsing, and the
// Topology lookups, tree and link-partner rules on small synthetic hierarchies.
#include "support.hpp"

#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

using dis::pci::Bdf;

namespace {

struct Config {
    std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(4096, 0);
    void u8(std::size_t p, unsigned v) { bytes[p] = static_cast<std::uint8_t>(v); }
    void u16(std::size_t p, unsigned v) {
        u8(p, v & 0xff);
        u8(p + 1, v >> 8);
    }
    void u32(std::size_t p, std::uint32_t v) {
        u16(p, v & 0xffff);
        u16(p + 2, v >> 16);
    }
};

Config function(unsigned vendor, unsigned device, unsigned class_id, unsigned header) {
    Config c;
    c.u16(0x00, vendor);
    c.u16(0x02, device);
    c.u16(0x0a, class_id);
    c.u8(0x0e, header);
    return c;
}

// PCIe capability at `at` (next = `next`) with port type and link registers.
void express(Config& c, std::size_t at, std::size_t next, unsigned type, unsigned cap_speed,
             unsigned cap_width, unsigned sta_speed, unsigned sta_width) {
    c.u16(0x06, 0x0010);
    if (!c.bytes[0x34])
        c.u8(0x34, static_cast<unsigned>(at));
    c.u8(at, 0x10);
    c.u8(at + 1, static_cast<unsigned>(next));
    c.u16(at + 2, 0x0002 | (type << 4));
    c.u32(at + 0x0c, cap_speed | (cap_width << 4));
    c.u16(at + 0x12, sta_speed | (sta_width << 4));
}

// One device of an lspci -x style dump with `size` bytes of config space.
std::string dump_device(const std::string& bdf, const Config& c, std::size_t size = 4096) {
    std::string s = bdf + " Some device\n";
    for (std::size_t off = 0; off < size; off += 16) {
        char line[80];
        int n = std::snprintf(line, sizeof line, "%02zx:", off);
        for (std::size_t i = 0; i < 16; ++i)
            n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), " %02x",
                               c.bytes[off + i]);
        s += std::string(line) + "\n";
    }
    return s + "\n";
}

dis::pci::Topology scan_text(const dis::test::TempDir& dir, const std::string& text) {
    auto path = dir.path() / "dump.txt";
    dis::test::write_file(path, text);
    return dis::pci::scan(dis::pci::Source::dump(path.string()));
}

} // namespace

TEST_CASE("Bdf parses with and without a domain and rejects bad text", "[pci][bdf]") {
    CHECK(Bdf::parse("0000:00:1c.0").to_string() == "0000:00:1c.0");
    CHECK(Bdf::parse("03:00.1").to_string() == "0000:03:00.1");
    CHECK(Bdf::parse("10000:ff:1f.7").to_string() == "10000:ff:1f.7");
    CHECK(Bdf::parse("0001:02:03.4") == Bdf{1, 2, 3, 4});
    for (const char* bad : {"", "zz:00.0", "00:20.0", "00:00.8", "00:00", "0000:00:00.0x",
                            "1:2:3:4.5", "000:100:00.0", " 00:00.0", "00:00.0 "}) {
        INFO(bad);
        CHECK_FALSE(Bdf::try_parse(bad));
        CHECK_THROWS_AS(Bdf::parse(bad), dis::Error);
    }
}

TEST_CASE("Capability chains that loop or leave config space end the walk", "[pci][decode]") {
    dis::test::TempDir dir;
    // 00:01.0: the PCIe capability points at itself; the extended chain loops at 0x100.
    auto a = function(0x1234, 0x0001, 0x0200, 0);
    express(a, 0x40, 0x40, 0x0, 3, 4, 3, 4);
    a.u32(0x100, 0x0001 | (0x100u << 20)); // AER pointing to itself
    // 00:02.0: capability pointer beyond the 64 bytes the dump provides.
    auto b = function(0x1234, 0x0002, 0x0200, 0);
    express(b, 0x80, 0, 0x0, 3, 4, 3, 4);
    // 00:03.0: extended chain whose next pointer drops below 0x100 into the header.
    auto c = function(0x1234, 0x0003, 0x0200, 0);
    express(c, 0x40, 0, 0x0, 3, 4, 3, 4);
    c.u32(0x100, 0x000d | (0x040u << 20)); // ACS, next -> 0x40
    // 00:04.0: a 64-bit BAR in the last slot and an unknown header layout elsewhere.
    auto d = function(0x1234, 0x0004, 0x0200, 0);
    d.u32(0x24, 0xfe00000c);
    auto e = function(0x1234, 0x0005, 0xff00, 0x7f);
    auto topo = scan_text(dir, dump_device("00:01.0", a) + dump_device("00:02.0", b, 64) +
                                   dump_device("00:03.0", c) + dump_device("00:04.0", d, 256) +
                                   dump_device("00:05.0", e, 64));
    REQUIRE(topo.devices().size() == 5);

    const auto& da = topo.get(Bdf::parse("00:01.0"));
    REQUIRE(da.link);
    CHECK(da.link->max_speed == "8GT/s");
    REQUIRE(da.aer); // decoded once, then the loop is noticed
    CHECK(da.aer->uncorrectable_status.empty());

    const auto& db = topo.get(Bdf::parse("00:02.0"));
    CHECK(db.config_size == 64);
    CHECK_FALSE(db.port_type);

    const auto& dc = topo.get(Bdf::parse("00:03.0"));
    CHECK(dc.acs); // read at 0x100; the chain then re-reads 0x40 as a header and stops
    CHECK_FALSE(dc.aer);

    const auto& dd = topo.get(Bdf::parse("00:04.0"));
    REQUIRE(dd.bars.size() == 1);
    CHECK(dd.bars[0].index == 5);
    CHECK_FALSE(dd.bars[0].is_64bit); // no upper half available
    CHECK(dd.config_size == 256);

    const auto& de = topo.get(Bdf::parse("00:05.0"));
    CHECK(de.header_type == 0x7f);
    CHECK_FALSE(de.secondary_bus);
}

TEST_CASE("Link partners: the lower capability of both ends decides downgraded", "[pci][decode]") {
    dis::test::TempDir dir;
    // Root port 8GT/s x16 running x4 with an x4 endpoint behind it: not downgraded.
    auto rp = function(0x8086, 0x1111, 0x0604, 1);
    rp.u8(0x19, 0x01);
    rp.u8(0x1a, 0x02);
    express(rp, 0x40, 0, 0x4, 3, 16, 3, 4);
    auto ep = function(0x10de, 0x2222, 0x0300, 0);
    express(ep, 0x40, 0, 0x0, 4, 4, 3, 4); // 16GT/s capable, partner only 8GT/s
    // Second root port 8GT/s x8 running 2.5GT/s x8 with an 8GT/s x8 endpoint: downgraded.
    auto rp2 = function(0x8086, 0x1112, 0x0604, 1);
    rp2.u8(0x19, 0x03);
    rp2.u8(0x1a, 0x03);
    express(rp2, 0x40, 0, 0x4, 3, 8, 1, 8);
    auto ep2 = function(0x15b3, 0x3333, 0x0200, 0);
    express(ep2, 0x40, 0, 0x0, 3, 8, 1, 8);
    // Endpoint on bus 02 (inside rp's range, not its secondary): still rp's child.
    auto ep3 = function(0x15b3, 0x4444, 0x0200, 0);
    // An empty root port whose link is down (x0) is not downgraded.
    auto rp3 = function(0x8086, 0x1113, 0x0604, 1);
    rp3.u8(0x19, 0x04);
    rp3.u8(0x1a, 0x04);
    express(rp3, 0x40, 0, 0x4, 3, 8, 1, 0);

    auto topo = scan_text(dir, dump_device("00:01.0", rp) + dump_device("01:00.0", ep) +
                                   dump_device("00:02.0", rp2) + dump_device("03:00.0", ep2) +
                                   dump_device("02:00.0", ep3, 64) + dump_device("00:03.0", rp3));
    auto link = [&](const char* bdf) { return *topo.get(Bdf::parse(bdf)).link; };
    CHECK_FALSE(link("00:01.0").downgraded);
    CHECK_FALSE(link("01:00.0").downgraded);
    CHECK(link("00:02.0").downgraded);
    CHECK(link("03:00.0").downgraded);
    CHECK_FALSE(link("00:03.0").downgraded);

    CHECK(topo.get(Bdf::parse("02:00.0")).parent == Bdf::parse("00:01.0"));
    auto kids = topo.children(Bdf::parse("00:01.0"));
    REQUIRE(kids.size() == 2);
    CHECK(kids[0]->bdf == Bdf::parse("01:00.0"));
    auto up = topo.upstream_path(Bdf::parse("03:00.0"));
    REQUIRE(up.size() == 1);
    CHECK(up[0]->bdf == Bdf::parse("00:02.0"));
    CHECK(topo.roots().size() == 3);
    CHECK_THROWS_AS(topo.get(Bdf::parse("09:00.0")), dis::Error);

    auto tree = dis::pci::build_tree(topo);
    REQUIRE(tree.size() == 1);
    CHECK(tree[0].devices.size() == 3);
    auto text = dis::pci::render_tree_text(topo);
    INFO(text);
    CHECK(text.find("+-00:02.0 [03]  Intel Corporation Device 1112  2.5GT/s x8 (max 8GT/s x8)  "
                    "!downgraded\n") != std::string::npos);
    CHECK(text.find("| \\-03:00.0") != std::string::npos);
}

TEST_CASE("A hand-built topology with a parent cycle renders without hanging", "[pci][tree]") {
    dis::pci::Device a, b;
    a.bdf = Bdf::parse("01:00.0");
    b.bdf = Bdf::parse("02:00.0");
    a.parent = b.bdf;
    b.parent = a.bdf;
    dis::pci::Topology topo(dis::pci::Source::dump("x"), {a, b});
    CHECK(topo.upstream_path(a.bdf).size() <= 2);
    auto text = dis::pci::render_tree_text(topo); // neither is a root: nothing to draw
    CHECK(text.empty());
    auto j = dis::pci::to_json(a);
    CHECK(j["aer"].is_null());
    CHECK(j["link"].is_null());
    CHECK(j["parent"] == "0000:02:00.0");
}
