// disd's device pool on the wire, raw: declared devices and their fdids, borrowing (exclusive,
// shared, busy, unknown, refused by policy), leases tied to the connection, TTL expiry,
// waiting borrowers and the hand-over order, and the admin ops. Real daemons.
#include "test_lending_disd_support.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace dis::test;
using nlohmann::json;

namespace {

std::string me(std::uint32_t node) {
    return "node " + std::to_string(node) + " pid " + std::to_string(::getpid());
}

} // namespace

TEST_CASE("lending disd: declared devices get fdids in order, config lines first, VFs after "
          "their PF") {
    TempDir tmp;
    auto config = write_file((tmp.path() / "fabric.conf").string(),
                             "node 4\nnode 8\n"
                             "device 8 epf-test name=cfg0 vfs=2   # a PF and two VFs\n"
                             "device 4 memory name=elsewhere\n"
                             "device 8 memory name=m0 bars=64K\n");
    LocalFabric fabric({8}, {"--config", config, "--device", "epf-test name=opt0 reset_ms=1"});
    LendingClient c(fabric, 8, 4);
    auto r = c.must({{"op", "dev_list"}});
    REQUIRE(r.err() == 0);
    const json& devs = r.body["devices"];
    REQUIRE(devs.size() == 5);
    std::vector<std::string> fdids, names;
    for (const auto& d : devs) {
        fdids.push_back(d["fdid"]);
        names.push_back(d["name"]);
        CHECK(d["node_id"] == 8);
        CHECK(d["state"] == "available");
        CHECK(d["leases"].empty());
    }
    CHECK(fdids == std::vector<std::string>{"0x80000", "0x80001", "0x80002", "0x80003", "0x80004"});
    CHECK(names == std::vector<std::string>{"cfg0", "cfg0-vf0", "cfg0-vf1", "m0", "opt0"});
    // The pci-epf-test defaults, as pci_endpoint_test knows them.
    CHECK(devs[0]["kind"] == "epf-test");
    CHECK(devs[0]["vendor_id"] == "0x104c");
    CHECK(devs[0]["device_id"] == "0xb500");
    CHECK(devs[0]["class"] == "0xff0000");
    CHECK(devs[0]["bars"] == json::array({512, 512, 1024, 16384, 131072, 1048576}));
    CHECK(devs[0]["physfn"].is_null());
    CHECK(devs[1]["physfn"] == "0x80000");
    CHECK(devs[2]["physfn"] == "0x80000");
    CHECK(devs[3]["kind"] == "memory");
    CHECK(devs[3]["bars"] == json::array({65536}));
    CHECK(devs[4]["index"] == 4);

    auto show = c.must({{"op", "dev_show"}, {"fdid", "0x80003"}});
    REQUIRE(show.err() == 0);
    CHECK(show.body["device"]["name"] == "m0");
    CHECK(node_counter(fabric, 8, "devices") == 5);
    // The device line's errors name the file and line.
    write_file(config, "node 8\ndevice 8 gpu name=x\n");
    auto run = dis::test::run(
        {DIS_DISD_PATH, "--node-id", "12", "--fabric", fabric.dir(), "--config", config});
    CHECK(run.exit_code != 0);
    CHECK(run.err.find("fabric.conf:2") != std::string::npos);
}

