// The ncurses front end of `dis-tool monitor`: paints lib/monitor's grid and reads keys.
#pragma once

#include "dis/monitor.hpp"

#include <optional>
#include <string>

namespace dis::cli {

struct TtyOutcome {
    bool ran = false;
    std::string why_not; // when the terminal could not be used: one line saying why
};

// Runs the live screen on stdin/stdout until a quit key or `iterations` refreshes. Returns
// ran false (nothing painted, the terminal untouched) when TERM is unset or unknown, or the
// terminal cannot address the cursor: the caller then prints a snapshot instead.
TtyOutcome run_monitor_tty(monitor::Collector& collector, monitor::ViewState& view,
                           std::optional<int> iterations);

} // namespace dis::cli
