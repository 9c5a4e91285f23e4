// Helpers of the exporter tests: child processes (the exporter, a real Prometheus), a tiny
// HTTP client, Prometheus' query API, and polling with a deadline. Header-only
// so the tier's glob needs no change.
#pragma once

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace dis::test::exporter {

using Clock = std::chrono::steady_clock;

// Polls `ready` every 50 ms until it holds or `timeout_ms` passes.
inline bool poll_until(const std::function<bool()>& ready, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
        if (ready())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return ready();
}

// An executable on $PATH, or empty.
inline std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string p = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= p.size()) {
        auto end = p.find(':', start);
        if (end == std::string::npos)
            end = p.size();
        std::string candidate = p.substr(start, end - start) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return {};
}

// The prometheus package's binaries; the tests FAIL without them (never skip).
inline std::string require_program(const std::string& name) {
    auto path = find_program(name);
    INFO(name << " is required (Debian package `prometheus`, scripts/install-deps.sh)");
    REQUIRE(!path.empty());
    return path;
}

// A port nobody listens on right now (bound and released).
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(fd);
    return ntohs(sa.sin_port);
}

// A /sys tree without PCIe devices (for --sysfs-root), for tests where only the fabric
// matters: the exporter refuses a source it cannot read.
inline std::string sysfs_without_pcie(const TempDir& tmp) {
    const auto root = tmp.path() / "sys-without-pcie";
    std::filesystem::create_directories(root / "bus" / "pci" / "devices");
    return root.string();
}

struct HttpReply {
    int status = 0;   // 0: no answer
    std::string head; // status line and headers
    std::string body;

    // The value of header `name` (matched as written), empty when absent.
    std::string header(const std::string& name) const {
        auto at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos)
            return {};
        at += name.size() + 4;
        return head.substr(at, head.find("\r\n", at) - at);
    }
};

// METHOD http://127.0.0.1:port/target with extra header lines ("Name: value").
inline HttpReply http_request(int port, const std::string& method, const std::string& target,
                              const std::vector<std::string>& headers, int timeout_ms = 10000);

// GET http://127.0.0.1:port/target, optionally with an Authorization header.
inline HttpReply http_get(int port, const std::string& target, const std::string& auth = {},
                          int timeout_ms = 10000) {
    std::vector<std::string> headers;
    if (!auth.empty())
        headers.push_back("Authorization: " + auth);
    return http_request(port, "GET", target, headers, timeout_ms);
}

inline HttpReply http_request(int port, const std::string& method, const std::string& target,
                              const std::vector<std::string>& headers, int timeout_ms) {
    HttpReply reply;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return reply;
    }
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const auto& h : headers)
        req += h + "\r\n";
    req += "\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return reply;
    }
    std::string raw;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12)
        return reply;
    reply.status = std::atoi(raw.c_str() + 9);
    auto head_end = raw.find("\r\n\r\n");
    std::string body = head_end == std::string::npos ? "" : raw.substr(head_end + 4);
    const std::string head = raw.substr(0, head_end);
    reply.head = head;
    if (head.find("Transfer-Encoding: chunked") != std::string::npos) {
        std::string out;
        std::size_t pos = 0;
        while (pos < body.size()) {
            auto eol = body.find("\r\n", pos);
            if (eol == std::string::npos)
                break;
            auto len = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
            if (len == 0)
                break;
            out += body.substr(eol + 2, len);
            pos = eol + 2 + len + 2;
        }
        body = out;
    }
    reply.body = body;
    return reply;
}

