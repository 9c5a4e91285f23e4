// Host PCIe inspection: the device model and the sources it is read from.
//
// A Topology is a plain snapshot of the hierarchy read through libpci from one source (the
// live system, an `lspci -x` dump, or a copied /sys tree) plus the sysfs attributes libpci
// does not decode. Everything else (tree drawing, IOMMU verdicts, P2P, lending readiness)
// works on this snapshot only, so it is testable without hardware.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dis::pci {

// Bus/device/function address. Printed with the domain ("0000:03:00.0"); parsed with or
// without it ("03:00.0").
struct Bdf {
    std::uint32_t domain = 0;
    std::uint8_t bus = 0;
    std::uint8_t device = 0;
    std::uint8_t function = 0;

    // Throws dis::Error(invalid_input) naming the bad text.
    static Bdf parse(std::string_view text);
    static std::optional<Bdf> try_parse(std::string_view text);
    std::string to_string() const;

    auto operator<=>(const Bdf&) const = default;
};

// PCIe capability device/port type (PCIe Base 6.0, 7.5.3.2).
enum class PortType {
    endpoint,
    legacy_endpoint,
    root_port,
    upstream_port,
    downstream_port,
    pcie_to_pci_bridge,
    pci_to_pcie_bridge,
    rc_integrated_endpoint,
    rc_event_collector,
    unknown,
};
// Snake-case name used in JSON ("root_port"); `describe` gives lspci's wording.
const char* to_string(PortType type) noexcept;
const char* describe(PortType type) noexcept;

// Link capability and status. Speeds are spelled as lspci does: "2.5GT/s", "5GT/s", "8GT/s",
// "16GT/s", "32GT/s", "64GT/s" ("unknown" for reserved encodings).
struct Link {
    std::string max_speed;
    int max_width = 0;
    std::string speed;
    int width = 0;
    // The link trained below what both ends support: current speed or width below the lower
    // of the two ends' capabilities (only the device's own capability when the partner is
    // not visible).
    bool downgraded = false;
    // LnkSta DLActive, when the port can report it (LnkCap LLActRep+); a port whose data
    // link is down has no trained link and is never `downgraded`.
    std::optional<bool> dl_active;
};

// ACS capability or control bits (PCIe Base 6.0, 7.7.8), named as lspci names them.
struct AcsBits {
    bool src_valid = false;
    bool trans_blk = false;
    bool req_redir = false;
    bool cmplt_redir = false;
    bool upstream_fwd = false;
    bool egress_ctrl = false;
    bool direct_trans = false;
};

struct Acs {
    AcsBits cap;
    AcsBits ctl;
};

// The ACS bits in lspci's order, with lspci's names: the one list every report, JSON
// document and check names them from.
struct AcsFlag {
    const char* name; // "SrcValid", "TransBlk", ...
    bool AcsBits::*bit;
};
inline constexpr AcsFlag k_acs_flags[] = {
    {"SrcValid", &AcsBits::src_valid},       {"TransBlk", &AcsBits::trans_blk},
    {"ReqRedir", &AcsBits::req_redir},       {"CmpltRedir", &AcsBits::cmplt_redir},
    {"UpstreamFwd", &AcsBits::upstream_fwd}, {"EgressCtrl", &AcsBits::egress_ctrl},
    {"DirectTrans", &AcsBits::direct_trans},
};
// The name of one bit ("ReqRedir" for &AcsBits::req_redir).
const char* acs_name(bool AcsBits::*bit) noexcept;
// "SrcValid+ TransBlk- ReqRedir+ ..." as lspci -vvv prints ACSCap and ACSCtl.
std::string acs_text(const AcsBits& bits);

// Lower-case hexadecimal, zero-padded to at least `digits` ("8086", "0a", "3800000000"): the
// one formatter of ids, class codes, bus numbers and addresses.
std::string to_hex(std::uint64_t value, int digits = 1);

// AER status registers, listing set bits by lspci's names (DLP, SDES, ..., RxErr, BadTLP, ...),
// and the kernel's aer_dev_correctable/_nonfatal/_fatal counters when sysfs has them.
struct Aer {
    std::vector<std::string> uncorrectable_status;
    std::vector<std::string> correctable_status;
    // file name ("aer_dev_correctable") -> counter name ("RxErr", "TOTAL_ERR_COR") -> value
    std::map<std::string, std::map<std::string, std::uint64_t>> counters;
    // Root ports and event collectors: errors their hierarchy reported to them, by sysfs file
    // ("aer_rootport_total_err_cor", "..._nonfatal", "..._fatal") -> count.
    std::map<std::string, std::uint64_t> rootport_totals;
    // Only the sysfs counters are known: the AER capability itself was not read (none, or
    // extended config space unreadable), so the status lists say nothing.
    bool counters_only = false;

    // Any status bit set or any nonzero sysfs counter.
    bool has_errors() const;
};

struct Bar {
    int index = 0;
    std::uint64_t base = 0;
    std::uint64_t size = 0;
    bool io = false;
    bool is_64bit = false;
    bool prefetchable = false;
    // Reported by the kernel (sysfs `resource`) while the function's own BAR register reads
    // zero, lspci's "[virtual]": an SR-IOV VF's BARs live in its PF's SR-IOV capability.
    bool is_virtual = false;
};

