// Every device of every fixture dump, as `dis-tool pci list --dump FILE -o json` reports it,
// checked against Debian's own lspci decoding the same file: `lspci -F FILE -vvvn` for ids,
// class, bridge buses, port type, link, ACS and AER, and `lspci -F FILE -t` for the tree.
#include "support.hpp"

#include "dis/pci.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace {

constexpr const char* k_lspci = "/usr/bin/lspci";

struct LspciLink {
    std::string cap_speed, sta_speed;
    int cap_width = -1, sta_width = -1;
    bool ll_act_rep = false;
    std::optional<bool> dl_active;
    bool annotated_downgraded = false;
};

// One device as lspci's text shows it; optional fields are absent from its output.
struct LspciDevice {
    dis::pci::Bdf bdf;
    std::string class_id, vendor_id, device_id;
    std::optional<int> secondary, subordinate;
    std::optional<std::string> express; // text after "Express (vN) "
    std::optional<LspciLink> link;
    std::optional<std::map<std::string, bool>> acs_cap, acs_ctl;
    std::optional<std::map<std::string, bool>> ue_status, ce_status;
    bool flr = false;                      // DevCap FLReset+ or AFCap FLR+
    std::optional<std::vector<int>> sriov; // initial, total, number of VFs
    std::string vf_device_id;
};

std::map<std::string, bool> flag_words(const std::string& text) {
    std::map<std::string, bool> out;
    std::istringstream in(text);
    std::string word;
    while (in >> word)
        if (word.size() > 1 && (word.back() == '+' || word.back() == '-'))
            out[word.substr(0, word.size() - 1)] = word.back() == '+';
    return out;
}

std::string after(const std::string& line, const std::string& key) {
    return line.substr(line.find(key) + key.size());
}

