// Helpers shared by the test tiers: temporary directories and running the built binaries.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <sys/types.h>
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
// A child running argv (argv[0] a path) with stdout and stderr on pipes and stdin on
// /dev/null; each "NAME=value" of `env` replaces the parent's NAME. Throws on failure.
struct SpawnedChild {
    pid_t pid;
    int out_fd; // read ends, owned by the caller
    int err_fd;
};
SpawnedChild spawn_with_pipes(const std::vector<std::string>& argv,
                              const std::vector<std::string>& env = {});

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              int timeout_s = 60);

// Runs the built dis-tool with the given arguments.
RunResult run_tool(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

std::string fixtures_dir();                  // the repository's tests/data
std::string fixture(const std::string& rel); // tests/data/<rel>, REQUIREd to exist

void write_file(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);
// `data` unpacked by the real gzip, through a file in `dir`; REQUIREs that gzip takes it.
std::string gunzip(const std::filesystem::path& dir, const std::string& data);

// The words of a command line joined by spaces, for INFO messages.
std::string join_args(const std::vector<std::string>& args);
// Number of '\n' in `s`.
std::size_t count_lines(const std::string& s);

// A run's stdout parsed as one JSON document; REQUIREs that it parses.
nlohmann::json parse_out(const RunResult& r);
// Runs dis-tool, REQUIREs exit 0 and returns its stdout parsed as JSON.
nlohmann::json run_json(const std::vector<std::string>& args);
// Exactly one line on stderr, in the tool's error format ("dis-tool: error: ...").
void check_one_error_line(const RunResult& r);

// man/<page> exists with the sections every command page has: SYNOPSIS, OPTIONS, JSON
// SCHEMA, EXIT STATUS, EXAMPLES.
void check_man_page(const std::string& page);

// Rows of an RFC 4180 CSV text (quoted fields, doubled quotes, LF or CRLF line ends);
// REQUIREs it to be well formed and every row to have as many fields as the first.
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

// Whether `pid` exists and is not a zombie.
bool pid_alive(pid_t pid);
// Polls `done` every 20 ms until it returns true or `limit` passes; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

} // namespace dis::test
