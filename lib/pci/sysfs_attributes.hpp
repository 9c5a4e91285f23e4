// One PCI device's directory in a sysfs tree (internal to libdis): where its attributes are
// opened from, and the readers of those a scan takes.
#pragma once

#include "dis/pci.hpp"
#include "dis/unique_fd.hpp"

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace dis::pci::detail {

// Where a device's attributes are opened from: usually its parent's directory (opened once per
// scan) with "BDF/" before each name, resolved with RESOLVE_NO_SYMLINKS, so that the device's
// own directory is never opened and closed (two system calls of the twenty a device costs) and
// a device directory that is itself a link, which might lead out of a copied tree, is refused
// by the kernel (ELOOP) to be taken the long way; else the device's own directory.
class DeviceDir {
public:
    DeviceDir() = default;
    explicit DeviceDir(UniqueFd own) : m_own(std::move(own)), m_fd(m_own.get()) {}
    // `name` in the directory `parent_fd` (borrowed: it must outlive this).
    DeviceDir(int parent_fd, const std::string& name) : m_fd(parent_fd), m_prefix(name + "/") {}

    bool valid() const { return m_fd >= 0; }
    bool beneath() const { return !m_prefix.empty(); }

    // A descriptor of the attribute, or -1 with errno.
    int open(const char* attr) const;
    ssize_t readlink(const char* attr, char* buf, std::size_t size) const;

    // Whether this kernel resolves paths with openat2(2) (Linux 5.6), which the parent's-
    // directory way needs; false from the first sign that it does not (ENOSYS, or a filter
    // that refuses the call), which `errno_of_open` tells.
    static bool openat2_usable();
    static void check_openat2(int errno_of_open);

private:
    UniqueFd m_own;
    int m_fd = -1;
    std::string m_prefix; // "0000:01:00.0/" relative to the parent, "" in the device's own
};

// A sysfs integer ("0x8086", "12", "-1") without its trailing white space.
std::optional<long long> sysfs_integer(const std::string& s);

// Bytes of config space the open config file gives (a whole number of dwords), read into
// `buf`; 0 for an invalid descriptor.
std::size_t read_config_file(const UniqueFd& f, std::array<std::uint8_t, 4096>& buf);

// The kernel's vendor, device and class (and the subsystem ids when config space has none).
void read_kernel_ids(const DeviceDir& dir, Device& dev);
// The driver bound, the AER counters and a root port's AER totals.
void read_driver_and_aer(const DeviceDir& dir, Device& dev);
// NUMA node, IOMMU group, reset methods, BAR sizes and virtual BARs, physfn.
void read_placement(const DeviceDir& dir, Device& dev);

} // namespace dis::pci::detail
