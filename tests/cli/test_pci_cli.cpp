// dis-tool pci list | tree | show run as a binary: output formats, the tree against the
// device list, and bad input (one stderr line, exit 2, no partial JSON).
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <sys/stat.h>

using dis::test::count_lines;

namespace {

// A bad-input run: exit 2, exactly one "dis-tool: error: " line, nothing on stdout in text
// mode and one complete JSON error object in JSON mode.
void expect_input_error(const std::vector<std::string>& args, const std::string& needle) {
    INFO("args: " << dis::test::join_args(args));
    auto r = dis::test::run_tool(args);
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(r.out.empty());

    auto json_args = args;
    json_args.insert(json_args.end(), {"-o", "json"});
    auto j = dis::test::run_tool(json_args);
    CHECK(j.exit_code == 2);
    CHECK(count_lines(j.err) == 1);
    auto doc = dis::test::parse_out(j); // present, and not half a document
    CHECK(doc.contains("error"));
}

} // namespace

TEST_CASE("pci list --dump prints a table and valid JSON", "[pci][cli]") {
    auto dump = dis::test::fixture("pci/tree-asus-p6t6.txt");
    auto text = dis::test::run_tool({"pci", "list", "--dump", dump});
    REQUIRE(text.exit_code == 0);
    CHECK(count_lines(text.out) == 54); // header + 53 devices
    CHECK(text.out.find("0000:00:1c.1") != std::string::npos);

    // -o before or after the subcommand.
    auto j1 = dis::test::run_tool({"-o", "json", "pci", "list", "--dump", dump});
    auto j2 = dis::test::run_tool({"pci", "list", "--dump", dump, "-o", "json"});
    REQUIRE(j1.exit_code == 0);
    REQUIRE(j2.exit_code == 0);
    CHECK(j1.out == j2.out);
    auto doc = nlohmann::json::parse(j1.out);
    REQUIRE(doc.size() == 53);
    for (const auto& d : doc) {
        for (const char* key : {"bdf", "vendor_id", "device_id", "class", "parent", "link", "acs",
                                "aer", "header_type", "port_type", "bars", "driver", "numa_node",
                                "iommu_group", "reset_methods", "sriov", "vendor_name"})
            CHECK(d.contains(key));
        CHECK(d["bdf"].get<std::string>().size() == 12);
        CHECK(d["vendor_id"].get<std::string>().size() == 4);
        CHECK(d["driver"].is_null()); // dumps carry no sysfs facts
    }

    auto csv = dis::test::run_tool({"pci", "list", "--dump", dump, "-o", "csv"});
    REQUIRE(csv.exit_code == 0);
    CHECK(csv.out.rfind("BDF,IDS,CLASS,", 0) == 0);
}

TEST_CASE("pci tree --dump draws every device once, nested like its parents", "[pci][cli]") {
    auto dump = dis::test::fixture("pci/tree-asus-p6t6.txt");
    auto list = nlohmann::json::parse(
        dis::test::run_tool({"pci", "list", "--dump", dump, "-o", "json"}).out);
    std::map<std::string, nlohmann::json> parent_of;
    for (const auto& d : list)
        parent_of[d["bdf"]] = d["parent"];

    auto tree = dis::test::run_tool({"pci", "tree", "--dump", dump, "-o", "json"});
    REQUIRE(tree.exit_code == 0);
    auto roots = nlohmann::json::parse(tree.out);
    std::size_t seen = 0;
    std::function<void(const nlohmann::json&, const nlohmann::json&)> walk =
        [&](const nlohmann::json& nodes, const nlohmann::json& parent) {
            for (const auto& n : nodes) {
                ++seen;
                INFO(n["bdf"]);
                CHECK(parent_of.at(n["bdf"]) == parent);
                walk(n["children"], n["bdf"]);
            }
        };
    for (const auto& r : roots)
        walk(r["devices"], nullptr);
    CHECK(seen == list.size());
    CHECK(roots.size() == 2); // buses 0000:00 and 0000:ff

    auto text = dis::test::run_tool({"pci", "tree", "--dump", dump});
    REQUIRE(text.exit_code == 0);
    CHECK(count_lines(text.out) == 53 + 2);
    // The NF200 switch port running 2.5GT/s of 5GT/s behind a live link, nested two deep.
    CHECK(text.out.find("|   +-03:00.0 [04]  NVIDIA Corporation NF200 PCIe 2.0 switch  5GT/s x8 "
                        "(max 5GT/s x16)") != std::string::npos);
    CHECK(text.out.find("|   | \\-04:00.0  Broadcom / LSI SAS2008") != std::string::npos);
}

