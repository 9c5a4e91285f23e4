// `dis-tool bench serve`: the remote side of every test (see protocol.hpp).
#include "dis/bench.hpp"
#include "dis/error.hpp"

#include "../fabric/sci.hpp"
#include "pingpong.hpp"
#include "process.hpp"
#include "protocol.hpp"
#include "rounds.hpp"
#include "watchdog.hpp"

#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>

namespace dis::bench {

using namespace detail;
using namespace dis::sci;

namespace {

// How long a phase waits for the client's next message before giving it up for gone.
constexpr auto k_message_timeout = std::chrono::milliseconds(10000);

#ifdef SCI_MAX_DATA_INTERRUPT_SIZE
constexpr std::size_t k_data_intr_capacity = SCI_MAX_DATA_INTERRUPT_SIZE;
#else
constexpr std::size_t k_data_intr_capacity = 1024;
#endif

class Responder {
public:
    explicit Responder(const ServeOptions& options)
        : m_options(options), m_node(local_node_id(options.adapter)),
          m_control(m_sci.get(), k_control_segment_id, k_control_size, options.adapter),
          m_cb(*reinterpret_cast<ControlBlock*>(m_control.bytes())) {
        std::memset(m_control.bytes(), 0, k_control_size);
        put(m_cb.version, k_protocol_version);
        put(m_cb.responder_node, m_node);
        put(m_cb.responder_pid, static_cast<std::uint64_t>(getpid()));
        put(m_cb.magic, k_magic); // last: the client waits for it
    }

    void run() {
        std::uint64_t last = get(m_cb.req_seq);
        bool in_session = false;
        for (;;) {
            // The idle timeout applies between clients only: within a session the client may
            // legitimately be busy for long (its baselines, --duration), and a client that
            // dies takes a responder it started with it (see ChildProcess).
            const std::uint64_t seq = wait_request(last, !in_session);
            last = seq;
            const auto op = static_cast<Op>(get(m_cb.op));
            handle(op, seq);
            if (op == Op::hello)
                in_session = get(m_cb.status) == 0;
            if (op == Op::bye) {
                in_session = false;
                if (m_options.once)
                    return;
            }
        }
    }

private:
    std::uint64_t wait_request(std::uint64_t last, bool idle_timeout) {
        const auto start = Clock::now();
        // Between requests the client may be measuring for seconds: back off to a few hundred
        // wake-ups a second, so that this process does not disturb the CPUs it measures.
        auto nap = std::chrono::microseconds(50);
        for (unsigned spins = 0;; ++spins) {
            std::uint64_t seq = get(m_cb.req_seq);
            if (seq != last)
                return seq;
            if (spins < 2000)
                continue;
            std::this_thread::sleep_for(nap);
            nap = std::min<std::chrono::microseconds>(nap * 2, std::chrono::milliseconds(2));
            if (idle_timeout && m_options.idle_timeout.count() > 0 &&
                Clock::now() - start > m_options.idle_timeout)
                throw Error(ErrorKind::timeout, "no client request within " +
                                                    std::to_string(m_options.idle_timeout.count()) +
                                                    " s");
        }
    }

    void publish_error(const std::string& message) {
        std::strncpy(m_cb.message, message.c_str(), sizeof m_cb.message - 1);
        m_cb.message[sizeof m_cb.message - 1] = '\0';
        put(m_cb.status, 1);
    }

    void handle(Op op, std::uint64_t seq) {
        const bool phase = op == Op::ping_pio || op == Op::ping_intr || op == Op::ping_data_intr;
        bool ready = false;
        put(m_cb.status, 0);
        try {
            switch (op) {
            case Op::hello:
                hello();
                break;
            case Op::fill:
            case Op::verify:
                fill_or_verify(op);
                break;
            case Op::ping_pio:
                ping_pio(seq, ready);
                break;
            case Op::ping_intr:
                ping_intr(seq, ready);
                break;
            case Op::ping_data_intr:
                ping_data_intr(seq, ready);
                break;
            case Op::bye:
                m_client.reset();
                break;
            default:
                throw Error(ErrorKind::invalid_input,
                            "unknown request " + std::to_string(static_cast<std::uint64_t>(op)));
            }
        } catch (const std::exception& e) {
            publish_error(e.what());
        }
        publish_cpu();
        if (!ready)
            put(m_cb.ack_seq, seq);
        if (phase)
            put(m_cb.done_seq, seq);
    }

    void hello() {
        const std::uint64_t size = get(m_cb.size);
        const auto client_segment = static_cast<std::uint32_t>(get(m_cb.arg));
        m_client_node = static_cast<std::uint32_t>(get(m_cb.offset));
        m_client.reset();
        if (!m_data || m_data->size() < size) {
            m_data.reset();
            m_data = std::make_unique<LocalSegment>(
                m_sci.get(), k_data_segment_id, static_cast<std::size_t>(size), m_options.adapter);
        }
        m_client = std::make_unique<RemoteSegment>(m_sci.get(), m_client_node, client_segment,
                                                   m_options.adapter, k_message_timeout);
        put(m_cb.result, m_data->size());
    }

