// Running a plan: the steps in order, each check a case, a stop request honoured between
// steps, and at the end every lease this run still holds returned.
#include "steps.hpp"

#include "dis/error.hpp"
#include "dis/exec_args.hpp"
#include "dis/lending_client.hpp"
#include "dis/lending_model.hpp"
#include "dis/lending_states.hpp"
#include "dis/local_fabric.hpp"
#include "dis/unique_fd.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

namespace dis::qualify {

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// argv and env prepared before fork: the child calls only async-signal-safe functions.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            bool new_session, const std::string& log, const std::string& cwd = "",
            int err_fd = -1) {
    const ExecArgs exec(argv, env);
    UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    UniqueFd out_fd(
        log.empty()
            ? -1
            : ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!null_fd.valid())
        throw os_error("opening /dev/null", errno);
    const int out = out_fd.valid() ? out_fd.get() : null_fd.get();
    pid_t pid = ::fork();
    if (pid < 0)
        throw os_error("fork", errno);
    if (pid == 0) {
        if (new_session)
            ::setsid();
        else
            ::setpgid(0, 0);
        ::dup2(null_fd.get(), 0);
        ::dup2(out, 1);
        ::dup2(err_fd >= 0 ? err_fd : out, 2);
        ::close_range(3, ~0U, 0); // nothing of ours (a caller's pipe) outlives us in it
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0)
            _exit(126);
        ::execve(exec.path(), exec.argv(), exec.envp());
        _exit(127);
    }
    return pid;
}

} // namespace

void run_case(StepResult& step, const std::string& name,
              const std::function<nlohmann::json()>& body) {
    CaseResult c;
    c.name = name;
    const auto start = Clock::now();
    try {
        c.detail = body();
    } catch (const std::exception& e) {
        c.outcome = Outcome::failed;
        c.message = e.what();
    }
    c.seconds = seconds_since(start);
    if (c.outcome == Outcome::failed)
        step.outcome = Outcome::failed;
    step.cases.push_back(std::move(c));
}

void expect(bool ok, const std::string& message) {
    if (!ok)
        throw Error(ErrorKind::check_failed, message);
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
        if (done())
            return true;
        if (Clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& env)
    : m_pid(spawn(argv, env, false, "")) {}

Child::~Child() {
    kill_now();
}

Child::Child(Child&& other) noexcept : m_pid(std::exchange(other.m_pid, -1)) {}

Child& Child::operator=(Child&& other) noexcept {
    if (this != &other) {
        kill_now();
        m_pid = std::exchange(other.m_pid, -1);
    }
    return *this;
}

bool Child::running() {
    if (m_pid <= 0)
        return false;
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        return false;
    }
    return true;
}

void Child::kill_now() {
    if (m_pid <= 0)
        return;
    ::kill(m_pid, SIGKILL);
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
}

Finished run_to_end(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    std::chrono::milliseconds limit) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw os_error("pipe", errno);
    UniqueFd read_end(fds[0]);
    pid_t pid;
    {
        UniqueFd write_end(fds[1]);
        pid = spawn(argv, env, false, "", "", write_end.get());
    }
    ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
    std::string err;
    Finished f;
    const auto deadline = Clock::now() + limit;
    for (;;) {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0)
            err.append(buf, static_cast<std::size_t>(n));
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0)
                err.append(buf, static_cast<std::size_t>(n));
            f.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (Clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            err += "\nkilled after " + std::to_string(limit.count()) + " ms";
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    while (!err.empty() && err.back() == '\n')
        err.pop_back();
    auto nl = err.rfind('\n');
    f.last_error = nl == std::string::npos ? err : err.substr(nl + 1);
    return f;
}

DaemonProcess find_daemon(const std::string& fabric_dir, std::uint32_t node) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto want_dir = fs::weakly_canonical(fabric_dir, ec);
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream in(entry.path() / "cmdline", std::ios::binary);
        std::vector<std::string> argv;
        std::string word;
        while (std::getline(in, word, '\0'))
            argv.push_back(word);
        if (argv.empty() || fs::path(argv[0]).filename() != "disd")
            continue;
        bool node_ok = false, dir_ok = false;
        for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
            if (argv[i] == "--node-id")
                node_ok = argv[i + 1] == std::to_string(node);
            if (argv[i] == "--fabric")
                dir_ok = fs::weakly_canonical(argv[i + 1], ec) == want_dir;
        }
        if (node_ok && dir_ok) {
            fs::path exe = fs::read_symlink(entry.path() / "exe", ec);
            if (!ec)
                argv[0] = exe.string(); // the binary itself, whatever its argv[0] said
            std::string cwd = fs::read_symlink(entry.path() / "cwd", ec).string();
            return {static_cast<pid_t>(std::stoi(name)), argv, ec ? std::string() : cwd};
        }
    }
    throw Error(ErrorKind::not_found,
                "no disd of node " + std::to_string(node) + " runs in " + fabric_dir);
}

namespace {

// The config file of a daemon started the way `fabric start` starts one (`disd --node-id N
// --fabric DIR [--config FILE]`), made absolute against its working directory; nullopt inside
// when it has other options too.
std::optional<std::optional<std::string>> fabric_start_form(const DaemonProcess& daemon) {
    std::optional<std::string> config;
    for (std::size_t i = 1; i < daemon.argv.size(); i += 2) {
        const std::string& a = daemon.argv[i];
        if (i + 1 >= daemon.argv.size() || (a != "--node-id" && a != "--fabric" && a != "--config"))
            return std::nullopt;
        if (a == "--config")
            config = (std::filesystem::path(daemon.cwd) / daemon.argv[i + 1]).string();
    }
    return config;
}

} // namespace