TEST_CASE("pci tree marks downgraded links and AER errors", "[pci][cli]") {
    // cap-phy32.txt: an NVMe endpoint at 16GT/s of 32GT/s with no visible partner, and a
    // correctable AER status bit set.
    auto phy =
        dis::test::run_tool({"pci", "tree", "--dump", dis::test::fixture("pci/cap-phy32.txt")});
    REQUIRE(phy.exit_code == 0);
    CHECK(phy.out.find("16GT/s x2 (max 32GT/s x2)  !downgraded") != std::string::npos);

    // A device with AER status bits set: find one in the fixtures through JSON.
    bool found = false;
    for (const auto& e : std::filesystem::directory_iterator(dis::test::fixtures_dir() + "/pci")) {
        auto r = dis::test::run_tool({"pci", "list", "--dump", e.path().string(), "-o", "json"});
        REQUIRE(r.exit_code == 0);
        for (const auto& d : nlohmann::json::parse(r.out)) {
            if (!d["aer"].is_object() || (d["aer"]["uncorrectable_status"].empty() &&
                                          d["aer"]["correctable_status"].empty()))
                continue;
            found = true;
            auto t = dis::test::run_tool({"pci", "tree", "--dump", e.path().string()});
            std::string bdf = d["bdf"];
            auto line_at = t.out.find(bdf.substr(5));
            REQUIRE(line_at != std::string::npos);
            auto line = t.out.substr(line_at, t.out.find('\n', line_at) - line_at);
            CHECK(line.find("!aer(") != std::string::npos);
        }
    }
    CHECK(found);
}

TEST_CASE("pci show prints one device", "[pci][cli]") {
    auto dump = dis::test::fixture("pci/cap-dpc.txt");
    auto text = dis::test::run_tool({"pci", "show", "05:01.0", "--dump", dump});
    REQUIRE(text.exit_code == 0);
    CHECK(text.out.find("Port type:") != std::string::npos);
    CHECK(text.out.find("Downstream Port") != std::string::npos);

    auto acs = dis::test::run_tool(
        {"pci", "show", "00:02.0", "--dump", dis::test::fixture("pci/cap-aer-root.txt")});
    REQUIRE(acs.exit_code == 0);
    CHECK(acs.out.find("ACS cap:           SrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ "
                       "UpstreamFwd+ EgressCtrl- DirectTrans-") != std::string::npos);
    CHECK(acs.out.find("AER uncorrectable: none") != std::string::npos);

    auto j = dis::test::run_tool({"pci", "show", "0000:05:01.0", "--dump", dump, "-o", "json"});
    REQUIRE(j.exit_code == 0);
    auto doc = nlohmann::json::parse(j.out);
    CHECK(doc["bdf"] == "0000:05:01.0");
    CHECK(doc["device_id"] == "9716");
    CHECK(doc["link"]["speed"] == "8GT/s");
}

TEST_CASE("pci commands on the live system", "[pci][cli]") {
    // The VM this runs in has PCI devices; the live listing must be complete and parseable.
    auto r = dis::test::run_tool({"pci", "list", "-o", "json"});
    REQUIRE(r.exit_code == 0);
    auto doc = nlohmann::json::parse(r.out);
    std::size_t in_sysfs = 0;
    for (const auto& e : std::filesystem::directory_iterator("/sys/bus/pci/devices"))
        (void)e, ++in_sysfs;
    CHECK(doc.size() == in_sysfs);
    auto t = dis::test::run_tool({"pci", "tree"});
    CHECK(t.exit_code == 0);
    CHECK(count_lines(t.out) >= in_sysfs);
}

