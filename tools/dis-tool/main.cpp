// dis-tool: parse arguments, dispatch to the area commands, and turn every error into one
// stderr line and an exit code (see dis-tool(1), EXIT STATUS), plus with -o json one JSON
// error object on stdout.
#include "cli.hpp"

#include "dis/error.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

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

// Whether the command line asks for JSON. Parse errors happen before (or without) the
// --output option being stored, and -o may appear anywhere, so the words are scanned here;
// as for CLI11, the last occurrence wins.
bool json_requested(int argc, char** argv) {
    std::optional<std::string_view> format;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--")
            break;
        if ((a == "-o" || a == "--output") && i + 1 < argc)
            format = argv[++i];
        else if (a.rfind("--output=", 0) == 0)
            format = a.substr(9);
        else if (a.rfind("-o", 0) == 0 && a.size() > 2)
            format = a.substr(2);
    }
    return format == "json";
}

void report_error(bool json, const std::string& kind, const std::string& msg) {
    std::cerr << "dis-tool: error: " << msg << '\n';
    if (json) {
        nlohmann::json doc = {{"error", {{"kind", kind}, {"message", msg}}}};
        dis::output::render_json(std::cout, doc);
    }
}

// Optimal string alignment distance: edits, with a swap of neighbours counting as one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::vector<CLI::App*> named_subcommands(CLI::App* app) {
    return app->get_subcommands([](CLI::App* s) { return !s->get_name().empty(); });
}

const CLI::Option* find_option(CLI::App* app, const std::string& name) {
    for (CLI::App* a = app; a; a = a->get_parent()) // global options fall through
        if (const CLI::Option* opt = a->get_option_no_throw(name))
            return opt;
    return nullptr;
}

// When a word on the command line names no subcommand of a command that takes only
// subcommands, says so with the nearest valid name: "unknown command 'lst' for
// 'dis-tool pci'; did you mean 'list'?". Empty when the command line has no such word.
std::string unknown_command_message(CLI::App& root, int argc, char** argv) {
    CLI::App* cur = &root;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--")
            break;
        if (a.size() > 1 && a[0] == '-') {
            auto eq = a.find('=');
            bool attached = eq != std::string::npos || (a[1] != '-' && a.size() > 2);
            std::string name = a[1] == '-' ? a.substr(0, eq) : a.substr(0, 2);
            const CLI::Option* opt = find_option(cur, name);
            if (opt && !attached && opt->get_type_size_min() > 0)
                ++i; // its value
            continue;
        }
        auto subs = named_subcommands(cur);
        auto match =
            std::find_if(subs.begin(), subs.end(), [&](CLI::App* s) { return s->check_name(a); });
        if (match != subs.end()) {
            cur = *match;
            continue;
        }
        bool takes_positionals =
            !cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
        if (subs.empty() || takes_positionals)
            return {}; // an argument, not a command
        std::string path = cur->get_name();
        for (CLI::App* p = cur->get_parent(); p; p = p->get_parent())
            path = p->get_name() + " " + path;
        std::string msg = "unknown command '" + a + "' for '" + path + "'";
        CLI::App* best = nullptr;
        std::size_t best_distance = 0;
        for (CLI::App* s : subs) {
            std::size_t dist = edit_distance(a, s->get_name());
            if (!best || dist < best_distance) {
                best = s;
                best_distance = dist;
            }
        }
        // Only a near miss is worth suggesting: one edit for short words, two for longer.
        std::size_t limit = a.size() <= 3 ? 1 : 2;
        if (best && best_distance <= limit)
            return msg + "; did you mean '" + best->get_name() + "'?";
        std::string names;
        for (CLI::App* s : subs)
            names += (names.empty() ? "" : ", ") + s->get_name();
        return msg + " (commands: " + names + ")";
    }
    return {};
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
    register_lending_commands(app, ctx); // after device: adds its lending verbs
    register_fabric_commands(app, ctx);
    register_bench_commands(app, ctx);
    register_exporter_commands(app, ctx);
    register_monitor_commands(app, ctx);
    register_diag_commands(app, ctx);
    register_qualify_commands(app, ctx);

    const bool json = json_requested(argc, argv);
    std::vector<std::string> words = normalize_arguments(argc, argv);
    std::vector<const char*> word_ptrs;
    for (const auto& w : words)
        word_ptrs.push_back(w.c_str());
    try {
        app.parse(static_cast<int>(word_ptrs.size()), word_ptrs.data());
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string msg = unknown_command_message(app, argc, argv);
        report_error(json, dis::to_string(dis::ErrorKind::invalid_input),
                     msg.empty() ? e.what() : msg);
        return dis::k_exit_usage;
    } catch (const dis::Error& e) {
        report_error(json, dis::to_string(e.kind()), e.what());
        return dis::exit_code_for(e.kind());
    } catch (const std::exception& e) {
        report_error(json, dis::to_string(dis::ErrorKind::internal), e.what());
        return dis::k_exit_internal;
    } catch (...) {
        report_error(json, dis::to_string(dis::ErrorKind::internal), "unexpected exception");
        return dis::k_exit_internal;
    }
    return ctx.exit_code;
}
