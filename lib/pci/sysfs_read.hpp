// Reading devices from a sysfs tree (live /sys or a copy) without libpci (internal to libdis).
// An exporter scrape reads every device of the machine each time, so each device costs its
// link's target and one open and read per attribute, relative to its parent's directory
// (opened once per scan); devices are independent of each other and may be read from several
// threads at once.
#pragma once

#include "dis/pci.hpp"
#include "dis/unique_fd.hpp"

#include <string>
#include <unordered_map>
#include <vector>

namespace dis::pci::detail {

// A checked sysfs root and the devices its bus/pci/devices directory lists.
struct SysfsTree {
    std::string root;
    std::string devices_dir;      // root + "/bus/pci/devices"
    std::string devices_resolved; // devices_dir with every link followed
    UniqueFd devices_fd;          // devices_dir, O_PATH
    // A copied tree: every device must stay inside it once links are followed.
    bool copy = false;
    std::string base; // root with every link followed (copies only)
    struct Entry {
        Bdf bdf;
        std::string name; // as listed
    };
    std::vector<Entry> entries;
};

// Checks `root` and lists its devices. Throws dis::Error: not_found for a missing root or
// bus/pci/devices, os when unreadable, invalid_input for an entry that is not a PCI address.
SysfsTree open_sysfs_tree(const std::string& root);

// The directories that devices' links point into (a root port's directory holds its
// functions' directories), each opened once per scan and checked against a copied tree's
// root once: a device's own directory is then one component away. One per thread.
class SysfsParentDirs {
public:
    struct Dir {
        UniqueFd fd;          // invalid when the directory cannot be opened
        bool inside = true;   // within a copied tree's root, every link followed
        std::string resolved; // where it is, for messages (copies only)
    };
    const Dir& get(const SysfsTree& tree, const std::string& path);

private:
    std::unordered_map<std::string, Dir> m_dirs;
};

// Everything one device's directory says: config space (decoded), the kernel's ids and class,
// driver, AER counters, the placement attributes when asked, and the parent the directory
// lies under. `parent_known` is set when the entry is a link, so that its parent is the
// directory it points into (false: find the parent from bridge bus ranges).
// Throws dis::Error(invalid_input) when a copied tree's entry leads outside the tree.
void read_sysfs_device(const SysfsTree& tree, const SysfsTree::Entry& entry,
                       const ScanOptions& options, SysfsParentDirs& dirs, Device& dev,
                       bool& parent_known);

} // namespace dis::pci::detail