struct Sriov {
    std::uint16_t initial_vfs = 0;
    std::uint16_t total_vfs = 0;
    std::uint16_t num_vfs = 0;
    std::uint16_t vf_device_id = 0;
};

struct Device {
    Bdf bdf;
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::uint16_t subsystem_vendor_id = 0;
    std::uint16_t subsystem_device_id = 0;
    std::uint8_t revision = 0;
    std::uint8_t prog_if = 0;
    std::uint16_t class_id = 0; // base class << 8 | subclass
    std::string vendor_name;
    std::string device_name;
    std::string class_name;
    std::uint8_t header_type = 0; // 0 normal, 1 PCI-PCI bridge, 2 CardBus (no MF bit)
    bool multifunction = false;

    std::optional<Bdf> parent;               // upstream bridge; nullopt at a root bus
    std::optional<std::uint8_t> primary_bus; // bridges only
    std::optional<std::uint8_t> secondary_bus;
    std::optional<std::uint8_t> subordinate_bus;

    std::optional<PortType> port_type; // nullopt without a PCIe capability
    std::optional<Link> link;          // nullopt without a PCIe capability
    bool flr_capable = false;          // DevCap FLReset+ or AF FLR
    std::optional<Acs> acs;
    std::optional<Aer> aer;
    std::optional<Sriov> sriov;
    std::vector<Bar> bars;

    // From sysfs only (absent in dumps).
    std::optional<std::string> driver;
    std::optional<int> numa_node;
    std::optional<int> iommu_group;
    std::vector<std::string> reset_methods;
    std::optional<Bdf> physfn; // an SR-IOV virtual function's PF (sysfs `physfn` link)

    // Bytes of configuration space the source provided (64, 256 or 4096 normally).
    std::size_t config_size = 0;
    // Offset of the PCIe capability (0 without one); lets readers locate more registers.
    std::uint8_t pcie_cap_offset = 0;

    bool is_bridge() const { return header_type == 1 || header_type == 2; }
};

// Where a snapshot comes from.
struct Source {
    enum class Kind { live, dump, sysfs };
    Kind kind = Kind::live;
    std::string path; // dump file, or the root of a copied /sys ("/sys" when live)

    static Source live() { return {Kind::live, "/sys"}; }
    static Source dump(std::string file) { return {Kind::dump, std::move(file)}; }
    static Source sysfs(std::string root) { return {Kind::sysfs, std::move(root)}; }
    // The /sys root to read attributes from, or nullopt for a dump.
    std::optional<std::string> sysfs_root() const;
};

// A snapshot of the hierarchy; devices sorted by BDF.
class Topology {
public:
    Topology() = default;
    Topology(Source source, std::vector<Device> devices);

    const Source& source() const { return m_source; }
    const std::vector<Device>& devices() const { return m_devices; }
    const Device* find(const Bdf& bdf) const;
    // Throws dis::Error(not_found) naming the BDF.
    const Device& get(const Bdf& bdf) const;
    std::vector<const Device*> children(const Bdf& bdf) const;
    std::vector<const Device*> roots() const;
    // The device's upstream bridges, nearest first, up to the root port or host bridge.
    std::vector<const Device*> upstream_path(const Bdf& bdf) const;

private:
    Source m_source;
    std::vector<Device> m_devices;
    std::map<Bdf, std::size_t> m_index;
};

// What scan() reads from sysfs besides config space. Everything by default; a metrics scrape
// of 1,000+ devices every few seconds skips what it does not export.
struct ScanOptions {
    bool placement = true; // NUMA node, IOMMU group, reset methods, BAR sizes, physfn
    bool names = true;     // vendor, device and class names (pci.ids is parsed on each scan)
};

// Reads every device from `source`. Throws dis::Error: not_found for a missing dump or sysfs
// root, permission when unreadable, invalid_input for a malformed dump.
Topology scan(const Source& source, const ScanOptions& options = {});

// The fixed JSON object of one device (schema in dis-tool-pci(1)).
nlohmann::json to_json(const Device& device);

// The hierarchy as `lspci -t` groups it: one root per top-level bus, children by parent.
struct TreeNode {
    const Device* device = nullptr;
    std::vector<TreeNode> children;
};
struct TreeRoot {
    std::uint32_t domain = 0;
    std::uint8_t bus = 0;
    std::vector<TreeNode> devices;
};
std::vector<TreeRoot> build_tree(const Topology& topology);

// Text rendering of the tree, one device per line with link speed/width and marks for
// downgraded links ("!downgraded") and AER errors ("!aer"); ends with a newline per line.
std::string render_tree_text(const Topology& topology);
// JSON rendering: [{"domain", "bus", "devices": [device object + "children": [...]]}].
nlohmann::json tree_to_json(const Topology& topology);

// One-line link summary: "8GT/s x4", or "2.5GT/s x1 (max 8GT/s x4)" below its capability.
std::string describe_link(const Link& link);

} // namespace dis::pci
