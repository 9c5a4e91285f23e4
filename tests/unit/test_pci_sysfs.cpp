// --sysfs-root: a fake /sys tree under a temporary directory (config files, driver and
// iommu_group links, numa_node, reset_method, aer_dev_* counters, resource, and device
// directories nested under their parents), read through pci::scan.
#include "support.hpp"

#include "dis/error.hpp"
#include "dis/pci.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using dis::pci::Bdf;

namespace {

// Config space under construction, little-endian registers.
struct ConfigBytes {
    std::string bytes;
    explicit ConfigBytes(std::size_t size) : bytes(size, '\0') {}
    void u8(std::size_t pos, unsigned v) { bytes[pos] = static_cast<char>(v & 0xff); }
    void u16(std::size_t pos, unsigned v) {
        u8(pos, v);
        u8(pos + 1, v >> 8);
    }
    void u32(std::size_t pos, std::uint32_t v) {
        u16(pos, v & 0xffff);
        u16(pos + 2, v >> 16);
    }
};

// A PCIe function: ids, class, header type, PCIe capability at 0x40 with the given port type
// and link registers, optional AER (0x100) and ACS (0x140) extended capabilities.
ConfigBytes pcie_function(unsigned vendor, unsigned device, unsigned class_id, unsigned header,
                          unsigned port_type, unsigned cap_speed, unsigned cap_width,
                          unsigned sta_speed, unsigned sta_width, std::uint32_t uesta = 0,
                          bool acs = false, std::size_t size = 4096) {
    ConfigBytes c(4096);
    c.u16(0x00, vendor);
    c.u16(0x02, device);
    c.u16(0x06, 0x0010); // capability list
    c.u16(0x0a, class_id);
    c.u8(0x0e, header);
    c.u8(0x34, 0x40);
    c.u8(0x40, 0x10);                       // PCI Express
    c.u8(0x41, 0x00);                       // end of list
    c.u16(0x42, 0x0002 | (port_type << 4)); // version 2
    c.u32(0x4c, cap_speed | (cap_width << 4));
    c.u16(0x52, static_cast<unsigned>(sta_speed | (sta_width << 4)));
    {
        c.u32(0x100, 0x0001 | (1u << 16) | (acs ? 0x140u << 20 : 0)); // AER v1
        c.u32(0x104, uesta);
        if (acs) {
            c.u32(0x140, 0x000d | (1u << 16)); // ACS v1, end
            c.u16(0x144, 0x001f);              // SrcValid..UpstreamFwd
            c.u16(0x146, 0x0001);              // SrcValid enabled
        }
    }
    c.bytes.resize(size); // what a reader of the config file gets
    return c;
}

struct FakeSysfs {
    dis::test::TempDir dir;
    fs::path root() const { return dir.path(); }

    // Creates devices/<chain...>/<bdf> with the config file and links it from bus/pci/devices.
    fs::path add(const std::string& bdf, const fs::path& parent_dir, const ConfigBytes& config,
                 bool absolute_link = false) {
        fs::path dev = parent_dir / bdf;
        fs::create_directories(dev);
        dis::test::write_file(dev / "config", config.bytes);
        fs::path link = root() / "bus/pci/devices" / bdf;
        fs::create_directories(link.parent_path());
        if (absolute_link)
            fs::create_symlink("/sys" / fs::relative(dev, root()), link);
        else
            fs::create_symlink(fs::relative(dev, link.parent_path()), link);
        return dev;
    }
};

} // namespace

