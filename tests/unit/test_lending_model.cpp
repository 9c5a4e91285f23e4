// The lending model's JSON (dis/lending_model.hpp): what disd writes reads back the same, and
// the readers refuse what is missing or mistyped.
#include "dis/error.hpp"
#include "dis/lending_model.hpp"

#include <catch2/catch.hpp>

using namespace dis::lending;
using nlohmann::json;

namespace {

Lease sample_lease() {
    Lease l;
    l.id = 3;
    l.fdid = Fdid::make(8, 0);
    l.borrower = {4, 1234, 1000};
    l.mode = Mode::shared;
    l.priority = 5;
    l.granted = from_unix_ms(1764613800000);
    l.expires = from_unix_ms(1764613810000);
    l.ttl = Millis(10000);
    l.rule = "rule 1 (fpga bench, line 6)";
    l.reset_on_release = false;
    return l;
}

} // namespace

TEST_CASE("lending model: a device with its leases reads back as written") {
    DeviceView d;
    d.status.info = {Fdid::make(8, 1), 0x104c, 0xb500, 0xff0000, "ep0-vf0"};
    d.status.state = State::borrowed;
    d.status.since = from_unix_ms(1764613800000);
    d.status.reason = "shared borrow allowed by the default";
    d.status.waiters = 2;
    d.status.leases = {sample_lease()};
    d.node_id = 8;
    d.kind = "epf-test";
    d.bars = {512, 512, 1024};
    d.physfn = Fdid::make(8, 0);
    json j = to_json(d);
    CHECK(j["fdid"] == "0x80001");
    CHECK(j["index"] == 1);
    CHECK(j["vendor_id"] == "0x104c");
    CHECK(j["class"] == "0xff0000");
    CHECK(j["physfn"] == "0x80000");
    CHECK(j["state"] == "borrowed");
    CHECK(j["leases"][0]["mode"] == "shared");
    CHECK(j["leases"][0]["granted_ms"] == 1764613800000);

    DeviceView back = device_from_json(json::parse(j.dump()));
    CHECK(back.status.info.fdid == d.status.info.fdid);
    CHECK(back.status.info.vendor_id == 0x104c);
    CHECK(back.status.info.device_id == 0xb500);
    CHECK(back.status.info.class_code == 0xff0000);
    CHECK(back.status.info.name == "ep0-vf0");
    CHECK(back.status.state == State::borrowed);
    CHECK(back.status.since == d.status.since);
    CHECK(back.status.reason == d.status.reason);
    CHECK(back.status.waiters == 2);
    CHECK(back.node_id == 8);
    CHECK(back.kind == "epf-test");
    CHECK(back.bars == d.bars);
    CHECK(back.physfn == d.physfn);
    REQUIRE(back.status.leases.size() == 1);
    const Lease& l = back.status.leases[0];
    CHECK(l.id == 3);
    CHECK(l.borrower.node_id == 4);
    CHECK(l.borrower.pid == 1234);
    CHECK(l.borrower.uid == 1000);
    CHECK(l.mode == Mode::shared);
    CHECK(l.priority == 5);
    CHECK(l.expires == sample_lease().expires);
    CHECK(l.ttl == Millis(10000));
    CHECK(l.rule == sample_lease().rule);
    CHECK_FALSE(l.reset_on_release);

    d.physfn.reset();
    CHECK_FALSE(device_from_json(to_json(d)).physfn.has_value());
}

TEST_CASE("lending model: audit rows with and without a borrower read back as written") {
    AuditRow r;
    r.id = 17;
    r.time = from_unix_ms(1764613800123);
    r.fdid = Fdid::make(8, 0);
    r.event = Event::lease_lost;
    r.from = State::borrowed;
    r.to = State::returning;
    r.borrower = Borrower{4, 99, 0};
    r.lease_id = 3;
    r.actor = "recovery";
    r.reason = "lender restarted: lease 3 of node 4 pid 99 uid 0 not confirmed; reclaimed";
    AuditRow back = audit_from_json(to_json(r));
    CHECK(back.id == 17);
    CHECK(back.time == r.time);
    CHECK(back.event == Event::lease_lost);
    CHECK(back.from == State::borrowed);
    CHECK(back.to == State::returning);
    REQUIRE(back.borrower.has_value());
    CHECK(back.borrower->pid == 99);
    CHECK(back.lease_id == 3);
    CHECK(back.actor == "recovery");
    CHECK(back.reason == r.reason);

    r.borrower.reset();
    r.lease_id.reset();
    json j = to_json(r);
    CHECK(j["node_id"].is_null());
    AuditRow bare = audit_from_json(j);
    CHECK_FALSE(bare.borrower.has_value());
    CHECK_FALSE(bare.lease_id.has_value());
}

TEST_CASE("lending model: readers refuse missing and mistyped fields, naming them") {
    json lease = to_json(sample_lease());
    json no_mode = lease;
    no_mode.erase("mode");
    CHECK_THROWS_WITH(lease_from_json(no_mode), Catch::Contains("'mode'"));
    json bad_mode = lease;
    bad_mode["mode"] = "borrowed";
    CHECK_THROWS_AS(lease_from_json(bad_mode), dis::Error);
    json bad_fdid = lease;
    bad_fdid["fdid"] = "eighty";
    CHECK_THROWS_WITH(lease_from_json(bad_fdid), Catch::Contains("'fdid'"));

    DeviceView d;
    d.status.info = {Fdid::make(8, 0), 0x1af4, 0x1110, 0x050000, "m0"};
    d.status.state = State::available;
    d.kind = "memory";
    json dev = to_json(d);
    json bad_state = dev;
    bad_state["state"] = "lost";
    CHECK_THROWS_WITH(device_from_json(bad_state), Catch::Contains("'state'"));
    json wide = dev;
    wide["vendor_id"] = "0x10000";
    CHECK_THROWS_WITH(device_from_json(wide), Catch::Contains("'vendor_id'"));
    json not_array = dev;
    not_array["bars"] = 512;
    CHECK_THROWS_WITH(device_from_json(not_array), Catch::Contains("'bars'"));
    CHECK_THROWS_AS(audit_from_json(json::array()), dis::Error);
}
