#include "dis/exec_args.hpp"

#include "dis/error.hpp"

#include <unistd.h> // environ (a GNU extension: g++ defines _GNU_SOURCE)

namespace dis {

namespace {

// "NAME=" of an environment entry (the whole entry when it has no '=').
std::string_view name_of(std::string_view entry) {
    auto eq = entry.find('=');
    return eq == std::string_view::npos ? entry : entry.substr(0, eq + 1);
}

} // namespace

ExecArgs::ExecArgs(std::vector<std::string> argv, const std::vector<std::string>& env)
    : m_args(std::move(argv)) {
    if (m_args.empty())
        throw Error(ErrorKind::invalid_input, "empty command line for a child process");
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view entry = *e;
        bool overridden = false;
        for (const auto& add : env)
            if (name_of(add) == name_of(entry))
                overridden = true;
        if (!overridden)
            m_env.emplace_back(entry);
    }
    m_env.insert(m_env.end(), env.begin(), env.end());
    for (auto& a : m_args)
        m_argv.push_back(a.data());
    m_argv.push_back(nullptr);
    for (auto& e : m_env)
        m_envp.push_back(e.data());
    m_envp.push_back(nullptr);
}

} // namespace dis
