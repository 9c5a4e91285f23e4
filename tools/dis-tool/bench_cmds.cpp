#include "cli.hpp"

namespace dis::cli {
void register_bench_commands(CLI::App& app, Context& ctx) {
    (void)app;
    (void)ctx;
}
} // namespace dis::cli
