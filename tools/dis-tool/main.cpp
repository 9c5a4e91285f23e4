// dis-tool: parse arguments, dispatch to the area commands, and turn every error into one
// stderr line and an exit code (see dis-tool(1), EXIT STATUS).
#include "cli.hpp"

#include "dis/error.hpp"

#include <iostream>

namespace dis::cli {

void emit(const Context& ctx, const nlohmann::json& doc,
          const std::function<void(std::ostream&)>& text) {
    if (ctx.format() == output::Format::json)
        output::render_json(std::cout, doc);
    else
        text(std::cout);
}

} // namespace dis::cli

namespace {

void report_error(const dis::cli::Context& ctx, const std::string& kind, const std::string& msg) {
    std::cerr << "dis-tool: error: " << msg << '\n';
    if (ctx.options.output == "json") {
        nlohmann::json doc = {{"error", {{"kind", kind}, {"message", msg}}}};
        dis::output::render_json(std::cout, doc);
    }
}

} // namespace

int main(int argc, char** argv) {
    using namespace dis::cli;
    Context ctx;
    CLI::App app{"dis-tool: administration and diagnostics for PCIe fabrics", "dis-tool"};
    app.set_version_flag("--version", DIS_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("-o,--output", ctx.options.output, "Output format: table, json or csv")
        ->check(CLI::IsMember({"table", "text", "json", "csv"}))
        ->default_str("table");
    app.add_flag("-v,--verbose", ctx.options.verbose, "More detail");

    register_pci_commands(app, ctx);
    register_iommu_commands(app, ctx);
    register_p2p_commands(app, ctx);
    register_device_commands(app, ctx);
    register_fabric_commands(app, ctx);
    register_bench_commands(app, ctx);
    register_exporter_commands(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "dis-tool: error: " << e.what() << '\n';
        return dis::k_exit_usage;
    } catch (const dis::Error& e) {
        report_error(ctx, dis::to_string(e.kind()), e.what());
        return dis::exit_code_for(e.kind());
    } catch (const std::exception& e) {
        report_error(ctx, "internal", e.what());
        return dis::k_exit_usage;
    }
    return ctx.exit_code;
}