TEST_CASE("pci scan reads a fake sysfs tree", "[pci][sysfs]") {
    FakeSysfs s;
    fs::path host = s.root() / "devices/pci0000:00";
    fs::create_directories(s.root() / "bus/pci/drivers/pcieport");
    fs::create_directories(s.root() / "bus/pci/drivers/nvidia");
    fs::create_directories(s.root() / "kernel/iommu_groups/7");

    // Root port 00:1c.0, bridge to bus 02 only, AER UnsupReq set, ACS.
    auto rp = pcie_function(0x8086, 0x9d10, 0x0604, 0x01, 0x4, 3, 4, 3, 4, 1u << 20, true);
    rp.u8(0x18, 0x00);
    rp.u8(0x19, 0x02);
    rp.u8(0x1a, 0x02);
    fs::path rp_dir = s.add("0000:00:1c.0", host, rp);
    fs::create_symlink(s.root() / "bus/pci/drivers/pcieport", rp_dir / "driver");
    dis::test::write_file(rp_dir / "numa_node", "1\n");
    dis::test::write_file(rp_dir / "reset_method", "pm bus\n");
    dis::test::write_file(rp_dir / "aer_dev_correctable",
                          "RxErr 2\nBadTLP 0\nBadDLLP 1\nTOTAL_ERR_COR 3\n");
    dis::test::write_file(rp_dir / "aer_dev_fatal", "DLP 0\nTOTAL_ERR_FATAL 0\n");
    dis::test::write_file(rp_dir / "aer_rootport_total_err_cor", "5\n");
    dis::test::write_file(rp_dir / "aer_rootport_total_err_fatal", "0\n");

    // Endpoint nested under the root port in sysfs, at bus 05 (outside the bridge's bus
    // range, so only the sysfs nesting can name its parent), trained at 2.5GT/s of 8GT/s.
    auto ep = pcie_function(0x10de, 0x1d12, 0x0302, 0x00, 0x0, 3, 4, 1, 4);
    ep.u32(0x10, 0xe0000000); // BAR0: 32-bit memory
    ep.u32(0x14, 0xd000000c); // BAR1: 64-bit prefetchable memory, upper half in BAR2
    ep.u32(0x18, 0x00000001);
    fs::path ep_dir = s.add("0000:05:00.0", rp_dir, ep);
    fs::create_symlink("../../../bus/pci/drivers/nvidia", ep_dir / "driver");
    fs::create_symlink(s.root() / "kernel/iommu_groups/7", ep_dir / "iommu_group");
    dis::test::write_file(ep_dir / "numa_node", "-1\n");
    dis::test::write_file(ep_dir / "reset_method", "flr bus\n");
    dis::test::write_file(ep_dir / "resource",
                          "0x00000000e0000000 0x00000000e0ffffff 0x0000000000040200\n"
                          "0x00000001d0000000 0x00000001dfffffff 0x000000000014220c\n"
                          "0x0000000000000000 0x0000000000000000 0x0000000000000000\n");

    // A device whose config reads stop at 64 bytes (as for an unprivileged reader).
    auto legacy = pcie_function(0x1af4, 0x1041, 0x0200, 0x00, 0x0, 1, 1, 1, 1, 0, false, 64);
    s.add("0000:00:03.0", host, legacy);

    auto topo = dis::pci::scan(dis::pci::Source::sysfs(s.root().string()));
    REQUIRE(topo.devices().size() == 3);

    const auto& r = topo.get(Bdf::parse("00:1c.0"));
    CHECK(r.vendor_id == 0x8086);
    CHECK(r.device_id == 0x9d10);
    CHECK_FALSE(r.parent);
    CHECK(r.driver == std::optional<std::string>("pcieport"));
    CHECK(r.numa_node == std::optional<int>(1));
    CHECK_FALSE(r.iommu_group);
    CHECK(r.reset_methods == std::vector<std::string>{"pm", "bus"});
    REQUIRE(r.port_type);
    CHECK(*r.port_type == dis::pci::PortType::root_port);
    REQUIRE(r.aer);
    CHECK_FALSE(r.aer->counters_only);
    CHECK(r.aer->uncorrectable_status == std::vector<std::string>{"UnsupReq"});
    CHECK(r.aer->counters.at("aer_dev_correctable").at("RxErr") == 2);
    CHECK(r.aer->counters.at("aer_dev_correctable").at("TOTAL_ERR_COR") == 3);
    CHECK(r.aer->counters.at("aer_dev_fatal").at("TOTAL_ERR_FATAL") == 0);
    CHECK(r.aer->counters.count("aer_dev_nonfatal") == 0);
    CHECK(r.aer->has_errors());
    REQUIRE(r.acs);
    CHECK(r.acs->cap.upstream_fwd);
    CHECK_FALSE(r.acs->cap.egress_ctrl);
    CHECK(r.acs->ctl.src_valid);
    CHECK_FALSE(r.acs->ctl.trans_blk);
    CHECK(r.secondary_bus == std::optional<std::uint8_t>(2));

    const auto& e = topo.get(Bdf::parse("0000:05:00.0"));
    REQUIRE(e.parent);
    CHECK(*e.parent == Bdf::parse("00:1c.0"));
    CHECK(e.driver == std::optional<std::string>("nvidia"));
    CHECK(e.iommu_group == std::optional<int>(7));
    CHECK_FALSE(e.numa_node); // -1: no NUMA affinity
    CHECK(e.reset_methods == std::vector<std::string>{"flr", "bus"});
    REQUIRE(e.link);
    CHECK(e.link->speed == "2.5GT/s");
    CHECK(e.link->max_speed == "8GT/s");
    CHECK(e.link->downgraded); // partner (the root port) supports 8GT/s too
    REQUIRE(e.aer);            // AER capability present, nothing set
    CHECK_FALSE(e.aer->has_errors());
    REQUIRE(e.bars.size() == 2);
    CHECK(e.bars[0].index == 0);
    CHECK(e.bars[0].size == 0x1000000);
    CHECK(e.bars[1].index == 1);
    CHECK(e.bars[1].is_64bit);
    CHECK(e.bars[1].prefetchable);
    CHECK(e.bars[1].base == 0x1d0000000ull);
    CHECK(e.bars[1].size == 0x10000000);

    // The root port sees the endpoint as its link partner; its own link is at full speed.
    CHECK_FALSE(r.link->downgraded);

    const auto& l = topo.get(Bdf::parse("00:03.0"));
    CHECK(l.config_size == 64);
    CHECK_FALSE(l.parent);
    CHECK_FALSE(l.port_type); // the PCIe capability lies beyond the readable 64 bytes
    CHECK_FALSE(l.link);

    auto j = dis::pci::to_json(e);
    CHECK(j["parent"] == "0000:00:1c.0");
    CHECK(j["iommu_group"] == 7);
    CHECK(j["numa_node"].is_null());
    CHECK(j["bars"][1]["size"] == 0x10000000);
    auto jr = dis::pci::to_json(r);
    CHECK(jr["aer_counters"]["aer_dev_correctable"]["BadDLLP"] == 1);
    // The root port's totals of its hierarchy; the endpoint keeps none (not a root port).
    CHECK(jr["aer_rootport_totals"] ==
          nlohmann::json({{"aer_rootport_total_err_cor", 5}, {"aer_rootport_total_err_fatal", 0}}));
    CHECK(j["aer_rootport_totals"].is_null());
    CHECK(jr["aer"]["uncorrectable_status"] == nlohmann::json::array({"UnsupReq"}));
}

