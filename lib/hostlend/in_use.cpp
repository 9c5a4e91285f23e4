// The in-use check of a host device (dis/hostlend.hpp): mounts, swaps, interfaces that are
// up and the console, on the device, the other members of its IOMMU group and its VFs.
#include "dis/error.hpp"
#include "dis/hostlend.hpp"

#include "dis/iommu.hpp"
#include "read_trimmed.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace dis::hostlend {

namespace fs = std::filesystem;

namespace {

using detail::read_trimmed;

std::optional<fs::path> canonical_of(const fs::path& p) {
    std::error_code ec;
    auto c = fs::canonical(p, ec);
    if (ec)
        return std::nullopt;
    return c;
}

// The PCI function a sysfs path belongs to: its deepest "DDDD:BB:DD.F" component (device
// directories nest below their bridges, so the nearest one owns it).
std::optional<pci::Bdf> owner_of(const fs::path& p) {
    std::optional<pci::Bdf> out;
    for (const auto& part : p) {
        const std::string s = part.string();
        if (s.size() == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.')
            if (auto b = pci::Bdf::try_parse(s))
                out = b;
    }
    return out;
}

// Reads a whole proc file or throws: a host whose mounts we cannot read cannot be proven idle.
std::string read_proc(const fs::path& p) {
    std::ifstream in(p);
    if (!in) {
        int err = errno;
        throw Error(ErrorKind::os, "cannot prove the host's devices idle: reading " + p.string() +
                                       ": " + std::strerror(err != 0 ? err : ENOENT));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Target {
    pci::Bdf bdf;
    fs::path path;    // canonical sysfs device directory
    std::string role; // "" (the device), "IOMMU group", "VF"
};

class Scanner {
public:
    Scanner(fs::path sysfs, std::vector<Target> targets)
        : m_sysfs(std::move(sysfs)), m_targets(std::move(targets)) {}

    // The targets a block device (canonical sysfs path) lives on, through its slaves (dm, md)
    // and NVMe multipath heads (a virtual nvme-subsystem device with controller links).
    std::set<std::size_t> owners_of_block(const fs::path& block, int depth = 0) {
        std::set<std::size_t> out;
        if (depth > 8)
            return out;
        if (auto b = owner_of(block)) {
            for (std::size_t i = 0; i < m_targets.size(); ++i)
                if (m_targets[i].bdf == *b)
                    out.insert(i);
        }
        // nvme-subsystem/nvme-subsysN/nvmeXnY[/nvmeXnYpZ]: the subsystem's controllers.
        fs::path p = block;
        for (int up = 0; up < 3 && p.has_parent_path() && p != p.root_path(); ++up) {
            if (p.parent_path().filename() == "nvme-subsystem") {
                std::error_code ec;
                for (const auto& e : fs::directory_iterator(p, ec)) {
                    const std::string n = e.path().filename().string();
                    if (n.rfind("nvme", 0) != 0 || !e.is_symlink(ec))
                        continue;
                    auto c = canonical_of(e.path());
                    if (auto b = c ? owner_of(*c) : std::nullopt) {
                        for (std::size_t i = 0; i < m_targets.size(); ++i)
                            if (m_targets[i].bdf == *b)
                                out.insert(i);
                    }
                }
                break;
            }
            p = p.parent_path();
        }
        // dm/md: the devices below it (slaves/), and a partition's own disk is its parent dir.
        std::error_code ec;
        for (const auto& dir : {block / "slaves", block.parent_path() / "slaves"}) {
            for (const auto& e : fs::directory_iterator(dir, ec)) {
                if (auto c = canonical_of(e.path())) {
                    auto sub = owners_of_block(*c, depth + 1);
                    out.insert(sub.begin(), sub.end());
                }
            }
        }
        return out;
    }

    void add(std::size_t target, std::string kind, std::string message) {
        const Target& t = m_targets[target];
        std::string prefix =
            t.role.empty() ? std::string() : t.bdf.to_string() + " (" + t.role + "): ";
        for (const auto& r : reasons)
            if (r.bdf == t.bdf && r.message == prefix + message)
                return;
        reasons.push_back({t.bdf, std::move(kind), prefix + message});
    }

    void mounts(const std::string& mountinfo) {
        std::istringstream in(mountinfo);
        std::string line;
        while (std::getline(in, line)) {
            // id parent MAJ:MIN root mountpoint options ... - fstype source superopts
            std::istringstream ls(line);
            std::string id, parent, majmin, root, point;
            if (!(ls >> id >> parent >> majmin >> root >> point))
                continue;
            if (majmin.rfind("0:", 0) == 0)
                continue; // virtual filesystems
            auto block = canonical_of(m_sysfs / "dev" / "block" / majmin);
            if (!block)
                continue;
            for (auto i : owners_of_block(*block)) {
                std::string msg = "mounted " + point + " (" + block->filename().string() + ")";
                if (point == "/")
                    msg += ", the root filesystem";
                add(i, "mount", msg);
            }
        }
    }

    void swaps(const std::string& text) {
        std::istringstream in(text);
        std::string line;
        std::getline(in, line); // header
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string file, type;
            if (!(ls >> file >> type) || type != "partition")
                continue;
            std::optional<fs::path> block;
            const std::string mapper = "/dev/mapper/";
            if (file.rfind(mapper, 0) == 0) {
                std::error_code ec;
                for (const auto& e : fs::directory_iterator(m_sysfs / "class" / "block", ec))
                    if (read_trimmed(e.path() / "dm" / "name") == file.substr(mapper.size()))
                        block = canonical_of(e.path());
            } else {
                block = canonical_of(m_sysfs / "class" / "block" / fs::path(file).filename());
            }
            if (!block)
                continue;
            for (auto i : owners_of_block(*block))
                add(i, "swap", "active swap " + file);
        }
    }

    void network() {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(m_sysfs / "class" / "net", ec)) {
            auto dev = canonical_of(e.path() / "device");
            if (!dev)
                continue;
            std::string flags = read_trimmed(e.path() / "flags");
            unsigned long value = 0;
            try {
                value = std::stoul(flags, nullptr, 0);
            } catch (const std::exception&) {
                continue;
            }
            if ((value & 0x1) == 0) // IFF_UP
                continue;
            // The PCI device itself, or a device below it (virtio-net's virtioN).
            auto owner = owner_of(*dev);
            for (std::size_t i = 0; owner && i < m_targets.size(); ++i)
                if (*owner == m_targets[i].bdf)
                    add(i, "net", "network interface " + e.path().filename().string() + " is up");
        }
    }

    void console() {
        for (std::size_t i = 0; i < m_targets.size(); ++i)
            if (read_trimmed(m_targets[i].path / "boot_vga") == "1")
                add(i, "boot_vga", "the boot VGA device (the console)");
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(m_sysfs / "class" / "graphics", ec)) {
            auto dev = canonical_of(e.path() / "device");
            auto owner = dev ? owner_of(*dev) : std::nullopt;
            for (std::size_t i = 0; owner && i < m_targets.size(); ++i)
                if (*owner == m_targets[i].bdf)
                    add(i, "framebuffer", "framebuffer " + e.path().filename().string());
        }
        std::istringstream active(read_trimmed(m_sysfs / "class" / "tty" / "console" / "active"));
        std::string tty;
        while (active >> tty) {
            auto dev = canonical_of(m_sysfs / "class" / "tty" / tty / "device");
            auto owner = dev ? owner_of(*dev) : std::nullopt;
            for (std::size_t i = 0; owner && i < m_targets.size(); ++i)
                if (*owner == m_targets[i].bdf)
                    add(i, "console", "console " + tty);
        }
    }

    std::vector<InUseReason> reasons;

private:
    fs::path m_sysfs;
    std::vector<Target> m_targets;
};

} // namespace

