// Helpers shared by the test tiers: temporary directories and running the built binaries.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dis::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

struct RunResult {
    int exit_code = -1; // -1 when killed by a signal
    int signal = 0;
    std::string out;
    std::string err;
};

// Runs argv[0] (a path) with the given arguments, capturing stdout and stderr. Extra
// environment entries ("NAME=value") are added to the current environment. Kills the child
// and fails the test after `timeout_s` seconds.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              int timeout_s = 60);

// Runs the built dis-tool with the given arguments.
RunResult run_tool(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

std::string fixtures_dir();                  // .../shared/fixtures
std::string fixture(const std::string& rel); // .../shared/fixtures/<rel>, REQUIREd to exist

void write_file(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);

} // namespace dis::test
