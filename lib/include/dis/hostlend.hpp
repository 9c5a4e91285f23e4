// Lending a real host device (issue 10): everything host-side, over a sysfs root (default
// /sys; tests use temp trees) and a proc root (default /proc: mounts and swaps).
//  - the in-use check: a device (or a member of its IOMMU group, or one of its VFs) with
//    active users: a mounted block device or active swap on it (through partitions and
//    dm/md holders, NVMe multipath heads included), a network interface that is up, the boot
//    VGA/framebuffer/console device. Mandatory: a host whose mounts and swaps cannot be read
//    cannot be proven idle and is refused.
//  - plans: the ordered sysfs writes of lend (driver_override=vfio-pci, unbind, drivers_probe,
//    verify, reset), unlend (restore the recorded binding and override, verify) and vfs
//    (sriov_numvfs, 0 first when changing a nonzero count); execution with rollback to the
//    recorded state when a step fails, reporting which step failed.
//  - the record of a lent device's original binding: one JSON file per BDF under a state dir,
//    written atomically, so that unlend works from a new process.
// Nothing here talks to the fabric; dis-tool adds the lent device to the pool.
#pragma once

#include "dis/pci.hpp"
#include "dis/readiness.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dis::hostlend {

inline constexpr const char* k_vfio_driver = "vfio-pci";

// ---- the in-use check

struct InUseReason {
    pci::Bdf bdf;        // the device in use: the one asked about, a group member or a VF
    std::string kind;    // "mount", "swap", "net", "boot_vga", "framebuffer", "console"
    std::string message; // "mounted / (nvme0n1p2)", "network interface eth0 is up"
};

struct InUseReport {
    pci::Bdf bdf;
    std::vector<pci::Bdf> checked; // the device, its IOMMU group's other members, its VFs
    std::vector<InUseReason> reasons;

    bool in_use() const { return !reasons.empty(); }
    // "in use (mounted /; 0000:02:00.0 (IOMMU group): network interface eth0 is up)".
    std::string summary() const;
};

// Reads the topology's sysfs root (live or --sysfs-root) and `proc_root`/self/mountinfo and
// `proc_root`/swaps. Throws dis::Error: invalid_input for a dump (no sysfs to look at),
// not_found for a BDF not in the topology, os/permission when mounts or swaps cannot be read.
InUseReport check_in_use(const pci::Topology& topology, const pci::Bdf& bdf,
                         const std::string& proc_root = "/proc");

// device check's row: "in_use" error "not ready: in use (mounted /)" when in use, else ok;
// the verdict becomes not_ready when in use.
void add_in_use_finding(pci::ReadinessReport& report, const InUseReport& in_use);

nlohmann::json to_json(const InUseReport& report);

// ---- driver bindings, steps and plans

struct Binding {
    std::optional<std::string> driver;          // bound driver; nullopt: none
    std::optional<std::string> driver_override; // nullopt: none (sysfs reads "(null)")
    bool operator==(const Binding&) const = default;
};
std::string to_string(const Binding& binding); // "driver nvme, no driver_override"

// Reads the device's binding from sysfs. Throws Error(not_found) for a missing device.
Binding read_binding(const std::string& sysfs_root, const pci::Bdf& bdf);

struct Step {
    enum class Kind { write, verify_driver, verify_numvfs };
    Kind kind = Kind::write;
    std::string path;  // relative to the sysfs root ("bus/pci/drivers_probe")
    std::string value; // written (write); expected driver, "" for none (verify_driver);
                       // expected count (verify_numvfs)
    std::string what;  // "unbind from nvme"
};
// "echo 0000:03:00.0 > /sys/bus/pci/drivers_probe", "verify: driver is vfio-pci".
std::string describe(const Step& step, const std::string& sysfs_root);

struct Plan {
    std::string action; // "lend", "unlend", "vfs"
    pci::Bdf bdf;
    Binding original; // the binding before the plan (lend: what the record keeps)
    Binding target;   // the binding after it (vfs: unchanged)
    std::vector<std::string> reset_methods; // lend: the device's reset_method, in order
    int original_vfs = 0;                   // vfs only
    int target_vfs = 0;                     // vfs only
    std::vector<Step> steps;
};

