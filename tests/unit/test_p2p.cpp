// P2P verdicts on hand-built topologies, each expected value derived by walking the kernel's
// calc_map_type_and_dist() by hand.
#include "support.hpp"
#include "test_iommu_topology.hpp"

#include "dis/error.hpp"
#include "dis/p2p.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace dis::pci;
using namespace dis::test;

TEST_CASE("two functions below one downstream port without redirect: bus address", "[p2p]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto p = p2p_path(topo, bdf_of("06:00.0"), bdf_of("06:00.1"));
    CHECK(p.map == P2pMap::bus_address);
    CHECK(p.hops == 2);
    CHECK(p.distance == 2);
    REQUIRE(p.common_bridge);
    CHECK(p.common_bridge->to_string() == "0000:05:02.0");
    CHECK(p.acs_redirects.empty());
    CHECK(p.topo == TopoClass::pix);
    CHECK_FALSE(p.host_bridge_allowed); // 8086:3405 would not, but the switch routes it
}

TEST_CASE("ACS redirect below the common switch sends P2P to the host bridge", "[p2p]") {
    SECTION("host bridge not on the allow-list: not supported") {
        Topology topo = sample_topology(Source::dump("sample"));
        auto p = p2p_path(topo, bdf_of("09:00.0"), bdf_of("06:00.0"));
        CHECK(p.map == P2pMap::not_supported);
        CHECK(p.hops == 4);
        CHECK(p.distance == -1);
        REQUIRE(p.common_bridge);
        CHECK(p.common_bridge->to_string() == "0000:04:00.0");
        REQUIRE(p.acs_redirects.size() == 1);
        CHECK(p.acs_redirects[0].device.to_string() == "0000:05:01.0");
        CHECK(p.acs_redirects[0].bits == std::vector<std::string>{"ReqRedir", "CmpltRedir"});
        CHECK(p.reason.find("ACS redirect at 0000:05:01.0") != std::string::npos);
        CHECK(p.reason.find("not known to route P2P") != std::string::npos);
        CHECK(p.topo == TopoClass::pix); // topologically one switch
    }
    SECTION("allow-listed host bridge: through the host bridge, distance kept") {
        Topology topo = sample_topology(Source::dump("sample"), 0x2020);
        auto p = p2p_path(topo, bdf_of("09:00.0"), bdf_of("06:00.0"));
        CHECK(p.map == P2pMap::host_bridge);
        CHECK(p.distance == 4);
        CHECK(p.host_bridge_allowed);
    }
}

TEST_CASE("devices under different root ports meet only at the host bridge", "[p2p]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto p = p2p_path(topo, bdf_of("01:00.0"), bdf_of("02:00.0"));
    CHECK_FALSE(p.common_bridge);
    CHECK(p.hops == 4);
    CHECK(p.map == P2pMap::not_supported);
    CHECK(p.topo == TopoClass::phb);
    CHECK(p.reason.find("no common upstream bridge") != std::string::npos);
    CHECK(p.reason.find("0000:00:00.0 [8086:3405]") != std::string::npos);

    P2pOptions zen;
    zen.cpu_supports_p2pdma = true;
    auto z = p2p_path(topo, bdf_of("01:00.0"), bdf_of("02:00.0"), zen);
    CHECK(z.map == P2pMap::host_bridge);
    CHECK(z.distance == 4);
}

TEST_CASE("allow-list entries that require the same host bridge", "[p2p]") {
    auto devices = sample_devices(0x2f00);
    devices.push_back(host_bridge("80:00.0", 0x8086, 0x2f00));
    devices.push_back(root_port("80:01.0", 0x81, std::nullopt));
    auto far = endpoint("81:00.0", "80:01.0");
    devices.push_back(far);
    Topology topo(Source::dump("sample"), devices);

    auto same = p2p_path(topo, bdf_of("01:00.0"), bdf_of("02:00.0"));
    CHECK(same.map == P2pMap::host_bridge);
    auto across = p2p_path(topo, bdf_of("01:00.0"), bdf_of("81:00.0"));
    CHECK(across.map == P2pMap::not_supported);
    CHECK(across.reason.find("different host bridges") != std::string::npos);
    CHECK(across.topo == TopoClass::node); // NUMA unknown
}

