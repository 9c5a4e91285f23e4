// dis-tool monitor without a terminal: --once and a piped stdout print a snapshot (text or
// -o json) of a real software fabric; the collector's DMA rates are the deltas of the
// daemons' counters around real DMA transfers; only the segments shown are fetched.
#include "support.hpp"
#include "tool_fabric.hpp"

#include "dis/lending_client.hpp"
#include "dis/local_fabric.hpp"
#include "dis/monitor.hpp"

#include <catch2/catch.hpp>
#include <sisci_api.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>

using namespace dis::test;
using nlohmann::json;

namespace {

// Runs `body` in a forked SISCI client of `node`; with `hold` the child creates its
// segments, writes a byte to `ready` and waits for `go` before it cleans up.
pid_t fork_client(const std::string& dir, std::uint32_t node,
                  const std::function<int(sci_desc_t)>& body, int ready = -1, int go = -1) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::setenv("DIS_FABRIC", dir.c_str(), 1);
        ::setenv("DIS_NODE_ID", std::to_string(node).c_str(), 1);
        sci_error_t err;
        SCIInitialize(0, &err);
        sci_desc_t sd;
        SCIOpen(&sd, 0, &err);
        if (err != SCI_ERR_OK)
            ::_exit(90);
        int rc = body(sd);
        if (ready >= 0) {
            char c = 'r';
            (void)!::write(ready, &c, 1);
            (void)!::read(go, &c, 1);
        }
        SCIClose(sd, 0, &err);
        SCITerminate();
        ::_exit(rc);
    }
    return pid;
}

int wait_child(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Node 8 holds segment 77 (and `extra` more, ids 200...) until the object goes.
class Holder {
public:
    Holder(const std::string& dir, std::size_t size, int extra) {
        REQUIRE(::pipe(m_ready) == 0);
        REQUIRE(::pipe(m_go) == 0);
        m_pid = fork_client(
            dir, 8,
            [size, extra](sci_desc_t sd) {
                sci_error_t e;
                for (int i = -1; i < extra; ++i) {
                    sci_local_segment_t seg;
                    const unsigned id = i < 0 ? 77 : 200 + static_cast<unsigned>(i);
                    SCICreateSegment(sd, &seg, id, size, nullptr, nullptr, 0, &e);
                    if (e != SCI_ERR_OK)
                        return 1;
                    SCIPrepareSegment(seg, 0, 0, &e);
                    SCISetSegmentAvailable(seg, 0, 0, &e);
                    if (e != SCI_ERR_OK)
                        return 2;
                }
                return 0;
            },
            m_ready[1], m_go[0]);
        char c;
        REQUIRE(::read(m_ready[0], &c, 1) == 1);
    }
    ~Holder() {
        (void)!::write(m_go[1], "g", 1);
        wait_child(m_pid);
        for (int fd : {m_ready[0], m_ready[1], m_go[0], m_go[1]})
            ::close(fd);
    }

private:
    int m_ready[2], m_go[2];
    pid_t m_pid;
};

// `count` DMA transfers of `size` bytes from node 4 to node 8's segment 77.
int dma(const std::string& dir, int count, std::size_t size) {
    return wait_child(fork_client(dir, 4, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t local;
        SCICreateSegment(sd, &local, 78, size, nullptr, nullptr, 0, &e);
        if (e != SCI_ERR_OK)
            return 10;
        SCIPrepareSegment(local, 0, 0, &e);
        sci_remote_segment_t remote;
        SCIConnectSegment(sd, &remote, 8, 77, 0, nullptr, nullptr, 5000, 0, &e);
        if (e != SCI_ERR_OK)
            return 11;
        sci_dma_queue_t dq;
        SCICreateDMAQueue(sd, &dq, 0, 8, 0, &e);
        if (e != SCI_ERR_OK)
            return 12;
        for (int i = 0; i < count; ++i) {
            SCIStartDmaTransfer(dq, local, remote, 0, size, 0, nullptr, nullptr, SCI_FLAG_DMA_WAIT,
                                &e);
            if (e != SCI_ERR_OK)
                return 13;
        }
        SCIRemoveDMAQueue(dq, 0, &e);
        SCIDisconnectSegment(remote, 0, &e);
        SCIRemoveSegment(local, 0, &e);
        return 0;
    }));
}