TEST_CASE("pci scan of a sysfs tree with a missing config file", "[pci][sysfs]") {
    FakeSysfs s;
    fs::path host = s.root() / "devices/pci0000:00";
    auto ep = pcie_function(0x10de, 0x1d12, 0x0302, 0x00, 0x0, 3, 4, 3, 4);
    fs::path dir = s.add("0000:00:02.0", host, ep);
    fs::remove(dir / "config");
    auto topo = dis::pci::scan(dis::pci::Source::sysfs(s.root().string()));
    REQUIRE(topo.devices().size() == 1);
    CHECK(topo.devices()[0].config_size == 0);
    CHECK(topo.devices()[0].vendor_id == 0xffff);
}

TEST_CASE("pci scan rejects bad sysfs roots", "[pci][sysfs]") {
    dis::test::TempDir dir;
    auto kind_of = [](const std::string& root) {
        try {
            dis::pci::scan(dis::pci::Source::sysfs(root));
        } catch (const dis::Error& e) {
            return e.kind();
        }
        FAIL("scan of " << root << " did not throw");
        return dis::ErrorKind::os;
    };
    CHECK(kind_of((dir.path() / "missing").string()) == dis::ErrorKind::not_found);
    CHECK(kind_of(dir.path().string()) == dis::ErrorKind::not_found);
    // An entry libpci could not parse would make it exit(): it must be refused first.
    fs::create_directories(dir.path() / "bus/pci/devices/not-a-device");
    CHECK(kind_of(dir.path().string()) == dis::ErrorKind::invalid_input);

    // An absolute link into the real /sys would make libpci read this machine's devices.
    FakeSysfs s;
    s.add("0000:00:03.0", s.root() / "devices/pci0000:00",
          pcie_function(0x1af4, 0x1041, 0x0200, 0x00, 0x0, 1, 1, 1, 1), true);
    CHECK(kind_of(s.root().string()) == dis::ErrorKind::invalid_input);

    // A link whose words stay inside the tree but that leaves it through a linked directory
    // is refused as well: the check follows links the way the kernel (and libpci) will.
    FakeSysfs t;
    dis::test::TempDir outside;
    auto fn = pcie_function(0x1af4, 0x1041, 0x0200, 0x00, 0x0, 1, 1, 1, 1);
    fs::create_directories(outside.path() / "pci0000:00/0000:00:04.0");
    dis::test::write_file(outside.path() / "pci0000:00/0000:00:04.0/config", fn.bytes);
    fs::create_directories(t.root() / "devices");
    fs::create_directory_symlink(outside.path() / "pci0000:00", t.root() / "devices/pci0000:00");
    fs::create_directories(t.root() / "bus/pci/devices");
    fs::create_symlink("../../../devices/pci0000:00/0000:00:04.0",
                       t.root() / "bus/pci/devices/0000:00:04.0");
    CHECK(kind_of(t.root().string()) == dis::ErrorKind::invalid_input);

    // A tree named through a link to it is read like the tree itself.
    FakeSysfs u;
    u.add("0000:00:05.0", u.root() / "devices/pci0000:00", fn);
    dis::test::TempDir names;
    fs::create_directory_symlink(u.root(), names.path() / "sys");
    auto topo = dis::pci::scan(dis::pci::Source::sysfs((names.path() / "sys").string()));
    REQUIRE(topo.devices().size() == 1);
    CHECK(topo.devices()[0].vendor_id == 0x1af4);
}

