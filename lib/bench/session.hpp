// The client side of a bench session: the connection to the responder (its control and
// data segments), our own segment, and the responder process when we started it. The
// request protocol is in protocol.hpp. Internal to libdis.
#pragma once

#include "dis/bench.hpp"
#include "dis/error.hpp"

#include "../fabric/sci.hpp"
#include "pingpong.hpp"
#include "process.hpp"
#include "protocol.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <thread>

namespace dis::bench::detail {

// SCIFlush: makes this side's stores visible to the other side.
void flush();

// A connection to the responder: its control and data segments, our own segment, and the
// responder process when we started it.
class Session {
public:
    explicit Session(const BenchOptions& o);

    // On an error path: end any phase and say goodbye without waiting for answers, so the
    // responder exits by itself; the ChildProcess member kills it if it does not.
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Says goodbye and waits for a responder we started to exit.
    void finish();

    std::uint64_t request(Op op, std::uint64_t size, std::uint64_t offset, std::uint64_t arg) {
        post(op, size, offset, arg);
        wait_until([&] { return get(cb().ack_seq) == m_seq; }, "the responder to answer");
        check_status();
        return get(cb().result);
    }

    // Starts a measurement phase; returns the responder's ready result.
    std::uint64_t begin_phase(Op op, std::uint64_t size, std::uint64_t arg) {
        return request(op, size, 0, arg);
    }

    // Tells the responder to end the running phase (end_phase waits for its results).
    void request_stop() {
        put(cb().stop_seq, m_seq);
        flush();
    }

    PhaseResult end_phase() {
        request_stop();
        wait_until([&] { return get(cb().done_seq) == m_seq; }, "the responder to end the phase");
        check_status();
        return {get(cb().result), get(cb().result2), get(cb().result3)};
    }

    sci_desc_t sd() const { return m_sd->get(); }
    // The responder's process CPU time as of its last answer (protocol.hpp).
    double responder_cpu_s() { return static_cast<double>(get(cb().responder_cpu_ns)) * 1e-9; }
    std::uint32_t local_node() const { return m_local_node; }
    sci::LocalSegment& local() { return *m_local; }
    sci::RemoteSegment& data() { return *m_data; }

private:
    ControlBlock& cb() { return *reinterpret_cast<ControlBlock*>(m_control->bytes()); }

    Error responder_died() {
        auto text = m_child.error_output();
        return Error(ErrorKind::fabric_down,
                     "the responder on node " + std::to_string(m_o.remote_node) + " exited (" +
                         m_child.describe() + ")" + (text.empty() ? "" : ": " + text));
    }

    bool responder_alive() {
        if (!m_child.running())
            return m_o.responder_argv.empty();
        return !m_child.poll_exited();
    }

    void post(Op op, std::uint64_t size, std::uint64_t offset, std::uint64_t arg) {
        auto& c = cb();
        put(c.op, static_cast<std::uint64_t>(op));
        put(c.size, size);
        put(c.offset, offset);
        put(c.arg, arg);
        put(c.req_seq, ++m_seq);
        flush();
    }

    void check_status() {
        if (get(cb().status) == 0)
            return;
        char message[sizeof(ControlBlock::message)];
        std::memcpy(message, cb().message, sizeof message);
        message[sizeof message - 1] = '\0';
        throw Error(ErrorKind::fabric_down, std::string("the responder failed: ") + message);
    }

    template <class Pred> void wait_until(Pred&& done, const char* what) {
        const auto deadline = Clock::now() + m_o.timeout;
        for (unsigned spins = 0; !done(); ++spins) {
            if (spins < 1000)
                continue;
            std::this_thread::sleep_for(std::chrono::microseconds(20));
            if (spins % 256 == 0 && !responder_alive())
                throw responder_died();
            if (Clock::now() > deadline)
                throw Error(ErrorKind::timeout, std::string("timed out waiting for ") + what +
                                                    " on node " + std::to_string(m_o.remote_node));
        }
    }

    const BenchOptions& m_o;
    ChildProcess m_child; // declared first: stopped after everything else is released
    std::unique_ptr<sci::Library> m_library;
    std::unique_ptr<sci::Descriptor> m_sd;
    std::uint32_t m_local_node = 0;
    std::unique_ptr<sci::LocalSegment> m_local;
    std::unique_ptr<sci::RemoteSegment> m_control;
    std::unique_ptr<sci::RemoteSegment> m_data;
    std::uint64_t m_seq = 0;
    bool m_finished = false;
};

} // namespace dis::bench::detail