const dis::monitor::NodeRow& node(const dis::monitor::Snapshot& s, std::uint32_t id) {
    for (const auto& n : s.nodes)
        if (n.sample.id == id)
            return n;
    FAIL("no node " << id);
    throw;
}

} // namespace

TEST_CASE("monitor --once and a piped stdout print one snapshot", "[monitor]") {
    ToolFabric fabric(3);
    Holder holder(fabric.dir(), 65536, 4);

    auto r = run_tool({"monitor", "--fabric", fabric.dir()}); // stdout is a pipe
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("Nodes & links: 3 nodes, 3 up") != std::string::npos);
    CHECK(r.out.find("Segments & DMA: 5 segments, 320.0 KiB") != std::string::npos);
    CHECK(r.out.find("Devices & leases: ") != std::string::npos);
    CHECK(r.out.find("PCIe health: ") != std::string::npos);
    CHECK(r.out.find("\x1b") == std::string::npos); // no terminal codes

    auto j = run_json({"monitor", "--once", "--fabric", fabric.dir(), "-o", "json"});
    REQUIRE(j["nodes"].size() == 3);
    CHECK(j["fabric_dir"] == fabric.dir());
    for (const auto& n : j["nodes"]) {
        CHECK(n["up"] == true);
        CHECK(n["links"].size() == 2);
        CHECK(n["rates"]["dma_transfers_per_second"].is_null()); // one sample has no rate
    }
    REQUIRE(j["segments"].is_array());
    CHECK(j["segments"].size() == 5);
    std::size_t on_8 = 0;
    for (const auto& seg : j["segments"])
        on_8 += seg["node_id"] == 8 && seg["size"] == 65536 ? 1 : 0;
    CHECK(on_8 == 5);
    CHECK(j["devices"].contains("available"));
    CHECK(j["pcie"].contains("functions"));

    // -n 2: two documents, the second with rates.
    r = run_tool(
        {"monitor", "--once", "-n", "2", "-d", "2", "--fabric", fabric.dir(), "-o", "json"});
    REQUIRE(r.exit_code == 0);
    std::size_t split = r.out.find("\n}\n");
    REQUIRE(split != std::string::npos);
    auto second = json::parse(r.out.substr(split + 3));
    CHECK(second["nodes"][0]["rates"]["dma_transfers_per_second"].is_number());

    // A fabric directory named but unusable is an error; one that is merely empty is not.
    r = run_tool({"monitor", "--fabric", "/etc/passwd"});
    CHECK(r.exit_code == 4); // the resolver refuses it (permission)
    check_one_error_line(r);
    TempDir empty;
    r = run_tool({"monitor", "--fabric", empty.path().string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("no node daemon in " + empty.path().string()) != std::string::npos);
}