TEST_CASE("NUMA nodes split NODE from SYS across host bridges", "[p2p]") {
    auto devices = sample_devices();
    devices.push_back(host_bridge("80:00.0", 0x8086, 0x3405));
    devices.push_back(root_port("80:01.0", 0x81, std::nullopt));
    auto far = endpoint("81:00.0", "80:01.0");
    far.numa_node = 1;
    devices.push_back(far);
    for (auto& d : devices)
        if (d.bdf == bdf_of("01:00.0"))
            d.numa_node = 0;
    Topology topo(Source::dump("sample"), devices);
    CHECK(p2p_path(topo, bdf_of("01:00.0"), bdf_of("81:00.0")).topo == TopoClass::sys);
    for (auto& d : devices)
        if (d.bdf == bdf_of("81:00.0"))
            d.numa_node = 0;
    Topology same_node(Source::dump("sample"), devices);
    CHECK(p2p_path(same_node, bdf_of("01:00.0"), bdf_of("81:00.0")).topo == TopoClass::node);
}

TEST_CASE("cascaded switches are PXB with the kernel's hop count", "[p2p]") {
    using dis::pci::PortType;
    std::vector<Device> d;
    d.push_back(host_bridge("00:00.0", 0x8086, 0x3405));
    d.push_back(root_port("00:01.0", 1, std::nullopt, 5));
    d.push_back(bridge("01:00.0", "00:01.0", PortType::upstream_port, 2, std::nullopt, 5));
    d.push_back(downstream_port("02:00.0", "01:00.0", 3, std::nullopt));
    d.push_back(downstream_port("02:01.0", "01:00.0", 6, std::nullopt));
    d.push_back(bridge("03:00.0", "02:00.0", PortType::upstream_port, 4, std::nullopt, 5));
    d.push_back(downstream_port("04:00.0", "03:00.0", 5, std::nullopt));
    d.push_back(endpoint("05:00.0", "04:00.0"));
    d.push_back(endpoint("06:00.0", "02:01.0"));
    Topology topo(Source::dump("sample"), d);
    auto p = p2p_path(topo, bdf_of("05:00.0"), bdf_of("06:00.0"));
    CHECK(p.map == P2pMap::bus_address);
    CHECK(p.hops ==
          6); // 05:00.0 -> 04:00.0 -> 03:00.0 -> 02:00.0 -> 01:00.0; 06:00.0 -> 02:01.0 -> 01:00.0
    CHECK(p.common_bridge->to_string() == "0000:01:00.0");
    CHECK(p.topo == TopoClass::pxb);

    auto near = p2p_path(topo, bdf_of("06:00.0"), bdf_of("06:00.0"));
    CHECK(near.topo == TopoClass::self);
    CHECK(near.distance == 0);
}

TEST_CASE("matrix defaults to endpoints with memory BARs and rejects unknown BDFs", "[p2p]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto candidates = p2p_candidates(topo);
    std::vector<std::string> names;
    for (auto& b : candidates)
        names.push_back(b.to_string());
    CHECK(names == std::vector<std::string>{"0000:01:00.0", "0000:02:00.0", "0000:06:00.0",
                                            "0000:06:00.1", "0000:08:01.0", "0000:08:02.0",
                                            "0000:09:00.0"});
    auto m = p2p_matrix(topo, candidates);
    CHECK(m.pairs.size() == 7 * 6 / 2);
    REQUIRE(m.find(bdf_of("06:00.1"), bdf_of("06:00.0")));
    auto doc = to_json(m);
    CHECK(doc["pairs"].size() == 21);
    CHECK(doc["legend"].contains("PIX"));

    try {
        p2p_matrix(topo, {bdf_of("01:00.0"), bdf_of("42:00.0")});
        FAIL("unknown BDF accepted");
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::not_found);
    }
}

TEST_CASE("functions behind a PCIe-to-PCI bridge reach each other through it", "[p2p]") {
    Topology topo = sample_topology(Source::dump("sample"));
    auto p = p2p_path(topo, bdf_of("08:01.0"), bdf_of("08:02.0"));
    CHECK(p.map == P2pMap::bus_address);
    CHECK(p.common_bridge->to_string() == "0000:07:00.0");
    CHECK(p.hops == 2);
}