TEST_CASE("lending disd: exclusive and shared borrows, a busy device names its holder, an "
          "unknown fdid is SCI_ERR_NO_SUCH_FDID") {
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=1"});
    LendingClient a(fabric, 8, 4);
    LendingClient b(fabric, 8, 12);
    LendingClient c(fabric, 8, 16);

    json la = borrow(a, "0x80000", true);
    REQUIRE(la["err"] == 0);
    CHECK(la["lease"]["mode"] == "exclusive");
    CHECK(la["lease"]["node_id"] == 4);
    CHECK(la["lease"]["pid"] == ::getpid());
    CHECK(la["lease"]["ttl_ms"] == 10000); // --lease-ttl's default
    CHECK(la["lease"]["token"].get<std::string>().size() == 16);
    CHECK(la["device"]["state"] == "borrowed");

    json busy = borrow(b, "0x80000", false);
    CHECK(busy["err"] == SCI_ERR_NOT_AVAILABLE);
    CHECK(busy["refusal"] == "busy");
    CHECK(busy["state"] == "borrowed");
    CHECK(busy["message"].get<std::string>().find("held exclusively by " + me(4)) !=
          std::string::npos);

    json unknown = borrow(b, "0x80007", false);
    CHECK(unknown["err"] == k_err_no_such_fdid);
    CHECK(unknown["refusal"] == "no_such_device");
    CHECK(unknown["message"].get<std::string>().find("0x80007") != std::string::npos);

    auto ret = a.must({{"op", "dev_return"}, {"lease_id", la["lease"]["id"]}});
    CHECK(ret.err() == 0);
    CHECK(state_of(a, "0x80000") == "available"); // the reply comes after the reset

    json sb = borrow(b, "0x80000", false, {{"lease_ms", 3000}});
    json sc = borrow(c, "0x80000", false);
    REQUIRE(sb["err"] == 0);
    REQUIRE(sc["err"] == 0);
    CHECK(sb["lease"]["ttl_ms"] == 3000);
    json excl = borrow(a, "0x80000", true);
    CHECK(excl["err"] == SCI_ERR_NOT_AVAILABLE);
    CHECK(excl["message"].get<std::string>().find("shared by 2") != std::string::npos);
    auto shown = a.must({{"op", "dev_show"}, {"fdid", "0x80000"}});
    CHECK(shown.body["device"]["leases"].size() == 2);
    // Only the holder's connection may return its lease this way.
    auto foreign = a.must({{"op", "dev_return"}, {"lease_id", sb["lease"]["id"]}});
    CHECK(foreign.err() == SCI_ERR_ILLEGAL_PARAMETER);
    CHECK(node_counter(fabric, 8, "borrows_total") == 3);

    // SCIReleaseExclusiveBorrow: an exclusive lease becomes shared; others may join it.
    REQUIRE(b.must({{"op", "dev_return"}, {"lease_id", sb["lease"]["id"]}}).err() == 0);
    REQUIRE(c.must({{"op", "dev_return"}, {"lease_id", sc["lease"]["id"]}}).err() == 0);
    json ex = borrow(a, "0x80000", true);
    REQUIRE(ex["err"] == 0);
    CHECK(borrow(b, "0x80000", false)["err"] == SCI_ERR_NOT_AVAILABLE);
    CHECK(b.must({{"op", "dev_share"}, {"lease_id", ex["lease"]["id"]}}).err() ==
          SCI_ERR_ILLEGAL_PARAMETER); // not b's lease
    auto shared = a.must({{"op", "dev_share"}, {"lease_id", ex["lease"]["id"]}});
    REQUIRE(shared.err() == 0);
    CHECK(shared.body["lease"]["mode"] == "shared");
    CHECK(borrow(b, "0x80000", false)["err"] == 0);
}

TEST_CASE("lending disd: a policy refusal names the rule") {
    TempDir tmp;
    auto policy = write_file((tmp.path() / "policy.toml").string(),
                             "[[rule]]\nname = \"no node 12\"\nnodes = [12]\nallow = false\n\n"
                             "[[rule]]\nname = \"exclusive only\"\nexclusive_only = true\n");
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=1", "--lending-policy", policy});
    LendingClient a(fabric, 8, 12);
    json r = borrow(a, "0x80000", true);
    CHECK(r["err"] == SCI_ERR_ACCESS);
    CHECK(r["refusal"] == "policy");
    CHECK(r["message"].get<std::string>().find("rule 1 (no node 12") != std::string::npos);
    LendingClient b(fabric, 8, 4);
    json s = borrow(b, "0x80000", false);
    CHECK(s["err"] == SCI_ERR_ACCESS);
    CHECK(s["message"].get<std::string>().find("exclusive only") != std::string::npos);
    CHECK(borrow(b, "0x80000", true)["err"] == 0);
}

TEST_CASE("lending disd: a closed connection returns its lease at once, the device is reset "
          "and available again") {
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=5"});
    LendingClient watcher(fabric, 8, 4);
    {
        LendingClient holder(fabric, 8, 12);
        REQUIRE(borrow(holder, "0x80000", true)["err"] == 0);
        CHECK(state_of(watcher, "0x80000") == "borrowed");
        holder.close();
    }
    auto t0 = LClock::now();
    REQUIRE(eventually_true([&] { return state_of(watcher, "0x80000") == "available"; }));
    // Within 1 s on an idle machine; the bound allows for a loaded CI machine.
    CHECK(LClock::now() - t0 < milliseconds(3000));
    auto rows = history(watcher, "0x80000");
    CHECK(has_row(rows, "release", "connection closed"));
    CHECK(has_row(rows, "reset_ok"));
    CHECK(node_counter(fabric, 8, "resets_total") == 1);
    CHECK(node_counter(fabric, 8, "returns_total") == 1);
}

