// `dis-tool p2p`: the kernel's peer-to-peer DMA verdict between devices (dis-tool-p2p(1)).
#include "cli.hpp"

#include "dis/error.hpp"
#include "dis/p2p.hpp"

#include <memory>
#include <ostream>

namespace dis::cli {

namespace {

struct P2pCmdOptions {
    PciSourceOptions source;
    std::vector<std::string> devices;
    bool amd_zen = false;
};

// Matrix headers stay narrow: the domain only when it is not 0000.
std::string short_bdf(const pci::Bdf& b) {
    std::string s = b.to_string();
    return b.domain == 0 ? s.substr(5) : s;
}

void run_p2p(Context& ctx, const P2pCmdOptions& opts) {
    std::vector<pci::Bdf> wanted;
    for (const auto& text : opts.devices)
        wanted.push_back(pci::Bdf::parse(text));
    if (wanted.size() == 1)
        throw Error(ErrorKind::invalid_input, "p2p needs at least two devices (or none for all "
                                              "endpoints with memory BARs)");
    pci::Source source = opts.source.source();
    pci::Topology topo = pci::scan(source);
    pci::P2pOptions p2p;
    p2p.cpu_supports_p2pdma =
        opts.amd_zen || (source.kind == pci::Source::Kind::live && pci::host_cpu_supports_p2pdma());
    if (wanted.empty())
        wanted = pci::p2p_candidates(topo);
    pci::P2pMatrix matrix = pci::p2p_matrix(topo, wanted, p2p);

    auto doc = pci::to_json(matrix);
    doc["cpu_supports_p2pdma"] = p2p.cpu_supports_p2pdma;
    emit(ctx, doc, [&](std::ostream& out) {
        output::Table pairs(
            {{"A"}, {"B"}, {"P2P"}, {"DISTANCE", output::Align::right}, {"TOPO"}, {"REASON"}});
        for (const auto& p : matrix.pairs)
            pairs.add_row({p.a.to_string(), p.b.to_string(), pci::to_string(p.map),
                           p.distance < 0 ? "-" : std::to_string(p.distance),
                           pci::to_string(p.topo), p.reason});
        if (ctx.format() == output::Format::csv) {
            pairs.render_csv(out);
            return;
        }
        if (matrix.devices.size() < 2) {
            out << "Fewer than two devices with memory BARs: nothing to compare.\n";
            return;
        }
        std::vector<output::Column> cols{{"DEVICE"}};
        for (const auto& b : matrix.devices)
            cols.push_back({short_bdf(b)});
        output::Table grid(cols);
        for (const auto& row : matrix.devices) {
            std::vector<std::string> cells{short_bdf(row)};
            for (const auto& col : matrix.devices) {
                if (row == col) {
                    cells.push_back("X");
                    continue;
                }
                const pci::P2pPath* p = matrix.find(row, col);
                std::string cell = pci::to_string(p->topo);
                cell += p->map == pci::P2pMap::bus_address   ? " ok"
                        : p->map == pci::P2pMap::host_bridge ? " hb"
                                                             : " no";
                cells.push_back(cell);
            }
            grid.add_row(cells);
        }
        grid.render_text(out);
        out << "\nLegend:\n";
        for (auto cls : {pci::TopoClass::self, pci::TopoClass::pix, pci::TopoClass::pxb,
                         pci::TopoClass::phb, pci::TopoClass::node, pci::TopoClass::sys})
            out << "  " << pci::to_string(cls)
                << std::string(6 - std::string(pci::to_string(cls)).size(), ' ') << "= "
                << pci::describe(cls) << '\n';
        out << "  ok    = kernel maps P2P by bus address through a common switch\n"
               "  hb    = kernel routes P2P through the host bridge\n"
               "  no    = kernel refuses P2P (PCI_P2PDMA_MAP_NOT_SUPPORTED)\n\n";
        pairs.render_text(out);
    });
}

} // namespace

void register_p2p_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<P2pCmdOptions>();
    auto* cmd = app.add_subcommand(
        "p2p", "Peer-to-peer DMA matrix: the kernel's p2pdma verdict, distance and topology");
    add_pci_source_options(cmd, opts->source);
    cmd->add_option("device", opts->devices,
                    "Devices to compare (default: every endpoint with a memory BAR)")
        ->type_name("BDF");
    cmd->add_flag("--amd-zen", opts->amd_zen,
                  "Treat the CPU as AMD Zen or later, which the kernel lets route P2P through "
                  "any root complex (detected automatically on the live system)");
    cmd->callback([&ctx, opts] { run_p2p(ctx, *opts); });
}

} // namespace dis::cli
