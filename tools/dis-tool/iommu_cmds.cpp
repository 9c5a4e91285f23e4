// `dis-tool iommu`: IOMMU groups and per-device isolation verdicts (dis-tool-iommu(1)).
#include "cli.hpp"

#include "dis/iommu.hpp"
#include "dis/strings.hpp"

#include <memory>
#include <ostream>
#include <set>

namespace dis::cli {

namespace {

struct IommuOptions {
    PciSourceOptions source;
    std::vector<std::string> devices;
};

void run_iommu(Context& ctx, const IommuOptions& opts) {
    std::set<pci::Bdf> wanted;
    for (const auto& text : opts.devices)
        wanted.insert(pci::Bdf::parse(text));
    pci::Topology topo = pci::scan(opts.source.source());
    for (const auto& b : wanted)
        topo.get(b); // unknown BDF: not_found before any output
    pci::IommuReport report = pci::analyze_iommu(topo);

    if (!wanted.empty()) {
        std::erase_if(report.devices,
                      [&](const pci::DeviceIsolation& d) { return !wanted.count(d.bdf); });
        std::set<int> groups;
        for (const auto& d : report.devices)
            if (d.group)
                groups.insert(*d.group);
        std::erase_if(report.groups, [&](const pci::IommuGroup& g) { return !groups.count(g.id); });
    }

    auto doc = pci::to_json(report);
    emit(ctx, doc, [&](std::ostream& out) {
        output::Table table(
            {{"GROUP", output::Align::right}, {"DEVICE"}, {"CLASS"}, {"ISOLATION"}, {"DETAILS"}});
        auto add_row = [&](const pci::DeviceIsolation& iso) {
            const pci::Device& dev = topo.get(iso.bdf);
            std::string verdict = iso.isolated ? "alone" : iso.group ? "shared" : "no group";
            std::string details = join(iso.reasons, "; ");
            if (iso.isolated && !iso.shares_with.empty()) {
                std::vector<std::string> bridges;
                for (const auto& b : iso.shares_with)
                    bridges.push_back(b.to_string());
                details = "group also holds bridge(s) " + join(bridges, ", ");
            }
            table.add_row({iso.group ? std::to_string(*iso.group) : "", iso.bdf.to_string(),
                           dev.class_name, verdict, details});
        };
        // Devices in group order, then any without a group.
        for (const auto& g : report.groups)
            for (const auto& b : g.devices)
                if (const auto* iso = report.find(b))
                    add_row(*iso);
        for (const auto& iso : report.devices)
            if (!iso.group)
                add_row(iso);
        if (ctx.format() == output::Format::csv) {
            table.render_csv(out);
            return;
        }
        out << (report.iommu_present ? "IOMMU: present; " : "IOMMU: none; ") << report.note << '\n';
        if (report.predicted)
            out << "Groups are PREDICTED (not read from the kernel).\n";
        out << '\n';
        table.render_text(out);
    });
}

} // namespace

void register_iommu_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<IommuOptions>();
    auto* cmd =
        app.add_subcommand("iommu", "IOMMU groups and whether each device can be assigned alone");
    add_pci_source_options(cmd, opts->source);
    cmd->add_option("device", opts->devices, "Only report these devices (BDF, domain optional)")
        ->type_name("BDF");
    cmd->callback([&ctx, opts] { run_iommu(ctx, *opts); });
}

} // namespace dis::cli
