// A tmux server of its own (private socket in a temporary directory) running one command in
// a real terminal, for the tests of what dis-tool draws on a TTY (monitor, qualify's progress
// bar). Every wait polls the pane with a deadline.
#pragma once

#include "support.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace dis::test {

using TmuxClock = std::chrono::steady_clock;
inline constexpr auto k_tmux_deadline = std::chrono::seconds(20); // loaded CI machines, sanitizers

inline std::string find_tmux() {
    for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
        const std::string p = std::string(dir) + "/tmux";
        if (::access(p.c_str(), X_OK) == 0)
            return p;
    }
    return {};
}

inline std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// A tmux server of its own with one window running `command` (through sh); the command's
// exit code goes to a file. The server is killed on destruction.
class Tmux {
public:
    Tmux(const std::string& command, int width, int height) {
        m_tmux = find_tmux();
        REQUIRE_FALSE(m_tmux.empty()); // tmux is a test dependency (scripts/install-deps.sh)
        // -S: the socket lives in the test's directory (-L's would stay behind in /tmp).
        m_socket = (m_tmp.path() / "tmux.sock").string();
        m_rc = m_tmp.path() / "rc";
        const std::string shell = command + "; echo $? > " + quote(m_rc.string()) + "; sleep 600";
        auto r = tmux({"new-session", "-d", "-x", std::to_string(width), "-y",
                       std::to_string(height), shell});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        m_started = true;
    }
    ~Tmux() {
        if (m_started)
            tmux({"kill-server"});
    }
    Tmux(const Tmux&) = delete;
    Tmux& operator=(const Tmux&) = delete;

    RunResult tmux(std::vector<std::string> args) const {
        // -u: the server and capture-pane speak UTF-8 whatever this process's locale is.
        args.insert(args.begin(), {m_tmux, "-u", "-S", m_socket, "-f", "/dev/null"});
        return run(args, {}, 30);
    }
    std::string screen(bool escapes = false) const {
        std::vector<std::string> args = {"capture-pane", "-p", "-t", "0"};
        if (escapes)
            args.push_back("-e");
        return tmux(args).out;
    }
    void keys(const std::vector<std::string>& keys) const {
        std::vector<std::string> args = {"send-keys", "-t", "0"};
        args.insert(args.end(), keys.begin(), keys.end());
        REQUIRE(tmux(args).exit_code == 0);
    }
    void resize(int width, int height) const {
        REQUIRE(tmux({"resize-window", "-t", "0", "-x", std::to_string(width), "-y",
                      std::to_string(height)})
                    .exit_code == 0);
    }
    // Polls the screen until `ok` holds; FAILs with the last screen after the deadline.
    std::string wait_for(const std::function<bool(const std::string&)>& ok, const std::string& what,
                         bool escapes = false) const {
        const auto deadline = TmuxClock::now() + k_tmux_deadline;
        std::string s;
        while (TmuxClock::now() < deadline) {
            s = screen(escapes);
            if (ok(s))
                return s;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        FAIL("timed out waiting for " << what << "; screen:\n" << s);
        return s;
    }
    std::string wait_for_text(const std::string& text) const {
        return wait_for([&](const std::string& s) { return s.find(text) != std::string::npos; },
                        "'" + text + "'");
    }
    // The command's exit code once it ended.
    int exit_code() const {
        const auto deadline = TmuxClock::now() + k_tmux_deadline;
        while (TmuxClock::now() < deadline) {
            std::error_code ec;
            if (std::filesystem::file_size(m_rc, ec) > 0 && !ec)
                return std::stoi(read_file(m_rc));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        FAIL("the command did not end; screen:\n" << screen());
        return -1;
    }

private:
    TempDir m_tmp;
    std::string m_tmux;
    std::string m_socket;
    std::filesystem::path m_rc;
    bool m_started = false;
};

} // namespace dis::test