std::vector<LspciDevice> parse_lspci_verbose(const std::string& text) {
    std::vector<LspciDevice> out;
    std::istringstream in(text);
    std::string line;
    static const std::regex header(R"(^(\S+) ([0-9a-f]{4}): ([0-9a-f]{4}):([0-9a-f]{4}).*)");
    static const std::regex bus(R"(secondary=([0-9a-f]{2}), subordinate=([0-9a-f]{2}))");
    static const std::regex speed_width(
        R"(Speed ([^ ,]+)( \((ok|downgraded|overdriven)\))?, Width x(\d+))");
    std::string last_cap_line; // "LnkCap" / "LnkSta": which register continues on this line
    for (bool first = true; std::getline(in, line); first = false) {
        (void)first;
        std::smatch m;
        if (!line.empty() && line[0] != '\t' && std::regex_match(line, m, header)) {
            LspciDevice d;
            auto bdf = dis::pci::Bdf::try_parse(m[1].str());
            REQUIRE(bdf);
            d.bdf = *bdf;
            d.class_id = m[2];
            d.vendor_id = m[3];
            d.device_id = m[4];
            out.push_back(d);
            continue;
        }
        if (out.empty())
            continue;
        LspciDevice& d = out.back();
        if (line.rfind("\tBus: ", 0) == 0 && std::regex_search(line, m, bus)) {
            d.secondary = std::stoi(m[1], nullptr, 16);
            d.subordinate = std::stoi(m[2], nullptr, 16);
        } else if (line.rfind("\tCapabilities: [", 0) == 0 &&
                   line.find("] Express (v") != std::string::npos && !d.express) {
            std::string rest = after(line, "] Express (v");
            d.express = rest.substr(rest.find(") ") + 2);
        } else if (line.rfind("\t\tLnkCap:\t", 0) == 0 && d.express && !d.link) {
            d.link = LspciLink{};
            REQUIRE(std::regex_search(line, m, speed_width));
            d.link->cap_speed = m[1];
            d.link->cap_width = std::stoi(m[4]);
            last_cap_line = "LnkCap";
            continue;
        } else if (line.rfind("\t\tLnkSta:\t", 0) == 0 && d.link && d.link->sta_width < 0) {
            REQUIRE(std::regex_search(line, m, speed_width));
            d.link->sta_speed = m[1];
            d.link->sta_width = std::stoi(m[4]);
            d.link->annotated_downgraded = m[3] == "downgraded";
            last_cap_line = "LnkSta";
            continue;
        } else if (line.rfind("\t\t\t", 0) == 0 && d.link && !last_cap_line.empty()) {
            auto flags = flag_words(line);
            if (last_cap_line == "LnkCap" && flags.count("LLActRep"))
                d.link->ll_act_rep = flags["LLActRep"];
            if (last_cap_line == "LnkSta" && flags.count("DLActive"))
                d.link->dl_active = flags["DLActive"];
            continue;
        } else if (line.rfind("\t\tACSCap:\t", 0) == 0 && !d.acs_cap) {
            d.acs_cap = flag_words(after(line, "ACSCap:"));
        } else if (line.rfind("\t\tACSCtl:\t", 0) == 0 && !d.acs_ctl) {
            d.acs_ctl = flag_words(after(line, "ACSCtl:"));
        } else if (line.rfind("\t\tUESta:\t", 0) == 0 && !d.ue_status) {
            d.ue_status = flag_words(after(line, "UESta:"));
        } else if (line.rfind("\t\tCESta:\t", 0) == 0 && !d.ce_status) {
            d.ce_status = flag_words(after(line, "CESta:"));
        } else if (line.rfind("\t\tAFCap:", 0) == 0) {
            d.flr = d.flr || flag_words(after(line, "AFCap:"))["FLR"];
        } else if (line.rfind("\t\tInitial VFs: ", 0) == 0 && !d.sriov) {
            int initial = 0, total = 0, number = 0;
            REQUIRE(std::sscanf(line.c_str(),
                                "\t\tInitial VFs: %d, Total VFs: %d, Number of VFs: %d", &initial,
                                &total, &number) == 3);
            d.sriov = std::vector<int>{initial, total, number};
        } else if (line.rfind("\t\tVF offset: ", 0) == 0 && d.vf_device_id.empty()) {
            d.vf_device_id = after(line, "Device ID: ").substr(0, 4);
        }
        if (line.find("FLReset+") != std::string::npos)
            d.flr = true;
        last_cap_line.clear();
    }
    return out;
}

// Parent of every device in `lspci -t` output (nullopt for devices on a top-level bus).
// Siblings are printed at the same column, so the context a token was read in is remembered
// per column for the continuation lines below it.
std::map<dis::pci::Bdf, std::optional<dis::pci::Bdf>> parse_lspci_tree(const std::string& text) {
    struct Context {
        std::uint32_t domain = 0;
        int bus = -1;
        std::optional<dis::pci::Bdf> parent;
    };
    std::map<dis::pci::Bdf, std::optional<dis::pci::Bdf>> parents;
    std::map<std::size_t, Context> at_column;
    static const std::regex token(
        R"(\[([0-9a-f]{4,5}):([0-9a-f]{2})\]|([0-9a-f]{2})\.([0-9a-f])(-\[([0-9a-f]{2})(-([0-9a-f]{2}))?\])?)");
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        bool first = true;
        Context cur;
        for (auto it = std::sregex_iterator(line.begin(), line.end(), token);
             it != std::sregex_iterator(); ++it) {
            const std::smatch& m = *it;
            auto col = static_cast<std::size_t>(m.position(0));
            if (first) {
                auto saved = at_column.find(col);
                cur = saved == at_column.end() ? Context{} : saved->second;
                first = false;
            }
            at_column[col] = cur;
            if (m[1].matched) {
                cur = Context{static_cast<std::uint32_t>(std::stoul(m[1], nullptr, 16)),
                              std::stoi(m[2], nullptr, 16), cur.parent};
                continue;
            }
            REQUIRE(cur.bus >= 0);
            dis::pci::Bdf bdf{cur.domain, static_cast<std::uint8_t>(cur.bus),
                              static_cast<std::uint8_t>(std::stoi(m[3], nullptr, 16)),
                              static_cast<std::uint8_t>(std::stoi(m[4], nullptr, 16))};
            parents[bdf] = cur.parent;
            if (m[5].matched)
                cur = Context{cur.domain, std::stoi(m[6], nullptr, 16), bdf};
        }
    }
    return parents;
}

