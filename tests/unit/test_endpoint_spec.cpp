// Device declarations: the text after NODE of a config `device` line and of `disd --device`.
#include "dis/endpoint.hpp"
#include "dis/error.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace dis::endpoint;

namespace {

// The message of the invalid_input error parsing `text` throws.
std::string refusal(const std::string& text) {
    try {
        parse_device_spec(text);
    } catch (const dis::Error& e) {
        CHECK(e.kind() == dis::ErrorKind::invalid_input);
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

bool mentions(const std::string& message, const std::string& word) {
    return message.find(word) != std::string::npos;
}

} // namespace

TEST_CASE("endpoint spec: defaults per kind", "[endpoint]") {
    DeviceSpec epf = parse_device_spec("epf-test");
    CHECK(epf.kind == Kind::epf_test);
    CHECK(epf.name == "epf-test");
    CHECK(epf.vendor_id == 0x104c);
    CHECK(epf.device_id == 0xb500);
    CHECK(epf.class_code == 0xff0000);
    CHECK(epf.bars == std::vector<std::uint64_t>{512, 512, 1024, 16384, 131072, 1048576});
    CHECK(epf.vfs == 0);
    CHECK(epf.vf_index == -1);
    CHECK(epf.reset_time == std::chrono::milliseconds(20));
    CHECK_FALSE(epf.fail_reset);
    CHECK_FALSE(epf.hang_reset);
    CHECK_FALSE(epf.unresponsive);
    CHECK(epf.msi_vectors == 32);
    CHECK(epf.msix_vectors == 2048);

    DeviceSpec mem = parse_device_spec("  memory\t");
    CHECK(mem.kind == Kind::memory);
    CHECK(mem.vendor_id == 0x1af4);
    CHECK(mem.device_id == 0x1110);
    CHECK(mem.class_code == 0x050000);
    CHECK(mem.bars == std::vector<std::uint64_t>{1 << 20});
    CHECK(mem.msi_vectors == 0);
}

TEST_CASE("endpoint spec: every key", "[endpoint]") {
    DeviceSpec s = parse_device_spec(
        "epf-test name=ep0 vendor=0x104C device=0xb501 class=0xff0001 bars=512,512,1K,4k,2M,1G "
        "vfs=2 reset_ms=5 fail_reset=1 hang_reset=true unresponsive=1 msi=16 msix=8");
    CHECK(s.name == "ep0");
    CHECK(s.vendor_id == 0x104c);
    CHECK(s.device_id == 0xb501);
    CHECK(s.class_code == 0xff0001);
    CHECK(s.bars ==
          std::vector<std::uint64_t>{512, 512, 1024, 4096, 2u << 20, std::uint64_t{1} << 30});
    CHECK(s.vfs == 2);
    CHECK(s.reset_time == std::chrono::milliseconds(5));
    CHECK(s.fail_reset);
    CHECK(s.hang_reset);
    CHECK(s.unresponsive);
    CHECK(s.msi_vectors == 16);
    CHECK(s.msix_vectors == 8);
    CHECK(parse_device_spec("memory vendor=4660 bars=0x1000").vendor_id == 4660);
    CHECK(parse_device_spec("memory bars=0x1000").bars == std::vector<std::uint64_t>{4096});
    CHECK_FALSE(parse_device_spec("epf-test fail_reset=0").fail_reset);
}

TEST_CASE("endpoint spec: format_device_spec reads back the same", "[endpoint]") {
    DeviceSpec s = parse_device_spec(
        "epf-test name=x vendor=0x1 device=0x2 class=0x3 bars=128,4K,1M vfs=1 reset_ms=7 "
        "unresponsive=1 msi=3 msix=5");
    DeviceSpec back = parse_device_spec(format_device_spec(s));
    CHECK(back.name == s.name);
    CHECK(back.vendor_id == s.vendor_id);
    CHECK(back.device_id == s.device_id);
    CHECK(back.class_code == s.class_code);
    CHECK(back.vfs == s.vfs);
    CHECK(back.reset_time == s.reset_time);
    CHECK(back.unresponsive);
    CHECK(back.msi_vectors == 3);
    CHECK(back.msix_vectors == 5);
    CHECK(mentions(format_device_spec(s), "bars=128,"));
}

TEST_CASE("endpoint spec: errors name the key", "[endpoint]") {
    CHECK(mentions(refusal(""), "empty"));
    CHECK(mentions(refusal("   "), "empty"));
    CHECK(mentions(refusal("nvme name=x"), "unknown kind 'nvme'"));
    CHECK(mentions(refusal("epf-test colour=red"), "unknown key 'colour'"));
    CHECK(mentions(refusal("epf-test name"), "'name': expected key=value"));
    CHECK(mentions(refusal("epf-test =3"), "expected key=value"));
    CHECK(mentions(refusal("epf-test name="), "name: empty value"));
    CHECK(mentions(refusal("epf-test name=a name=b"), "name: given twice"));
    CHECK(mentions(refusal("epf-test vendor=0x10000"), "vendor=0x10000: at most 65535"));
    CHECK(mentions(refusal("epf-test vendor=xyz"), "vendor=xyz: not a number"));
    CHECK(mentions(refusal("epf-test device=-1"), "device=-1: not a number"));
    CHECK(mentions(refusal("epf-test class=0x1000000"), "class=0x1000000"));
    CHECK(mentions(refusal("epf-test bars=512,,1K"), "bars=512,,1K: an empty size"));
    CHECK(mentions(refusal("epf-test bars=1000"), "power of two"));
    CHECK(mentions(refusal("epf-test bars=8"), "at least 16"));
    CHECK(mentions(refusal("epf-test bars=2G"), "bars"));
    CHECK(mentions(refusal("epf-test bars=1T"), "bars"));
    CHECK(mentions(refusal("epf-test bars=1K,1K,1K,1K,1K,1K,1K"), "at most 6 BARs"));
    CHECK(mentions(refusal("epf-test bars=64"), "BAR0 of an epf-test"));
    CHECK(mentions(refusal("epf-test vfs=65"), "vfs=65"));
    CHECK(mentions(refusal("epf-test reset_ms=1s"), "reset_ms=1s"));
    CHECK(mentions(refusal("epf-test reset_ms=600001"), "reset_ms"));
    CHECK(mentions(refusal("epf-test fail_reset=2"), "fail_reset=2: takes 0 or 1"));
    CHECK(mentions(refusal("epf-test hang_reset=maybe"), "hang_reset"));
    CHECK(mentions(refusal("epf-test unresponsive="), "unresponsive"));
    CHECK(mentions(refusal("epf-test msi=33"), "msi=33"));
    CHECK(mentions(refusal("epf-test msix=2049"), "msix=2049"));
    CHECK(mentions(refusal("memory msi=1"), "memory device raises no interrupts"));
    CHECK(mentions(refusal("epf-test vendor=0x"), "vendor=0x"));
    CHECK(mentions(refusal("epf-test name=a/b"), "name=a/b: at most 64 letters"));
    CHECK(mentions(refusal("epf-test name=" + std::string(65, 'x')), "at most 64"));
    CHECK(parse_device_spec("epf-test name=gpu-0.a_b").name == "gpu-0.a_b");
}

TEST_CASE("endpoint spec: a PF's VFs follow it", "[endpoint]") {
    auto functions = expand_functions(parse_device_spec("epf-test name=ep vfs=2"));
    REQUIRE(functions.size() == 3);
    CHECK(functions[0].name == "ep");
    CHECK(functions[0].vf_index == -1);
    CHECK(functions[0].vfs == 2);
    CHECK(functions[1].name == "ep-vf0");
    CHECK(functions[1].vf_index == 0);
    CHECK(functions[1].vfs == 0);
    CHECK(functions[2].name == "ep-vf1");
    CHECK(functions[2].vf_index == 1);
    CHECK(functions[2].bars == functions[0].bars);
    CHECK(expand_functions(parse_device_spec("memory")).size() == 1);
    CHECK(std::string(to_string(Kind::epf_test)) == "epf-test");
    CHECK(kind_from_string("memory") == Kind::memory);
    CHECK_FALSE(kind_from_string("Memory"));
}
