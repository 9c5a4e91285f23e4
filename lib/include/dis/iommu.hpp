// IOMMU groups and per-device isolation verdicts, read from sysfs or predicted from ACS.
//
// A device can be handed to a guest or a borrower only together with its whole IOMMU
// group. The kernel forms groups in pci_device_group() (drivers/iommu/iommu.c): DMA
// aliases through PCIe-to-PCI and conventional bridges, then upstream until a bridge whose
// whole path to the root has ACS with REQ_ACS_FLAGS = SrcValid|ReqRedir|CmpltRedir|
// UpstreamFwd enabled (pci_acs_path_enabled), then multifunction siblings without ACS.
// When the snapshot carries the kernel's groups they are used as they are; otherwise
// (dumps, no IOMMU) groups are predicted with the same rules and labelled as predicted.
#pragma once

#include "dis/pci.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace dis::pci {

// The outcome of the kernel's pci_acs_enabled(dev, REQ_ACS_FLAGS) for one device.
struct AcsCheck {
    bool enabled = false;             // the device does not let peer traffic bypass isolation
    bool applicable = true;           // false: ACS cannot help (conventional PCI, PCIe-to-PCI)
    bool has_capability = false;      // an ACS extended capability is present
    std::vector<std::string> missing; // of "SrcValid", "ReqRedir", "CmpltRedir", "UpstreamFwd"
    std::string reason;               // empty when enabled
};
AcsCheck check_acs(const Device& device);

// A bridge on a device's path to the root that breaks ACS isolation.
struct AcsGap {
    Bdf bridge;
    bool has_capability = false;
    std::vector<std::string> missing;
    std::string reason;
};

struct IommuGroup {
    int id = 0;
    std::vector<Bdf> devices;
};

struct DeviceIsolation {
    Bdf bdf;
    std::optional<int> group;         // nullopt when the kernel put the device in no group
    bool isolated = false;            // no other non-bridge device in its group
    std::vector<Bdf> shares_with;     // other members of the group (bridges included)
    std::vector<AcsGap> acs_gaps;     // upstream bridges without the required ACS, nearest first
    std::optional<Bdf> alias_bridge;  // PCIe-to-PCI/conventional bridge aliasing its requester ID
    std::vector<std::string> reasons; // human-readable, empty when isolated and nothing to say
};

struct IommuReport {
    bool iommu_present = false; // the snapshot shows kernel IOMMU groups
    bool predicted = false;     // groups below were predicted from ACS, not read from sysfs
    std::string note;           // plain statement about the IOMMU (e.g. "no IOMMU ...")
    std::vector<IommuGroup> groups;
    std::vector<DeviceIsolation> devices;

    const DeviceIsolation* find(const Bdf& bdf) const;
};

// True when `source` is a sysfs tree whose kernel/iommu_groups directory has groups.
bool iommu_groups_present(const Source& source);

// The groups the kernel would form from the snapshot's config space alone, numbered in
// BDF order of their first member. Device-specific ACS quirks of drivers/pci/quirks.c and
// DMA-alias quirks are not modelled, so real groups can be finer on some chipsets.
std::vector<IommuGroup> predict_iommu_groups(const Topology& topology);

// Groups (kernel's when present, else predicted) and an isolation verdict per device.
IommuReport analyze_iommu(const Topology& topology);

// Schema in dis-tool-iommu(1).
nlohmann::json to_json(const IommuReport& report);
nlohmann::json to_json(const DeviceIsolation& isolation);

} // namespace dis::pci
