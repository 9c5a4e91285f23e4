#include "dis/local_fabric.hpp"

#include "dis/error.hpp"
#include "dis/fabric_config.hpp"
#include "dis/file_text.hpp"
#include "dis/sisci.hpp"
#include "dis/unique_fd.hpp"
#include "fabric_dir.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dis::fabric {

namespace {

constexpr unsigned k_max_local_nodes = 64;
constexpr auto k_poll_interval = std::chrono::milliseconds(20);

std::string record_path(const std::string& fabric_dir) {
    return (fs::path(fabric_dir) / k_local_fabric_record).string();
}

std::string log_path(const std::string& fabric_dir, std::uint32_t node_id) {
    return (fs::path(fabric_dir) / ("disd-" + std::to_string(node_id) + ".log")).string();
}

struct RecordEntry {
    std::uint32_t node_id = 0;
    pid_t pid = 0;
};

std::vector<RecordEntry> read_record(const std::string& fabric_dir) {
    std::vector<RecordEntry> entries;
    UniqueFd fd(::open(record_path(fabric_dir).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ELOOP)
            throw Error(ErrorKind::permission,
                        "refusing " + record_path(fabric_dir) + ": it is a symbolic link");
        return entries;
    }
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof(buf))) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("nodes") ||
        !doc["nodes"].is_array())
        throw Error(ErrorKind::invalid_input,
                    "malformed local fabric record " + record_path(fabric_dir));
    for (const auto& n : doc["nodes"]) {
        if (!n.is_object() || !n.contains("node_id") || !n.contains("pid") ||
            !n["node_id"].is_number_unsigned() || !n["pid"].is_number_integer())
            throw Error(ErrorKind::invalid_input,
                        "malformed local fabric record " + record_path(fabric_dir));
        entries.push_back({n["node_id"].get<std::uint32_t>(), n["pid"].get<pid_t>()});
    }
    return entries;
}

// Written to a temporary file and renamed, so a concurrent reader never sees half of it.
void write_record(const std::string& fabric_dir, const std::vector<RecordEntry>& entries) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& e : entries)
        nodes.push_back({{"node_id", e.node_id}, {"pid", e.pid}});
    nlohmann::json doc = {{"nodes", nodes}};
    std::string path = record_path(fabric_dir);
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    ::unlink(tmp.c_str()); // a leftover of a crashed run; never followed
    {
        // O_EXCL | O_NOFOLLOW: a file planted there (or a symbolic link) is not written.
        UniqueFd fd(
            ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!fd.valid())
            throw os_error("creating " + tmp, errno);
        std::string text = doc.dump(2) + '\n';
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            throw os_error("writing " + tmp, errno);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw os_error("renaming " + tmp, err);
    }
}

bool is_executable(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
}

