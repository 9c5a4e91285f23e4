// The vfio device kind without a kernel: its spec text, the IOVA allocator, the sysfs identity
// VFIO needs before it opens a function, the BAR table made of VFIO regions and the choice of
// interrupts. (Opening a real function is tested in the VM: tests/vm/guest/smartio.sh.)
#include "dis/endpoint.hpp"
#include "dis/error.hpp"
#include "dis/vfio.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace dis;

namespace {

std::string refusal(const std::string& text) {
    try {
        endpoint::parse_device_spec(text);
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::invalid_input);
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

bool mentions(const std::string& message, const std::string& word) {
    return message.find(word) != std::string::npos;
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("dis-vfio-test-" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
}

// ROOT/bus/pci/devices/BDF with ids, class, and the group and driver links sysfs has.
void fake_device(const fs::path& root, const std::string& bdf, const std::string& vendor,
                 const std::string& device, const std::string& cls, int group,
                 const std::string& driver) {
    fs::path dir = root / "devices/pci0000:00" / bdf;
    write(dir / "vendor", vendor);
    write(dir / "device", device);
    write(dir / "class", cls);
    fs::create_directories(root / "bus/pci/devices");
    fs::create_directory_symlink(dir, root / "bus/pci/devices" / bdf);
    if (group >= 0) {
        fs::path g = root / "kernel/iommu_groups" / std::to_string(group);
        fs::create_directories(g / "devices");
        fs::create_directory_symlink(g, dir / "iommu_group");
    }
    if (!driver.empty()) {
        fs::path d = root / "bus/pci/drivers" / driver;
        fs::create_directories(d);
        fs::create_directory_symlink(d, dir / "driver");
    }
}

} // namespace

TEST_CASE("vfio spec: vfio:BDF with an optional name, the rest read from the device") {
    auto s = endpoint::parse_device_spec("vfio:0000:04:00.0,name=edu");
    CHECK(s.kind == endpoint::Kind::vfio);
    CHECK(s.bdf == "0000:04:00.0");
    CHECK(s.name == "edu");
    CHECK(s.bars.empty());
    CHECK(s.vfs == 0);
    CHECK(endpoint::format_device_spec(s) == "vfio:0000:04:00.0,name=edu");
    // The domain is optional and hex is case-insensitive; the default name is the address.
    auto d = endpoint::parse_device_spec("  vfio:3B:1F.7");
    CHECK(d.bdf == "0000:3b:1f.7");
    CHECK(d.name == "0000-3b-1f.7");
    CHECK(endpoint::parse_device_spec(endpoint::format_device_spec(d)).bdf == d.bdf);
    CHECK(endpoint::expand_functions(s).size() == 1);
    CHECK(std::string(endpoint::to_string(endpoint::Kind::vfio)) == "vfio");
}

TEST_CASE("vfio spec: refusals name what is wrong") {
    CHECK(mentions(refusal("vfio:"), "not a PCI address"));
    CHECK(mentions(refusal("vfio:0000:04:00"), "not a PCI address"));
    CHECK(mentions(refusal("vfio:0000:04:20.0"), "not a PCI address")); // device > 0x1f
    CHECK(mentions(refusal("vfio:0000:04:00.8"), "not a PCI address"));
    CHECK(mentions(refusal("vfio:0000:04:00.0,bars=1M"), "the only option is name"));
    CHECK(mentions(refusal("vfio:0000:04:00.0,name"), "the only option is name"));
    CHECK(mentions(refusal("vfio:0000:04:00.0,name=a,name=b"), "given twice"));
    CHECK(mentions(refusal("vfio:0000:04:00.0,name=a b"), "at most 64"));
    CHECK(mentions(refusal("vfio:0000:04:00.0,name="), "at most 64"));
    CHECK(mentions(refusal("vfio name=x"), "vfio:BDF"));
    CHECK(mentions(refusal("gpu"), "vfio:BDF"));
    // An emulated Device is never made of a vfio spec.
    CHECK_THROWS_AS(endpoint::Device(endpoint::parse_device_spec("vfio:04:00.0")), Error);
}

TEST_CASE("vfio: normalize_bdf") {
    CHECK(vfio::normalize_bdf("0000:00:1f.3") == "0000:00:1f.3");
    CHECK(vfio::normalize_bdf("00:1F.3") == "0000:00:1f.3");
    CHECK(vfio::normalize_bdf("ABCD:ff:00.0") == "abcd:ff:00.0");
    CHECK_FALSE(vfio::normalize_bdf("0000:00:1f"));
    CHECK_FALSE(vfio::normalize_bdf("0000-00-1f.3"));
    CHECK_FALSE(vfio::normalize_bdf("0000:0g:00.0"));
    CHECK_FALSE(vfio::normalize_bdf(""));
}

TEST_CASE("vfio IOVA: page-rounded ranges with a guard page between them") {
    vfio::IovaAllocator a(0x100000, 0x200000);
    auto x = a.allocate(1);
    auto y = a.allocate(4096);
    auto z = a.allocate(5000);
    REQUIRE(x);
    REQUIRE(y);
    REQUIRE(z);
    CHECK(*x == 0x100000);
    CHECK(*y == 0x102000); // one page for x, one guard page
    CHECK(*z == 0x104000);
    CHECK(a.count() == 3);
    // find: only a range wholly inside one allocation.
    CHECK(a.find(0x100000, 4096) == std::make_pair(std::uint64_t{0x100000}, std::uint64_t{4096}));
    CHECK_FALSE(a.find(0x101000, 1)); // the guard page
    CHECK_FALSE(a.find(0x100fff, 2)); // runs into the guard
    CHECK(a.find(0x105fff, 1));       // z is two pages
    CHECK_FALSE(a.find(0x106000, 1));
    CHECK_FALSE(a.allocate(0));
}

TEST_CASE("vfio IOVA: a freed range is not handed out again until the window wraps") {
    vfio::IovaAllocator a(0x100000, 0x108000); // 8 pages
    auto x = a.allocate(4096);
    REQUIRE(x);
    CHECK(a.release(*x));
    CHECK_FALSE(a.release(*x));
    auto y = a.allocate(4096);
    REQUIRE(y);
    CHECK(*y != *x);
    auto z = a.allocate(4096);
    auto w = a.allocate(4096);
    REQUIRE(z);
    REQUIRE(w);
    CHECK(*w == 0x106000); // pages 0x100 (freed), 0x102 y, 0x104 z, 0x106 w
    // The cursor is at the end: the next one wraps around to the freed start.
    auto v = a.allocate(4096);
    REQUIRE(v);
    CHECK(*v == 0x100000);
    CHECK_FALSE(a.allocate(4096)); // full: every page is used or a guard
    a.clear();
    CHECK(a.count() == 0);
    CHECK(a.allocate(3 * 4096));
}

TEST_CASE("vfio IOVA: only inside the ranges the IOMMU reports usable") {
    vfio::IovaAllocator a(0x100000, 0x1'0000'0000);
    // x86: the MSI window 0xfee00000-0xfeefffff is reserved; say only two small holes remain.
    a.set_usable({{0x300000, 0x301fff}, {0x100000, 0x100fff}});
    auto x = a.allocate(4096);
    REQUIRE(x);
    CHECK(*x == 0x100000);
    auto y = a.allocate(8192);
    REQUIRE(y);
    CHECK(*y == 0x300000); // does not fit in the first hole's rest
    CHECK_FALSE(a.allocate(4096));
    CHECK_THROWS_AS(vfio::IovaAllocator(0x200000, 0x100000), Error);
}

TEST_CASE("vfio identity: ids, class, IOMMU group and driver from sysfs") {
    TempDir t;
    fake_device(t.path, "0000:04:00.0", "0x1234", "0x11e8", "0x00ff00", 7, "vfio-pci");
    fake_device(t.path, "0000:05:00.0", "0x8086", "0x10d3", "0x020000", -1, "");
    auto id = vfio::read_identity(t.path.string(), "0000:04:00.0");
    CHECK(id.vendor_id == 0x1234);
    CHECK(id.device_id == 0x11e8);
    CHECK(id.class_code == 0x00ff00);
    CHECK(id.iommu_group == 7);
    CHECK(id.driver == "vfio-pci");
    auto no = vfio::read_identity(t.path.string(), "0000:05:00.0");
    CHECK(no.iommu_group == -1);
    CHECK(no.driver.empty());
    try {
        vfio::read_identity(t.path.string(), "0000:06:00.0");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::not_found);
    }
    write(t.path / "devices/pci0000:00/0000:05:00.0/vendor", "zz");
    CHECK_THROWS_AS(vfio::read_identity(t.path.string(), "0000:05:00.0"), Error);
}

TEST_CASE("vfio open: refuses a function without a group or not bound to vfio-pci") {
    TempDir t;
    fake_device(t.path, "0000:04:00.0", "0x1234", "0x11e8", "0x00ff00", -1, "vfio-pci");
    fake_device(t.path, "0000:03:00.0", "0x1b36", "0x0010", "0x010802", 3, "nvme");
    vfio::OpenOptions o;
    o.sysfs_root = t.path.string();
    o.vfio_dir = (t.path / "dev-vfio").string(); // nothing there: never reached
    auto why = [&](const std::string& bdf) {
        try {
            vfio::Device::open(bdf, o);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("opened");
    };
    CHECK(mentions(why("0000:04:00.0"), "no IOMMU group"));
    CHECK(mentions(why("0000:03:00.0"), "bound to nvme, not vfio-pci"));
    CHECK(mentions(why("04:00"), "not a PCI address"));
}

TEST_CASE("vfio regions: the BAR table and its count") {
    std::vector<vfio::Region> regions;
    vfio::Region bar0;
    bar0.index = 0;
    bar0.size = 16384;
    bar0.offset = 0;
    bar0.mappable = true;
    vfio::Region bar4;
    bar4.index = 4;
    bar4.size = 4096;
    bar4.offset = 4ull << 40;
    regions = {bar4, bar0};
    auto t = vfio::bar_table(regions);
    CHECK(t.count() == 5); // BAR4 is the last with a size
    REQUIRE(t.bar(0));
    CHECK(t.bar(0)->size == 16384);
    CHECK(t.bar(0)->mappable);
    CHECK(t.bar(1) == nullptr);
    REQUIRE(t.bar(4));
    CHECK(t.bar(4)->offset == 4ull << 40);
    CHECK(t.bar(6) == nullptr);
    CHECK(t.bar(-1) == nullptr);
    CHECK(vfio::bar_table({}).count() == 0);
}

TEST_CASE("vfio interrupts: MSI first, then MSI-X, never INTx") {
    auto msi = vfio::choose_irqs(1, 0);
    CHECK(msi.type == endpoint::IrqType::msi);
    CHECK(msi.count == 1);
    auto both = vfio::choose_irqs(4, 65);
    CHECK(both.type == endpoint::IrqType::msi);
    CHECK(both.count == 4);
    auto msix = vfio::choose_irqs(0, 64);
    CHECK(msix.type == endpoint::IrqType::msix);
    CHECK(msix.count == 64);
    CHECK(vfio::choose_irqs(0, 0).count == 0);
}
