// The lending steps: device-cycle (assign/release, reset and the pcitest suite each cycle),
// recovery (a borrower, a borrower node's daemon and the lender's daemon killed; the device
// back within a bound and the audit log saying so) and load (concurrent borrow loops and DMA
// for a duration, no errors, never two owners).
#include "steps.hpp"

#include "dis/error.hpp"
#include "dis/lending_client.hpp"
#include "dis/lending_model.hpp"
#include "dis/lending_states.hpp"
#include "dis/lending_test.hpp"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace dis::qualify::detail {

namespace {

using lending::Fdid;
using lending::LenderClient;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr Millis k_settle{10000}; // a released device is available again within this

std::string fdid_text(Fdid f) {
    return lending::to_string(f);
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool is_available(const std::string& dir, Fdid fdid) {
    try {
        LenderClient c(dir, fdid.node_id(), 0, Millis(1000));
        auto d = c.show(fdid);
        return d.status.state == lending::State::available && d.status.leases.empty();
    } catch (const Error&) {
        return false;
    }
}

void expect_available(const std::string& dir, Fdid fdid, Millis limit, const std::string& after) {
    expect(wait_for([&] { return is_available(dir, fdid); }, limit),
           "fdid " + fdid_text(fdid) + " is " + device_state(dir, fdid) + ", not available, " +
               std::to_string(limit.count()) + " ms " + after);
}

// The suite each cycle: every BAR and transfer test, the interrupt tests with 2 vectors each
// (the full MSI/MSI-X ranges of `device test` take too long to repeat every cycle).
endpoint::TestOptions cycle_suite() {
    endpoint::TestOptions s;
    s.msi_vectors = 2;
    s.msix_vectors = 2;
    s.sizes = {1, 1024, 1025, 65536};
    return s;
}

} // namespace

void run_device_cycle(const Step& step, StepEnv& env, StepResult& out) {
    const auto& spec = step.device_cycle;
    const std::string& dir = env.fabric_dir;
    for (unsigned cycle = 1; cycle <= spec.cycles; ++cycle)
        for (const auto& dev : spec.devices)
            for (const auto& borrower : spec.borrowers) {
                const Fdid fdid = dev.value;
                const std::uint32_t node = borrower.value;
                const std::string name = "cycle " + std::to_string(cycle) + " " + fdid_text(fdid) +
                                         " node " + std::to_string(node);
                run_case(out, name, [&] {
                    nlohmann::json detail = {{"fdid", fdid_text(fdid)}, {"borrower", node}};
                    {
                        LenderClient c(dir, fdid.node_id(), node);
                        lending::BorrowOptions bo;
                        bo.fdid = fdid;
                        bo.exclusive = true;
                        bo.wait = k_settle;
                        auto held = c.borrow(bo);
                        auto d = c.show(fdid);
                        expect(d.status.state == lending::State::borrowed &&
                                   d.status.leases.size() == 1 &&
                                   d.status.leases[0].borrower.node_id == node,
                               "fdid " + fdid_text(fdid) + " after the borrow by node " +
                                   std::to_string(node) + ": " + lending::to_json(d).dump());
                        detail["lease"] = held.lease.id;
                        c.release(held.lease.id);
                    }
                    expect_available(dir, fdid, k_settle, "after its release");
                    if (spec.reset) {
                        LenderClient admin(dir, fdid.node_id());
                        const std::string r = admin.reset(fdid);
                        detail["reset"] = r;
                        expect(r == "ok", "fdid " + fdid_text(fdid) + ": reset " + r);
                        expect_available(dir, fdid, k_settle, "after its reset");
                    }
                    if (spec.test) {
                        lending::DeviceTestOptions to;
                        to.fdid = fdid;
                        to.fabric_dir = dir;
                        to.local_node = node;
                        to.suite = cycle_suite();
                        auto rep = lending::test_device(to);
                        std::size_t failed = 0;
                        std::string first;
                        for (const auto& r : rep.results)
                            if (r.outcome == endpoint::Outcome::failed) {
                                ++failed;
                                if (first.empty())
                                    first = r.name + ": " + r.detail;
                            }
                        detail["suite_tests"] = rep.results.size();
                        detail["suite_failed"] = failed;
                        expect(rep.lost.empty(),
                               "fdid " + fdid_text(fdid) + " lost during the suite: " + rep.lost);
                        expect(failed == 0, std::to_string(failed) + " of " +
                                                std::to_string(rep.results.size()) +
                                                " pcitest tests failed, first " + first);
                        expect_available(dir, fdid, k_settle, "after the suite");
                    }
                    return detail;
                });
            }
}

namespace {

// `device borrow FDID --hold` as `node`; returns once the lender shows its lease.
Child start_holder(const StepEnv& env, Fdid fdid, std::uint32_t node, std::int64_t& lease_id) {
    Child holder({env.options.tool_path, "device", "borrow", fdid_text(fdid), "--exclusive",
                  "--wait", "10s", "--hold", "--fabric", env.fabric_dir},
                 {"DIS_NODE_ID=" + std::to_string(node)});
    bool held = wait_for(
        [&] {
            try {
                LenderClient c(env.fabric_dir, fdid.node_id(), 0, Millis(1000));
                for (const auto& l : c.show(fdid).status.leases)
                    if (l.borrower.pid == holder.pid()) {
                        lease_id = l.id;
                        return true;
                    }
            } catch (const Error&) {
            }
            return !holder.running();
        },
        Millis(10000));
    expect(held && holder.running(), "the borrower on node " + std::to_string(node) +
                                         " (dis-tool device borrow --hold) did not get fdid " +
                                         fdid_text(fdid));
    return holder;
}

// The audit rows of `fdid` since `since_ms` that end lease `lease_id`.
std::vector<lending::AuditRow> rows_ending(const std::string& dir, Fdid fdid, std::int64_t since_ms,
                                           std::int64_t lease_id) {
    LenderClient c(dir, fdid.node_id());
    std::vector<lending::AuditRow> out;
    for (const auto& r : c.history(fdid, since_ms))
        if (r.lease_id && *r.lease_id == lease_id && r.event != lending::Event::borrow)
            out.push_back(r);
    return out;
}

} // namespace

void run_recovery(const Step& step, StepEnv& env, StepResult& out) {
    const auto& spec = step.recovery;
    const Fdid fdid = spec.device.value;
    const std::uint32_t borrower = spec.borrower.value;
    const std::string& dir = env.fabric_dir;
    for (Kill kill : spec.kills)
        run_case(out, std::string("kill ") + to_string(kill), [&] {
            expect_available(dir, fdid, k_settle, "before the step");
            std::int64_t lease_id = 0;
            Child holder = start_holder(env, fdid, borrower, lease_id);
            const std::int64_t since = now_ms() - 1000;
            std::uint32_t killed_node = 0;
            DaemonProcess daemon;
            if (kill == Kill::borrower) {
                holder.kill_now();
            } else {
                killed_node = kill == Kill::lender_daemon ? fdid.node_id() : borrower;
                daemon = find_daemon(dir, killed_node);
                ::kill(daemon.pid, SIGKILL);
                // The borrower program dies with its node (or loses its lender) either way.
                holder.kill_now();
            }
            const auto t0 = Clock::now();
            if (kill == Kill::lender_daemon) {
                // The lender is gone until restarted with its own command line.
                wait_for([&] { return device_state(dir, fdid).empty(); }, Millis(3000));
                restart_daemon(dir, killed_node, daemon);
            }
            expect_available(dir, fdid, spec.bound, "after the kill (bound)");
            const double back_s = std::chrono::duration<double>(Clock::now() - t0).count();
            if (kill == Kill::borrower_daemon)
                restart_daemon(dir, killed_node, daemon);
            auto rows = rows_ending(dir, fdid, since, lease_id);
            expect(!rows.empty(), "the audit log of fdid " + fdid_text(fdid) +
                                      " has no row ending lease " + std::to_string(lease_id));
            nlohmann::json detail = {{"fdid", fdid_text(fdid)},
                                     {"lease", lease_id},
                                     {"back_s", back_s},
                                     {"bound_s", spec.bound.count() / 1000.0},
                                     {"audit", nlohmann::json::array()}};
            for (const auto& r : rows)
                detail["audit"].push_back(lending::to_json(r));
            return detail;
        });
}

namespace {

struct LoadCounters {
    std::mutex mu;
    std::map<std::uint32_t, int> holders; // fdid -> owners right now, as this run counts
    std::atomic<std::uint64_t> cycles{0};
    std::atomic<std::uint64_t> double_owners{0};
    std::vector<std::string> errors;
    void error(const std::string& e) {
        std::lock_guard lock(mu);
        if (errors.size() < 20)
            errors.push_back(e);
    }
};

void borrow_loop(const std::string& dir, Fdid fdid, std::uint32_t node, Clock::time_point end,
                 LoadCounters& k) {
    try {
        LenderClient c(dir, fdid.node_id(), node);
        while (Clock::now() < end) {
            lending::BorrowOptions bo;
            bo.fdid = fdid;
            bo.exclusive = true;
            bo.wait = k_settle;
            auto held = c.borrow(bo);
            {
                std::lock_guard lock(k.mu);
                if (++k.holders[fdid.value] > 1)
                    ++k.double_owners;
            }
            auto d = c.show(fdid);
            if (d.status.leases.size() != 1 || d.status.leases[0].id != held.lease.id) {
                ++k.double_owners;
                k.error("fdid " + fdid_text(fdid) + " held by node " + std::to_string(node) +
                        " shows " + std::to_string(d.status.leases.size()) + " leases");
            }
            std::this_thread::sleep_for(Millis(5));
            {
                std::lock_guard lock(k.mu);
                --k.holders[fdid.value];
            }
            c.release(held.lease.id);
            ++k.cycles;
        }
    } catch (const std::exception& e) {
        k.error("node " + std::to_string(node) + " borrowing " + fdid_text(fdid) + ": " + e.what());
    }
}

} // namespace

void run_load(const Step& step, StepEnv& env, StepResult& out) {
    const auto& spec = step.load;
    const std::string& dir = env.fabric_dir;
    run_case(out, "load", [&] {
        LoadCounters k;
        const auto end = Clock::now() + spec.duration;
        std::optional<bench::BenchOptions> dma;
        if (spec.dma_local) {
            bench::BenchOptions o;
            o.test = bench::TestKind::dma_bw;
            o.remote_node = spec.dma_remote->value;
            o.sizes = {spec.dma_size};
            o.duration_s = std::chrono::duration<double>(spec.duration).count();
            o.iterations = 1;
            o.warmup = 1;
            o.baseline = false;
            o.responder_argv = responder_argv(env);
            o.responder_env = {"DIS_NODE_ID=" + std::to_string(o.remote_node)};
            ::setenv("DIS_FABRIC", dir.c_str(), 1); // before any thread starts
            ::setenv("DIS_NODE_ID", std::to_string(spec.dma_local->value).c_str(), 1);
            dma = o;
        }
        std::vector<std::thread> threads;
        for (const auto& d : spec.devices)
            for (const auto& b : spec.borrowers)
                threads.emplace_back(borrow_loop, dir, d.value, b.value, end, std::ref(k));
        nlohmann::json detail = nlohmann::json::object();
        std::string dma_error;
        if (dma) {
            try {
                auto rep = bench::run_test(*dma);
                detail["dma"] = bench::to_json(rep);
            } catch (const std::exception& e) {
                dma_error = e.what();
            }
        }
        for (auto& t : threads)
            t.join();
        for (const auto& d : spec.devices)
            expect_available(dir, d.value, k_settle, "after the load");
        detail["borrow_cycles"] = k.cycles.load();
        detail["double_owners"] = k.double_owners.load();
        detail["errors"] = k.errors;
        expect(dma_error.empty(), "DMA: " + dma_error);
        expect(k.double_owners == 0,
               std::to_string(k.double_owners.load()) + " times a device had two owners");
        expect(k.errors.empty(), k.errors.empty() ? "" : k.errors.front());
        expect(k.cycles > 0, "no borrow cycle completed");
        return detail;
    });
}

} // namespace dis::qualify::detail
