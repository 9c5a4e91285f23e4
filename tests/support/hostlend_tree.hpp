// A fake host for the host-lending tests (dis/hostlend.hpp): a sysfs tree with an NVMe
// controller, a NIC sharing its IOMMU group, a device of its own group without a driver and
// an SR-IOV PF; NVMe namespaces, partitions, dm holders and network interfaces under them; a
// fake /proc with mountinfo and swaps. And SimKernel, which gives the tree's sysfs files the
// kernel's meaning (driver_override, unbind, drivers_probe, bind, reset, sriov_numvfs) with a
// write that can be made to fail, so that plans can run without a kernel.
//
//   0000:00:00.0  host bridge                       group 0
//   0000:00:01.0  root port (bus 01)                 group 1
//   0000:01:00.0  NVMe 1b36:0010, nvme, flr bus      group 1
//   0000:01:00.1  NIC 8086:10d3, e1000e              group 1
//   0000:00:02.0  root port (bus 02), ACS            group 2
//   0000:02:00.0  edu 1234:11e8, no driver, bus      group 3
//   0000:00:03.0  root port (bus 03), ACS            group 4
//   0000:03:00.0  SR-IOV PF 1b36:0010, nvme, 2 VFs   group 5
#pragma once

#include "support.hpp"
#include "sysfs_tree.hpp"

#include "dis/error.hpp"
#include "dis/hostlend.hpp"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace dis::test {

namespace hostlend_fs = std::filesystem;

