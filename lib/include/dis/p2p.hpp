// Peer-to-peer DMA verdicts between PCIe devices, computed as the kernel's p2pdma code does.
//
// drivers/pci/p2pdma.c (calc_map_type_and_dist) walks both devices' upstream bridges to the
// first common one. With a common bridge and no ACS redirect (ReqRedir, CmpltRedir or
// EgressCtrl enabled) on any device of either path up to and including it, TLPs are routed
// by bus address through that bridge (PCI_P2PDMA_MAP_BUS_ADDR). Otherwise they go through
// the host bridge, which the kernel only allows for root complexes on its allow-list (or
// any AMD Zen CPU); everything else is PCI_P2PDMA_MAP_NOT_SUPPORTED. The distance is the
// number of upstream hops from each device to the common point, summed.
#pragma once

#include "dis/pci.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace dis::pci {

enum class P2pMap { bus_address, host_bridge, not_supported };
const char* to_string(P2pMap map) noexcept; // "bus_address", "host_bridge", "not_supported"

// Topology class in the spirit of `nvidia-smi topo -m`.
enum class TopoClass {
    self, // X: the same device
    pix,  // at most one PCIe switch (or bridge) between them
    pxb,  // several switches/bridges, without the host bridge
    phb,  // through a PCIe host bridge
    node, // across host bridges within one NUMA node (or NUMA unknown)
    sys,  // across host bridges on different NUMA nodes
};
const char* to_string(TopoClass cls) noexcept; // "X", "PIX", "PXB", "PHB", "NODE", "SYS"
const char* describe(TopoClass cls) noexcept;  // the legend line

struct AcsRedirect {
    Bdf device;
    std::vector<std::string> bits; // of "ReqRedir", "CmpltRedir", "EgressCtrl"
};

struct P2pOptions {
    // The kernel's cpu_supports_p2pdma(): AMD Zen and later route P2P through any root
    // complex. Unknowable from a snapshot, so callers say it (detected for live systems).
    bool cpu_supports_p2pdma = false;
};

// True when /proc/cpuinfo shows an AMD CPU of family 0x17 or later.
bool host_cpu_supports_p2pdma();

struct P2pPath {
    Bdf a;
    Bdf b;
    P2pMap map = P2pMap::not_supported;
    int hops = 0;      // dist_a + dist_b as the kernel computes it
    int distance = -1; // the kernel's pci_p2pdma_distance(): hops, or -1 when not supported
    std::optional<Bdf> common_bridge; // nullopt: no common upstream bridge
    std::vector<AcsRedirect> acs_redirects;
    bool host_bridge_allowed = false; // the allow-list (or the CPU) would route it via the host
    std::string reason;
    TopoClass topo = TopoClass::sys;
};

// The kernel's verdict for one pair. Both BDFs must exist (dis::Error not_found otherwise).
P2pPath p2p_path(const Topology& topology, const Bdf& a, const Bdf& b,
                 const P2pOptions& options = {});

// Default matrix members: non-bridge devices with at least one memory BAR.
std::vector<Bdf> p2p_candidates(const Topology& topology);

struct P2pMatrix {
    std::vector<Bdf> devices;
    std::vector<P2pPath> pairs; // every unordered pair i < j, in matrix order
    const P2pPath* find(const Bdf& a, const Bdf& b) const;
};
P2pMatrix p2p_matrix(const Topology& topology, const std::vector<Bdf>& devices,
                     const P2pOptions& options = {});

// Schema in dis-tool-p2p(1).
nlohmann::json to_json(const P2pPath& path);
nlohmann::json to_json(const P2pMatrix& matrix);

} // namespace dis::pci
