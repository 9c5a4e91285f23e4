// The guard of state-changing commands (cli.hpp: ChangeGuard): --dry-run, --yes, and a
// question on a terminal.
#include "cli.hpp"

#include "dis/error.hpp"

#include <unistd.h>

#include <iostream>
#include <string>

namespace dis::cli {

void add_change_guard_options(CLI::App* cmd, ChangeGuard& guard) {
    cmd->add_flag("--dry-run", guard.dry_run, "Show what would change and change nothing");
    cmd->add_flag("-y,--yes", guard.yes, "Do not ask for confirmation on a terminal");
}

bool confirm_change(const ChangeGuard& guard, const std::string& plan) {
    if (guard.dry_run)
        return false;
    // Scripts (no terminal to ask on) and --yes go ahead; a person at a terminal is asked.
    if (guard.yes || !::isatty(STDIN_FILENO) || !::isatty(STDERR_FILENO))
        return true;
    std::cerr << plan << ": proceed? [y/N] " << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer))
        answer.clear();
    if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES" || answer == "Yes")
        return true;
    throw Error(ErrorKind::invalid_input, "not confirmed: nothing changed (" + plan + ")");
}

} // namespace dis::cli
