// dis-tool exporter on a 2-node software fabric, scraped by a real Prometheus 2.42: DMA
// transfers and a killed node show in its query API, and a frozen (SIGSTOPped) node never
// stalls a scrape.
#include "test_exporter_support.hpp"

#include "dis/fabric_admin.hpp"
#include "dis/local_fabric.hpp"

#include <sisci_api.h>

using namespace dis::test;
using namespace dis::test::exporter;
using nlohmann::json;

namespace {

// Nodes 4 and 8 started with the built tool, always stopped again.
class TwoNodes {
public:
    TwoNodes() : m_dir((m_tmp.path() / "fabric").string()) {
        auto r = run_tool({"fabric", "start", "--nodes", "2", "--fabric", m_dir, "-o", "json"});
        INFO("fabric start: " << r.out << r.err);
        REQUIRE(r.exit_code == 0);
    }
    ~TwoNodes() {
        for (auto pid : m_stopped)
            ::kill(pid, SIGCONT);
        try {
            dis::fabric::stop_local_fabric(m_dir, std::chrono::milliseconds(2000));
        } catch (...) {
        }
    }
    const std::string& dir() const { return m_dir; }
    pid_t daemon_pid(std::uint32_t node) const {
        return dis::fabric::AdminClient(m_dir, node).node_info().pid;
    }
    void freeze(pid_t pid) {
        m_stopped.push_back(pid);
        ::kill(pid, SIGSTOP);
    }

private:
    TempDir m_tmp;
    std::string m_dir;
    std::vector<pid_t> m_stopped;
};

// A forked SISCI client of `node` running `body`; returns its exit code.
int run_client(const std::string& dir, std::uint32_t node,
               const std::function<int(sci_desc_t)>& body, int ready_fd = -1, int wait_fd = -1) {
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
        if (ready_fd >= 0 || wait_fd >= 0) {
            char c = 'r';
            (void)!::write(ready_fd, &c, 1);
            (void)!::read(wait_fd, &c, 1);
        }
        SCIClose(sd, 0, &err);
        SCITerminate();
        ::_exit(rc);
    }
    if (ready_fd >= 0)
        return pid; // the caller waits
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// `count` DMA transfers of `size` bytes from a node-4 segment to node 8's segment 77.
void dma_transfers(const std::string& dir, int count, std::size_t size) {
    int ready[2], go[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(go) == 0);
    sci_local_segment_t held = nullptr;
    pid_t owner = run_client(
        dir, 8,
        [&](sci_desc_t sd) {
            sci_error_t e;
            SCICreateSegment(sd, &held, 77, size, nullptr, nullptr, 0, &e);
            SCIPrepareSegment(held, 0, 0, &e);
            SCISetSegmentAvailable(held, 0, 0, &e);
            return e == SCI_ERR_OK ? 0 : 1;
        },
        ready[1], go[0]);
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    int rc = run_client(dir, 4, [&](sci_desc_t sd) {
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
    });
    CHECK(rc == 0);
    REQUIRE(::write(go[1], "g", 1) == 1);
    int status = 0;
    ::waitpid(owner, &status, 0);
    for (int fd : {ready[0], ready[1], go[0], go[1]})
        ::close(fd);
}

} // namespace

TEST_CASE("exporter: Prometheus scrapes it, and 3 DMA transfers and a killed node show in queries",
          "[cli][exporter][fabric]") {
    TempDir tmp;
    TwoNodes fabric;
    write_file(tmp.path() / "auth", "prom:s3cret\n");
    ExporterProcess ex(tmp, {"--fabric", fabric.dir(), "--sysfs-root", sysfs_without_pcie(tmp),
                             "--basic-auth", (tmp.path() / "auth").string()});
    // A /sys without PCIe devices: only the fabric matters here.
    Prometheus prom(tmp, ex.port(), "prom", "s3cret");

    CHECK(prom.wait_for(R"(up{job="dis"})", 1) == 1);
    CHECK(prom.wait_for("dis_fabric_nodes_up", 2) == 2);
    CHECK(prom.wait_for(R"(dis_scrape_collector_success{collector="fabric"})", 1) == 1);
    auto transfers0 = prom.query(R"(dis_fabric_dma_transfers_total{node="4"})");
    auto bytes0 = prom.query(R"(dis_fabric_dma_bytes_total{node="4"})");
    REQUIRE(transfers0);
    REQUIRE(bytes0);
    CHECK(prom.query(R"(dis_fabric_dma_errors_total{node="4"})") == 0);
    CHECK(prom.query(R"(dis_fabric_link_up{node="4",remote_node="8"})") == 1);

    const std::size_t n = 65536;
    dma_transfers(fabric.dir(), 3, n);
    CHECK(prom.wait_for(R"(dis_fabric_dma_transfers_total{node="4"})", *transfers0 + 3) ==
          *transfers0 + 3);
    CHECK(prom.wait_for(R"(dis_fabric_dma_bytes_total{node="4"})", *bytes0 + 3 * n) ==
          *bytes0 + 3 * n);
    CHECK(prom.query(R"(dis_fabric_dma_errors_total{node="4"})") == 0);
    // The same through a PromQL rate-style expression over the stored samples.
    CHECK(prom.query(R"(increase(dis_fabric_dma_transfers_total{node="4"}[1h]) >= 0)"));

    // Kill node 8's daemon: its socket stays, its series go, and the collector says 0.
    const pid_t victim = fabric.daemon_pid(8);
    REQUIRE(::kill(victim, SIGKILL) == 0);
    CHECK(prom.wait_for(R"(dis_fabric_node_up{node="8"})", 0) == 0);
    CHECK(prom.wait_for("dis_fabric_nodes_up", 1) == 1);
    CHECK(prom.query(R"(dis_fabric_node_up{node="4"})") == 1);
    CHECK(prom.query(R"(dis_scrape_collector_success{collector="fabric"})") == 0);
    // Node 4's link to it is down: node 8 did not answer the scrape.
    CHECK(prom.wait_for(R"(dis_fabric_link_up{node="4",remote_node="8"})", 0) == 0);
    // Node 8's own series are left out of the latest scrape (Prometheus marks them stale).
    CHECK(poll_until([&] { return !prom.query(R"(dis_fabric_segments{node="8"})"); }, 20000));
    CHECK(prom.query(R"(dis_fabric_dma_transfers_total{node="4"})") == *transfers0 + 3);

    // Every scrape, with the fabric's series, passes promtool.
    auto scrape = http_get(ex.port(), "/metrics", "Basic cHJvbTpzM2NyZXQ=");
    REQUIRE(scrape.status == 200);
    auto check = promtool_check(tmp, scrape.body);
    INFO(scrape.body << "\npromtool: " << check.out << check.err);
    CHECK(check.exit_code == 0);
}