std::string InUseReport::summary() const {
    std::string s;
    for (const auto& r : reasons)
        s += (s.empty() ? "" : "; ") + r.message;
    return "in use (" + s + ")";
}

InUseReport check_in_use(const pci::Topology& topology, const pci::Bdf& bdf,
                         const std::string& proc_root) {
    auto root = topology.source().sysfs_root();
    if (!root)
        throw Error(ErrorKind::invalid_input,
                    "the in-use check needs a live system or --sysfs-root, not a dump");
    topology.get(bdf); // not_found naming the BDF
    fs::path sysfs(*root);
    InUseReport report;
    report.bdf = bdf;
    std::vector<Target> targets;
    auto add_target = [&](const pci::Bdf& b, const std::string& role) {
        for (const auto& t : targets)
            if (t.bdf == b)
                return;
        auto p = canonical_of(sysfs / "bus" / "pci" / "devices" / b.to_string());
        if (!p)
            return;
        targets.push_back({b, *p, role});
        report.checked.push_back(b);
    };
    add_target(bdf, "");
    pci::IommuReport iommu = pci::analyze_iommu(topology);
    if (const auto* iso = iommu.find(bdf)) {
        for (const auto& m : iso->shares_with)
            add_target(m, "IOMMU group");
    }
    for (const auto& d : topology.devices())
        if (d.physfn && *d.physfn == bdf)
            add_target(d.bdf, "VF");
    if (targets.empty())
        throw Error(ErrorKind::not_found,
                    "no sysfs directory for " + bdf.to_string() + " under " + *root);

    Scanner scan(sysfs, targets);
    fs::path proc(proc_root);
    scan.mounts(read_proc(proc / "self" / "mountinfo"));
    scan.swaps(read_proc(proc / "swaps"));
    scan.network();
    scan.console();
    report.reasons = std::move(scan.reasons);
    return report;
}

void add_in_use_finding(pci::ReadinessReport& report, const InUseReport& in_use) {
    if (in_use.in_use()) {
        report.findings.push_back(
            {"in_use", pci::Severity::error, "not ready: " + in_use.summary()});
        report.verdict = pci::Verdict::not_ready;
    } else {
        std::string what = "no mounts, swaps, interfaces up or console on it";
        if (in_use.checked.size() > 1)
            what += " or on the " + std::to_string(in_use.checked.size() - 1) +
                    " other device(s) of its IOMMU group and VFs";
        report.findings.push_back({"in_use", pci::Severity::ok, what});
    }
}

nlohmann::json to_json(const InUseReport& report) {
    nlohmann::json reasons = nlohmann::json::array();
    for (const auto& r : report.reasons)
        reasons.push_back({{"bdf", r.bdf.to_string()}, {"kind", r.kind}, {"message", r.message}});
    nlohmann::json checked = nlohmann::json::array();
    for (const auto& b : report.checked)
        checked.push_back(b.to_string());
    return {{"bdf", report.bdf.to_string()},
            {"in_use", report.in_use()},
            {"checked", std::move(checked)},
            {"reasons", std::move(reasons)}};
}

} // namespace dis::hostlend
