// disd's lent devices themselves, raw: BAR memory handed to the borrower (dev_connect),
// device segments, borrower memory mapped for the device (dev_map) and an epf-test COPY driven
// through the registers, interrupts (dev_irq), failed resets, a device that stops responding,
// and a lender killed with a lease. Real daemons.
#include "test_lending_disd_support.hpp"

#include "dis/endpoint.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstring>

using namespace dis::test;
using nlohmann::json;
namespace epf = dis::endpoint::epf;

namespace {

// A borrowed device's BAR, mapped as the borrower maps it.
struct Bar {
    json reply;
    dis::wire::Fd fd;
    std::unique_ptr<Mapped> map;
};

Bar connect_bar(LendingClient& c, std::int64_t lease, int bar) {
    auto r = c.must({{"op", "dev_connect"}, {"lease_id", lease}, {"memtype", "bar"}, {"id", bar}});
    REQUIRE(r.err() == 0);
    REQUIRE(r.fds.size() == 1);
    Bar b;
    b.reply = r.body;
    b.fd = std::move(r.fds[0]);
    b.map = std::make_unique<Mapped>(b.fd.get(), r.body["size"].get<std::size_t>());
    return b;
}

volatile std::uint32_t* reg(const Bar& b, std::uint32_t offset) {
    return reinterpret_cast<volatile std::uint32_t*>(b.map->as<std::uint8_t>() + offset);
}

// Issues an epf-test command and waits until the device took it and wrote STATUS.
std::uint32_t run_command(const Bar& regs, std::uint32_t command) {
    *reg(regs, epf::k_status) = 0;
    *reg(regs, epf::k_command) = command;
    std::uint32_t status = 0;
    REQUIRE(eventually_true([&] {
        status = *reg(regs, epf::k_status);
        return *reg(regs, epf::k_command) == 0 && status != 0;
    }));
    return status;
}

std::int64_t lease_id(const json& borrowed) {
    REQUIRE(borrowed["err"] == 0);
    return borrowed["lease"]["id"].get<std::int64_t>();
}

} // namespace

TEST_CASE("lending disd: dev_connect hands the BAR's memory itself, joined processes share it, "
          "a reset clears it") {
    LocalFabric fabric({8}, {"--device", "memory name=m0 bars=64K reset_ms=1"});
    LendingClient holder(fabric, 8, 4);
    json b = borrow(holder, "0x80000", true);
    std::int64_t id = lease_id(b);
    Bar bar = connect_bar(holder, id, 0);
    CHECK(bar.reply["size"] == 65536);
    std::memset(bar.map->addr, 0xa5, 65536);

    // A second process joins the lease with its token and sees the same memory.
    LendingClient joined(fabric, 8, 4);
    auto j = joined.must({{"op", "dev_borrow"},
                          {"fdid", "0x80000"},
                          {"join", {{"lease_id", id}, {"token", b["lease"]["token"]}}}});
    REQUIRE(j.err() == 0);
    CHECK(j.body["lease"]["id"] == id);
    Bar other = connect_bar(joined, id, 0);
    CHECK(other.map->as<std::uint8_t>()[0] == 0xa5);
    CHECK(other.map->as<std::uint8_t>()[65535] == 0xa5);
    auto wrong = joined.must({{"op", "dev_borrow"},
                              {"fdid", "0x80000"},
                              {"join", {{"lease_id", id}, {"token", "0000000000000000"}}}});
    CHECK(wrong.err() == SCI_ERR_ILLEGAL_PARAMETER);
    auto no_bar =
        holder.must({{"op", "dev_connect"}, {"lease_id", id}, {"memtype", "bar"}, {"id", 1}});
    CHECK(no_bar.err() == SCI_ERR_ILLEGAL_PARAMETER);

    // Device memory: created once (with a size), connected again without one.
    auto made = holder.must({{"op", "dev_connect"},
                             {"lease_id", id},
                             {"memtype", "shared"},
                             {"id", 7},
                             {"size", 8192}});
    REQUIRE(made.err() == 0);
    REQUIRE(made.fds.size() == 1);
    auto again = holder.must({{"op", "dev_connect"},
                              {"lease_id", id},
                              {"memtype", "shared"},
                              {"id", 7},
                              {"size", 8192}});
    CHECK(again.err() == SCI_ERR_SEGMENTID_USED);
    auto conn =
        joined.must({{"op", "dev_connect"}, {"lease_id", id}, {"memtype", "shared"}, {"id", 7}});
    REQUIRE(conn.err() == 0);
    REQUIRE(conn.fds.size() == 1);
    CHECK(conn.body["size"] == 8192);
    Mapped m1(made.fds[0].get(), 8192);
    Mapped m2(conn.fds[0].get(), 8192);
    m1.as<std::uint32_t>()[5] = 0x12345678;
    CHECK(m2.as<std::uint32_t>()[5] == 0x12345678);
    auto none =
        joined.must({{"op", "dev_connect"}, {"lease_id", id}, {"memtype", "private"}, {"id", 7}});
    CHECK(none.err() == SCI_ERR_NO_SUCH_SEGMENT);

    // Returned: the joined process hears dev_lost, the reset clears the BAR.
    REQUIRE(holder.must({{"op", "dev_return"}, {"lease_id", id}}).err() == 0);
    auto lost = joined.event("dev_lost");
    REQUIRE(lost.has_value());
    CHECK((*lost)["lease_id"] == id);
    CHECK(bar.map->as<std::uint8_t>()[0] == 0);
    CHECK(bar.map->as<std::uint8_t>()[65535] == 0);
    CHECK(joined.must({{"op", "dev_connect"}, {"lease_id", id}, {"memtype", "bar"}, {"id", 0}})
              .err() == SCI_ERR_ILLEGAL_PARAMETER);
}

