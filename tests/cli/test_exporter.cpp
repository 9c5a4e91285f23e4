// dis-tool exporter: PCIe series from a sysfs tree checked by the real promtool, the landing
// page, basic auth, address errors and a clean stop on SIGTERM.
#include "sysfs_tree.hpp"

#include "dis/error.hpp"
#include "test_exporter_support.hpp"

#include <sys/stat.h>

#include <algorithm>

using namespace dis::test;
using namespace dis::test::exporter;

namespace {

// A root port that trained at 8GT/s x4 below both ends' 16GT/s x16, and its endpoint with
// AER counters; the root port has the kernel's root-port totals.
void build_tree(const std::filesystem::path& root) {
    SysfsTree tree(root);
    FakeDevice port{"0000:00:01.0",
                    "",
                    ConfigSpace(0x8086, 0x1901, 0x060400, 1)
                        .bus_numbers(0, 1, 1)
                        .pcie(PcieType::root_port, false, 4, 16, 3, 4),
                    std::nullopt,
                    std::nullopt,
                    -1,
                    {},
                    {}};
    port.driver = "pcieport";
    port.files["aer_rootport_total_err_cor"] = "7\n";
    port.files["aer_rootport_total_err_nonfatal"] = "2\n";
    port.files["aer_rootport_total_err_fatal"] = "0\n";
    tree.add(port);
    FakeDevice nic{
        "0000:01:00.0",
        "0000:00:01.0",
        ConfigSpace(0x15b3, 0x1017, 0x020000).pcie(PcieType::endpoint, true, 4, 16, 3, 4),
        std::nullopt,
        std::nullopt,
        -1,
        {},
        {}};
    nic.driver = "mlx5_core";
    nic.files["aer_dev_correctable"] =
        "RxErr 5\nBadTLP 2\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\n"
        "HeaderOF 0\nTOTAL_ERR_COR 7\n";
    nic.files["aer_dev_nonfatal"] = "Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO 2\n"
                                    "TOTAL_ERR_NONFATAL 2\n";
    nic.files["aer_dev_fatal"] = "Undefined 0\nDLP 0\nSurpriseDown 0\nTOTAL_ERR_FATAL 0\n";
    tree.add(nic);
}

const std::string k_nic = R"(segment="0000",bus="01",device="00",function="0")";
const std::string k_port = R"(segment="0000",bus="00",device="01",function="0")";

} // namespace

