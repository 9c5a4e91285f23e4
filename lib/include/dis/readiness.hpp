// Lending readiness of one PCIe device: a read-only report of everything that decides
// whether it can be lent to another host through an NTB window (SmartIO device lending).
#pragma once

#include "dis/iommu.hpp"
#include "dis/p2p.hpp"
#include "dis/pci.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::pci {

inline constexpr std::uint64_t k_default_window_size = 512ull << 20; // NTB prefetch window

enum class Severity { ok, warning, error };
const char* to_string(Severity severity) noexcept; // "ok", "warning", "error"

enum class Verdict { ready, ready_with_warnings, not_ready };
const char* to_string(Verdict verdict) noexcept; // "ready", "ready_with_warnings", "not_ready"
// A verdict is not an error: ready 0, ready with warnings 0 (1 when `strict`, as linters
// do), not ready 1 (k_exit_check_failed).
int exit_code_for(Verdict verdict, bool strict = false) noexcept;

// One line of the report: which check, how bad, and what was found.
struct Finding {
    std::string check; // "class", "driver", "reset", "iommu", "acs", "p2p", "bars", "sriov"
    Severity severity = Severity::ok;
    std::string message;
};

// One bridge on the path to the root port, as ACS sees it.
struct AcsHop {
    Bdf bridge;
    std::optional<PortType> port_type;
    AcsCheck check;
};

struct ReadinessOptions {
    std::uint64_t window_size = k_default_window_size;
    P2pOptions p2p;
};

struct ReadinessReport {
    Bdf bdf;
    std::uint16_t class_id = 0;
    std::string class_name;
    std::optional<std::string> driver; // nullopt when the source has no driver information
    std::vector<std::string> reset_methods;
    bool reset_methods_known = false; // from sysfs reset_method (else derived from config)
    bool iommu_present = false;
    DeviceIsolation isolation;
    std::vector<AcsHop> acs_path; // nearest bridge first
    std::vector<P2pPath> p2p;     // to every other P2P candidate
    std::vector<Bar> bars;
    std::uint64_t window_size = 0;
    std::optional<Sriov> sriov;
    std::vector<Finding> findings;
    Verdict verdict = Verdict::ready;
};

// Throws dis::Error(not_found) when `bdf` is not in the topology.
ReadinessReport check_readiness(const Topology& topology, const Bdf& bdf,
                                const ReadinessOptions& options = {});

// Schema in dis-tool-device(1).
nlohmann::json to_json(const ReadinessReport& report);

} // namespace dis::pci