TEST_CASE("pci commands reject bad input with exit 2 and one error line", "[pci][cli]") {
    dis::test::TempDir dir;
    auto file = [&](const std::string& name, const std::string& content) {
        auto p = dir.path() / name;
        dis::test::write_file(p, content);
        return p.string();
    };
    auto good = dis::test::fixture("pci/cap-dpc.txt");

    expect_input_error({"pci", "show", "zz:00.0", "--dump", good}, "invalid PCI address");
    expect_input_error({"pci", "show", "00:20.0", "--dump", good}, "invalid PCI address");
    expect_input_error({"pci", "show", "07:00.0", "--dump", good}, "no PCI device 0000:07:00.0");
    expect_input_error({"pci", "list", "--dump", (dir.path() / "missing.txt").string()},
                       "No such file");
    expect_input_error({"pci", "list", "--dump", dir.path().string()}, "is a directory");
    expect_input_error({"pci", "list", "--dump", file("empty.txt", "")}, "no device found");
    expect_input_error({"pci", "list", "--dump", file("text.txt", "hello\nworld\n")},
                       "no device found");
    expect_input_error({"pci", "list", "--dump", file("unterminated.txt", "00:00.0 x\n00: 86 80")},
                       "not terminated");
    expect_input_error({"pci", "list", "--dump", file("badhex.txt", "00:00.0 x\n00: 86 8g 00\n")},
                       "line 2");
    expect_input_error({"pci", "list", "--dump", file("far.txt", "00:00.0 x\n1000: 86 80\n")},
                       "4096");
    expect_input_error({"pci", "list", "--dump", file("short.txt", "00:00.0 x\n00: 86 80 00 01\n")},
                       "fewer than 64 bytes");
    expect_input_error(
        {"pci", "list", "--dump", file("long.txt", "00:00.0 " + std::string(300, 'x') + "\n")},
        "longer than");
    expect_input_error({"pci", "list", "--dump", file("nul.txt", std::string("00:00.0 x\0\n", 11))},
                       "NUL");
    std::string twice = dis::test::read_file(good) + "\n" + dis::test::read_file(good);
    expect_input_error({"pci", "list", "--dump", file("twice.txt", twice)}, "appears twice");
    // A binary file and a FIFO (which must not block waiting for a writer).
    expect_input_error({"pci", "tree", "--dump", DIS_TOOL_PATH}, "malformed dump");
    auto fifo = dir.path() / "fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    expect_input_error({"pci", "list", "--dump", fifo.string()}, "not a regular file");

    expect_input_error({"pci", "list", "--sysfs-root", (dir.path() / "nope").string()},
                       "does not exist");
    expect_input_error({"pci", "tree", "--sysfs-root", dir.path().string()}, "no bus/pci/devices");

    // Usage errors: unknown subcommand, missing argument, conflicting sources.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"pci", "frobnicate"},
          {"pci"},
          {"pci", "show"},
          {"pci", "list", "--dump", good, "--sysfs-root", "/sys"}}) {
        auto r = dis::test::run_tool(args);
        CHECK(r.exit_code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
    }
}

TEST_CASE("pci list reports an unreadable dump as a permission error", "[pci][cli]") {
    // Root reads any file, so the tool runs as nobody; the file sits in a directory nobody
    // may enter but not read.
    REQUIRE(std::filesystem::exists("/usr/bin/setpriv"));
    dis::test::TempDir dir;
    REQUIRE(chmod(dir.path().c_str(), 0711) == 0);
    auto dump = dir.path() / "secret.txt";
    dis::test::write_file(dump, dis::test::read_file(dis::test::fixture("pci/cap-dpc.txt")));
    REQUIRE(chmod(dump.c_str(), 0000) == 0);
    std::vector<std::string> argv{
        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        DIS_TOOL_PATH,      "pci",           "list",          "--dump",
        dump.string()};
    if (geteuid() != 0)
        argv.erase(argv.begin(), argv.begin() + 4); // already unprivileged
    auto r = dis::test::run(argv);
    CHECK(r.exit_code == 4); // permission: an OS error
    CHECK(r.err ==
          "dis-tool: error: cannot open dump '" + dump.string() + "': Permission denied\n");
}

TEST_CASE("pci show --sysfs-root reads a copied /sys", "[pci][cli]") {
    namespace fs = std::filesystem;
    dis::test::TempDir dir;
    fs::path dev = dir.path() / "devices/pci0000:00/0000:00:02.0";
    std::string config(256, '\0');
    config[0] = '\xf4'; // 1af4:1042, mass storage
    config[1] = '\x1a';
    config[2] = '\x42';
    config[3] = '\x10';
    config[0x0b] = '\x01';
    dis::test::write_file(dev / "config", config);
    dis::test::write_file(dev / "numa_node", "0\n");
    fs::create_directories(dir.path() / "bus/pci/drivers/virtio-pci");
    fs::create_directory_symlink("../../../bus/pci/drivers/virtio-pci", dev / "driver");
    fs::create_directories(dir.path() / "bus/pci/devices");
    fs::create_directory_symlink("../../../devices/pci0000:00/0000:00:02.0",
                                 dir.path() / "bus/pci/devices/0000:00:02.0");

    auto r = dis::test::run_tool(
        {"pci", "show", "00:02.0", "--sysfs-root", dir.path().string(), "-o", "json"});
    REQUIRE(r.exit_code == 0);
    auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["vendor_id"] == "1af4");
    CHECK(doc["device_id"] == "1042");
    CHECK(doc["class"] == "0100");
    CHECK(doc["driver"] == "virtio-pci");
    CHECK(doc["numa_node"] == 0);
    CHECK(doc["config_size"] == 256);
    auto t = dis::test::run_tool({"pci", "tree", "--sysfs-root", dir.path().string()});
    REQUIRE(t.exit_code == 0);
    CHECK(t.out.rfind("[0000:00]\n\\-00:02.0  Red Hat, Inc.", 0) == 0);
}
