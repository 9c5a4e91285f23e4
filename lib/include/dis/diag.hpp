// The fabric health check (`dis-tool diag`, issue 12): a fixed list of checks, each PASS,
// WARN or FAIL with a one-line reason and the counters it judged, built only from what the
// rest of libdis already reads (topology and admin views, the fabric config, the benchmarks'
// payload-checked transfers, the host PCIe scan, the lending pool, the IOMMU analysis).
// Nothing here prints or exits; a failing check is a result, never an exception. Schema of
// to_json(): dis-tool-diag(1), JSON SCHEMA.
//
// The SISCI side (probes, the loopback tests) uses this process's SISCI configuration, as
// dis/topology.hpp does: on the software fabric set DIS_FABRIC (and DIS_NODE_ID for another
// local node than the lowest) before run().
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::diag {

enum class Verdict { pass, warn, fail };
const char* to_string(Verdict verdict) noexcept; // "pass", "warn", "fail"

// The check groups, in the order run() reports them.
//   versions  toolkit and SISCI implementation
//   nodes     configured node ids against the live ones; every configured node probed
//   adapter   each node's adapters: state, link width and speed against the configured ones
//   link      each fabric link: state, width and speed against the configured ones
//   loopback  per reachable node: pio (write, read back), dma, interrupt (each checksummed)
//   pcie      the host's PCIe devices: AER errors (new since --clear), downgraded links
//   pool      the lending pool: failed devices, failed resets, leases past their TTL
//   iommu     IOMMU presence and ACS/isolation of the lendable host devices
struct Check {
    std::string group; // one of the groups above
    std::string name;  // what was checked, stable across runs ("node 8", "0000:01:00.0", ...)
    Verdict verdict = Verdict::pass;
    std::string reason; // one line
    // What the verdict was judged on, in base units (shown with -V 9). The counters a
    // baseline can subtract (AER) are the raw values, with "new" ones beside them.
    nlohmann::json counters = nlohmann::json::object();
};

struct Options {
    std::string fabric_dir; // resolved (dis::fabric::resolve_fabric_dir)
    // The fabric config (disd(8)) the live fabric is judged against: its nodes, default link
    // width/speed (the adapters' nominal link) and links. Without one, the configured nodes
    // are those a local fabric recorded (dis/local_fabric.hpp) and no width/speed is judged.
    std::optional<std::string> config_file;
    // Host PCIe source for the pcie and iommu groups: a sysfs root ("/sys" live, or a copied
    // tree). nullopt: those groups are skipped (no check rows).
    std::optional<std::string> sysfs_root;
    // Lendable host devices (BDFs) whose IOMMU/ACS isolation is checked; empty: an IOMMU
    // summary row only.
    std::vector<std::string> lendable;
    // The baseline written by save_baseline (--clear): counters at or below it are not new.
    // A missing file is no baseline; a malformed one throws Error(invalid_input).
    std::optional<std::string> baseline_file;
    // The bench responder command (argv[0] a path) the loopback tests start on each node with
    // DIS_NODE_ID set (dis-tool: {"/proc/self/exe", "bench", "serve", "--once"}); empty:
    // the loopback group is skipped.
    std::vector<std::string> responder_argv;
    std::chrono::milliseconds timeout{5000}; // per daemon request and per loopback message
};

struct Summary {
    std::size_t checks = 0;
    std::size_t passed = 0;
    std::size_t warnings = 0;
    std::size_t failed = 0;
};

struct Report {
    std::string fabric_dir;
    std::vector<Check> checks;
    // No node of the fabric answers at all (checks then holds the rows that could still be
    // judged: versions, pcie, iommu). exit_code() gives k_exit_fabric.
    bool fabric_unreachable = false;
    // The counters save_baseline stores: "pcie/<bdf>/<file>/<counter>" -> value, and
    // "pool/audit_ms" -> the newest audit time seen (older pool events are not new).
    nlohmann::json baseline = nlohmann::json::object();

    Summary summary() const;
};

// Runs every check. Throws only for a bad option (Error(invalid_input): a malformed config,
// baseline or BDF) or an error of the tool itself; an unreachable fabric is a report.
Report run(const Options& options);

// 3 when the fabric is unreachable; else 1 with a failure (or, when `strict`, a warning);
// else 0 (dis-tool(1), EXIT STATUS).
int exit_code(const Report& report, bool strict);

// "N checks: P passed, W warnings, F failed"
std::string summary_line(const Report& report);

// The one fixed schema (dis-tool-diag(1)):
// {"fabric_dir", "fabric_unreachable", "checks": [{"group","name","verdict","reason",
//  "counters"}], "summary": {"checks","passed","warnings","failed"}}
nlohmann::json to_json(const Report& report);
nlohmann::json to_json(const Check& check);

// Writes report.baseline to `path` atomically (created 0600, parent directories made).
void save_baseline(const Report& report, const std::string& path);
// $XDG_STATE_HOME/dis/diag-baseline.json, else ~/.local/state/dis/diag-baseline.json.
std::string default_baseline_file();

} // namespace dis::diag