// True while `pid` exists and is not a zombie. Reaps it if it is our own child.
bool process_alive(pid_t pid) {
    if (pid <= 0)
        return false;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
        return false;
    if (::kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return false;
    // The state follows the parenthesised command name, which may itself contain ')'.
    auto close = line.rfind(')');
    return !(close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z');
}

// Only signal a pid whose command line is a disd serving `node_id`: pids get recycled.
bool is_disd_of_node(pid_t pid, std::uint32_t node_id) {
    const std::string raw =
        read_file_text("/proc/" + std::to_string(pid) + "/cmdline").value_or("");
    std::vector<std::string> args;
    std::string cur;
    for (char c : raw) {
        if (c == '\0') {
            args.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        args.push_back(cur);
    if (args.empty() || fs::path(args[0]).filename().string().rfind("disd", 0) != 0)
        return false;
    std::string id = std::to_string(node_id);
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--node-id=" + id)
            return true;
        if (args[i] == "--node-id" && i + 1 < args.size() && args[i + 1] == id)
            return true;
    }
    return false;
}

bool wait_gone(pid_t pid, std::chrono::milliseconds grace) {
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (process_alive(pid)) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(k_poll_interval);
    }
    return true;
}

std::string last_log_line(const std::string& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty())
            last = line;
    return last;
}

bool answers(const std::string& fabric_dir, std::uint32_t node_id,
             std::chrono::milliseconds timeout) {
    try {
        AdminClient client(fabric_dir, node_id, timeout);
        client.node_info();
        return true;
    } catch (const Error&) {
        return false;
    }
}

pid_t spawn_disd(const StartOptions& options, std::uint32_t node_id, const std::string& log) {
    std::vector<std::string> args{options.disd_path, "--node-id", std::to_string(node_id),
                                  "--fabric", options.fabric_dir};
    if (options.config_file) {
        args.push_back("--config");
        args.push_back(*options.config_file);
    }
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    // Everything the child needs is prepared before fork: after it, only async-signal-safe
    // calls. The daemon must not inherit our stdout, or a caller reading it to EOF would wait
    // for the daemon's exit.
    // O_NOFOLLOW: a symbolic link planted as the log would have the daemon's output
    // truncate and overwrite whatever it points to.
    UniqueFd log_fd(
        ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (log_fd.get() < 0) {
        if (errno == ELOOP)
            throw Error(ErrorKind::permission,
                        "refusing log file " + log + ": it is a symbolic link");
        throw os_error("opening " + log, errno);
    }
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null_fd.get() < 0)
        throw os_error("opening /dev/null", errno);

    pid_t pid = ::fork();
    if (pid < 0)
        throw os_error("fork", errno);
    if (pid == 0) {
        ::setsid(); // its own session: a terminal hang-up or Ctrl-C here does not reach it
        ::dup2(null_fd.get(), 0);
        ::dup2(log_fd.get(), 1);
        ::dup2(log_fd.get(), 2);
        ::close_range(3, ~0U, 0);
        ::execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

// With a vendor SISCI the toolkit talks to the vendor's driver; disd daemons would serve
// nobody, so the local software fabric is not offered at all.
void require_software_fabric(const char* what) {
    if (!sisci::software_fabric())
        throw Error(ErrorKind::not_found, std::string(what) +
                                              " manages the software fabric, which is "
                                              "unavailable in a vendor SISCI build");
}

void stop_pid(pid_t pid, std::chrono::milliseconds grace) {
    if (!process_alive(pid))
        return;
    ::kill(pid, SIGTERM);
    if (!wait_gone(pid, grace)) {
        ::kill(pid, SIGKILL);
        wait_gone(pid, grace);
    }
}

} // namespace

std::vector<std::uint32_t> local_node_ids(unsigned count) {
    if (count < 1 || count > k_max_local_nodes)
        throw Error(ErrorKind::invalid_input, "a local fabric has 1 to " +
                                                  std::to_string(k_max_local_nodes) +
                                                  " nodes, not " + std::to_string(count));
    std::vector<std::uint32_t> ids;
    for (unsigned i = 1; i <= count; ++i)
        ids.push_back(4 * i);
    return ids;
}

std::vector<std::uint32_t> nodes_to_start(std::optional<unsigned> count,
                                          const std::optional<std::string>& config_file) {
    if (count)
        return local_node_ids(*count);
    if (config_file) {
        auto config = load_fabric_config(*config_file);
        std::vector<std::uint32_t> ids;
        for (const auto& [id, node] : config.nodes)
            ids.push_back(id);
        if (!ids.empty())
            return ids;
    }
    return local_node_ids(3);
}

std::string find_disd(const std::string& dir_of_self) {
    if (!dir_of_self.empty()) {
        std::string beside = (fs::path(dir_of_self) / "disd").string();
        if (is_executable(beside))
            return beside;
        // In the build tree dis-tool is tools/dis-tool and disd is tools/disd/disd.
        std::string build_tree = (fs::path(dir_of_self) / "disd" / "disd").string();
        if (is_executable(build_tree))
            return build_tree;
    }
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty())
            continue;
        std::string candidate = (fs::path(dir) / "disd").string();
        if (is_executable(candidate))
            return candidate;
    }
    throw Error(ErrorKind::not_found,
                "disd not found beside dis-tool (" + dir_of_self + ") nor on $PATH");
}