TEST_CASE("lending disd: a lease that is not renewed expires, its holder is told dev_lost") {
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=1"});
    LendingClient holder(fabric, 8, 4);
    json l = borrow(holder, "0x80000", true, {{"lease_ms", 600}});
    REQUIRE(l["err"] == 0);
    // Renewing keeps it.
    auto renewed =
        holder.must({{"op", "dev_renew"}, {"lease_id", l["lease"]["id"]}, {"lease_ms", 600}});
    REQUIRE(renewed.err() == 0);
    CHECK(renewed.body["lease"]["expires_ms"] >= l["lease"]["expires_ms"]);
    auto lost = holder.event("dev_lost", milliseconds(10000));
    REQUIRE(lost.has_value());
    CHECK((*lost)["fdid"] == "0x80000");
    CHECK((*lost)["lease_id"] == l["lease"]["id"]);
    CHECK((*lost)["reason"] == "lease expired");
    REQUIRE(eventually_true([&] { return state_of(holder, "0x80000") == "available"; }));
    CHECK(has_row(history(holder, "0x80000"), "expire", "", "expired"));
    CHECK(node_counter(fabric, 8, "reclaims_lease_expired_total") == 1);
    CHECK(node_counter(fabric, 8, "reclaims_admin_total") == 0);
    CHECK(node_counter(fabric, 8, "returns_total") == 0);
    auto late = holder.must({{"op", "dev_renew"}, {"lease_id", l["lease"]["id"]}});
    CHECK(late.err() == SCI_ERR_ILLEGAL_PARAMETER);
}

TEST_CASE("lending disd: waiting borrowers get the device by priority, then first come first "
          "served, a wait can time out") {
    TempDir tmp;
    auto policy = write_file((tmp.path() / "policy.toml").string(),
                             "[[rule]]\nname = \"standby\"\nnodes = [20]\npriority = 5\n");
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=1", "--lending-policy", policy});
    LendingClient holder(fabric, 8, 4);
    LendingClient first(fabric, 8, 12);
    LendingClient second(fabric, 8, 16);
    LendingClient standby(fabric, 8, 20);
    LendingClient late(fabric, 8, 24);
    json h = borrow(holder, "0x80000", true);
    REQUIRE(h["err"] == 0);
    auto req = [](int wait_ms) {
        return json{
            {"op", "dev_borrow"}, {"fdid", "0x80000"}, {"exclusive", true}, {"wait_ms", wait_ms}};
    };
    auto s_first = first.send(req(20000));
    auto s_second = second.send(req(20000));
    REQUIRE(eventually_true([&] {
        return holder.must({{"op", "dev_show"}, {"fdid", "0x80000"}}).body["device"]["waiters"] ==
               2;
    }));
    auto s_standby = standby.send(req(20000));
    REQUIRE(eventually_true([&] {
        return holder.must({{"op", "dev_show"}, {"fdid", "0x80000"}}).body["device"]["waiters"] ==
               3;
    }));
    // A short wait runs out with SCI_ERR_TIMEOUT while the others still wait.
    auto s_late = late.send(req(300));
    auto timed_out = late.reply_to(s_late, milliseconds(10000));
    REQUIRE(timed_out.has_value());
    CHECK(timed_out->err() == SCI_ERR_TIMEOUT);

    REQUIRE(holder.must({{"op", "dev_return"}, {"lease_id", h["lease"]["id"]}}).err() == 0);
    auto g1 = standby.reply_to(s_standby, milliseconds(10000));
    REQUIRE(g1.has_value());
    REQUIRE(g1->err() == 0);
    CHECK(g1->body["lease"]["node_id"] == 20);
    CHECK(g1->body["lease"]["priority"] == 5);
    REQUIRE(standby.must({{"op", "dev_return"}, {"lease_id", g1->body["lease"]["id"]}}).err() == 0);
    auto g2 = first.reply_to(s_first, milliseconds(10000));
    REQUIRE(g2.has_value());
    REQUIRE(g2->err() == 0);
    CHECK(g2->body["lease"]["node_id"] == 12);
    // The third waiter's connection goes: its wait is dropped, nobody is left waiting.
    second.close();
    REQUIRE(eventually_true([&] {
        return holder.must({{"op", "dev_show"}, {"fdid", "0x80000"}}).body["device"]["waiters"] ==
               0;
    }));
    (void)s_second;
    CHECK(has_row(history(holder, "0x80000"), "borrow", "hand-over", "priority 5"));
}

