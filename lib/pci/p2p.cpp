// Peer-to-peer DMA verdicts: the kernel's calc_map_type_and_dist() on a Topology snapshot.
#include "dis/p2p.hpp"

#include "dis/error.hpp"
#include "dis/strings.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace dis::pci {

namespace {

constexpr std::uint16_t k_vendor_intel = 0x8086;
constexpr std::uint16_t k_vendor_google = 0x1ae0;
constexpr int k_any_device = -1;

// The kernel's pci_p2pdma_whitelist (drivers/pci/p2pdma.c, Linux 6.x): root complexes known
// to route P2P between their root ports, matched on the host bridge's first device.
struct AllowedHostBridge {
    std::uint16_t vendor;
    int device;
    bool requires_same_host_bridge;
};
constexpr AllowedHostBridge k_allowed_host_bridges[] = {
    {k_vendor_intel, 0x3c00, true},         {k_vendor_intel, 0x3c01, true},  // Xeon E5/Core i7
    {k_vendor_intel, 0x2f00, true},         {k_vendor_intel, 0x2f01, true},  // Xeon E5 v3/E7 v3
    {k_vendor_intel, 0x2030, false},        {k_vendor_intel, 0x2031, false}, // Skylake-E
    {k_vendor_intel, 0x2032, false},        {k_vendor_intel, 0x2033, false},
    {k_vendor_intel, 0x2020, false},        {k_vendor_intel, 0x09a2, false}, // Ice Lake-SP
    {k_vendor_google, k_any_device, false},                                  // Google SoCs
};

// pci_bridge_has_acs_redir(): ReqRedir, CmpltRedir or EgressCtrl enabled in ACS control.
std::vector<std::string> acs_redirect_bits(const Device& device) {
    std::vector<std::string> bits;
    if (!device.acs)
        return bits;
    for (auto bit : {&AcsBits::req_redir, &AcsBits::cmplt_redir, &AcsBits::egress_ctrl})
        if (device.acs->ctl.*bit)
            bits.push_back(acs_name(bit));
    return bits;
}

// The device followed by its upstream bridges (pci_upstream_bridge() repeatedly).
std::vector<const Device*> chain_of(const Topology& topology, const Device& device) {
    std::vector<const Device*> chain{&device};
    for (const Device* up : topology.upstream_path(device.bdf))
        chain.push_back(up);
    return chain;
}

// The device pci_host_bridge_dev() returns for the root bus holding `top`: the first device
// on that bus if it is 00.0 or a root port.
const Device* host_bridge_device(const Topology& topology, const Device& top) {
    for (const auto& d : topology.devices()) {
        if (d.parent || d.bdf.domain != top.bdf.domain || d.bdf.bus != top.bdf.bus)
            continue;
        bool is_00_0 = d.bdf.device == 0 && d.bdf.function == 0;
        bool is_root_port = d.port_type && *d.port_type == PortType::root_port;
        return is_00_0 || is_root_port ? &d : nullptr;
    }
    return nullptr;
}

struct HostVerdict {
    bool allowed = false;
    std::string explanation;
};

const AllowedHostBridge* lookup_allowed(const Device* host) {
    if (!host)
        return nullptr;
    for (const auto& e : k_allowed_host_bridges)
        if (e.vendor == host->vendor_id &&
            (e.device == k_any_device || e.device == host->device_id))
            return &e;
    return nullptr;
}

std::string name_host(const Device* host, const Device& top) {
    if (!host)
        return "the host bridge of bus " + top.bdf.to_string().substr(0, 7) +
               " (no 00.0 or root port device to identify it)";
    return "host bridge " + host->bdf.to_string() + " [" + to_hex(host->vendor_id, 4) + ":" +
           to_hex(host->device_id, 4) + "]";
}

// host_bridge_whitelist(): both devices' host bridges must be on the allow-list, and
// entries flagged REQ_SAME_HOST_BRIDGE only allow traffic within one host bridge.
HostVerdict host_bridge_verdict(const Topology& topology, const Device& top_a,
                                const Device& top_b) {
    const Device* host_a = host_bridge_device(topology, top_a);
    const Device* host_b = host_bridge_device(topology, top_b);
    bool same = top_a.bdf.domain == top_b.bdf.domain && top_a.bdf.bus == top_b.bdf.bus;
    const AllowedHostBridge* ea = lookup_allowed(host_a);
    const AllowedHostBridge* eb = lookup_allowed(host_b);
    HostVerdict v;
    if (!ea) {
        v.explanation = name_host(host_a, top_a) + " is not known to route P2P (not on the "
                                                   "kernel's allow-list)";
        return v;
    }
    if (same) {
        v.allowed = true;
        v.explanation = name_host(host_a, top_a) + " is on the kernel's allow-list";
        return v;
    }
    if (!eb) {
        v.explanation = name_host(host_b, top_b) + " is not known to route P2P (not on the "
                                                   "kernel's allow-list)";
        return v;
    }
    if (ea->requires_same_host_bridge || eb->requires_same_host_bridge) {
        v.explanation = "the devices are under different host bridges and " +
                        name_host(host_a, top_a) + " only routes P2P within itself";
        return v;
    }
    v.allowed = true;
    v.explanation = "host bridges " + host_a->bdf.to_string() + " and " + host_b->bdf.to_string() +
                    " are on the kernel's allow-list";
    return v;
}

// The bridge that stands for a whole switch: a downstream port counts as its upstream port.
Bdf switch_of(const Topology& topology, const Device& bridge) {
    if (bridge.port_type && *bridge.port_type == PortType::downstream_port && bridge.parent) {
        const Device* up = topology.find(*bridge.parent);
        if (up && up->port_type && *up->port_type == PortType::upstream_port)
            return up->bdf;
    }
    return bridge.bdf;
}

} // namespace

