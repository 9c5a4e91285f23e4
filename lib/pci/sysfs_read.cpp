// A sysfs tree's devices read directly (sysfs_read.hpp): the tree's entries, each device's
// place (its link's target, its parent's directory opened once per scan and, in a copied tree,
// checked to lie inside it, where /proc/self/fd tells where a descriptor really is), and then
// the device's attributes (sysfs_attributes.hpp).
#include "sysfs_read.hpp"

#include "decode.hpp"
#include "sysfs_attributes.hpp"

#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dis::pci::detail {

namespace fs = std::filesystem;

namespace {

// A /sys/bus/pci/devices entry's target, lexically (nullopt when it is not a link).
std::optional<fs::path> link_target(const std::string& entry) {
    char buf[4096];
    ssize_t n = ::readlink(entry.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
        return std::nullopt;
    fs::path target(std::string(buf, static_cast<std::size_t>(n)));
    if (target.is_absolute())
        return target.lexically_normal();
    return (fs::path(entry).parent_path() / target).lexically_normal();
}

// `base`/`target` (or `target` alone when absolute) with "." and ".." taken lexically, the
// way the kernel reads a link's words relative to the directory holding the link.
std::string lexical_join(const std::string& base, std::string_view target) {
    std::vector<std::string_view> parts;
    auto push = [&parts](std::string_view path) {
        while (!path.empty()) {
            const auto slash = path.find('/');
            const std::string_view part = path.substr(0, slash);
            path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
            if (part.empty() || part == ".")
                continue;
            if (part == "..") {
                if (!parts.empty())
                    parts.pop_back();
                continue;
            }
            parts.push_back(part);
        }
    };
    if (target.empty() || target.front() != '/')
        push(base);
    push(target);
    std::string out;
    for (auto part : parts) {
        out += '/';
        out += part;
    }
    return out.empty() ? "/" : out;
}

// Where an open descriptor's file is, every link followed (nullopt without /proc).
std::optional<std::string> descriptor_path(int fd) {
    char self[40];
    std::snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    char buf[4096];
    ssize_t n = ::readlink(self, buf, sizeof buf);
    if (n > 0 && static_cast<std::size_t>(n) < sizeof buf && buf[0] == '/')
        return std::string(buf, static_cast<std::size_t>(n));
    return std::nullopt;
}

// The path `p` leads to with every link followed: one path walk, where weakly_canonical
// walks the path again for each of its components. Falls back to weakly_canonical for a
// dangling link (which it resolves as far as it exists) or without /proc.
std::string resolved_path(const std::string& p) {
    UniqueFd fd(::open(p.c_str(), O_PATH | O_CLOEXEC));
    if (fd.valid())
        if (auto where = descriptor_path(fd.get()))
            return *where;
    std::error_code ec;
    return fs::weakly_canonical(p, ec).string();
}

bool is_inside(const std::string& path, const std::string& base) {
    if (base == "/")
        return !path.empty() && path[0] == '/';
    return path == base || (path.size() > base.size() && path.compare(0, base.size(), base) == 0 &&
                            path[base.size()] == '/');
}

// libpci-style readers and this one follow the links; one leaving a copied tree (an absolute
// /sys/... link) would silently read this machine's devices instead of the copy's.
void refuse_outside(const SysfsTree& tree, const std::string& entry, const std::string& where) {
    if (is_inside(where, tree.base))
        return;
    const auto target = link_target(entry);
    throw Error(ErrorKind::invalid_input,
                "sysfs entry '" + entry + "' links outside '" + tree.root + "' (to " +
                    (target ? target->string() : where) + "); copy /sys with relative links");
}

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

} // namespace

SysfsTree open_sysfs_tree(const std::string& root) {
    SysfsTree tree;
    tree.root = root;
    tree.devices_dir = root + "/bus/pci/devices";
    std::error_code ec;
    if (!fs::exists(root, ec))
        throw Error(ErrorKind::not_found, "sysfs root '" + root + "' does not exist");
    if (!fs::is_directory(tree.devices_dir, ec))
        throw Error(ErrorKind::not_found,
                    "sysfs root '" + root + "' has no bus/pci/devices directory");
    std::unique_ptr<DIR, DirCloser> dir(::opendir(tree.devices_dir.c_str()));
    if (!dir)
        throw os_error("cannot read '" + tree.devices_dir + "'", errno);
    tree.copy = root != "/sys";
    if (tree.copy)
        tree.base = resolved_path(root);
    tree.devices_resolved = resolved_path(tree.devices_dir);
    tree.devices_fd = UniqueFd(::open(tree.devices_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!tree.devices_fd.valid())
        throw os_error("cannot open '" + tree.devices_dir + "'", errno);
    for (;;) {
        errno = 0;
        const dirent* d = ::readdir(dir.get());
        if (!d) {
            if (errno != 0)
                throw os_error("cannot list '" + tree.devices_dir + "'", errno);
            break;
        }
        const std::string name = d->d_name;
        if (name.empty() || name[0] == '.')
            continue;
        // The kernel's spelling alone (0000:00:1c.0): each device listed once, by one name.
        auto bdf = Bdf::try_parse(name);
        if (!bdf || bdf->to_string() != name)
            throw Error(ErrorKind::invalid_input, "unexpected entry '" + name + "' in " +
                                                      tree.devices_dir +
                                                      " (expected PCI addresses)");
        tree.entries.push_back({*bdf, name});
    }
    return tree;
}

const SysfsParentDirs::Dir& SysfsParentDirs::get(const SysfsTree& tree, const std::string& path) {
    auto it = m_dirs.find(path);
    if (it != m_dirs.end())
        return it->second;
    Dir dir;
    dir.fd = UniqueFd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd.valid() && tree.copy) {
        auto where = descriptor_path(dir.fd.get());
        dir.resolved = where ? *where : resolved_path(path);
        dir.inside = is_inside(dir.resolved, tree.base);
    }
    return m_dirs.emplace(path, std::move(dir)).first->second;
}

namespace {

// The device's directory taken the long way, every link followed, then checked: one that is a
// link in turn (rare), or any device when the kernel has no openat2.
DeviceDir open_whole(const SysfsTree& tree, const std::string& path) {
    UniqueFd dir(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (tree.copy) {
        const auto where = dir.valid() ? descriptor_path(dir.get()) : std::nullopt;
        refuse_outside(tree, path, where ? *where : resolved_path(path));
    }
    return DeviceDir(std::move(dir));
}

// The device directory `name` in `parent_fd`: read beneath the parent when the kernel has
// openat2, else opened itself, without following a link (ENOTDIR or ELOOP in errno then).
DeviceDir device_dir_in(int parent_fd, const std::string& name) {
    if (DeviceDir::openat2_usable())
        return DeviceDir(parent_fd, name);
    return DeviceDir(
        UniqueFd(::openat(parent_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)));
}

// Where the device's attributes are read from (invalid: nowhere, a dangling link); sets its
// parent (the directory its link points into, when that is a PCI device's) and
// `parent_known` when the entry is a link. Refuses an entry of a copied tree that leads
// outside it.
DeviceDir locate_device(const SysfsTree& tree, const SysfsTree::Entry& entry, SysfsParentDirs& dirs,
                        Device& dev, bool& parent_known) {
    auto path = [&] { return tree.devices_dir + "/" + entry.name; }; // for messages
    char buf[4096];
    const ssize_t n = ::readlinkat(tree.devices_fd.get(), entry.name.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) {
        // Not a link: a directory of bus/pci/devices itself, inside the tree.
        return device_dir_in(tree.devices_fd.get(), entry.name);
    }
    parent_known = true;
    const std::string target =
        lexical_join(tree.devices_resolved, std::string_view(buf, static_cast<std::size_t>(n)));
    const auto slash = target.rfind('/');
    const std::string parent_path = slash == 0 ? "/" : target.substr(0, slash);
    const std::string name = target.substr(slash + 1);
    if (auto parent =
            Bdf::try_parse(std::string_view(parent_path).substr(parent_path.rfind('/') + 1)))
        dev.parent = *parent;

    const auto& parent_dir = dirs.get(tree, parent_path);
    if (!parent_dir.fd.valid()) {
        // A dangling link: its words, resolved as far as they exist.
        if (tree.copy)
            refuse_outside(tree, path(), resolved_path(target));
        return DeviceDir();
    }
    if (!parent_dir.inside)
        refuse_outside(tree, path(), parent_dir.resolved + "/" + name);
    DeviceDir dir = device_dir_in(parent_dir.fd.get(), name);
    // Beneath its checked parent (a link in turn shows when config is opened), inside it, or
    // nothing (dangling); a link in turn opened itself is taken the long way.
    if (dir.beneath() || dir.valid() || (errno != ENOTDIR && errno != ELOOP))
        return dir;
    return open_whole(tree, path());
}

} // namespace

void read_sysfs_device(const SysfsTree& tree, const SysfsTree::Entry& entry,
                       const ScanOptions& options, SysfsParentDirs& dirs, Device& dev,
                       bool& parent_known) {
    DeviceDir dir = locate_device(tree, entry, dirs, dev, parent_known);
    // Config space first: a device directory that is a link shows here, as does a kernel
    // without openat2, and either is read through the device's own directory instead.
    UniqueFd config_fd(dir.valid() ? dir.open("config") : -1);
    if (!config_fd.valid() && dir.beneath()) {
        const int why = errno;
        DeviceDir::check_openat2(why);
        if (why == ELOOP || !DeviceDir::openat2_usable()) {
            dir = open_whole(tree, tree.devices_dir + "/" + entry.name);
            config_fd = UniqueFd(dir.valid() ? dir.open("config") : -1);
        }
    }
    std::array<std::uint8_t, 4096> config;
    const std::size_t len = read_config_file(config_fd, config);
    config_fd.reset();
    decode_config(std::span<const std::uint8_t>(config.data(), len), dev);
    if (len == 0) {
        // Nothing readable (e.g. a sysfs entry without a config file).
        dev.vendor_id = dev.device_id = 0xffff;
        dev.class_id = 0xffff;
    }
    if (!dir.valid())
        return;
    read_kernel_ids(dir, dev);
    read_driver_and_aer(dir, dev);
    if (options.placement)
        read_placement(dir, dev);
}

} // namespace dis::pci::detail