TEST_CASE("exporter: a SIGSTOPped node's scrape completes within its budget, success 0",
          "[cli][exporter][fabric]") {
    TempDir tmp;
    TwoNodes fabric;
    ExporterProcess ex(tmp, {"--fabric", fabric.dir(), "--sysfs-root", sysfs_without_pcie(tmp),
                             "--fabric-timeout", "500"});
    auto before = http_get(ex.port(), "/metrics");
    REQUIRE(before.status == 200);
    CHECK(sample(before.body, R"(dis_scrape_collector_success{collector="fabric"})") == 1);
    CHECK(sample(before.body, R"(dis_fabric_node_up{node="8"})") == 1);
    CHECK(sample(before.body, R"(dis_fabric_segments{node="8"})"));
    CHECK(sample(before.body, R"(dis_fabric_link_up{node="4",remote_node="8"})") == 1);

    fabric.freeze(fabric.daemon_pid(8));
    for (int i = 0; i < 3; ++i) {
        const auto t0 = Clock::now();
        auto r = http_get(ex.port(), "/metrics");
        const double took = std::chrono::duration<double>(Clock::now() - t0).count();
        REQUIRE(r.status == 200);
        INFO(r.body);
        // The 500 ms budget plus 50 ms of grace; the rest is slack for a loaded machine.
        CHECK(took < 1.0);
        CHECK(sample(r.body, R"(dis_scrape_collector_success{collector="fabric"})") == 0);
        CHECK(sample(r.body, R"(dis_scrape_duration_seconds{collector="fabric"})") <= 0.6);
        CHECK(sample(r.body, R"(dis_fabric_node_up{node="8"})") == 0);
        CHECK_FALSE(sample(r.body, R"(dis_fabric_segments{node="8"})"));
        CHECK(sample(r.body, R"(dis_fabric_node_up{node="4"})") == 1);
        CHECK(sample(r.body, "dis_fabric_nodes_up") == 1);
        CHECK(sample(r.body, R"(dis_fabric_link_up{node="4",remote_node="8"})") == 0);
        auto check = promtool_check(tmp, r.body);
        CHECK(check.exit_code == 0);
    }
}

TEST_CASE("exporter: scrapes reuse their connections to the nodes and probe no links",
          "[cli][exporter][fabric]") {
    TempDir tmp;
    TwoNodes fabric;
    ExporterProcess ex(tmp, {"--fabric", fabric.dir(), "--sysfs-root", sysfs_without_pcie(tmp)});
    std::vector<std::string> scrapes;
    for (int i = 0; i < 3; ++i) {
        auto r = http_get(ex.port(), "/metrics");
        REQUIRE(r.status == 200);
        scrapes.push_back(r.body);
    }
    // The fabric and lending collectors connect to each node in the first scrape and keep
    // those connections; links are judged from the nodes' answers, so no node connects to
    // its peer for them either: nothing more is accepted on either node after the first.
    for (const char* node : {"4", "8"}) {
        INFO("node " << node);
        const std::string series =
            std::string(R"(dis_fabric_clients_connected_total{node=")") + node + "\"}";
        const auto second = sample(scrapes[1], series);
        REQUIRE(second);
        CHECK(sample(scrapes[2], series) == second);
        CHECK(sample(scrapes[2], std::string(R"(dis_fabric_link_up{node=")") + node +
                                     R"(",remote_node=")" + (node[0] == '4' ? "8" : "4") + "\"}") ==
              1);
    }
}