TEST_CASE("exporter: PCIe series from a sysfs tree pass promtool, with AER and a downgraded link",
          "[cli][exporter]") {
    TempDir tmp;
    build_tree(tmp.path() / "sys");
    ExporterProcess ex(tmp, {"--sysfs-root", (tmp.path() / "sys").string(), "--fabric",
                             (tmp.path() / "nofabric").string()});
    auto reply = http_get(ex.port(), "/metrics");
    REQUIRE(reply.status == 200);
    const auto& m = reply.body;
    INFO(m);
    auto check = promtool_check(tmp, m);
    INFO("promtool: " << check.out << check.err);
    CHECK(check.exit_code == 0);

    CHECK(sample(m, "dis_pcie_current_link_transfers_per_second{" + k_nic + "}") == 8e9);
    CHECK(sample(m, "dis_pcie_max_link_transfers_per_second{" + k_nic + "}") == 16e9);
    CHECK(sample(m, "dis_pcie_current_link_width{" + k_nic + "}") == 4);
    CHECK(sample(m, "dis_pcie_max_link_width{" + k_nic + "}") == 16);
    CHECK(sample(m, "dis_pcie_link_downgraded{" + k_nic + "}") == 1);
    CHECK(sample(m, "dis_pcie_aer_correctable_errors_total{" + k_nic + R"(,error="RxErr"})") == 5);
    CHECK(sample(m, "dis_pcie_aer_correctable_errors_total{" + k_nic + R"(,error="BadTLP"})") == 2);
    CHECK(sample(m, "dis_pcie_aer_nonfatal_errors_total{" + k_nic + R"(,error="CmpltTO"})") == 2);
    CHECK(sample(m, "dis_pcie_aer_fatal_errors_total{" + k_nic + R"(,error="DLP"})") == 0);
    // The kernel's TOTAL_ line is not an error type: sum() over error gives it.
    CHECK(m.find("TOTAL_ERR") == std::string::npos);
    CHECK(sample(m, "dis_pcie_aer_rootport_correctable_errors_total{" + k_port + "}") == 7);
    CHECK(sample(m, "dis_pcie_aer_rootport_nonfatal_errors_total{" + k_port + "}") == 2);
    CHECK_FALSE(sample(m, "dis_pcie_aer_rootport_correctable_errors_total{" + k_nic + "}"));
    CHECK(m.find(R"(dis_pcie_device_info{)" + k_nic +
                 R"(,vendor_id="0x15b3",device_id="0x1017",subsystem_vendor_id="0x15b3",)"
                 R"(subsystem_device_id="0x1017",class_id="0x0200",revision="0x01",)"
                 R"(driver="mlx5_core",port_type="endpoint"} 1)") != std::string::npos);
    CHECK(sample(m, R"(dis_scrape_collector_success{collector="pci"})") == 1);
    auto version = run_tool({"--version"}).out;
    version.erase(version.find_last_not_of(" \n") + 1);
    CHECK(sample(m, R"(dis_exporter_build_info{version=")" + version + R"("})") == 1);
    CHECK(sample(m, R"(dis_scrape_duration_seconds{collector="pci"})") > 0);
    // Collected on scrape: a counter that changes on disk shows in the next scrape.
    write_file(tmp.path() / "sys/bus/pci/devices/0000:00:01.0/aer_rootport_total_err_cor", "9\n");
    auto again = http_get(ex.port(), "/metrics");
    CHECK(sample(again.body, "dis_pcie_aer_rootport_correctable_errors_total{" + k_port + "}") ==
          9);
    // No timestamps: every sample line is "series value".
    CHECK(m.find("} 1 1") == std::string::npos);

    auto landing = http_get(ex.port(), "/");
    CHECK(landing.status == 200);
    CHECK(landing.body.find("href=\"/metrics\"") != std::string::npos);
    CHECK(http_get(ex.port(), "/nothing").status == 404);

    // SIGTERM stops it cleanly.
    ::kill(ex.child().pid(), SIGTERM);
    CHECK(ex.child().wait(10000) == 0);
}

namespace {

// The scrape without its timings, which differ from one scrape to the next.
std::string without_durations(const std::string& text) {
    std::string out;
    std::size_t at = 0;
    while (at < text.size()) {
        auto eol = text.find('\n', at);
        eol = eol == std::string::npos ? text.size() : eol + 1;
        const auto line = text.substr(at, eol - at);
        if (line.rfind("dis_scrape_duration_seconds{", 0) != 0)
            out += line;
        at = eol;
    }
    return out;
}

} // namespace

