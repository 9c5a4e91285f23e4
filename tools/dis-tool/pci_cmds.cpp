#include "cli.hpp"

namespace dis::cli {
void register_pci_commands(CLI::App& app, Context& ctx) {
    (void)app;
    (void)ctx;
}
} // namespace dis::cli