TEST_CASE("lending disd: reclaim quiesces the borrower (dev_lost) and resets, available and "
          "unavailable") {
    LocalFabric fabric({8}, {"--device", "memory name=m0 reset_ms=1"});
    LendingClient holder(fabric, 8, 4);
    LendingClient admin(fabric, 8, 0);
    json h = borrow(holder, "0x80000", true);
    REQUIRE(h["err"] == 0);
    auto r = admin.must({{"op", "dev_reclaim"},
                         {"fdid", "0x80000"},
                         {"reason", "maintenance"},
                         {"via", "dis-tool"}});
    REQUIRE(r.err() == 0);
    REQUIRE(r.body["leases"].size() == 1);
    CHECK(r.body["leases"][0]["id"] == h["lease"]["id"]);
    auto lost = holder.event("dev_lost");
    REQUIRE(lost.has_value());
    std::string reason = (*lost)["reason"];
    CHECK(reason.find("reclaimed by admin uid " + std::to_string(::getuid())) != std::string::npos);
    CHECK(reason.find("via dis-tool: maintenance") != std::string::npos);
    CHECK(state_of(admin, "0x80000") == "available");
    auto rows = history(admin, "0x80000");
    CHECK(has_row(rows, "reclaim", "via dis-tool", "maintenance"));
    CHECK(has_row(rows, "reset_ok"));
    // The lease is gone for its holder.
    CHECK(holder.must({{"op", "dev_renew"}, {"lease_id", h["lease"]["id"]}}).err() ==
          SCI_ERR_ILLEGAL_PARAMETER);

    REQUIRE(admin.must({{"op", "dev_unavailable"}, {"fdid", "0x80000"}}).err() == 0);
    json refused = borrow(holder, "0x80000", true);
    CHECK(refused["err"] == SCI_ERR_NOT_AVAILABLE);
    CHECK(refused["state"] == "unavailable");
    REQUIRE(admin.must({{"op", "dev_available"}, {"fdid", "0x80000"}}).err() == 0);
    CHECK(borrow(holder, "0x80000", true)["err"] == 0);
    auto illegal = admin.must({{"op", "dev_available"}, {"fdid", "0x80000"}});
    CHECK(illegal.err() == SCI_ERR_NOT_AVAILABLE); // borrowed: busy
}

TEST_CASE("lending disd: admin ops are for root or the daemon's user, another uid returns only "
          "its own leases") {
    LocalFabric fabric(
        {8}, {"--device", "memory name=m0 reset_ms=1", "--device", "memory name=m1 reset_ms=1"});
    REQUIRE(::geteuid() == 0);           // the test switches to another uid
    ::chmod(fabric.dir().c_str(), 0755); // let the other user reach the socket
    LendingClient root(fabric, 8, 4);
    json held = borrow(root, "0x80000", true);
    REQUIRE(held["err"] == 0);
    std::int64_t root_lease = held["lease"]["id"];
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // uid 65534 in the socket's group (gid 0). No Catch macros in the child.
        if (::setgroups(0, nullptr) != 0 || ::setresgid(0, 0, 0) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0) {
            ::_exit(90);
        }
        dis::wire::Fd fd(dis::wire::connect_socket(fabric.socket(8)));
        std::uint64_t seq = 0;
        auto call = [&](json req) -> json {
            req["seq"] = ++seq;
            if (!dis::wire::send_message(fd.get(), req)) {
                return json{{"err", -1}};
            }
            for (;;) {
                dis::wire::Message m;
                if (dis::wire::recv_message(fd.get(), m) != dis::wire::RecvStatus::ok) {
                    return json{{"err", -2}};
                }
                if (m.body.value("seq", 0ULL) == seq) {
                    return m.body;
                }
            }
        };
        if (!fd.valid() || call({{"op", "hello"},
                                 {"version", dis::wire::k_protocol_version},
                                 {"node_id", 12}})["err"] != 0) {
            ::_exit(91);
        }
        for (const char* op : {"dev_reclaim", "dev_reset", "dev_unavailable", "dev_available"}) {
            if (call({{"op", op}, {"fdid", "0x80001"}})["err"] != SCI_ERR_ACCESS) {
                ::_exit(92);
            }
        }
        if (call({{"op", "dev_return"}, {"fdid", "0x80000"}, {"lease_id", root_lease}})["err"] !=
            SCI_ERR_ACCESS) {
            ::_exit(93);
        }
        json mine = call({{"op", "dev_borrow"}, {"fdid", "0x80001"}, {"exclusive", true}});
        if (mine["err"] != 0 || mine["lease"]["uid"] != 65534) {
            ::_exit(94);
        }
        ::_exit(0);
    }
    CHECK(wait_child(pid) == 0);
    CHECK(state_of(root, "0x80000") == "borrowed");
    // The child's lease went with its connection.
    REQUIRE(eventually_true([&] { return state_of(root, "0x80001") == "available"; }));
    CHECK(has_row(history(root, "0x80001"), "borrow", "uid 65534"));
    // Root returns another connection's lease by fdid and lease id (`device return FDID`).
    LendingClient other(fabric, 8, 4);
    auto r = other.must(
        {{"op", "dev_return"}, {"fdid", "0x80000"}, {"lease_id", root_lease}, {"via", "dis-tool"}});
    CHECK(r.err() == 0);
    CHECK(state_of(other, "0x80000") == "available");
    CHECK(has_row(history(other, "0x80000"), "release", "via dis-tool"));
}