std::vector<LocalNode> start_local_fabric(const StartOptions& options) {
    require_software_fabric("fabric start");
    if (options.node_ids.empty())
        throw Error(ErrorKind::invalid_input, "no nodes to start");
    std::set<std::uint32_t> unique(options.node_ids.begin(), options.node_ids.end());
    if (unique.size() != options.node_ids.size())
        throw Error(ErrorKind::invalid_input, "duplicate node id");
    if (options.config_file && !fs::is_regular_file(*options.config_file))
        throw Error(ErrorKind::not_found,
                    "fabric config " + *options.config_file + " does not exist");
    if (!is_executable(options.disd_path))
        throw Error(ErrorKind::not_found, options.disd_path + " is not an executable disd");

    if (auto why = wire::prepare_fabric_dir(options.fabric_dir, wire::client_fabric_dir_policy());
        !why.empty())
        throw Error(ErrorKind::permission, why);

    for (auto id : options.node_ids)
        if (answers(options.fabric_dir, id, std::chrono::milliseconds(500)))
            throw Error(ErrorKind::invalid_input, "node " + std::to_string(id) +
                                                      " is already running in " +
                                                      options.fabric_dir);

    std::vector<LocalNode> started;
    auto rollback = [&] {
        for (const auto& n : started)
            stop_pid(n.pid, std::chrono::milliseconds(1000));
    };

    try {
        // Launch all first, then wait: the daemons come up in parallel.
        for (auto id : options.node_ids) {
            LocalNode node;
            node.node_id = id;
            node.log_file = log_path(options.fabric_dir, id);
            node.socket = node_socket_path(options.fabric_dir, id);
            node.pid = spawn_disd(options, id, node.log_file);
            started.push_back(node);
        }
        auto deadline = std::chrono::steady_clock::now() + options.ready_timeout;
        for (const auto& node : started) {
            while (true) {
                int status = 0;
                if (::waitpid(node.pid, &status, WNOHANG) == node.pid) {
                    std::string why =
                        WIFEXITED(status)
                            ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "was killed by signal " + std::to_string(WTERMSIG(status));
                    std::string last = last_log_line(node.log_file);
                    throw Error(ErrorKind::fabric_down,
                                "disd for node " + std::to_string(node.node_id) + " " + why +
                                    (last.empty() ? "" : ": " + last));
                }
                if (answers(options.fabric_dir, node.node_id, std::chrono::milliseconds(250)))
                    break;
                if (std::chrono::steady_clock::now() >= deadline)
                    throw Error(ErrorKind::timeout,
                                "disd for node " + std::to_string(node.node_id) +
                                    " did not answer within " +
                                    std::to_string(options.ready_timeout.count()) + " ms (see " +
                                    node.log_file + ")");
                std::this_thread::sleep_for(k_poll_interval);
            }
        }

        std::vector<RecordEntry> record;
        for (const auto& e : read_record(options.fabric_dir))
            if (!unique.count(e.node_id) && process_alive(e.pid))
                record.push_back(e);
        for (const auto& n : started)
            record.push_back({n.node_id, n.pid});
        std::sort(record.begin(), record.end(),
                  [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
        write_record(options.fabric_dir, record);
    } catch (...) {
        rollback();
        throw;
    }
    return started;
}

std::vector<StoppedNode> stop_local_fabric(const std::string& fabric_dir,
                                           std::chrono::milliseconds grace) {
    std::map<std::uint32_t, pid_t> targets;
    for (const auto& e : read_record(fabric_dir))
        targets[e.node_id] = e.pid;
    if (fs::is_directory(fabric_dir))
        for (auto id : discover_nodes(fabric_dir))
            targets.try_emplace(id, 0);

    // Ask every node first, then wait: the daemons wind down in parallel.
    std::vector<StoppedNode> result;
    for (auto& [id, pid] : targets) {
        StoppedNode s;
        s.node_id = id;
        try {
            AdminClient client(fabric_dir, id, std::chrono::milliseconds(1000));
            if (pid == 0)
                pid = client.node_info().pid;
            client.shutdown();
            s.method = "shutdown";
        } catch (const Error&) {
            s.method = "not_running";
        }
        s.pid = pid;
        result.push_back(s);
    }
    for (auto& s : result) {
        if (s.pid == 0) {
            s.stopped = s.method == "shutdown";
            continue;
        }
        if (s.method == "not_running" && !process_alive(s.pid)) {
            // It died without removing its socket; a stale one would look like a node.
            ::unlink(node_socket_path(fabric_dir, s.node_id).c_str());
            s.stopped = true;
            continue;
        }
        if (wait_gone(s.pid, grace)) {
            s.stopped = true;
            continue;
        }
        if (!is_disd_of_node(s.pid, s.node_id))
            continue; // not ours to signal; reported as not stopped
        ::kill(s.pid, SIGTERM);
        s.method = "sigterm";
        if (wait_gone(s.pid, grace)) {
            s.stopped = true;
            continue;
        }
        ::kill(s.pid, SIGKILL);
        s.method = "sigkill";
        s.stopped = wait_gone(s.pid, grace);
        // A killed daemon could not remove its socket; a stale one would look like a node.
        if (s.stopped)
            ::unlink(node_socket_path(fabric_dir, s.node_id).c_str());
    }
    bool all_stopped =
        std::all_of(result.begin(), result.end(), [](const StoppedNode& s) { return s.stopped; });
    if (all_stopped)
        ::unlink(record_path(fabric_dir).c_str());
    return result;
}

FabricStatus local_fabric_status(const std::string& fabric_dir) {
    require_software_fabric("fabric status");
    FabricStatus status;
    status.fabric_dir = fabric_dir;
    std::map<std::uint32_t, NodeStatus> nodes;
    for (const auto& e : read_record(fabric_dir)) {
        auto& n = nodes[e.node_id];
        n.node_id = e.node_id;
        n.recorded = true;
        n.recorded_pid = e.pid;
    }
    if (fs::is_directory(fabric_dir))
        for (auto id : discover_nodes(fabric_dir))
            nodes[id].node_id = id;
    for (auto& [id, n] : nodes) {
        try {
            AdminClient client(fabric_dir, id);
            n.info = client.node_info();
            n.reachable = true;
        } catch (const Error& e) {
            n.error = e.what();
        }
        status.nodes.push_back(n);
    }
    return status;
}

} // namespace dis::fabric
