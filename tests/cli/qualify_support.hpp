// Shared by the `dis-tool qualify` tests: a 3-node software fabric (nodes 4, 8, 12) whose node
// 8 lends two epf-test devices (fdids 0x80000 and 0x80001), and plan files in a temporary
// directory.
#pragma once

#include "support.hpp"
#include "tool_fabric.hpp"

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace dis::test {

inline const char* k_qualify_fabric = "node 4\nnode 8\nnode 12\n"
                                      "device 8 epf-test name=ep0 reset_ms=0\n"
                                      "device 8 epf-test name=ep1 reset_ms=0\n";

// No device of the fabric is borrowed and each is available (`device list -o json`).
inline void check_nothing_borrowed(const ToolFabric& fabric) {
    auto r = run_tool({"device", "list", "--fabric", fabric.dir(), "-o", "json"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto doc = nlohmann::json::parse(r.out);
    REQUIRE(doc["devices"].size() == 2);
    for (const auto& d : doc["devices"]) {
        INFO(d.dump());
        CHECK(d["state"] == "available");
        CHECK(d["leases"].empty());
    }
}

} // namespace dis::test