TEST_CASE("pci scan takes the kernel's ids and class from modalias, else the attributes",
          "[pci][sysfs]") {
    FakeSysfs s;
    fs::path host = s.root() / "devices/pci0000:00";
    // Config space says 1af4:1041 class 0200; the kernel (a quirk) says otherwise.
    auto fn = pcie_function(0x1af4, 0x1041, 0x0200, 0x00, 0x0, 1, 1, 1, 1);
    fs::path fixed = s.add("0000:00:02.0", host, fn);
    dis::test::write_file(fixed / "modalias",
                          "pci:v00008086d00001234sv00001028sd0000ABCDbc01sc08i02\n");
    // A malformed modalias: the separate attributes are read instead.
    fs::path odd = s.add("0000:00:03.0", host, fn);
    dis::test::write_file(odd / "modalias", "pci:v00008086d00001234sv\n");
    dis::test::write_file(odd / "vendor", "0x10de\n");
    dis::test::write_file(odd / "device", "0x1d12\n");
    dis::test::write_file(odd / "class", "0x030200\n");
    // An SR-IOV VF: config space has no ids or subsystem, the kernel has the PF's.
    auto vf = pcie_function(0xffff, 0xffff, 0x0200, 0x00, 0x0, 1, 1, 1, 1);
    vf.u16(0x2c, 0xffff);
    vf.u16(0x2e, 0xffff);
    fs::path vf_dir = s.add("0000:00:04.0", host, vf);
    dis::test::write_file(vf_dir / "modalias",
                          "pci:v000015B3d0000101Csv000015B3sd00000002bc02sc00i00\n");

    auto topo = dis::pci::scan(dis::pci::Source::sysfs(s.root().string()));
    const auto& f = topo.get(Bdf::parse("00:02.0"));
    CHECK(f.vendor_id == 0x8086);
    CHECK(f.device_id == 0x1234);
    CHECK(f.class_id == 0x0108);
    CHECK(f.prog_if == 0x02);
    // Config space has subsystem ids: those stay (as lspci shows them).
    CHECK(f.subsystem_vendor_id == 0x0000);
    const auto& o = topo.get(Bdf::parse("00:03.0"));
    CHECK(o.vendor_id == 0x10de);
    CHECK(o.device_id == 0x1d12);
    CHECK(o.class_id == 0x0302);
    const auto& v = topo.get(Bdf::parse("00:04.0"));
    CHECK(v.vendor_id == 0x15b3);
    CHECK(v.device_id == 0x101c);
    CHECK(v.subsystem_vendor_id == 0x15b3);
    CHECK(v.subsystem_device_id == 0x0002);
}