inline std::string url_encode(const std::string& s) {
    std::string out;
    char buf[4];
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

// A child process; stderr (and stdout) go to `log`. SIGTERM then reaped on destruction.
class Child {
public:
    Child(const std::vector<std::string>& argv, const std::string& log) {
        m_pid = ::fork();
        REQUIRE(m_pid >= 0);
        if (m_pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            int null = ::open("/dev/null", O_RDONLY);
            ::dup2(null, 0);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Child() {
        if (m_pid > 0 && !m_reaped) {
            ::kill(m_pid, SIGTERM);
            if (wait(10000) < 0) {
                ::kill(m_pid, SIGKILL);
                ::waitpid(m_pid, nullptr, 0);
            }
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return m_pid; }
    // Exit code, 128+signal, or -1 when still running after `timeout_ms`.
    int wait(int timeout_ms) {
        int status = 0;
        bool done =
            poll_until([&] { return ::waitpid(m_pid, &status, WNOHANG) == m_pid; }, timeout_ms);
        if (!done)
            return -1;
        m_reaped = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t m_pid = -1;
    bool m_reaped = false;
};

// `dis-tool exporter --listen 127.0.0.1:0 ARGS...`, waited for until it says its port.
class ExporterProcess {
public:
    ExporterProcess(const TempDir& tmp, std::vector<std::string> args)
        : m_log((tmp.path() / "exporter.log").string()) {
        std::vector<std::string> argv = {DIS_TOOL_PATH, "exporter", "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), args.begin(), args.end());
        m_child = std::make_unique<Child>(argv, m_log);
        const std::string mark = "listening on http://127.0.0.1:";
        bool up = poll_until(
            [&] {
                auto text = dis::test::read_file(m_log);
                auto pos = text.find(mark);
                if (pos == std::string::npos)
                    return false;
                m_port = std::atoi(text.c_str() + pos + mark.size());
                return m_port > 0;
            },
            10000);
        INFO("exporter log: " << dis::test::read_file(m_log));
        REQUIRE(up);
    }
    int port() const { return m_port; }
    Child& child() { return *m_child; }
    std::string log() const { return dis::test::read_file(m_log); }

private:
    std::string m_log;
    std::unique_ptr<Child> m_child;
    int m_port = 0;
};

// One sample's value from a text exposition: the line that starts with `series` + ' '.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
    std::size_t pos = 0;
    while ((pos = text.find(series + " ", pos)) != std::string::npos) {
        if (pos == 0 || text[pos - 1] == '\n')
            return std::strtod(text.c_str() + pos + series.size() + 1, nullptr);
        pos += series.size();
    }
    return std::nullopt;
}

// `promtool check metrics` on one scrape; returns its exit code and output.
inline dis::test::RunResult promtool_check(const TempDir& tmp, const std::string& text) {
    const auto promtool = require_program("promtool");
    const auto file = tmp.path() / "scrape.txt";
    dis::test::write_file(file, text);
    return dis::test::run({"/bin/sh", "-c", promtool + " check metrics < " + file.string()});
}

// A real Prometheus scraping 127.0.0.1:`target` every 500 ms, with basic auth unless `user`
// is empty.
class Prometheus {
public:
    Prometheus(const TempDir& tmp, int target, const std::string& user = {},
               const std::string& pw = {})
        : m_port(free_port()) {
        const auto bin = require_program("prometheus");
        const auto config = tmp.path() / "prometheus.yml";
        std::string auth;
        if (!user.empty()) {
            dis::test::write_file(tmp.path() / "password", pw);
            auth = "    basic_auth:\n      username: " + user +
                   "\n      password_file: " + (tmp.path() / "password").string() + "\n";
        }
        dis::test::write_file(config, "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
                                      "scrape_configs:\n  - job_name: dis\n" +
                                          auth +
                                          "    static_configs:\n      - targets: ['127.0.0.1:" +
                                          std::to_string(target) + "']\n");
        m_child = std::make_unique<Child>(
            std::vector<std::string>{bin, "--config.file=" + config.string(),
                                     "--storage.tsdb.path=" + (tmp.path() / "tsdb").string(),
                                     "--web.listen-address=127.0.0.1:" + std::to_string(m_port)},
            (tmp.path() / "prometheus.log").string());
        bool ready = poll_until([&] { return http_get(m_port, "/-/ready").status == 200; }, 30000);
        INFO(dis::test::read_file(tmp.path() / "prometheus.log"));
        REQUIRE(ready);
    }
    // The value of an instant query with exactly one result, or nullopt.
    std::optional<double> query(const std::string& promql) const {
        auto r = http_get(m_port, "/api/v1/query?query=" + url_encode(promql));
        if (r.status != 200)
            return std::nullopt;
        auto doc = nlohmann::json::parse(r.body, nullptr, false);
        if (doc.is_discarded() || doc["status"] != "success" || doc["data"]["result"].size() != 1)
            return std::nullopt;
        return std::stod(doc["data"]["result"][0]["value"][1].get<std::string>());
    }
    // How many series an instant query gives (nullopt when the query failed).
    std::optional<std::size_t> count(const std::string& promql) const {
        auto r = http_get(m_port, "/api/v1/query?query=" + url_encode(promql));
        if (r.status != 200)
            return std::nullopt;
        auto doc = nlohmann::json::parse(r.body, nullptr, false);
        if (doc.is_discarded() || doc["status"] != "success")
            return std::nullopt;
        return doc["data"]["result"].size();
    }
    // Waits until the query gives `want`; returns the last value seen.
    std::optional<double> wait_for(const std::string& promql, double want, int timeout_ms = 20000) {
        std::optional<double> last;
        poll_until(
            [&] {
                last = query(promql);
                return last == want;
            },
            timeout_ms);
        return last;
    }

private:
    int m_port;
    std::unique_ptr<Child> m_child;
};

} // namespace dis::test::exporter