TEST_CASE("monitor collector: DMA rates are the counters' deltas between refreshes", "[monitor]") {
    ToolFabric fabric(2);
    const std::size_t size = 128 * 1024;
    Holder holder(fabric.dir(), size, 0);
    dis::monitor::CollectorOptions o;
    o.fabric_dir = fabric.dir();
    dis::monitor::Collector c(std::move(o));

    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto s1 = c.sample(dis::monitor::Demand{});
    const auto t1 = Clock::now();
    CHECK_FALSE(node(s1, 4).rates.dma_transfers);
    REQUIRE(dma(fabric.dir(), 3, size) == 0);
    const auto t2 = Clock::now();
    auto s2 = c.sample(dis::monitor::Demand{});
    const auto t3 = Clock::now();

    // The collector's interval lies between the inner and the outer one measured here.
    const double inner = std::chrono::duration<double>(t2 - t1).count();
    const double outer = std::chrono::duration<double>(t3 - t0).count();
    const auto& rates = node(s2, 4).rates;
    REQUIRE(rates.dma_transfers);
    REQUIRE(rates.dma_bytes);
    CHECK(*rates.dma_transfers >= 3 / outer - 1e-9);
    CHECK(*rates.dma_transfers <= 3 / inner + 1e-9);
    CHECK(*rates.dma_bytes == Approx(*rates.dma_transfers * size).epsilon(1e-9));
    CHECK(*rates.dma_errors == 0);
    REQUIRE(node(s2, 8).rates.dma_transfers);
    CHECK(*node(s2, 8).rates.dma_transfers == 0); // node 4's engine moved the data

    // Segments are fetched only when the pane is shown; nodes always.
    dis::monitor::Demand hidden;
    hidden.segments = false;
    auto s3 = c.sample(hidden);
    CHECK_FALSE(s3.segments_fetched);
    CHECK(s3.segments.empty());
    CHECK(s3.nodes.size() == 2);
    auto s4 = c.sample(dis::monitor::Demand{});
    CHECK(s4.segments_fetched);
    CHECK(s4.segments.size() == 1);

    // A killed daemon: down with the reason, no rates; the other node still answers.
    ::kill(fabric.pid_of(8), SIGKILL);
    REQUIRE(wait_until([&] { return !pid_alive(fabric.pid_of(8)); }, std::chrono::seconds(10)));
    auto s5 = c.sample(dis::monitor::Demand{});
    CHECK_FALSE(node(s5, 8).sample.up);
    CHECK_FALSE(node(s5, 8).sample.error.empty());
    CHECK(node(s5, 4).sample.up);
}

TEST_CASE("monitor devices pane: the lenders' devices, and a lease with its holder", "[monitor]") {
    TempDir tmp;
    const std::string dir = (tmp.path() / "fabric").string();
    write_file(tmp.path() / "fabric.conf",
               "node 4\nnode 8\ndevice 8 epf-test name=ep0\ndevice 8 memory name=mem0\n");
    auto r =
        run_tool({"fabric", "start", "--fabric", dir, "-c", (tmp.path() / "fabric.conf").string()});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    struct Stop {
        std::string dir;
        ~Stop() {
            try {
                dis::fabric::stop_local_fabric(dir, std::chrono::milliseconds(2000));
            } catch (...) {
            }
        }
    } stop{dir};

    dis::monitor::CollectorOptions o;
    o.fabric_dir = dir;
    dis::monitor::Collector c(std::move(o));
    auto s = c.sample(dis::monitor::Demand{});
    INFO(s.devices.note);
    REQUIRE(s.devices.available);
    REQUIRE(s.devices.rows.size() == 2);
    CHECK(s.devices.rows[0].fdid == "0x80000");
    CHECK(s.devices.rows[0].node_id == 8);
    CHECK(s.devices.rows[0].kind == "epf-test");
    CHECK(s.devices.rows[0].name == "ep0");
    CHECK(s.devices.rows[0].state == "available");
    CHECK(s.devices.rows[0].holder.empty());
    CHECK(s.devices.rows[1].name == "mem0");

    // A borrower (this process, as node 4) holds ep0 while the client lives.
    dis::lending::LenderClient lender(dir, 8, 4);
    dis::lending::BorrowOptions b;
    b.fdid = dis::lending::parse_fdid("0x80000");
    b.exclusive = true;
    b.lease = std::chrono::seconds(30);
    const auto held = lender.borrow(b);
    s = c.sample(dis::monitor::Demand{});
    const auto& ep0 = s.devices.rows.at(0);
    CHECK(ep0.state == "borrowed");
    CHECK(ep0.holder ==
          "node 4 pid " + std::to_string(::getpid()) + " uid " + std::to_string(::getuid()));
    CHECK(ep0.lease_id == std::optional<std::int64_t>(held.lease.id));
    REQUIRE(ep0.lease_left_s);
    CHECK(*ep0.lease_left_s > 0);
    CHECK(*ep0.lease_left_s <= 30);
    const auto pane = dis::monitor::build_pane(dis::monitor::PaneId::devices, s, {});
    CHECK(pane.summary.rfind("2 devices, 1 lent", 0) == 0);

    // The devices are asked only while their pane is shown.
    dis::monitor::Demand hidden;
    hidden.devices = false;
    s = c.sample(hidden);
    CHECK_FALSE(s.devices.available);
    CHECK(s.devices.rows.empty());

    lender.release(held.lease.id);
    s = c.sample(dis::monitor::Demand{});
    CHECK(s.devices.rows.at(0).holder.empty());
}

