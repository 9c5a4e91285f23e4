// The plan against the fabric, before anything runs: the devices and nodes it names exist.
#include "dis/qualify.hpp"

#include "dis/error.hpp"
#include "dis/lending_client.hpp"
#include "dis/lending_model.hpp"
#include "dis/pci.hpp"

#include <algorithm>
#include <set>

namespace dis::qualify {

namespace {

struct Known {
    std::string source;
    std::set<std::uint32_t> nodes;
    std::set<std::uint32_t> devices;
    std::string device_list;

    [[noreturn]] void fail(int line, const std::string& key, const std::string& why) const {
        throw Error(ErrorKind::invalid_input,
                    source + ":" + std::to_string(line) + ": key '" + key + "': " + why);
    }
    void node(const At<std::uint32_t>& n, const std::string& key) const {
        if (!nodes.count(n.value)) {
            std::string list;
            for (auto id : nodes)
                list += (list.empty() ? "" : ", ") + std::to_string(id);
            fail(n.line, key,
                 "node " + std::to_string(n.value) + " is not in the fabric (nodes: " + list + ")");
        }
    }
    void device(const At<lending::Fdid>& d, const std::string& key) const {
        if (!devices.count(d.value.value))
            fail(d.line, key,
                 "fdid " + lending::to_string(d.value) + " is not in the fabric's pool (devices: " +
                     (device_list.empty() ? "none" : device_list) + ")");
    }
};

} // namespace

void check_plan(const Plan& plan, const std::string& fabric_dir) {
    bool fabric_needed = std::any_of(plan.steps.begin(), plan.steps.end(),
                                     [](const Step& s) { return s.kind != StepKind::isolation; });
    Known k;
    k.source = plan.source;
    if (fabric_needed) {
        auto pool = lending::list_pool(fabric_dir);
        k.nodes.insert(pool.nodes.begin(), pool.nodes.end());
        for (const auto& d : pool.devices) {
            k.devices.insert(d.status.info.fdid.value);
            k.device_list +=
                (k.device_list.empty() ? "" : ", ") + lending::to_string(d.status.info.fdid);
        }
    }
    for (const auto& s : plan.steps) {
        switch (s.kind) {
        case StepKind::device_cycle:
            for (const auto& d : s.device_cycle.devices)
                k.device(d, "devices");
            for (const auto& b : s.device_cycle.borrowers)
                k.node(b, "borrowers");
            break;
        case StepKind::bench:
            if (s.bench.local_node)
                k.node(*s.bench.local_node, "local_node");
            if (s.bench.remote_node)
                k.node(*s.bench.remote_node, "remote_node");
            if (s.bench.device)
                k.device(*s.bench.device, "device");
            break;
        case StepKind::recovery:
            k.device(s.recovery.device, "device");
            k.node(s.recovery.borrower, "borrower");
            break;
        case StepKind::load:
            for (const auto& d : s.load.devices)
                k.device(d, "devices");
            for (const auto& b : s.load.borrowers)
                k.node(b, "borrowers");
            if (s.load.dma_local)
                k.node(*s.load.dma_local, "dma_local");
            if (s.load.dma_remote)
                k.node(*s.load.dma_remote, "dma_remote");
            break;
        case StepKind::isolation: {
            const auto& i = s.isolation;
            pci::Source source = !i.dump.empty()         ? pci::Source::dump(i.dump)
                                 : !i.sysfs_root.empty() ? pci::Source::sysfs(i.sysfs_root)
                                                         : pci::Source::live();
            std::optional<pci::Topology> topology;
            try {
                topology = pci::scan(source);
            } catch (const Error& e) {
                k.fail(s.line,
                       i.dump.empty() ? (i.sysfs_root.empty() ? "devices" : "sysfs_root") : "dump",
                       e.what());
            }
            for (const auto& b : i.bdfs) {
                std::optional<pci::Bdf> bdf;
                try {
                    bdf = pci::Bdf::parse(b.value);
                } catch (const Error& e) {
                    k.fail(b.line, "devices", e.what());
                }
                if (!topology->find(*bdf))
                    k.fail(b.line, "devices", "no PCI device " + b.value + " in " + source.path);
            }
            break;
        }
        case StepKind::rebind: {
            const auto& b = s.rebind;
            if (b.node)
                k.node(*b.node, "node");
            const auto source =
                pci::Source::sysfs(b.sysfs_root.empty() ? std::string("/sys") : b.sysfs_root);
            std::optional<pci::Topology> topology;
            try {
                topology = pci::scan(source);
            } catch (const Error& e) {
                k.fail(s.line, "sysfs_root", e.what());
            }
            if (!topology->find(pci::Bdf::parse(b.bdf.value)))
                k.fail(b.bdf.line, "device", "no PCI device " + b.bdf.value + " in " + source.path);
            break;
        }
        case StepKind::diag:
            break;
        }
    }
}

} // namespace dis::qualify
