// The check groups of dis::diag::run (dis/diag.hpp), one function per group, each appending
// its rows. Internal to libdis.
#pragma once

#include "dis/diag.hpp"
#include "dis/fabric_config.hpp"
#include "dis/topology.hpp"

#include <optional>
#include <string>
#include <vector>

namespace dis::diag::detail {

// The baseline a previous --clear stored ({} without one).
struct Baseline {
    nlohmann::json counters = nlohmann::json::object();
    // A counter's value not yet seen by the baseline (its whole value without one; all of it
    // again when it went backwards, e.g. after a reboot).
    std::uint64_t fresh(const std::string& key, std::uint64_t value) const;
};
Baseline load_baseline(const std::optional<std::string>& path);

Check make_check(std::string group, std::string name, Verdict verdict, std::string reason,
                 nlohmann::json counters = nlohmann::json::object());

// What the fabric groups share: the live topology (nullopt when no node answers), the
// expected configuration, and the node ids the fabric should have.
struct FabricView {
    std::optional<fabric::Topology> topology;
    std::string unreachable_reason;
    std::optional<fabric::FabricConfig> config;
    std::vector<std::uint32_t> configured; // ascending
    std::string configured_from;           // "config FILE", "local fabric record", ...
    std::vector<std::uint32_t> reachable;  // ascending, the local node included
};

void check_versions(const Options& o, std::vector<Check>& out);
FabricView read_fabric(const Options& o);
void check_nodes(const Options& o, const FabricView& v, std::vector<Check>& out);
void check_adapters(const FabricView& v, std::vector<Check>& out);
void check_links(const FabricView& v, std::vector<Check>& out);
void check_loopback(const Options& o, const FabricView& v, std::vector<Check>& out);
void check_pcie(const Options& o, const Baseline& b, nlohmann::json& baseline,
                std::vector<Check>& out);
void check_pool(const Options& o, const Baseline& b, nlohmann::json& baseline,
                std::vector<Check>& out);
void check_iommu(const Options& o, std::vector<Check>& out);

} // namespace dis::diag::detail
