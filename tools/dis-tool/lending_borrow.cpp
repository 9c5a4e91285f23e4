// `dis-tool device borrow FDID [--exclusive] [--lease S] [--wait [S]] (--hold | -- CMD...)`:
// holds a lease like flock(1) holds a lock. With CMD, runs it with the lease handed over
// (DIS_SMARTIO_JOIN, so that its own SCIBorrowDevice joins the lease), renews the lease while
// it runs, returns it when it ends and exits with its status. With --hold, stays in the
// foreground renewing until SIGINT/SIGTERM/SIGHUP or until the lease ends elsewhere
// (`device return`, reclaim: a dev_lost event). dis-tool-device(1).
#include "lending_cli.hpp"

#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <ostream>

extern char** environ;

namespace dis::cli::lend {

namespace {

using nlohmann::json;
using Millis = std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

struct BorrowCmdOptions {
    LendingOptions lending;
    std::string fdid;
    bool exclusive = false;
    std::string lease;
    std::vector<std::string> wait; // --wait [S]: empty with the flag given = no limit
    bool hold = false;
    std::vector<std::string> command;
};

// Blocks `signals` for this process and reads them from a signalfd instead (so that a poll
// loop sees them); restores the mask on destruction.
class SignalFd {
public:
    explicit SignalFd(std::initializer_list<int> signals) {
        sigemptyset(&m_set);
        for (int s : signals)
            sigaddset(&m_set, s);
        if (::sigprocmask(SIG_BLOCK, &m_set, &m_old) != 0)
            throw os_error("sigprocmask", errno);
        m_fd = UniqueFd(::signalfd(-1, &m_set, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!m_fd.valid()) {
            int e = errno;
            ::sigprocmask(SIG_SETMASK, &m_old, nullptr);
            throw os_error("signalfd", e);
        }
    }
    ~SignalFd() { ::sigprocmask(SIG_SETMASK, &m_old, nullptr); }
    SignalFd(const SignalFd&) = delete;
    SignalFd& operator=(const SignalFd&) = delete;
    int fd() const { return m_fd.get(); }
    // The next pending signal, 0 when none.
    int take() {
        signalfd_siginfo info{};
        ssize_t n = ::read(m_fd.get(), &info, sizeof info);
        return n == static_cast<ssize_t>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0;
    }

private:
    sigset_t m_set{};
    sigset_t m_old{};
    UniqueFd m_fd;
};

// How often a held lease is renewed: a third of its TTL (as libsisci does), at least 50 ms.
Millis renew_interval(const lm::Lease& lease) {
    Millis ttl = lease.ttl.count() > 0 ? lease.ttl : Millis(3000);
    return std::max(Millis(50), ttl / 3);
}

// Keeps one lease alive from a poll loop: renew() when due, events() to see it end.
class LeaseKeeper {
public:
    LeaseKeeper(lm::LenderClient& client, lm::HeldLease held)
        : m_client(client), m_held(std::move(held)),
          m_next(Steady::now() + renew_interval(m_held.lease)) {}

    const lm::HeldLease& held() const { return m_held; }
    bool active() const { return m_active; }
    const std::string& end_reason() const { return m_reason; }

    int timeout_ms() const {
        if (!m_active)
            return -1;
        auto left = std::chrono::duration_cast<Millis>(m_next - Steady::now()).count();
        return static_cast<int>(std::max<long long>(left, 0));
    }

    // Renews when due. A lease the lender no longer knows has ended (its dev_lost event,
    // if any, says why).
    void tick() {
        if (!m_active || Steady::now() < m_next)
            return;
        try {
            m_client.renew(m_held.lease.id, m_held.lease.ttl);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::fabric_down || e.kind() == ErrorKind::timeout)
                throw;
            drain();
            if (m_active)
                end(e.what());
        }
        m_next = Steady::now() + renew_interval(m_held.lease);
    }

    // Reads the events that arrived; dev_lost of this lease ends it.
    void drain() {
        while (auto ev = m_client.next_event(Millis(0)))
            if (ev->event == "dev_lost" && (ev->lease_id == 0 || ev->lease_id == m_held.lease.id))
                end(ev->reason.empty() ? "lease lost" : ev->reason);
    }

