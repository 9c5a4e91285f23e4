// `dis-tool qualify --plan FILE` (issue 12): a qualification plan written by hand in TOML
// (dis-tool-qualify(5)), checked whole before anything runs, then run step by step against a
// fabric; the outcome as one report model with a JSON rendering, a JUnit XML rendering and a
// summary table. Nothing here prints or exits: the front end shows progress through
// RunOptions::on_step and renders the report.
#pragma once

#include "dis/bench.hpp"
#include "dis/lending_fdid.hpp"
#include "dis/output.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dis::qualify {

enum class StepKind { device_cycle, bench, rebind, isolation, recovery, load, diag };
const char* to_string(StepKind kind) noexcept; // "device-cycle", "bench", ...

// A value of the plan with the line it was written on (plan errors found after parsing, such
// as a device the fabric does not have, still name the line and the key).
template <class T> struct At {
    T value{};
    int line = 0;
};

// `FIELD OP NUMBER` on a bench result's JSON field, e.g. "p99_us <= 2".
struct Threshold {
    std::string field;
    std::string op; // "<", "<=", ">", ">=", "==", "!="
    double value = 0;
    int line = 0;
    std::string text; // as written
};
bool holds(const Threshold& t, double measured) noexcept;
// The numeric result fields of `test` a threshold may name (dis-tool-bench(1), JSON SCHEMA).
std::vector<std::string> threshold_fields(bench::TestKind test);

struct DeviceCycleSpec {
    std::vector<At<lending::Fdid>> devices;
    std::vector<At<std::uint32_t>> borrowers;
    unsigned cycles = 1;
    bool reset = true; // an admin reset of the device each cycle
    bool test = true;  // the pcitest suite (`device test`) as the borrower each cycle
};

struct BenchSpec {
    bench::TestKind test = bench::TestKind::pio_latency;
    std::optional<At<std::uint32_t>> local_node;  // default: the fabric's lowest node
    std::optional<At<std::uint32_t>> remote_node; // fabric tests
    std::optional<At<lending::Fdid>> device;      // device-cycle, device-copy
    std::string sizes;                            // empty: bench's default for the test
    std::uint64_t iterations = 0;                 // 0: bench's default
    std::uint64_t warmup = 0;
    std::vector<Threshold> thresholds;
};

struct IsolationSpec {
    std::vector<At<std::string>> bdfs;
    std::string dump;       // lspci dump instead of the live system
    std::string sysfs_root; // a copied /sys instead of the live system
    bool allow_warnings = true;
    bool require_isolated = true;
};

enum class Kill { borrower, borrower_daemon, lender_daemon };
const char* to_string(Kill kill) noexcept; // "borrower", "borrower-daemon", "lender-daemon"

struct RecoverySpec {
    At<lending::Fdid> device;
    At<std::uint32_t> borrower;
    std::vector<Kill> kills; // in this order
    std::chrono::milliseconds bound{10000};
};

struct LoadSpec {
    std::vector<At<lending::Fdid>> devices;
    std::vector<At<std::uint32_t>> borrowers; // one borrow loop per borrower and device
    std::chrono::milliseconds duration{2000};
    std::optional<At<std::uint32_t>> dma_local;  // DMA streams between these two nodes
    std::optional<At<std::uint32_t>> dma_remote; // (dma-bw --duration); absent: no DMA
    std::uint64_t dma_size = 64 * 1024;
};

// N lend/unlend cycles of a real host device through `dis-tool device lend|unlend` (lib/hostlend):
// after each lend the device is bound to vfio-pci, after each unlend to its original binding
// again, and `check` (a shell command: "the device works") exits 0.
struct RebindSpec {
    At<std::string> bdf;
    unsigned cycles = 1;
    std::optional<At<std::uint32_t>> node; // the lender node whose pool gets it
    std::string sysfs_root;                // tests: a copy of /sys ("" the live one)
    std::string proc_root;                 // tests: mounts and swaps from this /proc
    std::string state_dir;                 // the binding records ("" lend's default)
    std::string check;                     // run with /bin/sh -c after each cycle
};

