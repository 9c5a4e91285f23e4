// `dis-tool device check`: read-only lending-readiness report (dis-tool-device(1)).
#include "cli.hpp"

#include "dis/error.hpp"
#include "dis/hostlend.hpp"
#include "dis/readiness.hpp"
#include "dis/strings.hpp"

#include <cctype>
#include <memory>
#include <ostream>

namespace dis::cli {

namespace {

struct DeviceCheckOptions {
    PciSourceOptions source;
    std::string proc_root = "/proc";
    std::string bdf;
    std::string window_size;
    bool amd_zen = false;
    bool strict = false;
};

// "536870912", "512M", "512MiB", "1G", "64k": binary multiples. Throws invalid_input.
std::uint64_t parse_size(const std::string& text) {
    std::size_t pos = 0;
    std::uint64_t value = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        std::uint64_t digit = static_cast<std::uint64_t>(text[pos] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            throw Error(ErrorKind::invalid_input, "window size '" + text + "' is too large");
        value = value * 10 + digit;
        ++pos;
    }
    std::string suffix = text.substr(pos);
    for (auto& c : suffix)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    int shift = -1;
    if (suffix.empty() || suffix == "B")
        shift = 0;
    else if (suffix == "K" || suffix == "KIB")
        shift = 10;
    else if (suffix == "M" || suffix == "MIB")
        shift = 20;
    else if (suffix == "G" || suffix == "GIB")
        shift = 30;
    else if (suffix == "T" || suffix == "TIB")
        shift = 40;
    if (pos == 0 || shift < 0 || value == 0)
        throw Error(ErrorKind::invalid_input,
                    "invalid window size '" + text + "' (expected e.g. 536870912, 512M, 1G)");
    if (value > (UINT64_MAX >> shift))
        throw Error(ErrorKind::invalid_input, "window size '" + text + "' is too large");
    return value << shift;
}

void run_check(Context& ctx, const DeviceCheckOptions& opts) {
    pci::Bdf bdf = pci::Bdf::parse(opts.bdf);
    pci::ReadinessOptions ro;
    if (!opts.window_size.empty())
        ro.window_size = parse_size(opts.window_size);
    pci::Source source = opts.source.source();
    ro.p2p.cpu_supports_p2pdma =
        opts.amd_zen || (source.kind == pci::Source::Kind::live && pci::host_cpu_supports_p2pdma());
    pci::Topology topo = pci::scan(source);
    pci::ReadinessReport r = pci::check_readiness(topo, bdf, ro);
    // A device with active users is not lendable: a failing row (a dump has no sysfs to tell).
    if (source.kind != pci::Source::Kind::dump)
        hostlend::add_in_use_finding(r, hostlend::check_in_use(topo, bdf, opts.proc_root));

    emit(ctx, pci::to_json(r), [&](std::ostream& out) {
        output::Table table({{"CHECK"}, {"RESULT"}, {"DETAILS"}});
        for (const auto& f : r.findings)
            table.add_row({f.check, pci::to_string(f.severity), f.message});
        if (ctx.format() == output::Format::csv) {
            // Every rendering carries the verdict: in CSV as a last row of its own.
            table.add_row({"verdict", pci::to_string(r.verdict), ""});
            table.render_csv(out);
            return;
        }
        const pci::Device& dev = topo.get(bdf);
        output::KeyValues kv;
        kv.add("device", r.bdf.to_string() + " " + dev.vendor_name + " " + dev.device_name);
        kv.add("class", r.class_name);
        kv.add("driver", r.driver                                 ? *r.driver
                         : source.kind == pci::Source::Kind::dump ? "unknown"
                                                                  : "none");
        kv.add("reset methods", r.reset_methods.empty() ? "none" : join(r.reset_methods));
        kv.add("iommu group", !r.isolation.group ? "none"
                                                 : std::to_string(*r.isolation.group) +
                                                       (r.iommu_present ? "" : " (predicted)"));
        std::vector<std::string> path;
        for (const auto& hop : r.acs_path)
            path.push_back(hop.bridge.to_string() + (hop.check.enabled ? " ACS ok" : " ACS gap"));
        kv.add("path to root", path.empty() ? "(root bus)" : join(path));
        kv.add("window size", std::to_string(r.window_size) + " bytes");
        kv.render_text(out);
        out << '\n';
        table.render_text(out);
        out << "\nVerdict: "
            << (r.verdict == pci::Verdict::ready                 ? "ready"
                : r.verdict == pci::Verdict::ready_with_warnings ? "ready with warnings"
                                                                 : "not ready")
            << '\n';
    });
    ctx.exit_code = pci::exit_code_for(r.verdict, opts.strict);
}

} // namespace

void register_device_commands(CLI::App& app, Context& ctx) {
    auto* device = app.add_subcommand("device", "Inspect host devices for lending");
    device->require_subcommand(1);
    auto opts = std::make_shared<DeviceCheckOptions>();
    auto* check = device->add_subcommand(
        "check", "Read-only lending-readiness report for one device (exit 0 ready or ready with "
                 "warnings, 1 not ready; with --strict warnings exit 1 too)");
    add_pci_source_options(check, opts->source);
    check->add_option("bdf", opts->bdf, "The device (BDF, domain optional)")
        ->required()
        ->type_name("BDF");
    check
        ->add_option("--window-size", opts->window_size,
                     "NTB window the BARs must fit (bytes, or K/M/G suffix; default 512M)")
        ->type_name("SIZE");
    check->add_flag("--amd-zen", opts->amd_zen,
                    "Treat the CPU as AMD Zen or later for P2P through the root complex "
                    "(detected automatically on the live system)");
    check
        ->add_option("--proc-root", opts->proc_root,
                     "Read mounts and swaps for the in-use check from this /proc (default /proc)")
        ->type_name("DIR");
    check->add_flag("--strict", opts->strict,
                    "Exit 1 when the device is ready only with warnings (as linters do)");
    check->callback([&ctx, opts] { run_check(ctx, *opts); });
}

} // namespace dis::cli
