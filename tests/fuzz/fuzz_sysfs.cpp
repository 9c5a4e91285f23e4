// libFuzzer target: the sysfs reader (dis::pci::scan over Source::sysfs: the root check, the
// config space and attribute readers (modalias or the separate ids), parents from links and
// bus ranges, and the IOMMU analysis over kernel/iommu_groups). Each input is unpacked into a
// small /sys tree under a temporary directory, made of records that each start with a line
// "@PATH\n" and run to the next "\n@" (or the end of the input):
//
//   @0000:00:01.0/config               the device's config space (raw bytes)
//   @0000:00:01.0/0000:01:00.0/numa_node   a device nested below a bridge (parent link)
//   @0000:01:00.0/driver               a symlink named after the body ("nvme")
//   @0000:01:00.0/iommu_group          a symlink to kernel/iommu_groups/BODY, plus the
//                                      group's devices/ entry
//   @~0000:00:02.0                     bus/pci/devices/<bdf> a directory, not a link
//   @!name                             a stray entry in bus/pci/devices
//
// Every device named gets bus/pci/devices/<bdf> -> ../../../devices/pci0000:00/<chain>.
// Path components are limited to [A-Za-z0-9_.:-] (no "..", nothing absolute), so the tree
// never points outside its directory. Inputs must scan or throw dis::Error(invalid_input).
#include "dis/error.hpp"
#include "dis/iommu.hpp"
#include "dis/output.hpp"
#include "dis/pci.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_max_records = 48;
constexpr std::size_t k_max_depth = 4;

bool safe_name(std::string_view s) {
    if (s.empty() || s.size() > 64 || s == "." || s == "..")
        return false;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        auto pos = s.find(sep, start);
        out.emplace_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
        if (pos == std::string_view::npos)
            return out;
        start = pos + 1;
    }
}

std::string trimmed(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.remove_suffix(1);
    return std::string(s);
}

void write_file(const fs::path& path, std::string_view body) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
}

class Tree {
public:
    explicit Tree(fs::path root) : m_root(std::move(root)) {
        fs::create_directories(m_root / "bus/pci/devices");
        fs::create_directories(m_root / "devices/pci0000:00");
        fs::create_directories(m_root / "kernel/iommu_groups");
    }

    void add_record(std::string_view header, std::string_view body) {
        std::error_code ec;
        if (!header.empty() && header[0] == '!') {
            if (safe_name(header.substr(1)))
                write_file(m_root / "bus/pci/devices" / std::string(header.substr(1)), body);
            return;
        }
        if (!header.empty() && header[0] == '~') {
            if (safe_name(header.substr(1)))
                fs::create_directories(m_root / "bus/pci/devices" / std::string(header.substr(1)),
                                       ec);
            return;
        }
        auto parts = split(header, '/');
        std::vector<std::string> chain;
        std::size_t i = 0;
        for (; i < parts.size() && dis::pci::Bdf::try_parse(parts[i]) && safe_name(parts[i]); ++i)
            chain.push_back(parts[i]);
        if (chain.empty() || chain.size() > k_max_depth)
            return;
        fs::path dir = device(chain);
        if (i + 1 != parts.size() || !safe_name(parts[i]))
            return; // a device alone, or an attribute path we do not build
        const std::string& attr = parts[i];
        fs::path file = dir / attr;
        if (fs::exists(fs::symlink_status(file, ec)))
            return;
        if (attr == "driver") {
            std::string target = trimmed(body);
            if (safe_name(target))
                fs::create_symlink("../../../bus/pci/drivers/" + target, file, ec);
        } else if (attr == "iommu_group") {
            std::string group = trimmed(body);
            if (!safe_name(group))
                return;
            fs::path gdir = m_root / "kernel/iommu_groups" / group / "devices";
            fs::create_directories(gdir, ec);
            fs::create_symlink(fs::relative(dir, gdir), gdir / chain.back(), ec);
            fs::create_symlink(fs::relative(m_root / "kernel/iommu_groups" / group, dir), file, ec);
        } else {
            write_file(file, body);
        }
    }

    const fs::path& root() const { return m_root; }

private:
    // The directory of the device `chain` names, created with its bus/pci/devices link.
    fs::path device(const std::vector<std::string>& chain) {
        fs::path dir = m_root / "devices/pci0000:00";
        fs::path rel = "../../../devices/pci0000:00";
        for (const auto& bdf : chain) {
            dir /= bdf;
            rel /= bdf;
        }
        std::error_code ec;
        fs::create_directories(dir, ec);
        fs::path entry = m_root / "bus/pci/devices" / chain.back();
        if (!fs::exists(fs::symlink_status(entry, ec)))
            fs::create_symlink(rel, entry, ec);
        return dir;
    }

    fs::path m_root;
};

const fs::path& base_dir() {
    static const fs::path base = [] {
        std::string templ = (fs::temp_directory_path() / "dis-fuzz-sysfs-XXXXXX").string();
        if (!::mkdtemp(templ.data()))
            std::abort();
        return fs::path(templ);
    }();
    return base;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024)
        return -1;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    fs::path root = base_dir() / "sys";
    fs::remove_all(root);
    {
        Tree tree(root);
        std::size_t records = 0;
        std::size_t pos = input.empty() || input[0] != '@' ? input.find("\n@") : 0;
        while (pos != std::string_view::npos && records++ < k_max_records) {
            std::size_t start = input[pos] == '@' ? pos + 1 : pos + 2;
            std::size_t eol = input.find('\n', start);
            std::string_view header =
                input.substr(start, eol == std::string_view::npos ? eol : eol - start);
            std::size_t next = eol == std::string_view::npos ? eol : input.find("\n@", eol);
            std::string_view body;
            if (eol != std::string_view::npos)
                body =
                    input.substr(eol + 1, next == std::string_view::npos ? next : next - eol - 1);
            tree.add_record(header, body);
            pos = next;
        }
    }
    try {
        auto topology = dis::pci::scan(dis::pci::Source::sysfs(root.string()));
        // Rendered the way the CLI renders them: the one JSON renderer (which replaces
        // invalid UTF-8 read from sysfs instead of throwing).
        std::ostringstream sink;
        for (const auto& device : topology.devices()) {
            dis::output::render_json(sink, dis::pci::to_json(device));
            (void)topology.upstream_path(device.bdf);
        }
        (void)dis::pci::render_tree_text(topology);
        dis::output::render_json(sink, dis::pci::to_json(dis::pci::analyze_iommu(topology)));
    } catch (const dis::Error& e) {
        if (e.kind() != dis::ErrorKind::invalid_input)
            std::abort(); // the tree exists and is readable: never not_found or an OS error
    }
    fs::remove_all(root);
    return 0;
}
