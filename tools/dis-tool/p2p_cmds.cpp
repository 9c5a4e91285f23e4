#include "cli.hpp"

namespace dis::cli {
void register_p2p_commands(CLI::App& app, Context& ctx) {
    (void)app;
    (void)ctx;
}
} // namespace dis::cli
