// dis-tool pci list | tree | show: the host PCIe hierarchy (see dis-tool-pci(1)).
#include "cli.hpp"

#include "dis/pci.hpp"
#include "dis/strings.hpp"

#include <iostream>
#include <memory>

namespace dis::cli {

namespace {

std::string display_name(const pci::Device& d) {
    std::string v = d.vendor_name.empty() ? "Vendor " + pci::to_hex(d.vendor_id, 4) : d.vendor_name;
    std::string n = d.device_name.empty() ? "Device " + pci::to_hex(d.device_id, 4) : d.device_name;
    return v + " " + n;
}

std::string notes(const pci::Device& d) {
    std::string s;
    if (d.link && d.link->downgraded)
        s += "downgraded";
    if (d.aer && d.aer->has_errors())
        s += std::string(s.empty() ? "" : ",") + "aer";
    return s;
}

std::string optional_int(const std::optional<int>& v) {
    return v ? std::to_string(*v) : "";
}

std::string size_text(std::uint64_t size) {
    if (size == 0)
        return "size unknown";
    static const char* const k_units[] = {"", "K", "M", "G", "T"};
    int unit = 0;
    while (unit < 4 && size % 1024 == 0) {
        size /= 1024;
        ++unit;
    }
    return "size " + std::to_string(size) + k_units[unit];
}

void run_list(Context& ctx, const PciSourceOptions& src) {
    pci::Topology topo = pci::scan(src.source());
    nlohmann::json doc = nlohmann::json::array();
    output::Table table{"BDF", "IDS", "CLASS", "DEVICE", "LINK", "DRIVER", "IOMMU", "NOTES"};
    for (const auto& d : topo.devices()) {
        doc.push_back(pci::to_json(d));
        table.add_row({d.bdf.to_string(),
                       pci::to_hex(d.vendor_id, 4) + ":" + pci::to_hex(d.device_id, 4),
                       d.class_name.empty() ? pci::to_hex(d.class_id, 4) : d.class_name,
                       display_name(d), d.link ? pci::describe_link(*d.link) : "",
                       d.driver.value_or(""), optional_int(d.iommu_group), notes(d)});
    }
    if (ctx.format() == output::Format::csv) {
        table.render_csv(std::cout);
        return;
    }
    emit(ctx, doc, [&](std::ostream& out) { table.render_text(out); });
}

void run_tree(Context& ctx, const PciSourceOptions& src) {
    pci::Topology topo = pci::scan(src.source());
    if (ctx.format() == output::Format::json) {
        emit(ctx, pci::tree_to_json(topo), {});
        return;
    }
    std::string text = pci::render_tree_text(topo);
    std::cout << text;
}

void run_show(Context& ctx, const PciSourceOptions& src, const std::string& bdf_text) {
    pci::Bdf bdf = pci::Bdf::parse(bdf_text); // bad syntax fails before any scan
    pci::Topology topo = pci::scan(src.source());
    const pci::Device& d = topo.get(bdf);
    emit(ctx, pci::to_json(d), [&](std::ostream& out) {
        output::KeyValues kv;
        kv.add("Device", d.bdf.to_string());
        kv.add("Name", display_name(d));
        kv.add("IDs", pci::to_hex(d.vendor_id, 4) + ":" + pci::to_hex(d.device_id, 4) + " rev " +
                          pci::to_hex(d.revision, 2) + ", subsystem " +
                          pci::to_hex(d.subsystem_vendor_id, 4) + ":" +
                          pci::to_hex(d.subsystem_device_id, 4));
        kv.add("Class", pci::to_hex(d.class_id, 4) + " " + d.class_name + " (prog-if " +
                            pci::to_hex(d.prog_if, 2) + ")");
        kv.add("Header type",
               std::to_string(d.header_type) + (d.multifunction ? " (multi-function)" : ""));
        kv.add("Parent", d.parent ? d.parent->to_string() : "none (root bus)");
        if (d.secondary_bus)
            kv.add("Buses", "primary " + pci::to_hex(*d.primary_bus, 2) + ", secondary " +
                                pci::to_hex(*d.secondary_bus, 2) + ", subordinate " +
                                pci::to_hex(*d.subordinate_bus, 2));
        kv.add("Port type", d.port_type ? pci::describe(*d.port_type) : "not PCI Express");
        if (d.link) {
            kv.add("Link",
                   pci::describe_link(*d.link) + (d.link->downgraded ? "  DOWNGRADED" : ""));
        }
        kv.add("FLR", d.flr_capable ? "yes" : "no");
        if (d.acs) {
            kv.add("ACS cap", pci::acs_text(d.acs->cap));
            kv.add("ACS ctl", pci::acs_text(d.acs->ctl));
        }
        if (d.aer && !d.aer->counters_only) {
            kv.add("AER uncorrectable", d.aer->uncorrectable_status.empty()
                                            ? "none"
                                            : join(d.aer->uncorrectable_status, " "));
            kv.add("AER correctable", d.aer->correctable_status.empty()
                                          ? "none"
                                          : join(d.aer->correctable_status, " "));
        }
        if (d.aer)
            for (const auto& [file, counters] : d.aer->counters) {
                std::string line;
                for (const auto& [name, value] : counters)
                    line += (line.empty() ? "" : " ") + name + "=" + std::to_string(value);
                kv.add(file, line);
            }
        if (d.sriov)
            kv.add("SR-IOV", std::to_string(d.sriov->num_vfs) + " of " +
                                 std::to_string(d.sriov->total_vfs) + " VFs enabled, VF id " +
                                 pci::to_hex(d.sriov->vf_device_id, 4));
        for (const auto& b : d.bars) {
            std::string base = pci::to_hex(b.base);
            std::string what = b.io ? "I/O ports at " : "Memory at ";
            std::string flags = b.io ? ""
                                     : std::string(" (") + (b.is_64bit ? "64-bit" : "32-bit") +
                                           ", " + (b.prefetchable ? "" : "non-") + "prefetchable)";
            // lspci's mark for a region the kernel has but the function's register lacks (VFs).
            if (b.is_virtual)
                flags += " [virtual]";
            kv.add("BAR " + std::to_string(b.index),
                   what + base + flags + ", " + size_text(b.size));
        }
        if (d.physfn)
            kv.add("Physical function", d.physfn->to_string());
        kv.add("Driver", d.driver.value_or("-"));
        kv.add("NUMA node", optional_int(d.numa_node).empty() ? "-" : optional_int(d.numa_node));
        kv.add("IOMMU group",
               optional_int(d.iommu_group).empty() ? "-" : optional_int(d.iommu_group));
        kv.add("Reset methods", d.reset_methods.empty() ? "-" : join(d.reset_methods, " "));
        kv.render_text(out);
    });
}

} // namespace

void register_pci_commands(CLI::App& app, Context& ctx) {
    auto* pci = app.add_subcommand("pci", "Inspect the host PCIe hierarchy (live, --dump, "
                                          "--sysfs-root)");
    pci->require_subcommand(1);

    struct State {
        PciSourceOptions source;
        std::string bdf;
    };
    auto state = std::make_shared<State>();

    auto* list = pci->add_subcommand("list", "List every PCI device with ids, class, link, "
                                             "driver and IOMMU group");
    add_pci_source_options(list, state->source);
    list->callback([&ctx, state] { run_list(ctx, state->source); });

    auto* tree = pci->add_subcommand("tree", "Draw the hierarchy like lspci -tv, with link "
                                             "speed/width and marks for downgraded links "
                                             "and AER errors");
    add_pci_source_options(tree, state->source);
    tree->callback([&ctx, state] { run_tree(ctx, state->source); });

    auto* show = pci->add_subcommand("show", "Show everything known about one device");
    add_pci_source_options(show, state->source);
    show->add_option("bdf", state->bdf, "Device address, [DOMAIN:]BUS:DEVICE.FUNCTION")->required();
    show->callback([&ctx, state] { run_show(ctx, state->source, state->bdf); });
}

} // namespace dis::cli