TEST_CASE("exporter: a scraper that accepts gzip gets the same series gzipped, HEAD the headers",
          "[cli][exporter]") {
    TempDir tmp;
    build_tree(tmp.path() / "sys");
    ExporterProcess ex(tmp, {"--sysfs-root", (tmp.path() / "sys").string(), "--fabric",
                             (tmp.path() / "nofabric").string()});
    auto plain = http_get(ex.port(), "/metrics");
    REQUIRE(plain.status == 200);
    CHECK(plain.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(plain.header("Content-Encoding").empty());
    CHECK(plain.header("Content-Length") == std::to_string(plain.body.size()));

    // As Prometheus asks; the body read back by the real gzip.
    auto packed = http_request(ex.port(), "GET", "/metrics",
                               {"Accept-Encoding: gzip", "User-Agent: Prometheus/2.42.0"});
    REQUIRE(packed.status == 200);
    CHECK(packed.header("Content-Encoding") == "gzip");
    CHECK(packed.header("Content-Length") == std::to_string(packed.body.size()));
    CHECK(packed.body.size() < plain.body.size());
    const std::string unpacked = gunzip(tmp.path(), packed.body);
    CHECK(without_durations(unpacked) == without_durations(plain.body));
    auto check = promtool_check(tmp, unpacked);
    INFO("promtool: " << check.out << check.err);
    CHECK(check.exit_code == 0);

    // gzip refused by its weight: plain text.
    auto refused = http_request(ex.port(), "GET", "/metrics", {"Accept-Encoding: gzip;q=0"});
    CHECK(refused.status == 200);
    CHECK(refused.header("Content-Encoding").empty());
    CHECK(without_durations(refused.body) == without_durations(plain.body));

    // HEAD: the reply's headers, no body.
    auto head = http_request(ex.port(), "HEAD", "/metrics", {});
    CHECK(head.status == 200);
    CHECK(head.header("Content-Type") == plain.header("Content-Type"));
    CHECK(std::stoul(head.header("Content-Length")) > 0);
    CHECK(head.body.empty());
    auto post = http_request(ex.port(), "POST", "/metrics", {"Content-Length: 0"});
    CHECK(post.status == 405);
    CHECK(post.header("Allow") == "GET, HEAD");
    // Only /metrics itself.
    CHECK(http_get(ex.port(), "/metrics/more").status == 404);
}

TEST_CASE("exporter: basic auth gives 401 without and 200 with the credentials",
          "[cli][exporter]") {
    TempDir tmp;
    build_tree(tmp.path() / "sys");
    const auto creds = tmp.path() / "auth";
    write_file(creds, "# users\nprom:s3cret\n\nother:pw\n");
    ::chmod(creds.c_str(), 0600);
    ExporterProcess ex(tmp, {"--sysfs-root", (tmp.path() / "sys").string(), "--basic-auth",
                             creds.string(), "--fabric", (tmp.path() / "nofabric").string()});
    // "prom:s3cret" and "prom:wrong" in base64.
    const std::string good = "Basic cHJvbTpzM2NyZXQ=";
    const std::string bad = "Basic cHJvbTp3cm9uZw==";
    for (const std::string path : {"/metrics", "/"}) {
        INFO(path);
        CHECK(http_get(ex.port(), path).status == 401);
        CHECK(http_get(ex.port(), path, bad).status == 401);
        auto ok = http_get(ex.port(), path, good);
        CHECK(ok.status == 200);
        if (path == "/metrics")
            CHECK(sample(ok.body, R"(dis_scrape_collector_success{collector="pci"})") == 1);
    }
    CHECK(http_get(ex.port(), "/metrics", "Basic b3RoZXI6cHc=").status == 200); // other:pw
}

TEST_CASE("exporter: IPv6, TLS, malformed and busy addresses fail with one error line",
          "[cli][exporter]") {
    for (const std::string addr : {"[::1]:9466", "::1", "127.0.0.1:9466s", "127.0.0.1:99999",
                                   "127.0.0.1", "example.org:9466"}) {
        auto r = run_tool({"exporter", "--listen", addr});
        INFO(addr << ": " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    // A busy port: someone else listens on it.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    auto r = run_tool({"exporter", "--listen", "127.0.0.1:" + std::to_string(ntohs(sa.sin_port))});
    ::close(fd);
    INFO(r.err);
    // An OS error: exit 4 under the exit-code contract (os -> 4, lib/util/error.cpp).
    CHECK(r.exit_code == dis::exit_code_for(dis::ErrorKind::os));
    CHECK(r.exit_code != 0);
    CHECK(r.err.rfind("dis-tool: error: cannot listen on 127.0.0.1:", 0) == 0);
    CHECK(r.err.find("in use") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);

    TempDir tmp;
    write_file(tmp.path() / "auth", "no colon here\n");
    auto a = run_tool({"exporter", "--basic-auth", (tmp.path() / "auth").string()});
    CHECK(a.exit_code == 2);
    CHECK(a.err.find("expected user:password") != std::string::npos);
}

TEST_CASE("exporter: a --sysfs-root or --dump it cannot read is refused at start, exit 2",
          "[cli][exporter]") {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "empty");
    write_file(tmp.path() / "not-a-dump", "this is no lspci dump\n");
    const std::vector<std::vector<std::string>> sources = {
        {"--sysfs-root", (tmp.path() / "missing").string()},
        {"--sysfs-root", (tmp.path() / "empty").string()}, // no bus/pci/devices
        {"--dump", (tmp.path() / "missing").string()},
        {"--dump", (tmp.path() / "empty").string()}, // a directory
        {"--dump", (tmp.path() / "not-a-dump").string()},
    };
    for (const auto& source : sources) {
        // A short timeout: an exporter that started instead would serve until killed.
        std::vector<std::string> argv = {DIS_TOOL_PATH, "exporter", "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), source.begin(), source.end());
        auto r = dis::test::run(argv, {}, 10);
        INFO(source[0] << " " << source[1] << ": " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(r.err.find(source[1]) != std::string::npos);
    }
}