TEST_CASE("pci scan follows devices' links through their parents' directories", "[pci][sysfs]") {
    auto kind_of = [](const fs::path& root) {
        try {
            dis::pci::scan(dis::pci::Source::sysfs(root.string()));
        } catch (const dis::Error& e) {
            return e.kind();
        }
        return dis::ErrorKind::os; // "did not throw", which no check below expects
    };
    auto fn = pcie_function(0x1af4, 0x1041, 0x0200, 0x00, 0x0, 1, 1, 1, 1);
    auto bridge = pcie_function(0x8086, 0x9d10, 0x0604, 0x01, 0x4, 3, 4, 3, 4);

    // Eight functions under one root port's directory, as the kernel lays them out.
    FakeSysfs s;
    fs::path rp = s.add("0000:00:1c.0", s.root() / "devices/pci0000:00", bridge);
    for (int f = 0; f < 8; ++f)
        s.add("0000:05:00." + std::to_string(f), rp, fn);
    auto topo = dis::pci::scan(dis::pci::Source::sysfs(s.root().string()));
    REQUIRE(topo.devices().size() == 9);
    for (int f = 0; f < 8; ++f) {
        const auto& d = topo.get(Bdf::parse("05:00." + std::to_string(f)));
        REQUIRE(d.parent);
        CHECK(*d.parent == Bdf::parse("00:1c.0"));
        CHECK(d.vendor_id == 0x1af4);
    }
    CHECK_FALSE(topo.get(Bdf::parse("00:1c.0")).parent);

    // A device directory that is itself a link, staying inside the tree: read through it.
    FakeSysfs t;
    fs::path real = t.add("0000:00:05.0", t.root() / "devices/pci0000:00", fn);
    fs::rename(real, t.root() / "devices/elsewhere");
    fs::create_directory_symlink("../elsewhere", real);
    auto inside = dis::pci::scan(dis::pci::Source::sysfs(t.root().string()));
    REQUIRE(inside.devices().size() == 1);
    CHECK(inside.devices()[0].vendor_id == 0x1af4);

    // The same link leaving the tree: refused.
    FakeSysfs u;
    dis::test::TempDir outside;
    fs::path dev = u.add("0000:00:06.0", u.root() / "devices/pci0000:00", fn);
    fs::rename(dev, outside.path() / "0000:00:06.0");
    fs::create_directory_symlink(outside.path() / "0000:00:06.0", dev);
    CHECK(kind_of(u.root()) == dis::ErrorKind::invalid_input);

    // A link to a device directory that does not exist: the device is listed, with nothing
    // read, its parent still known.
    FakeSysfs w;
    fs::path rp2 = w.add("0000:00:1d.0", w.root() / "devices/pci0000:00", bridge);
    fs::path gone = w.add("0000:06:00.0", rp2, fn);
    fs::remove_all(gone);
    auto dangling = dis::pci::scan(dis::pci::Source::sysfs(w.root().string()));
    REQUIRE(dangling.devices().size() == 2);
    const auto& g = dangling.get(Bdf::parse("06:00.0"));
    CHECK(g.vendor_id == 0xffff);
    CHECK(g.config_size == 0);
    REQUIRE(g.parent);
    CHECK(*g.parent == Bdf::parse("00:1d.0"));

    // Entries named other than the kernel names them are refused, as libpci refused them.
    FakeSysfs x;
    fs::create_directories(x.root() / "bus/pci/devices/00:07.0");
    CHECK(kind_of(x.root()) == dis::ErrorKind::invalid_input);
}

TEST_CASE("pci to_hex pads to the digits asked for and never cuts", "[pci]") {
    CHECK(dis::pci::to_hex(0, 4) == "0000");
    CHECK(dis::pci::to_hex(0x8086, 4) == "8086");
    CHECK(dis::pci::to_hex(0xabc, 2) == "abc");
    CHECK(dis::pci::to_hex(0x5, 1) == "5");
    CHECK(dis::pci::to_hex(0x0, 0) == "0");
    CHECK(dis::pci::to_hex(0xffffffffffffffffULL, 4) == "ffffffffffffffff");
    CHECK(dis::pci::to_hex(0x1, 8) == "00000001");
}