// `lspci -vmm` / `-vmmn` blocks: "Key:\tvalue" lines, a blank line between devices.
std::map<std::string, std::map<std::string, std::string>>
parse_lspci_machine(const std::string& text) {
    std::map<std::string, std::map<std::string, std::string>> out;
    std::istringstream in(text);
    std::string line, slot;
    std::map<std::string, std::string> fields;
    auto flush = [&] {
        if (!fields.empty()) {
            auto bdf = dis::pci::Bdf::try_parse(fields["Slot"]);
            REQUIRE(bdf);
            out[bdf->to_string()] = fields;
        }
        fields.clear();
    };
    while (std::getline(in, line)) {
        if (line.empty()) {
            flush();
            continue;
        }
        auto tab = line.find(":\t");
        REQUIRE(tab != std::string::npos);
        fields[line.substr(0, tab)] = line.substr(tab + 2);
    }
    flush();
    return out;
}

int rank(const std::string& speed) {
    static const std::vector<std::string> k_speeds = {"2.5GT/s", "5GT/s",  "8GT/s",
                                                      "16GT/s",  "32GT/s", "64GT/s"};
    auto it = std::find(k_speeds.begin(), k_speeds.end(), speed);
    return it == k_speeds.end() ? 0 : static_cast<int>(it - k_speeds.begin()) + 1;
}

bool faces_downstream(const std::string& express) {
    return express.rfind("Root Port", 0) == 0 || express.rfind("Downstream Port", 0) == 0 ||
           express.rfind("PCI/PCI-X to PCI-Express Bridge", 0) == 0;
}

std::vector<std::string> fixture_dumps() {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dis::test::fixtures_dir() + "/pci"))
        if (e.path().extension() == ".txt")
            files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

void check_acs(const nlohmann::json& ours, const std::map<std::string, bool>& theirs) {
    REQUIRE(theirs.size() == 7);
    for (const auto& [name, value] : theirs) {
        INFO("ACS bit " << name);
        REQUIRE(ours.contains(name));
        CHECK(ours[name].get<bool>() == value);
    }
}

// Our list must name exactly the bits lspci shows as set; bits lspci 3.9 has no name for
// (newer spec revisions) may be listed in addition.
void check_aer(const nlohmann::json& ours, const std::map<std::string, bool>& theirs) {
    std::set<std::string> listed;
    for (const auto& n : ours)
        listed.insert(n.get<std::string>());
    for (const auto& [name, set] : theirs) {
        INFO("AER bit " << name);
        CHECK(listed.count(name) == (set ? 1u : 0u));
    }
}

} // namespace

