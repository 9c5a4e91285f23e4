// Internal to the `device` lending commands (lending_cmds.cpp, lending_borrow.cpp): their
// shared options, argument parsers and text renderings of the lending model.
#pragma once

#include "cli.hpp"

#include "dis/lending_client.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace dis::cli::lend {

namespace lm = dis::lending;

struct LendingOptions {
    std::string fabric_dir;                  // --fabric; empty: DIS_FABRIC or the default
    std::optional<std::uint32_t> local_node; // --local-node (borrowers)
};

void add_fabric_option(CLI::App* cmd, LendingOptions& opts);
void add_local_node_option(CLI::App* cmd, LendingOptions& opts);
std::string fabric_dir(const LendingOptions& opts);
// The node this process borrows as: --local-node, else $DIS_NODE_ID, else the lowest node
// that answers (as libsisci chooses).
std::uint32_t local_node(const std::string& dir, const LendingOptions& opts);

// "30" (seconds), "1.5s", "500ms", "10m", "2h", "1d"; throws Error(invalid_input) naming
// `what` ("--lease").
std::chrono::milliseconds parse_duration(const std::string& text, const std::string& what);
// --since: ISO 8601 ("2026-12-01", "2026-12-01T18:30[:00[.123]]" with "Z", "+01:00" or
// nothing for UTC) or a time ago ("10m", "2h", "1d"); unix milliseconds.
std::int64_t parse_since(const std::string& text, std::int64_t now_ms);

std::int64_t now_ms();
// "2026-12-01T18:30:00Z".
std::string format_time(lm::TimePoint t);
// Time left until `expires`: "8s", "2m05s", "expired".
std::string format_left(lm::TimePoint expires, std::int64_t now);
// "node 4 pid 1234 uid 1000".
std::string borrower_text(const lm::Borrower& b);
// "lease 3 (exclusive, node 4 pid 1234 uid 1000, expires in 8s)".
std::string lease_text(const lm::Lease& l, std::int64_t now);
// "104c:b500".
std::string ids_text(const lm::DeviceInfo& info);

void register_borrow_command(CLI::App* device, Context& ctx);
// device lend | unlend | vfs: host devices through vfio-pci (hostlend_cmds.cpp).
void register_hostlend_commands(CLI::App* device, Context& ctx);

} // namespace dis::cli::lend
