// A fake /sys for tests: PCI devices with binary config space and the attributes the kernel
// exposes (driver, iommu_group, numa_node, reset_method, AER counters, link speeds), laid
// out like the real thing so libpci's sysfs method and our attribute readers both work:
//
//   <root>/devices/pci0000:00/0000:00:01.0/0000:01:00.0/{config,vendor,resource,...}
//   <root>/bus/pci/devices/0000:01:00.0 -> ../../../devices/pci0000:00/.../0000:01:00.0
//   <root>/bus/pci/drivers/<name>/           (target of each device's driver link)
//   <root>/kernel/iommu_groups/<n>/devices/<bdf> -> the device directory
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dis::test {

// PCIe Device/Port Type values of the PCIe capability (PCIe Base 6.0, 7.5.3.2).
enum class PcieType : std::uint8_t {
    endpoint = 0x0,
    legacy_endpoint = 0x1,
    rc_integrated_endpoint = 0x9,
    rc_event_collector = 0xa,
    root_port = 0x4,
    upstream_port = 0x5,
    downstream_port = 0x6,
    pcie_to_pci_bridge = 0x7,
    pci_to_pcie_bridge = 0x8,
};

// ACS capability/control bits (PCIe Base 6.0, 7.7.8.2/3).
namespace acs {
inline constexpr std::uint16_t src_valid = 1 << 0;
inline constexpr std::uint16_t trans_blk = 1 << 1;
inline constexpr std::uint16_t req_redir = 1 << 2;
inline constexpr std::uint16_t cmplt_redir = 1 << 3;
inline constexpr std::uint16_t upstream_fwd = 1 << 4;
inline constexpr std::uint16_t egress_ctrl = 1 << 5;
inline constexpr std::uint16_t direct_trans = 1 << 6;
inline constexpr std::uint16_t required = src_valid | req_redir | cmplt_redir | upstream_fwd;
} // namespace acs

// A 4 KiB configuration space image, synthesised field by field or taken from a dump.
class ConfigSpace {
public:
    // class_code is base << 16 | sub << 8 | prog-if; header_type 0 (normal) or 1 (bridge).
    ConfigSpace(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code,
                std::uint8_t header_type = 0);
    // The bytes of `bdf` ("03:00.0" or "0000:03:00.0") from an `lspci -x...` dump file.
    static ConfigSpace from_dump(const std::filesystem::path& dump, const std::string& bdf);

    ConfigSpace& multifunction(bool on = true);
    ConfigSpace& bus_numbers(std::uint8_t primary, std::uint8_t secondary,
                             std::uint8_t subordinate);
    // A memory BAR (64-bit uses index and index + 1) or I/O BAR; the size goes to `resource`.
    ConfigSpace& memory_bar(int index, std::uint64_t base, std::uint64_t size, bool is_64bit,
                            bool prefetchable);
    ConfigSpace& io_bar(int index, std::uint32_t base, std::uint32_t size);
    // Sets a BAR size for `resource` (dump images carry no sizes).
    ConfigSpace& bar_size(int index, std::uint64_t size);
    // PCIe capability; speeds are encodings (1 = 2.5GT/s ... 5 = 32GT/s).
    ConfigSpace& pcie(PcieType type, bool flr = false, int max_speed = 3, int max_width = 8,
                      int speed = 3, int width = 8);
    ConfigSpace& acs(std::uint16_t cap, std::uint16_t ctl);
    ConfigSpace& aer(std::uint32_t uncorrectable_status, std::uint32_t correctable_status);
    ConfigSpace& sriov(std::uint16_t initial_vfs, std::uint16_t total_vfs, std::uint16_t num_vfs,
                       std::uint16_t vf_device);

    const std::vector<std::uint8_t>& bytes() const { return m_bytes; }
    std::uint16_t vendor() const { return read16(0x00); }
    std::uint16_t device() const { return read16(0x02); }
    std::uint32_t class_code() const;
    std::uint8_t header_type() const { return m_bytes[0x0e] & 0x7f; }
    std::optional<std::uint8_t> secondary_bus() const;
    // The PCIe capability's current/max link speed encoding and width, if present.
    std::optional<std::array<int, 4>> link() const; // max_speed, max_width, speed, width
    // Lines of the sysfs `resource` file for this image.
    std::string resource_file() const;

    std::uint16_t read16(std::size_t off) const;
    std::uint32_t read32(std::size_t off) const;

private:
    ConfigSpace() = default;
    void write16(std::size_t off, std::uint16_t v);
    void write32(std::size_t off, std::uint32_t v);
    std::size_t add_capability(std::uint8_t id, std::size_t length);
    std::size_t add_ext_capability(std::uint16_t id, std::uint8_t version, std::size_t length);
    std::optional<std::size_t> find_capability(std::uint8_t id) const;

    std::vector<std::uint8_t> m_bytes = std::vector<std::uint8_t>(4096, 0);
    std::array<std::uint64_t, 6> m_bar_sizes{};
    std::size_t m_next_cap = 0x40;
    std::size_t m_last_cap = 0;
    std::size_t m_next_ext = 0x100;
    std::optional<std::size_t> m_last_ext;
};

struct FakeDevice {
    std::string bdf;    // "0000:01:00.0"
    std::string parent; // the upstream bridge's BDF; empty on a root bus
    ConfigSpace config;
    std::optional<std::string> driver;
    std::optional<int> iommu_group; // needs SysfsTree::enable_iommu()
    int numa_node = -1;
    std::vector<std::string> reset_methods;   // empty: no reset_method file
    std::map<std::string, std::string> files; // extra attributes ("aer_dev_correctable" -> text)
};

class SysfsTree {
public:
    // Creates the skeleton under `root` (usually a TempDir path + "/sys").
    explicit SysfsTree(std::filesystem::path root);

    const std::filesystem::path& root() const { return m_root; }
    // Creates kernel/iommu_groups; devices with an iommu_group then appear there.
    void enable_iommu();
    // Adds a device; its parent must have been added before.
    void add(const FakeDevice& device);
    // Adds every device of a dump, nested by the bridges' bus numbers; `customize` may set
    // attributes (driver, group, ...) before each device is written.
    void add_dump(const std::filesystem::path& dump,
                  const std::function<void(FakeDevice&)>& customize = {});
    std::filesystem::path device_dir(const std::string& bdf) const;

private:
    std::filesystem::path m_root;
    std::map<std::string, std::filesystem::path> m_dirs;
    bool m_iommu = false;
};

// "0000:01:00.0" from "01:00.0" or "0000:01:00.0".
std::string full_bdf(const std::string& bdf);

} // namespace dis::test