const char* to_string(P2pMap map) noexcept {
    switch (map) {
    case P2pMap::bus_address:
        return "bus_address";
    case P2pMap::host_bridge:
        return "host_bridge";
    case P2pMap::not_supported:
        break;
    }
    return "not_supported";
}

const char* to_string(TopoClass cls) noexcept {
    switch (cls) {
    case TopoClass::self:
        return "X";
    case TopoClass::pix:
        return "PIX";
    case TopoClass::pxb:
        return "PXB";
    case TopoClass::phb:
        return "PHB";
    case TopoClass::node:
        return "NODE";
    case TopoClass::sys:
        break;
    }
    return "SYS";
}

const char* describe(TopoClass cls) noexcept {
    switch (cls) {
    case TopoClass::self:
        return "Self";
    case TopoClass::pix:
        return "Connection traversing at most a single PCIe switch or bridge";
    case TopoClass::pxb:
        return "Connection traversing multiple PCIe switches or bridges (without the host "
               "bridge)";
    case TopoClass::phb:
        return "Connection traversing PCIe as well as a PCIe host bridge";
    case TopoClass::node:
        return "Connection traversing PCIe and the interconnect between host bridges within "
               "a NUMA node (or NUMA unknown)";
    case TopoClass::sys:
        break;
    }
    return "Connection traversing PCIe and the SMP interconnect between NUMA nodes";
}

