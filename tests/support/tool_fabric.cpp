#include "tool_fabric.hpp"

#include "dis/local_fabric.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>

namespace dis::test {

ToolFabric::ToolFabric(unsigned nodes) : m_dir((m_tmp.path() / "fabric").string()) {
    start({"--nodes", std::to_string(nodes)});
}

ToolFabric::ToolFabric(const std::string& config) : m_dir((m_tmp.path() / "fabric").string()) {
    const auto path = m_tmp.path() / "fabric.conf";
    write_file(path, config);
    start({"--config", path.string()});
}

void ToolFabric::start(std::vector<std::string> args) {
    args.insert(args.begin(), {"fabric", "start"});
    args.insert(args.end(), {"--fabric", m_dir, "-o", "json"});
    auto r = run_tool(args);
    INFO("fabric start: " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    m_start = parse_out(r);
}

ToolFabric::~ToolFabric() {
    try {
        dis::fabric::stop_local_fabric(m_dir, std::chrono::milliseconds(2000));
    } catch (...) {
    }
    for (const auto& n : m_start.value("nodes", nlohmann::json::array()))
        if (pid_alive(n["pid"].get<pid_t>()))
            ::kill(n["pid"].get<pid_t>(), SIGKILL);
}

pid_t ToolFabric::pid_of(std::uint32_t node) const {
    for (const auto& n : m_start["nodes"])
        if (n["node_id"] == node)
            return n["pid"].get<pid_t>();
    FAIL("node " << node << " was not started");
    return 0;
}

} // namespace dis::test
