#include "dis/error.hpp"

#include <cerrno>
#include <cstring>

namespace dis {

Error os_error(const std::string& what, int errnum) {
    ErrorKind kind = ErrorKind::os;
    if (errnum == ENOENT || errnum == ENOTDIR)
        kind = ErrorKind::not_found;
    else if (errnum == EACCES || errnum == EPERM)
        kind = ErrorKind::permission;
    else if (errnum == ETIMEDOUT)
        kind = ErrorKind::timeout;
    else if (errnum == EBUSY)
        kind = ErrorKind::busy;
    return Error(kind, what + ": " + std::strerror(errnum));
}

const char* to_string(ErrorKind kind) noexcept {
    switch (kind) {
    case ErrorKind::invalid_input:
        return "invalid_input";
    case ErrorKind::not_found:
        return "not_found";
    case ErrorKind::permission:
        return "permission";
    case ErrorKind::os:
        return "os";
    case ErrorKind::timeout:
        return "timeout";
    case ErrorKind::fabric_down:
        return "fabric_down";
    case ErrorKind::check_failed:
        return "check_failed";
    case ErrorKind::internal:
        return "internal";
    case ErrorKind::busy:
        return "busy";
    }
    return "unknown";
}

int exit_code_for(ErrorKind kind) noexcept {
    switch (kind) {
    case ErrorKind::invalid_input:
    case ErrorKind::not_found:
    case ErrorKind::busy:
        return k_exit_usage;
    case ErrorKind::timeout:
    case ErrorKind::fabric_down:
        return k_exit_fabric;
    case ErrorKind::check_failed:
        return k_exit_check_failed;
    case ErrorKind::permission:
    case ErrorKind::os:
    case ErrorKind::internal:
        break;
    }
    return k_exit_internal;
}

} // namespace dis
