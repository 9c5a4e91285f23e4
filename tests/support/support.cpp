#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace dis::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dis-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    m_path = buf.data();
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
}

SpawnedChild spawn_with_pipes(const std::vector<std::string>& argv,
                              const std::vector<std::string>& env) {
    int out_pipe[2], err_pipe[2];
    // No Catch2 assertions in here: tests call run() from helper threads (std::async), and
    // Catch2's assertion state is not thread-safe. Failures throw; Catch2 reports the
    // exception where the test collects the result.
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));

    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        env_strings.emplace_back(*e);
    for (const auto& extra : env) {
        auto name = extra.substr(0, extra.find('=') + 1);
        std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(name, 0) == 0; });
        env_strings.push_back(extra);
    }
    std::vector<char*> envp, args;
    for (auto& s : env_strings)
        envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& s : argv_copy)
        args.push_back(s.data());
    args.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execve(args[0], args.data(), envp.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    return {pid, out_pipe[0], err_pipe[0]};
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              int timeout_s) {
    const SpawnedChild child = spawn_with_pipes(argv, env);
    const pid_t pid = child.pid;
    RunResult result;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    struct pollfd fds[2] = {{child.out_fd, POLLIN, 0}, {child.err_fd, POLLIN, 0}};
    int open_fds = 2;
    bool timed_out = false;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        int n = poll(fds, 2, static_cast<int>(left));
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(r));
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0)
            close(f.fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status))
        result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.signal = WTERMSIG(status);
    if (timed_out)
        throw std::runtime_error("command " + argv[0] + " timed out after " +
                                 std::to_string(timeout_s) + " s; stderr: " + result.err);
    return result;
}

RunResult run_tool(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::vector<std::string> argv{DIS_TOOL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env);
}

std::string fixtures_dir() {
    return DIS_TEST_DATA_DIR;
}

std::string fixture(const std::string& rel) {
    std::string p = fixtures_dir() + "/" + rel;
    INFO("fixture " << p << " (test data lives in tests/data, see its README.md)");
    REQUIRE(std::filesystem::exists(p));
    return p;
}

void write_file(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream f(path, std::ios::binary);
    f << content;
    REQUIRE(f.good());
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string gunzip(const std::filesystem::path& dir, const std::string& data) {
    const auto file = dir / "gunzip-input.gz";
    write_file(file, data);
    auto r = run({"/bin/sh", "-c", "exec gzip -dc \"$1\"", "sh", file.string()});
    INFO("gzip: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r.out;
}

std::string join_args(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args)
        s += (s.empty() ? "" : " ") + a;
    return s;
}

std::size_t count_lines(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

nlohmann::json parse_out(const RunResult& r) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
    REQUIRE_FALSE(doc.is_discarded());
    return doc;
}

nlohmann::json run_json(const std::vector<std::string>& args) {
    auto r = run_tool(args);
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
}

void check_one_error_line(const RunResult& r) {
    INFO("stderr: " << r.err);
    REQUIRE(!r.err.empty());
    CHECK(r.err.rfind("dis-tool: error: ", 0) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);
}

void check_man_page(const std::string& page) {
    INFO("man page " << page);
    std::string man = read_file(std::string(DIS_SOURCE_DIR) + "/man/" + page);
    for (const char* section :
         {".SH SYNOPSIS", ".SH OPTIONS", ".SH JSON SCHEMA", ".SH EXIT STATUS", ".SH EXAMPLES"})
        CHECK(man.find(section) != std::string::npos);
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    INFO("csv: " << text);
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, field_started = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
                REQUIRE((i + 1 == text.size() || text[i + 1] == ',' || text[i + 1] == '\n' ||
                         text[i + 1] == '\r'));
            } else {
                field += c;
            }
        } else if (c == '"') {
            REQUIRE_FALSE(field_started); // a quote only opens a field
            quoted = field_started = true;
        } else if (c == ',') {
            row.push_back(std::move(field));
            field.clear();
            field_started = false;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r') {
                REQUIRE((i + 1 < text.size() && text[i + 1] == '\n'));
                ++i;
            }
            row.push_back(std::move(field));
            rows.push_back(std::move(row));
            field.clear();
            row.clear();
            field_started = false;
        } else {
            field += c;
            field_started = true;
        }
    }
    REQUIRE_FALSE(quoted);
    REQUIRE((text.empty() || text.back() == '\n')); // the last row ends with a line end
    for (const auto& r : rows)
        CHECK(r.size() == rows.front().size());
    return rows;
}

bool pid_alive(pid_t pid) {
    if (::kill(pid, 0) != 0)
        return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    return !(close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z');
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

} // namespace dis::test