inline void write_text(const hostlend_fs::path& p, const std::string& text) {
    hostlend_fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

inline std::string read_text(const hostlend_fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct HostTree {
    TempDir tmp;
    hostlend_fs::path sys = tmp.path() / "sys";
    hostlend_fs::path proc = tmp.path() / "proc";
    hostlend_fs::path state = tmp.path() / "state";
    SysfsTree tree{sys};

    HostTree() {
        tree.enable_iommu();
        tree.add({"0000:00:00.0", "", ConfigSpace(0x8086, 0x29c0, 0x060000), {}, 0, -1, {}, {}});
        tree.add({"0000:00:01.0",
                  "",
                  ConfigSpace(0x1b36, 0x000c, 0x060400, 1)
                      .bus_numbers(0, 1, 1)
                      .pcie(PcieType::root_port, false, 1, 1, 1, 1),
                  {"pcieport"},
                  1,
                  -1,
                  {},
                  {}});
        tree.add({"0000:01:00.0",
                  "0000:00:01.0",
                  ConfigSpace(0x1b36, 0x0010, 0x010802)
                      .multifunction()
                      .memory_bar(0, 0xfe000000, 16 * 1024, true, false)
                      .pcie(PcieType::endpoint, true, 1, 1, 1, 1),
                  {"nvme"},
                  1,
                  -1,
                  {"flr", "bus"},
                  {{"driver_override", "(null)\n"}}});
        tree.add({"0000:01:00.1",
                  "0000:00:01.0",
                  ConfigSpace(0x8086, 0x10d3, 0x020000)
                      .memory_bar(0, 0xfe100000, 128 * 1024, false, false)
                      .pcie(PcieType::endpoint, true, 1, 1, 1, 1),
                  {"e1000e"},
                  1,
                  -1,
                  {"flr"},
                  {{"driver_override", "(null)\n"}}});
        tree.add({"0000:00:02.0",
                  "",
                  ConfigSpace(0x1b36, 0x000c, 0x060400, 1)
                      .bus_numbers(0, 2, 2)
                      .pcie(PcieType::root_port, false, 1, 1, 1, 1)
                      .acs(acs::required, acs::required),
                  {"pcieport"},
                  2,
                  -1,
                  {},
                  {}});
        tree.add({"0000:02:00.0",
                  "0000:00:02.0",
                  ConfigSpace(0x1234, 0x11e8, 0x00ff00)
                      .memory_bar(0, 0xfea00000, 1024 * 1024, false, false)
                      .pcie(PcieType::endpoint, false, 1, 1, 1, 1),
                  {},
                  3,
                  -1,
                  {"bus"},
                  {{"driver_override", "(null)\n"}}});
        tree.add({"0000:00:03.0",
                  "",
                  ConfigSpace(0x1b36, 0x000c, 0x060400, 1)
                      .bus_numbers(0, 3, 3)
                      .pcie(PcieType::root_port, false, 1, 1, 1, 1)
                      .acs(acs::required, acs::required),
                  {"pcieport"},
                  4,
                  -1,
                  {},
                  {}});
        tree.add({"0000:03:00.0",
                  "0000:00:03.0",
                  ConfigSpace(0x1b36, 0x0010, 0x010802)
                      .memory_bar(0, 0xfe200000, 16 * 1024, true, false)
                      .pcie(PcieType::endpoint, true, 1, 1, 1, 1)
                      .sriov(2, 2, 0, 0x0010),
                  {"nvme"},
                  5,
                  -1,
                  {"flr"},
                  {{"driver_override", "(null)\n"},
                   {"sriov_totalvfs", "2\n"},
                   {"sriov_numvfs", "0\n"}}});
        // The drivers the kernel would have (SimKernel binds only to drivers that exist).
        for (const char* d : {"nvme", "e1000e", "pcieport", "vfio-pci"})
            hostlend_fs::create_directories(sys / "bus/pci/drivers" / d);
        write_text(sys / "bus/pci/drivers_probe", "");
        write_text(proc / "self/mountinfo", "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
                                            "23 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n");
        write_text(proc / "swaps", "Filename\tType\tSize\tUsed\tPriority\n");
    }

    std::string sys_root() const { return sys.string(); }
    std::string proc_root() const { return proc.string(); }
    hostlend_fs::path dev(const std::string& bdf) const { return tree.device_dir(bdf); }

    // A block device directory `rel` below `parent` (a device dir or a block dir), with its
    // MAJ:MIN in dev/block and its name in class/block.
    hostlend_fs::path add_block(const hostlend_fs::path& parent, const std::string& name,
                                const std::string& majmin) {
        auto dir = parent / name;
        hostlend_fs::create_directories(dir);
        write_text(dir / "dev", majmin + "\n");
        hostlend_fs::create_directories(sys / "dev/block");
        hostlend_fs::create_directories(sys / "class/block");
        hostlend_fs::create_symlink(hostlend_fs::relative(dir, sys / "dev/block"),
                                    sys / "dev/block" / majmin);
        hostlend_fs::create_symlink(hostlend_fs::relative(dir, sys / "class/block"),
                                    sys / "class/block" / name);
        return dir;
    }
    // nvme/nvme0/nvme0n1 with partition nvme0n1p1 under the controller at `bdf`.
    hostlend_fs::path add_namespace(const std::string& bdf, const std::string& ctrl,
                                    int minor_base) {
        auto c = dev(bdf) / "nvme" / ctrl;
        hostlend_fs::create_directories(c);
        auto ns = add_block(c, ctrl + "n1", "259:" + std::to_string(minor_base));
        add_block(ns, ctrl + "n1p1", "259:" + std::to_string(minor_base + 1));
        return ns;
    }
    // A dm device on top of `slave` (a block dir), named `dm_name`.
    hostlend_fs::path add_dm(const hostlend_fs::path& slave, const std::string& dm,
                             const std::string& dm_name, const std::string& majmin) {
        auto dir = add_block(sys / "devices/virtual/block", dm, majmin);
        write_text(dir / "dm/name", dm_name + "\n");
        hostlend_fs::create_directories(dir / "slaves");
        hostlend_fs::create_symlink(hostlend_fs::relative(slave, dir / "slaves"),
                                    dir / "slaves" / slave.filename());
        return dir;
    }
    void add_interface(const std::string& bdf, const std::string& name, bool up) {
        auto dir = dev(bdf) / "net" / name;
        hostlend_fs::create_directories(dir);
        write_text(dir / "flags", up ? "0x1003\n" : "0x1002\n");
        hostlend_fs::create_directories(sys / "class/net");
        hostlend_fs::create_symlink(hostlend_fs::relative(dir, sys / "class/net"),
                                    sys / "class/net" / name);
        hostlend_fs::create_symlink(hostlend_fs::relative(dev(bdf), dir), dir / "device");
    }
    void mount(const std::string& majmin, const std::string& point, const std::string& source) {
        std::ofstream(proc / "self/mountinfo", std::ios::app)
            << "40 1 " << majmin << " / " << point << " rw,relatime - ext4 " << source << " rw\n";
    }
    void swap(const std::string& file) {
        std::ofstream(proc / "swaps", std::ios::app) << file << "\tpartition\t1048572\t0\t-2\n";
    }
    std::optional<std::string> driver(const std::string& bdf) const {
        std::error_code ec;
        auto l = hostlend_fs::read_symlink(dev(bdf) / "driver", ec);
        if (ec)
            return std::nullopt;
        return l.filename().string();
    }
};

// The kernel's meaning of the files lend/unlend/vfs write, on a HostTree. `fail_write` makes
// the Nth write (1-based) fail with EIO, as a driver refusing would.
class SimKernel final : public hostlend::Sysfs {
public:
    explicit SimKernel(HostTree& host) : m_host(host), m_root(host.sys_root()) {}
    const std::string& root() const override { return m_root; }

    int fail_write = 0;
    int writes = 0;
    std::vector<std::string> log; // "path=value" of each write
    std::map<std::string, std::string> native = {
        {"0000:01:00.0", "nvme"}, {"0000:01:00.1", "e1000e"}, {"0000:03:00.0", "nvme"}};
    std::map<std::string, int> resets;

    void write(const std::string& path, const std::string& value) override {
        ++writes;
        log.push_back(path + "=" + (value == "\n" ? std::string() : value));
        if (writes == fail_write)
            throw os_error("write '" + value + "' to " + m_root + "/" + path, EIO);
        const std::string devs = "bus/pci/devices/";
        if (path == "bus/pci/drivers_probe") {
            if (m_host.driver(value))
                return;
            std::string ov = override_of(value);
            std::string want = !ov.empty() ? ov : native.count(value) ? native[value] : "";
            if (!want.empty() && driver_exists(want))
                bind(value, want);
            return;
        }
        if (path.rfind("bus/pci/drivers/", 0) == 0 && ends_with(path, "/bind")) {
            std::string drv = path.substr(16, path.size() - 16 - 5);
            std::string ov = override_of(value);
            if (m_host.driver(value))
                throw os_error("bind " + value, EBUSY);
            if (!driver_exists(drv) || (!ov.empty() && ov != drv))
                throw os_error("bind " + value + " to " + drv, ENODEV);
            bind(value, drv);
            return;
        }
        if (path.rfind(devs, 0) != 0)
            throw os_error("write " + path, ENOENT);
        std::string rest = path.substr(devs.size());
        std::string bdf = rest.substr(0, rest.find('/'));
        std::string attr = rest.substr(bdf.size() + 1);
        if (attr == "driver_override") {
            write_text(m_host.dev(bdf) / "driver_override",
                       value == "\n" ? std::string("(null)\n") : value + "\n");
        } else if (attr == "driver/unbind") {
            auto drv = m_host.driver(bdf);
            if (!drv)
                throw os_error("unbind " + bdf, ENOENT);
            hostlend_fs::remove(m_host.dev(bdf) / "driver");
            hostlend_fs::remove(m_host.sys / "bus/pci/drivers" / *drv / bdf);
        } else if (attr == "reset") {
            ++resets[bdf];
        } else if (attr == "sriov_numvfs") {
            std::string now = read(path);
            if (now != "0" && value != "0")
                throw os_error("write sriov_numvfs", EBUSY);
            write_text(m_host.dev(bdf) / "sriov_numvfs", value + "\n");
        } else {
            throw os_error("write " + path, ENOENT);
        }
    }
    std::optional<std::string> driver(const pci::Bdf& bdf) override {
        return m_host.driver(bdf.to_string());
    }
    std::string read(const std::string& path) override {
        std::string s = read_text(hostlend_fs::path(m_root) / path);
        while (!s.empty() && s.back() == '\n')
            s.pop_back();
        return s;
    }

private:
    static bool ends_with(const std::string& s, const std::string& t) {
        return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
    }
    bool driver_exists(const std::string& d) const {
        return hostlend_fs::exists(m_host.sys / "bus/pci/drivers" / d);
    }
    std::string override_of(const std::string& bdf) {
        std::string ov = read("bus/pci/devices/" + bdf + "/driver_override");
        return ov == "(null)" ? std::string() : ov;
    }
    void bind(const std::string& bdf, const std::string& drv) {
        auto dir = m_host.dev(bdf);
        auto d = m_host.sys / "bus/pci/drivers" / drv;
        hostlend_fs::create_symlink(hostlend_fs::relative(d, dir), dir / "driver");
        hostlend_fs::create_symlink(hostlend_fs::relative(dir, d), d / bdf);
    }

    HostTree& m_host;
    std::string m_root;
};

} // namespace dis::test
