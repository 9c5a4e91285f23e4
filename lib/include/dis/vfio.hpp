// A real PCIe function bound to vfio-pci, as a lender node's disd hosts it (issue 10, SmartIO
// over VFIO): its BARs are VFIO regions a borrower maps through the device fd, device DMA
// reaches borrower memory through VFIO_IOMMU_MAP_DMA at IO virtual addresses allocated here,
// its interrupts arrive on eventfds (VFIO_DEVICE_SET_IRQS) and its reset is VFIO_DEVICE_RESET.
// No threads of its own: disd waits on the interrupt eventfds (lib/vfio/README.md).
#pragma once

#include "dis/endpoint.hpp"
#include "dis/unique_fd.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dis::vfio {

// "0000:04:00.0" (domain optional on input: "04:00.0"); nullopt for anything else. Lower case.
std::optional<std::string> normalize_bdf(std::string_view text);

// What sysfs says of a function, read before VFIO opens it.
struct PciIdentity {
    std::string bdf;
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::uint32_t class_code = 0; // 24 bits
    int iommu_group = -1;         // -1: none (no IOMMU: VFIO cannot take it)
    std::string driver;           // empty: no driver bound
};
// Reads SYSFS_ROOT/bus/pci/devices/BDF/{vendor,device,class,iommu_group,driver}. Throws
// dis::Error: not_found (no such device), invalid_input (unreadable or malformed attributes).
PciIdentity read_identity(const std::string& sysfs_root, const std::string& bdf);

// IO virtual addresses for device DMA: page-granular ranges in [base, limit) (and inside the
// usable ranges VFIO reports, if given), each followed by at least one unmapped guard page, so
// an address just past a mapping faults in the IOMMU. Allocation is next-fit from a cursor
// that only moves forward until the window is used up, so a freed address is not handed out
// again soon (a stale address faults instead of reaching new memory). Not thread safe.
class IovaAllocator {
public:
    static constexpr std::uint64_t k_default_base = 0x10'0000;      // 1 MiB
    static constexpr std::uint64_t k_default_limit = 0x1'0000'0000; // 4 GiB: 32-bit DMA reaches it
    static constexpr std::uint64_t k_page = 4096;

    explicit IovaAllocator(std::uint64_t base = k_default_base,
                           std::uint64_t limit = k_default_limit);
    // Inclusive [start, end] ranges the IOMMU can translate (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
    // empty: the whole window.
    void set_usable(std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges);
    // A range of `size` bytes rounded up to pages; nullopt when none is left.
    std::optional<std::uint64_t> allocate(std::uint64_t size);
    bool release(std::uint64_t iova); // false: nothing allocated there
    void clear();
    std::size_t count() const { return m_used.size(); }
    // The allocation holding [addr, addr + len), if one holds all of it: (start, size).
    std::optional<std::pair<std::uint64_t, std::uint64_t>> find(std::uint64_t addr,
                                                                std::uint64_t len) const;

private:
    std::optional<std::uint64_t> fit(std::uint64_t from, std::uint64_t size) const;
    std::uint64_t m_base;
    std::uint64_t m_limit;
    std::uint64_t m_cursor;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> m_usable; // inclusive ranges
    std::map<std::uint64_t, std::uint64_t> m_used;                 // start -> page-rounded size
};

// One VFIO region of the device (VFIO_DEVICE_GET_REGION_INFO).
struct Region {
    int index = 0;
    std::uint64_t size = 0;
    std::uint64_t offset = 0; // in the device fd
    bool readable = false;
    bool writable = false;
    bool mappable = false; // VFIO_REGION_INFO_FLAG_MMAP: a borrower can mmap it
};

// The BARs of a function from its regions: six entries (BAR0..5), size 0 for an absent BAR;
// the count is one past the last BAR with a size (what a borrower sees as num_bars).
struct BarTable {
    std::vector<Region> bars;
    int count() const;
    const Region* bar(int index) const; // nullptr if absent
};
BarTable bar_table(const std::vector<Region>& regions);

// The interrupts disd enables: MSI if the function has it, else MSI-X, else none (INTx is
// level-triggered and needs an unmask after each interrupt: not offered).
struct IrqChoice {
    endpoint::IrqType type = endpoint::IrqType::msi;
    std::uint32_t count = 0; // 0: no interrupts
};
IrqChoice choose_irqs(std::uint32_t msi_count, std::uint32_t msix_count);

struct OpenOptions {
    std::string sysfs_root = "/sys";
    std::string vfio_dir = "/dev/vfio";
};

// An open VFIO function: container (TYPE1 IOMMU), group and device fds, owned here.
class Device {
public:
    // Opens /dev/vfio/vfio and the function's group, checks the group is viable (every member
    // bound to vfio-pci or a bridge driver), sets the TYPE1 IOMMU, gets the device fd, reads
    // its regions, enables memory decoding and bus mastering, and enables its interrupts on
    // eventfds. Throws dis::Error naming the step that failed.
    static std::unique_ptr<Device> open(const std::string& bdf, const OpenOptions& options = {});
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    const PciIdentity& identity() const { return m_identity; }
    int bar_count() const { return m_bars.count(); }
    std::uint64_t bar_size(int bar) const;
    const Region* bar(int index) const { return m_bars.bar(index); }
    int device_fd() const { return m_device.get(); }

    // Maps memory for the device's DMA: VFIO_IOMMU_MAP_DMA of the mapping's pages at a new IOVA;
    // returns the IO address of the mapping's first byte (its offset in the page kept). The
    // mapping stays alive while mapped. Thread safe.
    std::uint64_t map_dma(std::shared_ptr<endpoint::Mapping> mapping);
    bool unmap_dma(std::uint64_t io_addr); // VFIO_IOMMU_UNMAP_DMA; false if nothing there
    void unmap_all();
    std::size_t dma_count() const;

    IrqChoice irqs() const { return m_irq; }
    // One eventfd per vector (vector i is interrupt number i + 1, as pci-epf-test counts).
    const std::vector<UniqueFd>& irq_fds() const { return m_irq_fds; }

    // Every DMA mapping removed, then VFIO_DEVICE_RESET; bus mastering and memory decoding on
    // again after it. `failed` when the device has no reset (VFIO_DEVICE_FLAGS_RESET) or the
    // kernel refuses it.
    endpoint::ResetResult reset(std::string* why = nullptr);
    bool reset_supported() const { return m_reset_flag; }

private:
    Device() = default;
    void enable_master();
    void enable_irqs();

    PciIdentity m_identity;
    UniqueFd m_container;
    UniqueFd m_group;
    UniqueFd m_device;
    std::vector<Region> m_regions;
    BarTable m_bars;
    Region m_config;
    bool m_reset_flag = false;
    IrqChoice m_irq;
    std::vector<UniqueFd> m_irq_fds;

    mutable std::mutex m_mutex; // the IOVA allocator and the DMA mappings
    IovaAllocator m_iova;
    struct Dma {
        std::uint64_t iova = 0; // page aligned
        std::uint64_t size = 0; // page rounded
        std::shared_ptr<endpoint::Mapping> mapping;
    };
    std::map<std::uint64_t, Dma> m_dma; // by IO address handed out
};

} // namespace dis::vfio
