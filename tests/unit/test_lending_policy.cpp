// The lending policy file: parsing (errors name the line and key) and decisions (the first
// rule matching device and borrower decides; a refusal names the rule).
#include "test_lending_support.hpp"

#include <fstream>

using namespace dis::lending;
using namespace dis::lending::test;
using namespace std::chrono_literals;

namespace {

const char* k_sample = R"(# a sample policy
[default]
max_lease = 120
reset_on_release = true

[[rule]]
name = "fpga bench"
fdid = "0x80000"
uids = [1000, 1002]
exclusive_only = true
max_lease = 30
priority = 10

[[rule]]
vendor = 0x10de
class = "0x03"
nodes = [4]
priority = 3
reset_on_release = false

[[rule]]
uids = [1001]
allow = false
)";

std::string parse_error(const std::string& text) {
    try {
        Policy::parse(text, "p.toml");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::invalid_input);
        return e.what();
    }
    return "(accepted)";
}

DeviceInfo gpu() {
    return {Fdid::make(8, 1), 0x10de, 0x2230, 0x030200, "gpu"};
}

} // namespace

TEST_CASE("policy: rules are read in order with their lines, unset keys take [default]",
          "[lending][policy]") {
    Policy p = Policy::parse(k_sample, "sample.toml");
    REQUIRE(p.rules().size() == 3);
    const auto& r1 = p.rules()[0];
    CHECK(r1.number == 1);
    CHECK(r1.line == 6);
    CHECK(r1.name == "fpga bench");
    REQUIRE(r1.fdids.size() == 1);
    CHECK(r1.fdids[0] == Fdid::make(8, 0));
    CHECK(r1.grant.exclusive_only);
    CHECK(r1.grant.max_lease == 30s);
    CHECK(r1.grant.priority == 10);
    CHECK(r1.grant.reset_on_release);
    const auto& r2 = p.rules()[1];
    CHECK(r2.vendor_id == 0x10de);
    CHECK(r2.grant.max_lease == 120s); // from [default]
    CHECK_FALSE(r2.grant.reset_on_release);
    CHECK(p.rules()[2].line == 21);
    CHECK_FALSE(p.rules()[2].allow);
}

TEST_CASE("policy: decisions and the rule that made them", "[lending][policy]") {
    Policy p = Policy::parse(k_sample, "sample.toml");
    DeviceInfo fpga = device_info(0);
    auto d = p.decide(fpga, borrower(4, 1, 1000), Mode::exclusive);
    CHECK(d.allowed);
    CHECK(d.rule == "rule 1 (fpga bench, line 6)");
    CHECK(d.grant.priority == 10);
    d = p.decide(fpga, borrower(4, 1, 1000), Mode::shared);
    CHECK_FALSE(d.allowed);
    CHECK(d.why == "shared borrow not allowed by rule 1 (fpga bench, line 6): exclusive only");
    // uid 1001 is not in rule 1; rule 2 does not match the device; rule 3 refuses.
    d = p.decide(fpga, borrower(4, 1, 1001), Mode::exclusive);
    CHECK_FALSE(d.allowed);
    CHECK(d.why == "not allowed for uid 1001 by rule 3 (line 21)");
    // The class filter: base class 0x03 matches a 0x0302 device from vendor 0x10de on node 4.
    d = p.decide(gpu(), borrower(4, 1, 1005), Mode::shared);
    CHECK(d.allowed);
    CHECK(d.rule == "rule 2 (line 14)");
    CHECK_FALSE(d.grant.reset_on_release);
    // Same device from node 12: no rule matches; the default allows.
    d = p.decide(gpu(), borrower(12, 1, 1005), Mode::shared);
    CHECK(d.allowed);
    CHECK(d.rule == "the default");
    CHECK(d.grant.max_lease == 120s);
    DeviceInfo other_class = gpu();
    other_class.class_code = 0x020000;
    CHECK(p.decide(other_class, borrower(4, 1, 1005), Mode::shared).rule == "the default");
}

TEST_CASE("policy: a default that denies names itself", "[lending][policy]") {
    Policy p = Policy::parse("[default]\nallow = false\n[[rule]]\nnodes = [4]\n", "p.toml");
    CHECK(p.decide(device_info(0), borrower(4, 1), Mode::exclusive).allowed);
    auto d = p.decide(device_info(0), borrower(12, 1, 7), Mode::exclusive);
    CHECK_FALSE(d.allowed);
    CHECK(d.why == "not allowed for node 12 uid 7 by the default (no rule matches)");
    // No file at all: everything is allowed, reset on release, one-hour leases.
    Policy open;
    auto o = open.decide(device_info(0), borrower(12, 1, 7), Mode::shared);
    CHECK(o.allowed);
    CHECK(o.grant.reset_on_release);
    CHECK(o.grant.max_lease == 1h);
}

TEST_CASE("policy: every mistake names the file, the line and the key", "[lending][policy]") {
    CHECK(parse_error("[default]\nmax_lease = 60\n\n[[rule]]\nuid = [1]\n") ==
          "p.toml:5: key 'uid': unknown key in [[rule]] 1");
    CHECK(parse_error("[[rule]]\nuids = 1000\n") ==
          "p.toml:2: key 'uids': expected an array of integers, e.g. [4, 8]");
    CHECK(parse_error("[[rule]]\nuids = [1000, \"x\"]\n").find("p.toml:2: key 'uids': ") == 0);
    CHECK(parse_error("[[rule]]\nfdid = \"0xzz\"\n").find("p.toml:2: key 'fdid': invalid fdid") ==
          0);
    CHECK(parse_error("[[rule]]\nclass = 3\n").find("p.toml:2: key 'class': expected a string") ==
          0);
    CHECK(parse_error("[[rule]]\nclass = \"0x030\"\n").find("p.toml:2: key 'class'") == 0);
    CHECK(parse_error("[[rule]]\nvendor = 0x10000\n").find("p.toml:2: key 'vendor': value") == 0);
    CHECK(parse_error("[default]\nallow = \"yes\"\n") ==
          "p.toml:2: key 'allow': expected true or false");
    CHECK(parse_error("[default]\nmax_lease = -5\n").find("p.toml:2: key 'max_lease'") == 0);
    CHECK(parse_error("[defaults]\nallow = true\n").find("p.toml:1: key 'defaults': unknown key") ==
          0);
    // TOML syntax errors carry the line too.
    CHECK(parse_error("[[rule]]\nnodes = [4,\n\npriority = \n").find("p.toml:") == 0);
    CHECK(parse_error("\n\nx = = 1\n").find("p.toml:3: ") == 0);
}

TEST_CASE("policy: load reads a file and reports a missing one", "[lending][policy]") {
    dis::test::TempDir dir;
    auto path = dir.path() / "policy.toml";
    {
        std::ofstream out(path);
        out << k_sample;
    }
    CHECK(Policy::load(path).rules().size() == 3);
    try {
        Policy::load(dir.path() / "missing.toml");
        FAIL("loaded");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::not_found);
    }
}
