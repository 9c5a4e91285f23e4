// -o csv on every host-PCIe command that prints a table: the CSV parses (RFC 4180), has the
// table's header, and has one row per object of the command's JSON document, with the same
// facts in it.
#include "lending_host.hpp"
#include "support.hpp"
#include "sysfs_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

using namespace dis::test;
using nlohmann::json;

namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows run_csv(std::vector<std::string> args) {
    args.insert(args.end(), {"-o", "csv"});
    INFO("dis-tool " << join_args(args));
    auto r = run_tool(args);
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto rows = parse_csv(r.out);
    REQUIRE(!rows.empty());
    return rows;
}

std::size_t column(const Rows& rows, const std::string& name) {
    auto it = std::find(rows.front().begin(), rows.front().end(), name);
    REQUIRE(it != rows.front().end());
    return static_cast<std::size_t>(it - rows.front().begin());
}

} // namespace

TEST_CASE("pci list -o csv: one row per device with its ids", "[cli][csv]") {
    const std::string dump = fixture("pci/tree-asus-p6t6.txt");
    auto rows = run_csv({"pci", "list", "--dump", dump});
    CHECK(rows.front() == std::vector<std::string>{"BDF", "IDS", "CLASS", "DEVICE", "LINK",
                                                   "DRIVER", "IOMMU", "NOTES"});
    auto doc = run_json({"pci", "list", "--dump", dump, "-o", "json"});
    REQUIRE(rows.size() == doc.size() + 1);
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const auto& row = rows[i + 1];
        CHECK(row[column(rows, "BDF")] == doc[i]["bdf"]);
        CHECK(row[column(rows, "IDS")] == doc[i]["vendor_id"].get<std::string>() + ":" +
                                              doc[i]["device_id"].get<std::string>());
    }
}

TEST_CASE("iommu -o csv: one row per device with its group and verdict", "[cli][csv]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    Lender shared;
    shared.share_group = true; // the NIC in the NTB adapter's group
    build_lending_host(tree, shared);
    const std::vector<std::string> args{"iommu", "--sysfs-root", tree.root().string()};
    auto rows = run_csv(args);
    CHECK(rows.front() ==
          std::vector<std::string>{"GROUP", "DEVICE", "CLASS", "ISOLATION", "DETAILS"});
    auto a = args;
    a.insert(a.end(), {"-o", "json"});
    auto doc = run_json(a);
    REQUIRE(rows.size() == doc["devices"].size() + 1);
    std::map<std::string, std::vector<std::string>> by_bdf;
    for (std::size_t i = 1; i < rows.size(); ++i)
        by_bdf[rows[i][column(rows, "DEVICE")]] = rows[i];
    for (const auto& d : doc["devices"]) {
        INFO(d.dump());
        REQUIRE(by_bdf.count(d["bdf"]));
        const auto& row = by_bdf[d["bdf"]];
        CHECK(row[column(rows, "GROUP")] == std::to_string(d["group"].get<int>()));
        CHECK(row[column(rows, "ISOLATION")] == (d["isolated"].get<bool>() ? "alone" : "shared"));
    }
    CHECK(by_bdf["0000:01:00.0"][column(rows, "ISOLATION")] == "shared");
}

TEST_CASE("p2p -o csv: one row per pair with its verdict", "[cli][csv]") {
    const std::string dump = fixture("pci/tree-asus-p6t6.txt");
    auto rows = run_csv({"p2p", "--dump", dump});
    CHECK(rows.front() == std::vector<std::string>{"A", "B", "P2P", "DISTANCE", "TOPO", "REASON"});
    auto doc = run_json({"p2p", "--dump", dump, "-o", "json"});
    REQUIRE(doc["pairs"].size() >= 1);
    REQUIRE(rows.size() == doc["pairs"].size() + 1);
    for (std::size_t i = 0; i < doc["pairs"].size(); ++i) {
        const auto& p = doc["pairs"][i];
        const auto& row = rows[i + 1];
        CHECK(row[column(rows, "A")] == p["a"]);
        CHECK(row[column(rows, "B")] == p["b"]);
        CHECK(row[column(rows, "TOPO")] == p["topology"]);
        CHECK(row[column(rows, "P2P")] == p["map_type"]);
    }
}

TEST_CASE("device check -o csv: the findings and the verdict", "[cli][csv][device]") {
    TempDir tmp;
    SysfsTree tree(tmp.path() / "sys");
    build_lending_host(tree, {});
    const std::vector<std::string> args{"device", "check", "--sysfs-root", tree.root().string(),
                                        "01:00.0"};
    auto rows = run_csv(args);
    CHECK(rows.front() == std::vector<std::string>{"CHECK", "RESULT", "DETAILS"});
    auto a = args;
    a.insert(a.end(), {"-o", "json"});
    auto doc = run_json(a);
    REQUIRE(rows.size() == doc["findings"].size() + 2); // header, findings, verdict
    for (std::size_t i = 0; i < doc["findings"].size(); ++i) {
        CHECK(rows[i + 1][0] == doc["findings"][i]["check"]);
        CHECK(rows[i + 1][1] == doc["findings"][i]["severity"]);
        CHECK(rows[i + 1][2] == doc["findings"][i]["message"]);
    }
    CHECK(rows.back() == std::vector<std::string>{"verdict", "ready", ""});
}