// lend: record, driver_override=vfio-pci, unbind (when bound), drivers_probe, verify bound to
// vfio-pci, reset (when the device has reset methods). Throws Error(invalid_input) when the
// device is bound to vfio-pci already.
Plan lend_plan(const std::string& sysfs_root, const pci::Bdf& bdf);
// unlend: driver_override back to the recorded value, unbind from vfio-pci, bind to the
// recorded driver (none: left unbound), verify.
Plan unlend_plan(const std::string& sysfs_root, const pci::Bdf& bdf, const Binding& recorded);
// vfs: sriov_numvfs (0 first when a nonzero count changes to another nonzero one), verify.
// Throws Error(invalid_input) without SR-IOV or with count > sriov_totalvfs.
Plan vfs_plan(const std::string& sysfs_root, const pci::Bdf& bdf, int count);
// The steps that bring the device from its live binding back to `to` (lend's and unlend's
// rollback).
std::vector<Step> restore_steps(const std::string& sysfs_root, const pci::Bdf& bdf,
                                const Binding& to);

nlohmann::json to_json(const Plan& plan, const std::string& sysfs_root);

// ---- execution

// The kernel's side: writes and the driver link. Real: plain file writes under the root.
class Sysfs {
public:
    virtual ~Sysfs() = default;
    virtual const std::string& root() const = 0;
    // Throws Error(os/permission/not_found) with the kernel's errno text.
    virtual void write(const std::string& path, const std::string& value) = 0;
    virtual std::optional<std::string> driver(const pci::Bdf& bdf) = 0;
    virtual std::string read(const std::string& path) = 0; // trimmed; "" when missing
};
class RealSysfs final : public Sysfs {
public:
    explicit RealSysfs(std::string root = "/sys") : m_root(std::move(root)) {}
    const std::string& root() const override { return m_root; }
    void write(const std::string& path, const std::string& value) override;
    std::optional<std::string> driver(const pci::Bdf& bdf) override;
    std::string read(const std::string& path) override;

private:
    std::string m_root;
};

struct StepResult {
    std::size_t number = 0; // 1-based in its list
    std::string description;
    bool ok = true;
    std::string error;
};

struct ExecResult {
    bool ok = true;
    std::optional<std::size_t> failed_step; // 1-based
    std::string error;                      // the failed step's error
    std::vector<StepResult> steps;          // run, the failed one last
    std::vector<StepResult> rollback;       // run after a failure
    bool rolled_back = false;               // the rollback's verification held
    Binding after;                          // the live binding at the end
};

struct ExecOptions {
    std::chrono::milliseconds verify_timeout{10000}; // drivers probe asynchronously (nvme)
    // Called after each step and each rollback step ("step" or "rollback"), e.g. for the audit log.
    std::function<void(const std::string& phase, const StepResult&)> on_step;
};

// Runs the plan; on a failed step rolls back (lend/unlend: restore_steps to plan.original;
// vfs: the original count) and reports both.
ExecResult execute(const Plan& plan, Sysfs& sysfs, const ExecOptions& options = {});
// Runs steps after a failure elsewhere (the pool refused the device): every step is tried.
ExecResult run_rollback(const pci::Bdf& bdf, const std::vector<Step>& steps, Sysfs& sysfs,
                        const ExecOptions& options = {});

nlohmann::json to_json(const ExecResult& result);

// ---- the record of a lent device

struct Record {
    pci::Bdf bdf;
    Binding original;
    std::vector<std::string> reset_methods;
    std::string name;          // the pool's device name
    std::uint32_t node_id = 0; // the lender node
    std::string fabric_dir;
    std::optional<std::uint32_t> fdid; // once the pool took it
    std::int64_t lent_ms = 0;          // unix milliseconds
};
nlohmann::json to_json(const Record& record);
Record record_from_json(const nlohmann::json& j); // throws Error(invalid_input)

// As root /run/dis/hostlend, else $XDG_RUNTIME_DIR/dis/hostlend (bindings do not survive a
// reboot, so neither do the records).
std::string default_state_dir();
std::string record_path(const std::string& state_dir, const pci::Bdf& bdf);
// Atomic: a temp file in the same dir, fsync, rename. Creates the dir (0700).
void save_record(const std::string& state_dir, const Record& record);
std::optional<Record> load_record(const std::string& state_dir, const pci::Bdf& bdf);
void remove_record(const std::string& state_dir, const pci::Bdf& bdf);

} // namespace dis::hostlend
