// Typed errors of libdis. The library throws dis::Error and never exits; front ends catch
// once at their edge, print one line and map the kind to an exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace dis {

enum class ErrorKind {
    invalid_input, // bad argument, malformed file, unknown BDF
    not_found,     // a file, device, node or segment that does not exist
    permission,    // the OS refused access
    os,            // any other failed system call
    timeout,       // an operation did not complete in time
    fabric_down,   // a fabric node or daemon is unreachable
    check_failed,  // a check ran and found problems (not an error of the tool)
    internal,      // a bug or an unexpected state of the tool or a library it uses
    busy,          // the resource exists but is in use (try again later)
};

// Exit codes shared by every command (see dis-tool(1), EXIT STATUS).
inline constexpr int k_exit_ok = 0;           // success
inline constexpr int k_exit_check_failed = 1; // a check or test ran and found problems
inline constexpr int k_exit_usage = 2;        // usage or input error
inline constexpr int k_exit_fabric = 3;       // fabric or daemon unreachable, timed out
inline constexpr int k_exit_internal = 4;     // internal or OS error

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const noexcept { return m_kind; }

private:
    ErrorKind m_kind;
};

// Builds an Error of kind os from errno, prefixed with what was being done.
Error os_error(const std::string& what, int errnum);

const char* to_string(ErrorKind kind) noexcept; // "invalid_input", "not_found", ...
// The one map from error kind to exit code: invalid_input, not_found, busy 2; timeout,
// fabric_down 3; permission, os, internal 4; check_failed 1.
int exit_code_for(ErrorKind kind) noexcept;

} // namespace dis