bool host_cpu_supports_p2pdma() {
    // cpu_supports_p2pdma() in drivers/pci/p2pdma.c: AMD Zen (family 0x17) and later.
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    bool amd = false;
    int family = -1;
    while (std::getline(in, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
        std::string value = line.substr(colon + 1);
        if (key == "vendor_id")
            amd = value.find("AuthenticAMD") != std::string::npos;
        else if (key == "cpu family")
            family = std::atoi(value.c_str());
        if (line.empty() || (amd && family >= 0))
            break;
    }
    return amd && family >= 0x17;
}

P2pPath p2p_path(const Topology& topology, const Bdf& a_bdf, const Bdf& b_bdf,
                 const P2pOptions& options) {
    const Device& a = topology.get(a_bdf);
    const Device& b = topology.get(b_bdf);
    P2pPath path;
    path.a = a.bdf;
    path.b = b.bdf;

    if (a.bdf == b.bdf) {
        path.map = P2pMap::bus_address;
        path.distance = 0;
        path.topo = TopoClass::self;
        path.common_bridge = a.bdf;
        path.reason = "same device";
        return path;
    }

    auto chain_a = chain_of(topology, a);
    auto chain_b = chain_of(topology, b);

    // calc_map_type_and_dist(): the first device on a's chain that is also on b's chain.
    // Every device on a's chain up to and including it, and on b's chain below it, is
    // checked for ACS redirect.
    std::vector<AcsRedirect> redirects;
    std::size_t dist_a = 0, dist_b = 0;
    bool found = false;
    for (std::size_t i = 0; i < chain_a.size() && !found; ++i) {
        if (auto bits = acs_redirect_bits(*chain_a[i]); !bits.empty())
            redirects.push_back({chain_a[i]->bdf, bits});
        for (std::size_t j = 0; j < chain_b.size(); ++j) {
            if (chain_b[j] == chain_a[i]) {
                found = true;
                dist_a = i;
                dist_b = j;
                break;
            }
        }
    }
    if (found) {
        path.common_bridge = chain_a[dist_a]->bdf;
        for (std::size_t j = 0; j < dist_b; ++j)
            if (auto bits = acs_redirect_bits(*chain_b[j]); !bits.empty())
                redirects.push_back({chain_b[j]->bdf, bits});
    } else {
        dist_a = chain_a.size();
        dist_b = chain_b.size();
        redirects.clear(); // the kernel only reports redirects below a common bridge
    }
    path.hops = static_cast<int>(dist_a + dist_b);
    path.acs_redirects = redirects;

    const Device& top_a = *chain_a.back();
    const Device& top_b = *chain_b.back();

    HostVerdict hv = host_bridge_verdict(topology, top_a, top_b);
    if (options.cpu_supports_p2pdma) {
        hv.allowed = true;
        hv.explanation = "the CPU (AMD Zen or later) routes P2P through its root complex";
    }
    path.host_bridge_allowed = hv.allowed;

    if (found && redirects.empty()) {
        path.map = P2pMap::bus_address;
        path.distance = path.hops;
        path.reason =
            "through common upstream bridge " + path.common_bridge->to_string() + " by bus address";
    } else {
        std::string why;
        if (found) {
            std::vector<std::string> where;
            for (const auto& r : redirects)
                where.push_back(r.device.to_string() + " (" + join(r.bits) + ")");
            why = "ACS redirect at " + join(where) + " sends TLPs up to the host bridge";
        } else {
            why = "no common upstream bridge";
        }
        path.map = hv.allowed ? P2pMap::host_bridge : P2pMap::not_supported;
        path.distance = hv.allowed ? path.hops : -1;
        path.reason = why + "; " + hv.explanation;
    }

    // Topology class.
    if (found) {
        std::set<Bdf> switches;
        for (std::size_t i = 1; i <= dist_a && i < chain_a.size(); ++i)
            switches.insert(switch_of(topology, *chain_a[i]));
        for (std::size_t j = 1; j < dist_b; ++j)
            switches.insert(switch_of(topology, *chain_b[j]));
        switches.erase(a.bdf);
        switches.erase(b.bdf);
        path.topo = switches.size() <= 1 ? TopoClass::pix : TopoClass::pxb;
    } else if (top_a.bdf.domain == top_b.bdf.domain && top_a.bdf.bus == top_b.bdf.bus) {
        path.topo = TopoClass::phb;
    } else {
        bool numa_differs = a.numa_node && b.numa_node && *a.numa_node >= 0 && *b.numa_node >= 0 &&
                            *a.numa_node != *b.numa_node;
        path.topo = numa_differs ? TopoClass::sys : TopoClass::node;
    }
    return path;
}

std::vector<Bdf> p2p_candidates(const Topology& topology) {
    std::vector<Bdf> out;
    for (const auto& d : topology.devices()) {
        if (d.is_bridge())
            continue;
        bool has_mem = std::any_of(d.bars.begin(), d.bars.end(), [](const Bar& bar) {
            return !bar.io && (bar.base != 0 || bar.size != 0);
        });
        if (has_mem)
            out.push_back(d.bdf);
    }
    return out;
}

const P2pPath* P2pMatrix::find(const Bdf& a, const Bdf& b) const {
    for (const auto& p : pairs)
        if ((p.a == a && p.b == b) || (p.a == b && p.b == a))
            return &p;
    return nullptr;
}

P2pMatrix p2p_matrix(const Topology& topology, const std::vector<Bdf>& devices,
                     const P2pOptions& options) {
    P2pMatrix m;
    for (const auto& b : devices) {
        topology.get(b); // not_found for unknown devices, before any work
        if (std::find(m.devices.begin(), m.devices.end(), b) == m.devices.end())
            m.devices.push_back(b);
    }
    for (std::size_t i = 0; i < m.devices.size(); ++i)
        for (std::size_t j = i + 1; j < m.devices.size(); ++j)
            m.pairs.push_back(p2p_path(topology, m.devices[i], m.devices[j], options));
    return m;
}

nlohmann::json to_json(const P2pPath& p) {
    nlohmann::json redirects = nlohmann::json::array();
    for (const auto& r : p.acs_redirects)
        redirects.push_back({{"device", r.device.to_string()}, {"bits", r.bits}});
    return {
        {"a", p.a.to_string()},
        {"b", p.b.to_string()},
        {"map_type", to_string(p.map)},
        {"distance", p.distance},
        {"hops", p.hops},
        {"common_bridge",
         p.common_bridge ? nlohmann::json(p.common_bridge->to_string()) : nlohmann::json()},
        {"acs_redirects", redirects},
        {"host_bridge_allowed", p.host_bridge_allowed},
        {"topology", to_string(p.topo)},
        {"reason", p.reason},
    };
}

nlohmann::json to_json(const P2pMatrix& m) {
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& b : m.devices)
        devices.push_back(b.to_string());
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& p : m.pairs)
        pairs.push_back(to_json(p));
    nlohmann::json legend = nlohmann::json::object();
    for (auto cls : {TopoClass::self, TopoClass::pix, TopoClass::pxb, TopoClass::phb,
                     TopoClass::node, TopoClass::sys})
        legend[to_string(cls)] = describe(cls);
    return {{"devices", devices}, {"pairs", pairs}, {"legend", legend}};
}

} // namespace dis::pci