    void release() {
        if (m_active) {
            m_client.release(m_held.lease.id);
            m_active = false;
        }
    }

private:
    void end(const std::string& reason) {
        m_active = false;
        m_reason = reason;
    }

    lm::LenderClient& m_client;
    lm::HeldLease m_held;
    Steady::time_point m_next;
    bool m_active = true;
    std::string m_reason;
};

json held_json(const lm::HeldLease& held) {
    json lease = lm::to_json(held.lease);
    lease["token"] = held.token;
    json doc = {
        {"fdid", lm::to_string(held.lease.fdid)}, {"lease", lease}, {"join", lm::join_value(held)}};
    if (held.device)
        doc["device"] = lm::to_json(*held.device);
    return doc;
}

std::string held_text(const lm::HeldLease& held) {
    return "borrowed " + lm::to_string(held.lease.fdid) +
           (held.device && !held.device->status.info.name.empty()
                ? " (" + held.device->status.info.name + ")"
                : std::string()) +
           ": " + lease_text(held.lease, now_ms());
}

// ---- --hold ----------------------------------------------------------------------------------

void run_hold(Context& ctx, lm::LenderClient& client, lm::HeldLease held) {
    SignalFd signals({SIGINT, SIGTERM, SIGHUP});
    emit(ctx, held_json(held), [&](std::ostream& out) {
        out << held_text(held) << "; holding it until interrupted or `dis-tool device return "
            << lm::to_string(held.lease.fdid) << "`\n";
    });
    std::cout.flush();
    LeaseKeeper keeper(client, std::move(held));
    while (keeper.active()) {
        pollfd p[2] = {{signals.fd(), POLLIN, 0}, {client.fd(), POLLIN, 0}};
        int r = ::poll(p, 2, keeper.timeout_ms());
        if (r < 0 && errno != EINTR)
            throw os_error("poll", errno);
        if (r > 0 && (p[0].revents & POLLIN) && signals.take() != 0) {
            keeper.release();
            break;
        }
        if (r > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            keeper.drain(); // throws fabric_down when the lender went away
        keeper.tick();
    }
    if (!keeper.end_reason().empty())
        std::cerr << "dis-tool: lease " << keeper.held().lease.id << " of "
                  << lm::to_string(keeper.held().lease.fdid) << " ended: " << keeper.end_reason()
                  << "\n";
}

// ---- -- CMD ----------------------------------------------------------------------------------

// The environment of CMD: ours plus the lease (DIS_SMARTIO_JOIN, added to any the caller
// already hands down), the fdid and the fabric.
std::vector<std::string> child_environment(const lm::HeldLease& held, const std::string& dir) {
    std::vector<std::string> env;
    std::string join = lm::join_value(held);
    for (char** e = environ; *e; ++e) {
        std::string entry = *e;
        if (entry.rfind("DIS_SMARTIO_JOIN=", 0) == 0) {
            join = entry.substr(17) + "," + join;
            continue;
        }
        if (entry.rfind("DIS_FDID=", 0) == 0 || entry.rfind("DIS_FABRIC=", 0) == 0)
            continue;
        env.push_back(std::move(entry));
    }
    env.push_back("DIS_SMARTIO_JOIN=" + join);
    env.push_back("DIS_FDID=" + lm::to_string(held.lease.fdid));
    env.push_back("DIS_FABRIC=" + dir);
    return env;
}

// Starts CMD with default signal handling and an empty signal mask; -1 with errno on failure.
pid_t spawn(const std::vector<std::string>& command, const std::vector<std::string>& env) {
    std::vector<char*> argv, envp;
    for (const auto& a : command)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE})
        sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

void run_command(Context& ctx, lm::LenderClient& client, lm::HeldLease held,
                 const BorrowCmdOptions& opts, const std::string& dir) {
    SignalFd signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP});
    if (ctx.options.verbose)
        std::cerr << "dis-tool: " << held_text(held) << "\n";
    LeaseKeeper keeper(client, held);
    pid_t child = spawn(opts.command, child_environment(held, dir));
    if (child < 0) {
        int e = errno;
        keeper.release();
        // As a shell or env(1) would: 127 not found, 126 found but not runnable.
        std::cerr << "dis-tool: error: cannot run '" << opts.command.front()
                  << "': " << std::strerror(e) << " (fdid " << lm::to_string(held.lease.fdid)
                  << " returned)\n";
        ctx.exit_code = e == ENOENT ? 127 : 126;
        return;
    }
    int status = 0;
    bool lost_reported = false;
    bool lender_gone = false;
    for (;;) {
        pid_t done = ::waitpid(child, &status, WNOHANG);
        if (done == child)
            break;
        pollfd p[2] = {{signals.fd(), POLLIN, 0}, {lender_gone ? -1 : client.fd(), POLLIN, 0}};
        int r = ::poll(p, 2, lender_gone ? -1 : keeper.timeout_ms());
        if (r < 0 && errno != EINTR)
            throw os_error("poll", errno);
        if (r > 0 && (p[0].revents & POLLIN))
            while (int sig = signals.take())
                if (sig != SIGCHLD)
                    ::kill(child, sig); // CMD decides what an interrupt means
        try {
            if (!lender_gone && r > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
                keeper.drain();
            if (!lender_gone)
                keeper.tick();
        } catch (const Error& e) {
            // The lender went away: CMD finds out through its own device calls.
            std::cerr << "dis-tool: error: " << e.what() << "\n";
            lender_gone = true;
        }
        if (!keeper.active() && !lost_reported && !lender_gone) {
            std::cerr << "dis-tool: error: fdid " << lm::to_string(held.lease.fdid) << ": lease "
                      << held.lease.id << " ended while the command ran: " << keeper.end_reason()
                      << "\n";
            lost_reported = true;
        }
    }
    if (!lender_gone)
        keeper.release();
    ctx.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void run_borrow(Context& ctx, const BorrowCmdOptions& opts, bool wait_given) {
    if (opts.hold == !opts.command.empty())
        throw Error(ErrorKind::invalid_input,
                    opts.hold ? "device borrow: --hold takes no command"
                              : "device borrow: give a command after -- or --hold");
    auto fdid = lm::parse_fdid(opts.fdid);
    std::string dir = fabric_dir(opts.lending);
    lm::BorrowOptions bo;
    bo.fdid = fdid;
    bo.exclusive = opts.exclusive;
    if (!opts.lease.empty()) {
        bo.lease = parse_duration(opts.lease, "--lease");
        if (bo.lease.count() == 0)
            throw Error(ErrorKind::invalid_input, "--lease: a lease must be longer than 0");
    }
    if (wait_given)
        bo.wait = opts.wait.empty() || opts.wait.front().empty()
                      ? lm::k_wait_forever
                      : parse_duration(opts.wait.front(), "--wait");
    lm::LenderClient client(dir, fdid.node_id(), local_node(dir, opts.lending));
    auto held = client.borrow(bo);
    if (opts.hold)
        run_hold(ctx, client, std::move(held));
    else
        run_command(ctx, client, std::move(held), opts, dir);
}

} // namespace

void register_borrow_command(CLI::App* device, Context& ctx) {
    auto opts = std::make_shared<BorrowCmdOptions>();
    auto* borrow = device->add_subcommand(
        "borrow", "Borrow a device while CMD runs (like flock), or --hold it until returned");
    borrow->add_option("fdid", opts->fdid, "The device's fabric device id (0x80000)")
        ->required()
        ->type_name("FDID");
    borrow->add_option("command", opts->command, "The command to run with the device, after --")
        ->type_name("CMD...");
    borrow->add_flag("--exclusive", opts->exclusive, "Nobody else may borrow it meanwhile");
    borrow
        ->add_option("--lease", opts->lease,
                     "Lease time, renewed while held (seconds, or 500ms, 2m; default: the "
                     "lender's)")
        ->type_name("S");
    auto* wait = borrow
                     ->add_option("--wait", opts->wait,
                                  "Wait for a busy device, at most S (no S: without limit)")
                     ->expected(0, 1)
                     ->type_name("[S]");
    borrow->add_flag("--hold", opts->hold,
                     "Hold the lease in the foreground until interrupted or `device return`");
    add_fabric_option(borrow, opts->lending);
    add_local_node_option(borrow, opts->lending);
    borrow->callback([&ctx, opts, wait] { run_borrow(ctx, *opts, wait->count() > 0); });
}

} // namespace dis::cli::lend
