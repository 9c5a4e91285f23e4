// One schema per model: the fabric model's to_json/from_json round-trip, disd's replies parse
// through it, and the fabric tables print as CSV with -o csv.
#include "fabric_support.hpp"

#include "dis/fabric_admin.hpp"
#include "dis/fabric_model.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sisci_api.h>

#include <sstream>

using namespace dis::test;
namespace fab = dis::fabric;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

} // namespace

TEST_CASE("the fabric model's JSON schema round-trips", "[fabric][model]") {
    fab::SegmentInfo s{4, 17, 0, 8192, 321, 1000, "available", 2, 1, true};
    nlohmann::json j = s;
    CHECK(j.at("segment_id") == 17);
    CHECK(j.at("owner_uid") == 1000);
    auto back = j.get<fab::SegmentInfo>();
    CHECK(back.size == 8192);
    CHECK(back.state == "available");
    CHECK(back.broadcast);
    fab::NodeInfo n;
    n.node_id = 8;
    n.name = "b";
    n.adapters.push_back({0, 8, "card", 0xD15, 1, true, 8, "16GT/s", 1});
    n.counters["clients"] = 3;
    auto nb = nlohmann::json(n).get<fab::NodeInfo>();
    CHECK(nb.adapters.at(0).link_speed == "16GT/s");
    CHECK(nb.counters.at("clients") == 3);
    nlohmann::json bad = j;
    bad.erase("state");
    CHECK_THROWS_AS(bad.get<fab::SegmentInfo>(), nlohmann::json::exception);
}

TEST_CASE("fabric status, topology and segment list print CSV with -o csv", "[fabric][model]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 42, 4096, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    // The admin client reads disd's segments through the model.
    auto segs = fab::AdminClient(fabric.dir(), 4).segments();
    REQUIRE(segs.size() == 1);
    CHECK(segs[0].segment_id == 42);

    auto list = run_tool({"segment", "list", "--fabric", fabric.dir(), "-o", "csv"});
    REQUIRE(list.exit_code == 0);
    auto rows = lines_of(list.out);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0] ==
          "NODE,SEGMENT,ADAPTER,SIZE,OWNER_PID,OWNER_UID,STATE,CONNECTIONS,MAPPINGS,FLAGS");
    CHECK(rows[1].rfind("4,42,0,4096,", 0) == 0);

    auto status = run_tool({"fabric", "status", "--fabric", fabric.dir(), "-o", "csv"});
    REQUIRE(status.exit_code == 0);
    rows = lines_of(status.out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0] == "NODE,NAME,STATE,PID,UPTIME,ADAPTERS");
    CHECK(rows[1].rfind("4,node4,up,", 0) == 0);
    CHECK(rows[2].rfind("8,node8,up,", 0) == 0);

    auto topo = run_tool({"topology", "--fabric", fabric.dir(), "--local-node", "4", "-o", "csv"});
    REQUIRE(topo.exit_code == 0);
    rows = lines_of(topo.out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0] == "NODE,NAME,STATE,ADAPTER,CARD,SERIAL,LINK");
    CHECK(rows[1].rfind("4,node4,local,0,", 0) == 0);
    CHECK(rows[2].rfind("8,node8,up,0,", 0) == 0);
    SCIRemoveSegment(seg, 0, &err);
}