void restart_daemon(const std::string& fabric_dir, std::uint32_t node,
                    const DaemonProcess& daemon) {
    if (auto config = fabric_start_form(daemon)) {
        // Through the one start path, which also records its new pid for `fabric stop`.
        fabric::StartOptions so;
        so.fabric_dir = fabric_dir;
        so.node_ids = {node};
        so.config_file = *config;
        so.disd_path = daemon.argv[0];
        fabric::start_local_fabric(so);
    } else {
        // Started some other way: the same command line again, in its own session.
        const std::string log = fabric_dir + "/disd-" + std::to_string(node) + ".log";
        pid_t pid = spawn(daemon.argv, {}, true, log, daemon.cwd);
        std::thread([pid] {
            int status = 0;
            ::waitpid(pid, &status, 0);
        }).detach();
    }
    bool up = wait_for(
        [&] {
            try {
                lending::LenderClient c(fabric_dir, node, 0, std::chrono::milliseconds(500));
                c.list();
                return true;
            } catch (const Error&) {
                return false;
            }
        },
        std::chrono::seconds(10));
    expect(up, "node " + std::to_string(node) +
                   "'s daemon did not answer within 10 s of its "
                   "restart");
}

std::string device_state(const std::string& fabric_dir, lending::Fdid fdid) {
    try {
        lending::LenderClient c(fabric_dir, fdid.node_id(), 0, std::chrono::milliseconds(1000));
        return lending::to_string(c.show(fdid).status.state);
    } catch (const Error&) {
        return "";
    }
}

std::vector<std::string> responder_argv(const StepEnv& env) {
    return {env.options.tool_path, "bench", "serve", "--once", "--idle-timeout", "15"};
}

namespace {

// Every lease still held by this process (its LenderClient borrows) is returned; what was
// returned is reported.
std::vector<std::string> return_leftovers(const std::string& fabric_dir) {
    std::vector<std::string> returned;
    lending::PoolView pool;
    try {
        pool = lending::list_pool(fabric_dir, std::chrono::milliseconds(2000));
    } catch (const Error&) {
        return returned;
    }
    for (const auto& d : pool.devices)
        for (const auto& l : d.status.leases)
            if (l.borrower.pid == ::getpid()) {
                try {
                    lending::LenderClient c(fabric_dir, d.status.info.fdid.node_id());
                    c.return_lease(d.status.info.fdid, l.id);
                    returned.push_back(lending::to_string(d.status.info.fdid) + " lease " +
                                       std::to_string(l.id));
                } catch (const Error&) {
                }
            }
    return returned;
}

} // namespace

} // namespace detail

RunReport run_plan(const Plan& plan, const RunOptions& options) {
    using namespace detail;
    RunReport report;
    report.plan = plan.name;
    report.source = plan.source;
    report.fabric_dir = options.fabric_dir;
    report.started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    StepEnv env{plan, options, options.fabric_dir};
    const auto start = Clock::now();
    // Steps that use SISCI in this process choose their node through the environment; each
    // step starts from the environment the run started with (a later `device lend` child
    // must not inherit an earlier bench step's node).
    std::optional<std::string> saved[2];
    const char* names[2] = {"DIS_FABRIC", "DIS_NODE_ID"};
    for (int i = 0; i < 2; ++i)
        if (const char* v = std::getenv(names[i]))
            saved[i] = v;
    auto restore_env = [&] {
        for (int i = 0; i < 2; ++i) {
            if (saved[i])
                ::setenv(names[i], saved[i]->c_str(), 1);
            else
                ::unsetenv(names[i]);
        }
    };
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
        const Step& step = plan.steps[i];
        StepResult result;
        result.name = step.name;
        result.kind = step.kind;
        if (options.stop && options.stop->load()) {
            report.interrupted = true;
            result.outcome = Outcome::skipped;
            CaseResult c;
            c.name = step.name;
            c.outcome = Outcome::skipped;
            c.message = "the run was interrupted before this step";
            result.cases.push_back(std::move(c));
            report.steps.push_back(std::move(result));
            continue;
        }
        if (options.on_step)
            options.on_step(i, plan.steps.size(), step.name);
        const auto step_start = Clock::now();
        restore_env();
        try {
            switch (step.kind) {
            case StepKind::device_cycle:
                run_device_cycle(step, env, result);
                break;
            case StepKind::bench:
                run_bench(step, env, result);
                break;
            case StepKind::isolation:
                run_isolation(step, env, result);
                break;
            case StepKind::recovery:
                run_recovery(step, env, result);
                break;
            case StepKind::load:
                run_load(step, env, result);
                break;
            case StepKind::diag:
                run_diag(step, env, result);
                break;
            case StepKind::rebind:
                run_rebind(step, env, result);
                break;
            }
        } catch (const std::exception& e) { // a step that could not even set up its cases
            run_case(result, step.name,
                     [&]() -> nlohmann::json { throw Error(ErrorKind::internal, e.what()); });
        }
        result.seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
        report.steps.push_back(std::move(result));
    }
    restore_env();
    report.returned = return_leftovers(options.fabric_dir);
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (options.on_step)
        options.on_step(plan.steps.size(), plan.steps.size(), "");
    return report;
}

bool all_passed(const RunReport& report) noexcept {
    if (report.interrupted)
        return false;
    for (const auto& s : report.steps)
        if (s.outcome != Outcome::passed)
            return false;
    return true;
}

const char* to_string(Outcome outcome) noexcept {
    switch (outcome) {
    case Outcome::passed:
        return "passed";
    case Outcome::failed:
        return "failed";
    case Outcome::skipped:
        return "skipped";
    }
    return "unknown";
}

} // namespace dis::qualify