    unsigned char* data_range(std::uint64_t offset, std::uint64_t size) {
        if (!m_data || offset + size > m_data->size() || offset + size < offset)
            throw Error(ErrorKind::invalid_input, "request outside the data segment");
        return m_data->bytes() + offset;
    }

    void fill_or_verify(Op op) {
        const std::uint64_t size = get(m_cb.size);
        unsigned char* p = data_range(get(m_cb.offset), size);
        if (op == Op::fill)
            fill_pattern(p, size, get(m_cb.arg));
        put(m_cb.result, checksum(p, size));
    }

    void publish_cpu() { put(m_cb.responder_cpu_ns, process_cpu_ns()); }

    void mark_ready(std::uint64_t seq, bool& ready) {
        publish_cpu();
        put(m_cb.ack_seq, seq);
        ready = true;
    }

    bool stopped(std::uint64_t seq) const { return get(m_cb.stop_seq) == seq; }

    void publish_phase(const PhaseResult& r) {
        put(m_cb.result, r.messages);
        put(m_cb.result2, r.received_sum);
        put(m_cb.result3, r.sent_sum);
    }

    void ping_pio(std::uint64_t seq, bool& ready) {
        const std::uint64_t size = get(m_cb.size);
        const std::size_t window = pingpong_window(size);
        if (!m_client || window > m_client->size())
            throw Error(ErrorKind::invalid_input, "ping-pong window outside the client segment");
        std::memset(data_range(0, window), 0, window);
        Messenger messenger(size, 2);
        mark_ready(seq, ready);
        auto r = run_echo(
            messenger, m_client->bytes(), m_data->bytes(), k_message_timeout,
            [&] { return stopped(seq); }, [] { SCIFlush(nullptr, SCI_NO_FLAGS); });
        publish_phase({r.messages, r.received_sum, r.sent_sum});
    }

    void ping_intr(std::uint64_t seq, bool& ready) {
        LocalInterrupt mine(m_sci.get(), m_options.adapter);
        RemoteInterrupt theirs(m_sci.get(), m_client_node, m_options.adapter,
                               static_cast<std::uint32_t>(get(m_cb.arg)), k_message_timeout);
        // Blocking waits like the baseline's read: the client wakes us once more after setting
        // stop; the watchdog (through a loopback connection) if it disappears.
        RemoteInterrupt self(m_sci.get(), m_node, m_options.adapter, mine.number(),
                             k_message_timeout);
        Watchdog dog(k_message_timeout, [&] { self.trigger(); });
        put(m_cb.result, mine.number());
        mark_ready(seq, ready);
        PhaseResult r;
        for (;;) {
            mine.wait(SCI_INFINITE_TIMEOUT);
            if (stopped(seq))
                break;
            if (dog.fired())
                throw Error(ErrorKind::timeout, "the client stopped sending interrupts");
            theirs.trigger();
            ++r.messages;
            dog.progress();
        }
        publish_phase(r);
    }

    void ping_data_intr(std::uint64_t seq, bool& ready) {
        LocalDataInterrupt mine(m_sci.get(), m_options.adapter);
        RemoteDataInterrupt theirs(m_sci.get(), m_client_node, m_options.adapter,
                                   static_cast<std::uint32_t>(get(m_cb.arg)), k_message_timeout);
        RemoteDataInterrupt self(m_sci.get(), m_node, m_options.adapter, mine.number(),
                                 k_message_timeout);
        const std::uint32_t wake_word = 0;
        Watchdog dog(k_message_timeout, [&] { self.trigger(&wake_word, sizeof wake_word); });
        put(m_cb.result, mine.number());
        mark_ready(seq, ready);
        std::vector<unsigned char> buffer(k_data_intr_capacity);
        PhaseResult r;
        for (;;) {
            unsigned int length = static_cast<unsigned int>(buffer.size());
            mine.wait(buffer.data(), &length, SCI_INFINITE_TIMEOUT);
            if (stopped(seq))
                break;
            if (dog.fired())
                throw Error(ErrorKind::timeout, "the client stopped sending data interrupts");
            theirs.trigger(buffer.data(), length); // echo
            ++r.messages;
            r.received_sum = fold(r.received_sum, checksum(buffer.data(), length));
            dog.progress();
        }
        r.sent_sum = r.received_sum;
        publish_phase(r);
    }

    const ServeOptions& m_options;
    Library m_library;
    Descriptor m_sci{m_library};
    std::uint32_t m_node;
    LocalSegment m_control;
    ControlBlock& m_cb;
    std::uint32_t m_client_node = 0;
    std::unique_ptr<LocalSegment> m_data;
    std::unique_ptr<RemoteSegment> m_client;
};

} // namespace

void serve(const ServeOptions& options) {
    pin_to_cpu(options.cpu);
    Responder responder(options);
    responder.run();
}

} // namespace dis::bench
