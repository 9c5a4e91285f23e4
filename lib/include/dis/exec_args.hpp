// argv and envp for execve(), built before fork(): after fork the child of a threaded process
// may only call async-signal-safe functions, so nothing there may allocate.
#pragma once

#include <string>
#include <vector>

namespace dis {

class ExecArgs {
public:
    // The environment is this process's with each "NAME=value" of `env` replacing or adding
    // its NAME.
    ExecArgs(std::vector<std::string> argv, const std::vector<std::string>& env);
    ExecArgs(const ExecArgs&) = delete;
    ExecArgs& operator=(const ExecArgs&) = delete;

    char* const* argv() const { return m_argv.data(); }
    char* const* envp() const { return m_envp.data(); }
    const char* path() const { return m_args.front().c_str(); }

private:
    std::vector<std::string> m_args;
    std::vector<std::string> m_env;
    std::vector<char*> m_argv;
    std::vector<char*> m_envp;
};

} // namespace dis