TEST_CASE("pci list --dump agrees with lspci -vvv on every fixture device", "[pci][lspci]") {
    REQUIRE(std::filesystem::exists(k_lspci));
    auto files = fixture_dumps();
    REQUIRE(files.size() >= 30);
    std::size_t devices_checked = 0, links_checked = 0, acs_checked = 0, aer_checked = 0;
    for (const auto& file : files) {
        INFO("dump " << file);
        auto verbose = dis::test::run({k_lspci, "-F", file, "-vvvn"});
        REQUIRE(verbose.exit_code == 0);
        auto theirs = parse_lspci_verbose(verbose.out);
        auto tree = dis::test::run({k_lspci, "-F", file, "-t"});
        REQUIRE(tree.exit_code == 0);
        auto lspci_parents = parse_lspci_tree(tree.out);

        auto ours_run = dis::test::run_tool({"pci", "list", "--dump", file, "-o", "json"});
        REQUIRE(ours_run.exit_code == 0);
        auto ours = nlohmann::json::parse(ours_run.out);
        REQUIRE(ours.is_array());
        REQUIRE(ours.size() == theirs.size());
        REQUIRE(lspci_parents.size() == theirs.size());

        auto names = parse_lspci_machine(dis::test::run({k_lspci, "-F", file, "-vmm"}).out);
        auto numbers = parse_lspci_machine(dis::test::run({k_lspci, "-F", file, "-vmmn"}).out);
        REQUIRE(names.size() == theirs.size());
        REQUIRE(numbers.size() == theirs.size());

        std::map<dis::pci::Bdf, const LspciDevice*> by_bdf;
        for (const auto& t : theirs)
            by_bdf[t.bdf] = &t;
        std::map<std::string, const nlohmann::json*> ours_by_bdf;
        for (const auto& o : ours)
            ours_by_bdf[o["bdf"].get<std::string>()] = &o;

        for (const auto& t : theirs) {
            INFO("device " << t.bdf.to_string());
            REQUIRE(ours_by_bdf.count(t.bdf.to_string()) == 1);
            const nlohmann::json& o = *ours_by_bdf[t.bdf.to_string()];
            ++devices_checked;
            CHECK(o["vendor_id"] == t.vendor_id);
            CHECK(o["device_id"] == t.device_id);
            CHECK(o["class"] == t.class_id);

            // Names from pci.ids (lspci falls back to "Device 9716" where we say null),
            // subsystem ids, revision and programming interface.
            auto& nm = names[t.bdf.to_string()];
            auto& num = numbers[t.bdf.to_string()];
            if (o["vendor_name"].is_null())
                CHECK(nm["Vendor"].find(t.vendor_id) != std::string::npos);
            else
                CHECK(o["vendor_name"] == nm["Vendor"]);
            if (o["device_name"].is_null())
                CHECK(nm["Device"] == "Device " + t.device_id);
            else
                CHECK(o["device_name"] == nm["Device"]);
            if (!o["class_name"].is_null())
                CHECK(o["class_name"] == nm["Class"]);
            if (num.count("SVendor")) {
                CHECK(o["subsystem_vendor_id"] == num["SVendor"]);
                CHECK(o["subsystem_device_id"] == num["SDevice"]);
            } else {
                CHECK((o["subsystem_vendor_id"] == "0000" || o["subsystem_vendor_id"] == "ffff"));
            }
            CHECK(o["revision"] == (num.count("Rev") ? num["Rev"] : "00"));
            if (num.count("ProgIf"))
                CHECK(o["prog_if"] == num["ProgIf"]);

            // Bridge buses.
            CHECK(o["secondary_bus"].is_null() == !t.secondary);
            if (t.secondary) {
                CHECK(o["secondary_bus"] == *t.secondary);
                CHECK(o["subordinate_bus"] == *t.subordinate);
            }

            // Parent, from the tree lspci draws.
            REQUIRE(lspci_parents.count(t.bdf) == 1);
            const auto& parent = lspci_parents[t.bdf];
            if (parent)
                CHECK(o["parent"] == parent->to_string());
            else
                CHECK(o["parent"].is_null());

            // PCIe port type, as lspci words it.
            CHECK(o["port_type"].is_null() == !t.express);
            if (t.express) {
                auto type = o["port_type"].get<std::string>();
                bool known = false;
                for (auto pt :
                     {dis::pci::PortType::endpoint, dis::pci::PortType::legacy_endpoint,
                      dis::pci::PortType::root_port, dis::pci::PortType::upstream_port,
                      dis::pci::PortType::downstream_port, dis::pci::PortType::pcie_to_pci_bridge,
                      dis::pci::PortType::pci_to_pcie_bridge,
                      dis::pci::PortType::rc_integrated_endpoint,
                      dis::pci::PortType::rc_event_collector})
                    if (type == dis::pci::to_string(pt)) {
                        known = true;
                        CHECK(t.express->rfind(dis::pci::describe(pt), 0) == 0);
                    }
                if (!known)
                    CHECK(t.express->rfind("Unknown type", 0) == 0);
            }

            // Link capability and status.
            CHECK(o["link"].is_null() == !t.link);
            if (t.link && o["link"].is_object()) {
                ++links_checked;
                const auto& l = o["link"];
                CHECK(l["max_speed"] == t.link->cap_speed);
                CHECK(l["max_width"] == t.link->cap_width);
                CHECK(l["speed"] == t.link->sta_speed);
                CHECK(l["width"] == t.link->sta_width);

                // downgraded: below the lower of both ends' LnkCap, from lspci's values and
                // lspci's tree; a link that is down (x0, or DLActive- where reported) is not.
                const LspciDevice* partner = nullptr;
                if (faces_downstream(*t.express)) {
                    for (const auto& [child, p] : lspci_parents)
                        if (p && *p == t.bdf && by_bdf[child]->link &&
                            !faces_downstream(*by_bdf[child]->express)) {
                            partner = by_bdf[child];
                            break;
                        }
                } else if (parent && by_bdf[*parent]->link &&
                           faces_downstream(*by_bdf[*parent]->express)) {
                    partner = by_bdf[*parent];
                }
                int cap_speed = rank(t.link->cap_speed);
                int cap_width = t.link->cap_width;
                if (partner) {
                    if (rank(partner->link->cap_speed) && cap_speed)
                        cap_speed = std::min(cap_speed, rank(partner->link->cap_speed));
                    if (partner->link->cap_width > 0)
                        cap_width = std::min(cap_width, partner->link->cap_width);
                }
                bool down =
                    t.link->sta_width == 0 || (t.link->ll_act_rep && t.link->dl_active == false);
                int sta = rank(t.link->sta_speed);
                bool expected = !down && ((sta && cap_speed && sta < cap_speed) ||
                                          t.link->sta_width < cap_width);
                INFO("partner " << (partner ? partner->bdf.to_string() : "none"));
                CHECK(l["downgraded"].get<bool>() == expected);
                // Where lspci itself says "(downgraded)" and the partner is no slower, so do we.
                if (t.link->annotated_downgraded && !down &&
                    (!partner || rank(partner->link->cap_speed) >= rank(t.link->cap_speed)))
                    CHECK(l["downgraded"].get<bool>());
            }

            // ACS.
            CHECK(o["acs"].is_null() == !t.acs_cap);
            if (t.acs_cap && o["acs"].is_object()) {
                ++acs_checked;
                REQUIRE(t.acs_ctl);
                check_acs(o["acs"]["cap"], *t.acs_cap);
                check_acs(o["acs"]["ctl"], *t.acs_ctl);
            }

            CHECK(o["flr_capable"].get<bool>() == t.flr);
            CHECK(o["sriov"].is_null() == !t.sriov);
            if (t.sriov && o["sriov"].is_object()) {
                CHECK(o["sriov"]["initial_vfs"] == (*t.sriov)[0]);
                CHECK(o["sriov"]["total_vfs"] == (*t.sriov)[1]);
                CHECK(o["sriov"]["num_vfs"] == (*t.sriov)[2]);
                CHECK(o["sriov"]["vf_device_id"] == t.vf_device_id);
            }

            // AER status.
            CHECK(o["aer"].is_null() == !t.ue_status);
            if (t.ue_status && o["aer"].is_object()) {
                ++aer_checked;
                REQUIRE(t.ce_status);
                check_aer(o["aer"]["uncorrectable_status"], *t.ue_status);
                check_aer(o["aer"]["correctable_status"], *t.ce_status);
            }
        }
    }
    // The fixtures exercise every decoder: fail loudly if a parser silently matched nothing.
    CHECK(devices_checked >= 90);
    CHECK(links_checked >= 40);
    CHECK(acs_checked >= 5);
    CHECK(aer_checked >= 10);
}