struct DiagSpec {
    bool strict = false;                   // a warning fails its case too
    std::optional<std::string> config;     // the fabric config the live fabric is judged against
    std::optional<std::string> sysfs_root; // host PCIe checks ("/sys" live); absent: none
    std::vector<std::string> lendable;     // host BDFs whose IOMMU/ACS isolation is checked
};

struct Step {
    std::string name; // the section's name (JUnit classname PLAN.NAME)
    StepKind kind = StepKind::diag;
    int line = 0;
    DeviceCycleSpec device_cycle;
    BenchSpec bench;
    IsolationSpec isolation;
    RecoverySpec recovery;
    LoadSpec load;
    RebindSpec rebind;
    DiagSpec diag;
};

struct Plan {
    std::string name;
    std::string source; // the file, for messages
    std::string fabric_dir;
    std::vector<Step> steps;
};

// Throws Error(invalid_input) "FILE:LINE: key 'KEY': why" for a syntax error, an unknown key,
// a wrong type or value, an unknown step kind, bench test or threshold field; not_found when
// the file does not exist.
Plan load_plan(const std::string& path);
Plan parse_plan(std::string_view text, const std::string& source);

// The plan against the fabric in `fabric_dir`, before anything runs: every device it names is
// in the pool and every node it names answers; Error(invalid_input) "FILE:LINE: key 'KEY':
// ..." otherwise (fabric_down when no node answers at all).
void check_plan(const Plan& plan, const std::string& fabric_dir);

// ---- running --------------------------------------------------------------------------------

enum class Outcome { passed, failed, skipped };
const char* to_string(Outcome outcome) noexcept;

// One check of a step: a JUnit testcase.
struct CaseResult {
    std::string name;
    Outcome outcome = Outcome::passed;
    std::string message; // why it failed or was skipped
    double seconds = 0;
    nlohmann::json detail; // measured values (bench results, recovery times, ...)
};

struct StepResult {
    std::string name;
    StepKind kind = StepKind::diag;
    Outcome outcome = Outcome::passed; // failed if any case failed
    double seconds = 0;
    std::vector<CaseResult> cases;
};

struct RunReport {
    std::string plan;
    std::string source;
    std::string fabric_dir;
    std::int64_t started_ms = 0; // unix ms
    double seconds = 0;
    bool interrupted = false; // stopped by RunOptions::stop; later steps skipped
    std::vector<StepResult> steps;
    std::vector<std::string> returned; // leases the cleanup had to return ("0x80000 lease 7")
};
bool all_passed(const RunReport& report) noexcept;

struct RunOptions {
    std::string fabric_dir;
    // The dis-tool binary: started as `bench serve` (the responder of bench and load steps)
    // and as `device borrow --hold` (the borrowers recovery kills).
    std::string tool_path;
    // Called before each step (index from 0) and once more with index == steps.size() at
    // the end.
    std::function<void(std::size_t index, std::size_t total, const std::string& step)> on_step;
    // Set (e.g. by SIGINT): the run stops after the current step, returns every device it
    // borrowed and reports the remaining steps as skipped.
    const std::atomic<bool>* stop = nullptr;
};

RunReport run_plan(const Plan& plan, const RunOptions& options);

// The fixed schema of dis-tool-qualify(1), JSON REPORT.
nlohmann::json to_json(const RunReport& report);
// <testsuites><testsuite name=PLAN><testcase classname="PLAN.STEP" name=... time=S>, a
// failure as <failure message=...>message</failure>, a skipped case as <skipped message=.../>.
std::string to_junit(const RunReport& report);
// One row per step: STEP, KIND, RESULT, CASES, FAILED, TIME_S, MESSAGE (the first failure).
output::Table to_table(const RunReport& report);

} // namespace dis::qualify
