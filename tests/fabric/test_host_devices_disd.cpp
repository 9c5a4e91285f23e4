// disd's host-device ops (issue 10, tools/disd/host_devices.cpp) through the library's
// LenderClient against real daemons: dev_add from a spec, dev_remove refused while borrowed
// and forced (the borrower hears dev_lost), fdid reuse, audit_note rows, and a vfio spec the
// node cannot open refused with nothing added.
#include "fabric_support.hpp"

#include "dis/error.hpp"
#include "dis/lending_client.hpp"

#include <catch2/catch.hpp>

using namespace dis::test;
namespace lm = dis::lending;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> names(const std::vector<lm::DeviceView>& v) {
    std::vector<std::string> out;
    for (const auto& d : v)
        out.push_back(d.status.info.name);
    return out;
}

} // namespace

TEST_CASE("host devices disd: dev_add puts a spec's device and its VFs in the pool, available, "
          "at the next free fdids") {
    LocalFabric fabric({8}, {"--device", "memory name=declared reset_ms=1"});
    lm::LenderClient admin(fabric.dir(), 8);
    auto added = admin.add_device("memory name=host0 bars=64K vfs=1 reset_ms=1");
    REQUIRE(added.size() == 2);
    CHECK(lm::to_string(added[0].status.info.fdid) == "0x80001");
    CHECK(lm::to_string(added[1].status.info.fdid) == "0x80002");
    CHECK(added[0].status.state == lm::State::available);
    CHECK(added[0].kind == "memory");
    CHECK(added[0].bars == std::vector<std::uint64_t>{65536});
    CHECK(added[1].physfn == added[0].status.info.fdid);
    CHECK(names(admin.list()) == std::vector<std::string>{"declared", "host0", "host0-vf0"});
    // The audit log has the add and the offer.
    auto rows = admin.history(lm::Fdid{0x80001}, std::nullopt);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].event == lm::Event::add);
    CHECK(rows[1].event == lm::Event::make_available);
    CHECK(rows[1].actor.find("via dis-tool") != std::string::npos);
    // A borrower gets it like a declared device.
    lm::LenderClient borrower(fabric.dir(), 8, 4);
    lm::BorrowOptions bo;
    bo.fdid = lm::Fdid{0x80001};
    auto held = borrower.borrow(bo);
    CHECK(held.lease.fdid.value == 0x80001u);
    borrower.release(held.lease.id);
}

TEST_CASE("host devices disd: dev_remove is refused while borrowed, force reclaims first, the "
          "device is removed and its index reused") {
    LocalFabric fabric({8});
    lm::LenderClient admin(fabric.dir(), 8);
    auto added = admin.add_device("epf-test name=ep reset_ms=1");
    REQUIRE(added.size() == 1);
    const lm::Fdid fdid = added[0].status.info.fdid;
    CHECK(lm::to_string(fdid) == "0x80000");
    lm::LenderClient borrower(fabric.dir(), 8, 4);
    lm::BorrowOptions bo;
    bo.fdid = fdid;
    auto held = borrower.borrow(bo);

    try {
        admin.remove_device(fdid, false);
        FAIL("dev_remove of a borrowed device succeeded");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::busy);
        CHECK(std::string(e.what()).find("borrowed") != std::string::npos);
    }
    CHECK(admin.show(fdid).status.state == lm::State::borrowed);

    auto gone = admin.remove_device(fdid, true);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].status.state == lm::State::removed);
    // The borrower was told its lease is gone.
    std::optional<lm::LenderEvent> ev;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        ev = borrower.next_event(200ms);
        if (ev && ev->event == "dev_lost")
            break;
    }
    REQUIRE(ev);
    CHECK(ev->event == "dev_lost");
    CHECK(ev->reason.find("leaves the pool") != std::string::npos);
    CHECK(admin.list().empty());
    CHECK(admin.show(fdid).status.state == lm::State::removed);
    // Removing it again: it is no device of this node any more.
    CHECK_THROWS_AS(admin.remove_device(fdid, false), dis::Error);
    // The next add takes the freed index; the device works (the engine polls it).
    auto again = admin.add_device("epf-test name=ep2 reset_ms=1");
    REQUIRE(again.size() == 1);
    CHECK(again[0].status.info.fdid == fdid);
    CHECK(again[0].status.info.name == "ep2");
    CHECK(again[0].status.state == lm::State::available);
    auto held2 = borrower.borrow(bo);
    CHECK(held2.lease.fdid == fdid);
    borrower.release(held2.lease.id);
    // The history tells the whole story: add, offer, borrow, reclaim, ..., remove, add again.
    auto rows = admin.history(fdid, std::nullopt);
    std::vector<lm::Event> events;
    for (const auto& r : rows)
        events.push_back(r.event);
    CHECK(std::find(events.begin(), events.end(), lm::Event::reclaim) != events.end());
    CHECK(std::count(events.begin(), events.end(), lm::Event::remove) == 1);
    CHECK(std::count(events.begin(), events.end(), lm::Event::add) == 2);
}

TEST_CASE("host devices disd: audit_note writes a row that changes nothing, on a device or on "
          "the host") {
    LocalFabric fabric({8}, {"--device", "memory name=m reset_ms=1"});
    lm::LenderClient admin(fabric.dir(), 8);
    auto row = admin.audit_note(lm::Fdid{0x80000}, "0000:03:00.0", "lend step 1: driver_override",
                                "ok", "echo vfio-pci > ...");
    CHECK(row.event == lm::Event::note);
    CHECK(row.from == lm::State::available);
    CHECK(row.to == lm::State::available);
    CHECK(row.reason == "0000:03:00.0: lend step 1: driver_override: ok (echo vfio-pci > ...)");
    auto host = admin.audit_note(std::nullopt, "0000:04:00.0", "lend: record", "failed", "");
    CHECK(lm::to_string(host.fdid) == "0x8ffff");
    CHECK(host.from == lm::State::removed);
    CHECK(admin.show(lm::Fdid{0x80000}).status.state == lm::State::available);
    auto all = admin.history(std::nullopt, std::nullopt);
    CHECK(std::count_if(all.begin(), all.end(),
                        [](const lm::AuditRow& r) { return r.event == lm::Event::note; }) == 2);
    auto only = admin.history(lm::Fdid{0x8ffff}, std::nullopt);
    REQUIRE(only.size() == 1);
    CHECK(only[0].reason == "0000:04:00.0: lend: record: failed");
}

TEST_CASE("host devices disd: a spec the node cannot parse or open is refused and nothing is "
          "added") {
    LocalFabric fabric({8});
    lm::LenderClient admin(fabric.dir(), 8);
    for (const char* spec : {"gpu name=x", "vfio:0000:7f:1f.7,name=nowhere"}) {
        INFO(spec);
        try {
            admin.add_device(spec);
            FAIL("dev_add accepted " << spec);
        } catch (const dis::Error& e) {
            CHECK(e.kind() == dis::ErrorKind::invalid_input);
            CHECK(std::string(e.what()).find(spec) != std::string::npos);
        }
    }
    CHECK(admin.list().empty());
    CHECK(admin.history(std::nullopt, std::nullopt).empty());
}
