// A local software fabric started with the built `dis-tool fabric start` in a temporary
// directory, shared by the CLI tests that need real daemons.
#pragma once

#include "support.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace dis::test {

// Started in the constructor (REQUIREd to succeed) and always stopped again on destruction,
// even when a check failed, so no daemon outlives the test.
class ToolFabric {
public:
    explicit ToolFabric(unsigned nodes);
    // `fabric start --config` with a config file holding `config` (its nodes, devices, ...).
    explicit ToolFabric(const std::string& config);
    ~ToolFabric();
    ToolFabric(const ToolFabric&) = delete;
    ToolFabric& operator=(const ToolFabric&) = delete;

    const std::string& dir() const { return m_dir; }
    // What `fabric start -o json` printed.
    const nlohmann::json& start_doc() const { return m_start; }
    // The daemon pid of `node`; FAILs when it was not started.
    pid_t pid_of(std::uint32_t node) const;

private:
    void start(std::vector<std::string> args);
    TempDir m_tmp;
    std::string m_dir;
    nlohmann::json m_start;
};

} // namespace dis::test