TEST_CASE("monitor collector: interrupt rates are the trigger counter's deltas between refreshes",
          "[monitor]") {
    ToolFabric fabric(2);
    // Node 8 holds interrupt 7 (SCI_FLAG_FIXED_INTNO) while node 4 triggers it.
    int ready[2], go[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(go) == 0);
    const pid_t owner = fork_client(
        fabric.dir(), 8,
        [](sci_desc_t sd) {
            sci_error_t e;
            sci_local_interrupt_t irq;
            unsigned no = 7;
            SCICreateInterrupt(sd, &irq, 0, &no, nullptr, nullptr, SCI_FLAG_FIXED_INTNO, &e);
            return e == SCI_ERR_OK ? 0 : 1;
        },
        ready[1], go[0]);
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);

    dis::monitor::CollectorOptions o;
    o.fabric_dir = fabric.dir();
    dis::monitor::Collector collector(std::move(o));
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    auto s1 = collector.sample(dis::monitor::Demand{});
    const auto t1 = Clock::now();
    CHECK_FALSE(node(s1, 8).rates.interrupts); // one sample has no rate
    const auto first = dis::monitor::build_pane(dis::monitor::PaneId::segments, s1, {});
    CHECK(first.summary.find("1 interrupts, - triggers/s") != std::string::npos);

    const int triggers = 4;
    const int rc = wait_child(fork_client(fabric.dir(), 4, [](sci_desc_t sd) {
        sci_error_t e;
        sci_remote_interrupt_t r;
        SCIConnectInterrupt(sd, &r, 8, 0, 7, 5000, 0, &e);
        if (e != SCI_ERR_OK)
            return 10;
        for (int i = 0; i < triggers; ++i) {
            SCITriggerInterrupt(r, 0, &e);
            if (e != SCI_ERR_OK)
                return 11;
        }
        SCIDisconnectInterrupt(r, 0, &e);
        return 0;
    }));
    CHECK(rc == 0);
    const auto t2 = Clock::now();
    auto s2 = collector.sample(dis::monitor::Demand{});
    const auto t3 = Clock::now();
    (void)!::write(go[1], "g", 1);
    CHECK(wait_child(owner) == 0);
    for (int fd : {ready[0], ready[1], go[0], go[1]})
        ::close(fd);

    const double inner = std::chrono::duration<double>(t2 - t1).count();
    const double outer = std::chrono::duration<double>(t3 - t0).count();
    const auto& rate = node(s2, 8).rates.interrupts;
    REQUIRE(rate);
    CHECK(*rate >= triggers / outer - 1e-9);
    CHECK(*rate <= triggers / inner + 1e-9);
    REQUIRE(node(s2, 4).rates.interrupts);
    CHECK(*node(s2, 4).rates.interrupts == 0); // the interrupt is node 8's
    // The nodes pane's INTR/s column and the segments pane's total say the same.
    const auto nodes = dis::monitor::build_pane(dis::monitor::PaneId::nodes, s2, {});
    const auto columns = dis::monitor::pane_columns(dis::monitor::PaneId::nodes);
    std::size_t col = 0;
    while (col < columns.size() && columns[col].header != "INTR/s")
        ++col;
    REQUIRE(col < columns.size());
    bool seen = false;
    for (const auto& row : nodes.rows)
        if (row[0].text == "8") {
            CHECK(row[col].number == Approx(*rate));
            CHECK(row[col].text == dis::monitor::format_rate(*rate));
            seen = true;
        }
    CHECK(seen);
    const auto second = dis::monitor::build_pane(dis::monitor::PaneId::segments, s2, {});
    INFO(second.summary);
    CHECK(second.summary.find("1 interrupts, " + dis::monitor::format_rate(*rate) +
                              " triggers/s") != std::string::npos);
    CHECK(to_json(s2)["nodes"][1]["rates"]["interrupts_per_second"].get<double>() == Approx(*rate));
}