TEST_CASE("lending disd: an epf-test COPY driven through the registers moves borrower memory "
          "mapped with dev_map, a bad address is SRC_ADDR_INVALID, RAISE_MSI is a dev_irq") {
    LocalFabric fabric({8}, {"--device", "epf-test name=ep0 reset_ms=1"});
    LendingClient holder(fabric, 8, 4);
    std::int64_t id = lease_id(borrow(holder, "0x80000", true));
    Bar regs = connect_bar(holder, id, 0);
    CHECK(regs.reply["size"] == 512);
    CHECK(*reg(regs, epf::k_magic) == 0); // pci-epf-test leaves MAGIC for the host's test

    constexpr std::size_t k_size = 65536;
    auto src = memory_file(k_size, true);
    auto dst = memory_file(k_size, true);
    Mapped s(src.get(), k_size);
    Mapped d(dst.get(), k_size);
    for (std::size_t i = 0; i < k_size; ++i) {
        s.as<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    auto map = [&](int fd) {
        auto r = holder.must({{"op", "dev_map"}, {"lease_id", id}, {"size", k_size}, {"offset", 0}},
                             {fd});
        REQUIRE(r.err() == 0);
        return r.body["io_addr"].get<std::uint64_t>();
    };
    std::uint64_t src_io = map(src.get());
    std::uint64_t dst_io = map(dst.get());
    CHECK(src_io != dst_io);
    auto set_addr = [&](std::uint32_t lower, std::uint64_t addr) {
        *reg(regs, lower) = static_cast<std::uint32_t>(addr);
        *reg(regs, lower + 4) = static_cast<std::uint32_t>(addr >> 32);
    };
    set_addr(epf::k_lower_src_addr, src_io);
    set_addr(epf::k_lower_dst_addr, dst_io);
    *reg(regs, epf::k_size) = 40000;
    *reg(regs, epf::k_flags) = epf::k_flag_use_dma;
    *reg(regs, epf::k_irq_type) = 1; // MSI
    *reg(regs, epf::k_irq_number) = 1;
    std::uint32_t st = run_command(regs, epf::k_command_copy);
    CHECK((st & epf::k_status_copy_success) != 0);
    CHECK(std::memcmp(s.addr, d.addr, 40000) == 0);
    CHECK(d.as<std::uint8_t>()[40000] == 0); // not one byte more
    auto irq = holder.event("dev_irq");
    REQUIRE(irq.has_value());
    CHECK((*irq)["fdid"] == "0x80000");
    CHECK((*irq)["lease_id"] == id);
    CHECK((*irq)["type"] == 1);
    CHECK((*irq)["number"] == 1);

    // Past the end of the source mapping: refused by the IO space, nothing written.
    std::memset(d.addr, 0, k_size);
    set_addr(epf::k_lower_src_addr, src_io + k_size - 100);
    st = run_command(regs, epf::k_command_copy);
    CHECK((st & epf::k_status_src_addr_invalid) != 0);
    CHECK((st & epf::k_status_copy_fail) != 0);
    CHECK((st & epf::k_status_copy_success) == 0);
    CHECK(d.as<std::uint8_t>()[0] == 0);

    // pci-epf-test interrupts after every command: the failed COPY's, then one on its own.
    auto irq_fail = holder.event("dev_irq");
    REQUIRE(irq_fail.has_value());
    CHECK((*irq_fail)["number"] == 1);
    *reg(regs, epf::k_irq_number) = 3;
    st = run_command(regs, epf::k_command_raise_msi_irq);
    CHECK((st & epf::k_status_irq_raised) != 0);
    auto irq3 = holder.event("dev_irq");
    REQUIRE(irq3.has_value());
    CHECK((*irq3)["number"] == 3);

    // Unmapped: the address is gone for the device.
    REQUIRE(holder.must({{"op", "dev_unmap"}, {"lease_id", id}, {"io_addr", dst_io}}).err() == 0);
    set_addr(epf::k_lower_src_addr, src_io);
    st = run_command(regs, epf::k_command_copy);
    CHECK((st & epf::k_status_dst_addr_invalid) != 0);
    CHECK(holder.must({{"op", "dev_unmap"}, {"lease_id", id}, {"io_addr", dst_io}}).err() ==
          SCI_ERR_ILLEGAL_PARAMETER);
    // Unsealed memory is not mapped for the device.
    auto loose = memory_file(4096, false);
    CHECK(holder.must({{"op", "dev_map"}, {"lease_id", id}, {"size", 4096}}, {loose.get()}).err() ==
          SCI_ERR_ILLEGAL_PARAMETER);
}

TEST_CASE("lending disd: a failing reset quarantines the device, dev_reset restores only when "
          "the reset succeeds") {
    LocalFabric fabric({8}, {"--device", "memory name=bad reset_ms=1 fail_reset=1", "--device",
                             "epf-test name=mute reset_ms=1 unresponsive=1", "--device",
                             "memory name=stuck hang_reset=1", "--command-timeout", "300",
                             "--reset-timeout", "300"});
    LendingClient holder(fabric, 8, 4);
    LendingClient admin(fabric, 8, 0);
    std::int64_t id = lease_id(borrow(holder, "0x80000", true));
    REQUIRE(holder.must({{"op", "dev_return"}, {"lease_id", id}}).err() == 0);
    CHECK(state_of(admin, "0x80000") == "failed");
    CHECK(has_row(history(admin, "0x80000"), "reset_failed"));
    CHECK(node_counter(fabric, 8, "reset_failures_total") == 1);
    json refused = borrow(holder, "0x80000", true);
    CHECK(refused["err"] == SCI_ERR_NOT_AVAILABLE);
    CHECK(refused["state"] == "failed");
    auto again = admin.must({{"op", "dev_reset"}, {"fdid", "0x80000"}});
    REQUIRE(again.err() == 0);
    CHECK(again.body["outcome"] == "failed");
    CHECK(state_of(admin, "0x80000") == "failed");

    // The epf-test device stops responding: its command stays pending past the timeout.
    std::int64_t mute = lease_id(borrow(holder, "0x80001", true));
    Bar regs = connect_bar(holder, mute, 0);
    *reg(regs, epf::k_irq_type) = 1;
    *reg(regs, epf::k_irq_number) = 1;
    *reg(regs, epf::k_command) = epf::k_command_raise_msi_irq;
    auto lost = holder.event("dev_lost", milliseconds(10000));
    REQUIRE(lost.has_value());
    CHECK((*lost)["lease_id"] == mute);
    CHECK((*lost)["reason"].get<std::string>().find("device fault: command 0x2 pending") !=
          std::string::npos);
    CHECK(state_of(admin, "0x80001") == "failed");
    CHECK(node_counter(fabric, 8, "faults_total") == 1);
    CHECK(holder.must({{"op", "dev_renew"}, {"lease_id", mute}}).err() ==
          SCI_ERR_ILLEGAL_PARAMETER);
    auto restored = admin.must({{"op", "dev_reset"}, {"fdid", "0x80001"}, {"via", "dis-tool"}});
    REQUIRE(restored.err() == 0);
    CHECK(restored.body["outcome"] == "ok");
    CHECK(restored.body["device"]["state"] == "available");
    CHECK(has_row(history(admin, "0x80001"), "reset", "admin uid", "quarantine"));
    CHECK(*reg(regs, epf::k_command) == 0); // the reset cleared the registers

    // A reset that never finishes times out after --reset-timeout: quarantined too.
    std::int64_t stuck = lease_id(borrow(holder, "0x80002", true));
    REQUIRE(holder.must({{"op", "dev_return"}, {"lease_id", stuck}}).err() == 0);
    CHECK(state_of(admin, "0x80002") == "failed");
    CHECK(has_row(history(admin, "0x80002"), "reset_timeout", "", "timed out after 300 ms"));
    CHECK(node_counter(fabric, 8, "reset_failures_total") == 3); // bad: twice
}

TEST_CASE("lending disd: a lender killed with a lease comes back consistent: the lease is lost, "
          "the device reset and available") {
    std::vector<std::string> args{"--device", "memory name=m0 reset_ms=1", "--device",
                                  "epf-test name=ep0 reset_ms=1"};
    LocalFabric fabric({8}, args);
    std::int64_t id = 0;
    {
        LendingClient holder(fabric, 8, 4);
        id = lease_id(borrow(holder, "0x80001", true));
        int st = fabric.signal(8, SIGKILL);
        CHECK(WIFSIGNALED(st));
        // The borrower sees the loss: its connection ends.
        CHECK_FALSE(holder.call({{"op", "ping"}}, {}, milliseconds(2000)).has_value());
    }
    fabric.start(8, args);
    LendingClient c(fabric, 8, 4);
    REQUIRE(eventually_true([&] { return state_of(c, "0x80001") == "available"; }));
    CHECK(state_of(c, "0x80000") == "available");
    auto rows = history(c, "0x80001");
    bool lost = false;
    bool reset_after = false;
    for (const auto& row : rows) {
        if (row["event"] == "lease_lost" && row["actor"] == "recovery" && row["lease_id"] == id) {
            lost = true;
        }
        if (lost && row["event"] == "reset_ok") {
            reset_after = true;
        }
    }
    CHECK(lost);
    CHECK(reset_after);
    // The pool goes on: a new borrow works.
    CHECK(borrow(c, "0x80001", true)["err"] == 0);

    // Restarted with other devices: a device no longer declared leaves the pool, an fdid
    // that names another device now enters it anew.
    c.close();
    int st = fabric.signal(8, SIGTERM);
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    fabric.start(8, {"--device", "epf-test name=newcomer reset_ms=1"});
    LendingClient n(fabric, 8, 4);
    auto list = n.must({{"op", "dev_list"}});
    REQUIRE(list.body["devices"].size() == 1);
    CHECK(list.body["devices"][0]["fdid"] == "0x80000");
    CHECK(list.body["devices"][0]["name"] == "newcomer");
    CHECK(list.body["devices"][0]["state"] == "available");
    auto gone = n.must({{"op", "dev_show"}, {"fdid", "0x80001"}});
    REQUIRE(gone.err() == 0);
    CHECK(gone.body["device"]["state"] == "removed");
    CHECK(has_row(history(n, "0x80001"), "release", "connection closed"));
}
