// The client side of a bench session (session.hpp).
#include "session.hpp"

#include <unistd.h>

#include <algorithm>

namespace dis::bench::detail {

void flush() {
    SCIFlush(nullptr, SCI_NO_FLAGS);
}

Session::Session(const BenchOptions& o) : m_o(o) {
    m_library = std::make_unique<sci::Library>(); // fails fast without a fabric
    m_sd = std::make_unique<sci::Descriptor>(*m_library);
    if (!o.responder_argv.empty())
        m_child = ChildProcess::spawn(o.responder_argv, o.responder_env);
    m_local_node = sci::local_node_id(o.adapter);
    const std::uint64_t max_size =
        o.sizes.empty() ? 0 : *std::max_element(o.sizes.begin(), o.sizes.end());
    const std::size_t bytes = segment_bytes_for(std::max<std::uint64_t>(max_size, 4096));
    m_local = std::make_unique<sci::LocalSegment>(
        m_sd->get(), k_client_segment_base | (static_cast<unsigned>(getpid()) & 0xffff), bytes,
        o.adapter);
    try {
        m_control = std::make_unique<sci::RemoteSegment>(
            m_sd->get(), o.remote_node, k_control_segment_id, o.adapter, o.timeout, [this] {
                if (!responder_alive())
                    throw responder_died();
                return true;
            });
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::not_found && e.kind() != ErrorKind::timeout)
            throw;
        throw Error(
            ErrorKind::fabric_down,
            "no responder on node " + std::to_string(o.remote_node) +
                (o.responder_argv.empty() ? " (start `dis-tool bench serve` there): " : ": ") +
                e.what());
    }
    wait_until([&] { return get(cb().magic) == k_magic; }, "the responder to start");
    if (get(cb().version) != k_protocol_version)
        throw Error(ErrorKind::fabric_down, "the responder on node " +
                                                std::to_string(o.remote_node) +
                                                " speaks another protocol version");
    // The responder we started, not one that another run left on that node (ours then
    // failed to create the well-known control segment, and its error says so).
    if (!o.responder_argv.empty() &&
        get(cb().responder_pid) != static_cast<std::uint64_t>(m_child.pid())) {
        m_child.wait(std::chrono::milliseconds(2000));
        throw Error(
            ErrorKind::fabric_down, "another bench responder is already running on node " +
                                        std::to_string(o.remote_node) + " (" + m_child.describe() +
                                        [&] {
                                            auto t = m_child.error_output();
                                            return t.empty() ? std::string() : ": " + t;
                                        }() +
                                        ")");
    }
    m_seq = std::max(get(cb().req_seq), get(cb().ack_seq));
    request(Op::hello, bytes, m_local_node, SCIGetLocalSegmentId(m_local->handle()));
    m_data = std::make_unique<sci::RemoteSegment>(m_sd->get(), o.remote_node, k_data_segment_id,
                                                  o.adapter, o.timeout);
}

Session::~Session() {
    if (m_finished || !m_control)
        return;
    put(cb().stop_seq, m_seq);
    post(Op::bye, 0, 0, 0);
    if (m_child.running())
        m_child.wait(std::chrono::milliseconds(1000));
}

void Session::finish() {
    m_finished = true;
    m_data.reset(); // let go of the responder's data segment before it removes it
    request(Op::bye, 0, 0, 0);
    m_control.reset();
    if (m_child.running()) {
        m_child.wait(m_o.timeout);
        if (m_child.describe() != "exit status 0")
            throw responder_died();
    }
}

} // namespace dis::bench::detail
