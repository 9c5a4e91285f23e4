// Interrupts: the owner daemon hands out one eventfd (semaphore mode) per interrupt; the
// connector writes it directly, so triggering needs no daemon round trip. Data interrupts add
// a shared multi-producer ring for the payload. Plain and data interrupts share one
// implementation (the templates below), told apart by Handle::k_data.
#include "api_util.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>

#include <cstring>
#include <thread>

namespace {

constexpr unsigned k_create_flags =
    SCI_FLAG_FIXED_INTNO | SCI_FLAG_USE_CALLBACK | SCI_FLAG_SHARED_INT | SCI_FLAG_DIS_SHARED_ACCESS;

// Maps the payload ring the daemon sent with a data interrupt; false when it cannot.
bool map_ring(dis::sisci::PayloadRing& h, wire::Fd fd) {
    h.ring_fd = std::move(fd);
    h.ring_map = wire::map_shared(h.ring_fd.get(), sizeof(wire::DataRing));
    h.ring = static_cast<wire::DataRing*>(h.ring_map.get());
    return h.ring != nullptr;
}

// Takes the next payload from a data ring if one is complete. Returns false when empty.
bool ring_take(wire::DataRing* ring, void* data, unsigned int* size, sci_error_t& err) {
    std::uint32_t tail = ring->tail.load(std::memory_order_relaxed);
    if (ring->head.load(std::memory_order_acquire) == tail) {
        return false;
    }
    wire::DataSlot& slot = ring->slots[tail % wire::k_data_ring_slots];
    // The producer reserved the ticket; wait (briefly) until it finished writing.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    while (slot.ready.load(std::memory_order_acquire) != tail + 1) {
        if (std::chrono::steady_clock::now() > deadline) {
            ring->tail.store(tail + 1, std::memory_order_release); // a dead producer's slot
            err = SCI_ERR_TRANSFER_FAILED;
            return true;
        }
        std::this_thread::yield();
    }
    std::uint32_t len = std::min<std::uint32_t>(slot.length, wire::k_data_slot_bytes);
    if (size != nullptr && len > *size) {
        *size = len; // caller's buffer too small: leave the payload queued
        err = SCI_ERR_OUT_OF_RANGE;
        return true;
    }
    if (len > 0 && data != nullptr) {
        std::memcpy(data, slot.data, len);
    }
    if (size != nullptr) {
        *size = len;
    }
    ring->tail.store(tail + 1, std::memory_order_release);
    err = SCI_ERR_OK;
    return true;
}

// Waits for one trigger of an interrupt or a data interrupt. The eventfd is blocking in the
// owner, so an infinite wait is one read() like a raw eventfd wake-up; removal and node loss
// write the same eventfd after setting their flag, which the woken waiter checks.
template <class Handle> sci_error_t wait_interrupt(Handle* irq, unsigned int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (irq->stopping.load()) {
            return SCI_ERR_CANCELLED;
        }
        if (irq->conn->lost()) {
            return SCI_ERR_NODE_NOT_RESPONDING;
        }
        if (timeout_ms != SCI_INFINITE_TIMEOUT) {
            auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) {
                return SCI_ERR_TIMEOUT;
            }
            pollfd p{irq->efd.get(), POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>((left + 999) / 1000));
            if (r <= 0) {
                continue; // EINTR or timeout: re-evaluated above
            }
        }
        std::uint64_t v;
        ssize_t n = ::read(irq->efd.get(), &v, sizeof(v));
        if (irq->stopping.load()) {
            return SCI_ERR_CANCELLED;
        }
        if (irq->conn->lost()) {
            return SCI_ERR_NODE_NOT_RESPONDING;
        }
        if (n == sizeof(v)) {
            return SCI_ERR_OK;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            return SCI_ERR_SYSTEM;
        }
    }
}

void callback_loop(sci_local_interrupt_t irq) {
    for (;;) {
        sci_error_t err = wait_interrupt(irq, SCI_INFINITE_TIMEOUT);
        if (err == SCI_ERR_CANCELLED) {
            return;
        }
        if (irq->callback(irq->callback_arg, irq, err) == SCI_CALLBACK_CANCEL ||
            err != SCI_ERR_OK) {
            return;
        }
    }
}

void callback_loop(sci_local_data_interrupt_t irq) {
    std::vector<unsigned char> buf(wire::k_data_slot_bytes);
    for (;;) {
        sci_error_t err = wait_interrupt(irq, SCI_INFINITE_TIMEOUT);
        if (err == SCI_ERR_CANCELLED) {
            return;
        }
        unsigned int len = static_cast<unsigned int>(buf.size());
        if (err == SCI_ERR_OK && !ring_take(irq->ring, buf.data(), &len, err)) {
            continue;
        }
        if (irq->callback(irq->callback_arg, irq, buf.data(), err == SCI_ERR_OK ? len : 0, err) ==
                SCI_CALLBACK_CANCEL ||
            err == SCI_ERR_NODE_NOT_RESPONDING) {
            return;
        }
    }
}

template <class Handle> void stop_callbacks(Handle* irq) {
    irq->stopping = true;
    signal_efd(irq->efd.get());
    if (irq->cb_thread.joinable()) {
        if (irq->cb_thread.get_id() == std::this_thread::get_id()) {
            irq->cb_thread.detach(); // removed from its own callback
        } else {
            irq->cb_thread.join();
        }
    }
}

template <class Handle>
void create_interrupt(sci_desc_t sd, Handle** interrupt, unsigned int adapter, unsigned int* no,
                      typename Handle::Callback callback, void* callback_arg, unsigned int flags,
                      sci_error_t* error) {
    const bool use_callback = (flags & SCI_FLAG_USE_CALLBACK) != 0;
    Check c(error);
    if (!c.param(interrupt != nullptr)
             .param(!use_callback || callback != nullptr)
             .runtime()
             .handle(sd, Magic::desc)
             .param(no != nullptr)
             .flags(flags, k_create_flags)
             .adapter(adapter)
             .home()) {
        return;
    }
    json req{{"op", "int_create"},
             {"data", Handle::k_data},
             {"fixed", (flags & SCI_FLAG_FIXED_INTNO) != 0},
             {"shared_access", (flags & SCI_FLAG_DIS_SHARED_ACCESS) != 0}};
    if ((flags & SCI_FLAG_FIXED_INTNO) != 0) {
        req["interrupt_no"] = *no;
    }
    Reply r = c.home_conn()->call(req);
    if (!c.status(r.err)) {
        return;
    }
    auto irq = std::make_unique<Handle>();
    irq->sd = sd;
    irq->conn = c.home_conn();
    irq->no = r.body.value("interrupt_no", 0u);
    irq->efd = take_fd(r, 0);
    // Only this process reads the eventfd: make it blocking (see wait_interrupt).
    ::fcntl(irq->efd.get(), F_SETFL, ::fcntl(irq->efd.get(), F_GETFL) & ~O_NONBLOCK);
    if constexpr (Handle::k_data) {
        if (!map_ring(*irq, take_fd(r, 1))) {
            irq->conn->call({{"op", "int_remove"}, {"interrupt_no", irq->no}, {"data", true}});
            set(error, SCI_ERR_NOSPC);
            return;
        }
    }
    *no = irq->no;
    Handle* raw = irq.release();
    c.rt()->add(raw);
    if (use_callback) {
        raw->callback = callback;
        raw->callback_arg = callback_arg;
        raw->cb_thread = std::thread([raw] { callback_loop(raw); });
    }
    hand_out(raw, interrupt, error);
}

template <class Handle>
void remove_interrupt(Handle* interrupt, unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(interrupt, Handle::k_magic).flags(flags, 0)) {
        return;
    }
    stop_callbacks(interrupt);
    if (Runtime* rt = Runtime::get()) {
        rt->remove(interrupt);
    }
    if (!interrupt->conn->lost()) {
        interrupt->conn->call(
            {{"op", "int_remove"}, {"interrupt_no", interrupt->no}, {"data", Handle::k_data}});
    }
    destroy(interrupt);
    set(error, SCI_ERR_OK);
}

template <class Handle>
void connect_interrupt(sci_desc_t sd, Handle** interrupt, unsigned int node, unsigned int adapter,
                       unsigned int no, unsigned int timeout, unsigned int flags,
                       sci_error_t* error) {
    Check c(error);
    if (!c.param(interrupt != nullptr)
             .runtime()
             .handle(sd, Magic::desc)
             .flags(flags, 0)
             .adapter(adapter)
             .node(node)) {
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    std::shared_ptr<Conn> conn;
    Reply r;
    sci_error_t err;
    for (;;) {
        conn = c.rt()->conn(node, err);
        if (conn) {
            r = conn->call({{"op", "int_connect"}, {"interrupt_no", no}, {"data", Handle::k_data}});
            err = r.err;
        }
        if (err != SCI_ERR_NO_SUCH_INTNO || timeout == 0 ||
            (timeout != SCI_INFINITE_TIMEOUT && std::chrono::steady_clock::now() >= deadline)) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!c.status(err)) {
        return;
    }
    auto irq = std::make_unique<Handle>();
    irq->sd = sd;
    irq->conn = conn;
    irq->node = node;
    irq->no = no;
    irq->efd = take_fd(r, 0);
    if constexpr (Handle::k_data) {
        if (!map_ring(*irq, take_fd(r, 1))) {
            conn->call({{"op", "int_disconnect"}, {"interrupt_no", no}, {"data", true}});
            set(error, SCI_ERR_NOSPC);
            return;
        }
    }
    // The counters page comes last; without it (an older daemon) triggers go uncounted.
    if (wire::Fd stats = take_fd(r, Handle::k_data ? 2 : 1); stats.valid()) {
        irq->stats_map = wire::map_shared(stats.get(), wire::k_interrupt_stats_bytes);
        irq->stats = static_cast<wire::InterruptStats*>(irq->stats_map.get());
    }
    c.rt()->add(irq.get());
    hand_out(irq.release(), interrupt, error);
}

template <class Handle>
void disconnect_interrupt(Handle* interrupt, unsigned int flags, sci_error_t* error) {
    if (!Check(error).handle(interrupt, Handle::k_magic).flags(flags, 0)) {
        return;
    }
    if (!interrupt->conn->lost()) {
        interrupt->conn->call(
            {{"op", "int_disconnect"}, {"interrupt_no", interrupt->no}, {"data", Handle::k_data}});
    }
    if (Runtime* rt = Runtime::get()) {
        rt->remove(interrupt);
    }
    destroy(interrupt);
    set(error, SCI_ERR_OK);
}

// A remote interrupt can be triggered while its node and its owner are there.
template <class Handle> bool reachable(Check& c, Handle* interrupt) {
    return static_cast<bool>(c.that(!interrupt->conn->lost(), SCI_ERR_NODE_NOT_RESPONDING)
                                 .that(!interrupt->gone.load(), SCI_ERR_NOT_CONNECTED));
}

// Wakes the owner of an interrupt (one count on its eventfd), counting the trigger.
template <class Handle> sci_error_t ring_bell(Handle* interrupt) {
    if (interrupt->stats != nullptr) {
        interrupt->stats->triggered.fetch_add(1, std::memory_order_relaxed);
    }
    std::uint64_t one = 1;
    return ::write(interrupt->efd.get(), &one, sizeof(one)) == sizeof(one) ? SCI_ERR_OK
                                                                           : SCI_ERR_SYSTEM;
}

} // namespace

// ===================================== interrupts =====================================

SCI_API void SCICreateInterrupt(sci_desc_t sd, sci_local_interrupt_t* interrupt,
                                unsigned int localAdapterNo, unsigned int* interruptNo,
                                sci_cb_interrupt_t callback, void* callbackArg, unsigned int flags,
                                sci_error_t* error) {
    create_interrupt(sd, interrupt, localAdapterNo, interruptNo, callback, callbackArg, flags,
                     error);
}

SCI_API void SCIRemoveInterrupt(sci_local_interrupt_t interrupt, unsigned int flags,
                                sci_error_t* error) {
    remove_interrupt(interrupt, flags, error);
}

SCI_API void SCIWaitForInterrupt(sci_local_interrupt_t interrupt, unsigned int timeout,
                                 unsigned int flags, sci_error_t* error) {
    Check c(error);
    // Callbacks consume the interrupts.
    if (!c.handle(interrupt, Magic::local_interrupt).flags(flags, 0) ||
        !c.that(interrupt->callback == nullptr, SCI_ERR_ILLEGAL_OPERATION)) {
        return;
    }
    set(error, wait_interrupt(interrupt, timeout));
}

SCI_API void SCIConnectInterrupt(sci_desc_t sd, sci_remote_interrupt_t* interrupt,
                                 unsigned int nodeId, unsigned int localAdapterNo,
                                 unsigned int interruptNo, unsigned int timeout, unsigned int flags,
                                 sci_error_t* error) {
    connect_interrupt(sd, interrupt, nodeId, localAdapterNo, interruptNo, timeout, flags, error);
}

SCI_API void SCIDisconnectInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags,
                                    sci_error_t* error) {
    disconnect_interrupt(interrupt, flags, error);
}

SCI_API void SCITriggerInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags,
                                 sci_error_t* error) {
    Check c(error);
    if (!c.handle(interrupt, Magic::remote_interrupt).flags(flags, 0) || !reachable(c, interrupt)) {
        return;
    }
    set(error, ring_bell(interrupt));
}

// =================================== data interrupts ===================================

SCI_API void SCICreateDataInterrupt(sci_desc_t sd, sci_local_data_interrupt_t* interrupt,
                                    unsigned int localAdapterNo, unsigned int* interruptNo,
                                    sci_cb_data_interrupt_t callback, void* callbackArg,
                                    unsigned int flags, sci_error_t* error) {
    create_interrupt(sd, interrupt, localAdapterNo, interruptNo, callback, callbackArg, flags,
                     error);
}

SCI_API void SCIRemoveDataInterrupt(sci_local_data_interrupt_t interrupt, unsigned int flags,
                                    sci_error_t* error) {
    remove_interrupt(interrupt, flags, error);
}

SCI_API void SCIWaitForDataInterrupt(sci_local_data_interrupt_t interrupt, void* data,
                                     unsigned int* size, unsigned int timeout, unsigned int flags,
                                     sci_error_t* error) {
    Check c(error);
    if (!c.handle(interrupt, Magic::local_data_interrupt).param(size != nullptr) ||
        !c.param(data != nullptr || *size == 0)
             .flags(flags, 0)
             .that(interrupt->callback == nullptr, SCI_ERR_ILLEGAL_OPERATION)) {
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    for (;;) {
        sci_error_t err = wait_interrupt(interrupt, timeout);
        if (err != SCI_ERR_OK) {
            set(error, err);
            return;
        }
        if (ring_take(interrupt->ring, data, size, err)) {
            if (err == SCI_ERR_OUT_OF_RANGE) {
                // Leave the payload for a bigger buffer: give the wake-up back.
                signal_efd(interrupt->efd.get());
            }
            set(error, err);
            return;
        }
        if (timeout != SCI_INFINITE_TIMEOUT) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) {
                set(error, SCI_ERR_TIMEOUT);
                return;
            }
            timeout = static_cast<unsigned int>(left);
        }
    }
}

SCI_API void SCIConnectDataInterrupt(sci_desc_t sd, sci_remote_data_interrupt_t* interrupt,
                                     unsigned int nodeId, unsigned int localAdapterNo,
                                     unsigned int interruptNo, unsigned int timeout,
                                     unsigned int flags, sci_error_t* error) {
    connect_interrupt(sd, interrupt, nodeId, localAdapterNo, interruptNo, timeout, flags, error);
}

SCI_API void SCIDisconnectDataInterrupt(sci_remote_data_interrupt_t interrupt, unsigned int flags,
                                        sci_error_t* error) {
    disconnect_interrupt(interrupt, flags, error);
}

SCI_API void SCITriggerDataInterrupt(sci_remote_data_interrupt_t interrupt, void* data,
                                     unsigned int length, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(interrupt, Magic::remote_data_interrupt)
             .param(data != nullptr || length == 0)
             .flags(flags, 0)
             .that(length <= SCI_MAX_DATA_INTERRUPT_SIZE, SCI_ERR_OUT_OF_RANGE) ||
        !reachable(c, interrupt)) {
        return;
    }
    wire::DataRing* ring = interrupt->ring;
    // Reserve a ticket while the ring has room (the consumer frees slots as it reads).
    std::uint32_t ticket = ring->head.load(std::memory_order_relaxed);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
    for (;;) {
        std::uint32_t tail = ring->tail.load(std::memory_order_acquire);
        if (ticket - tail >= wire::k_data_ring_slots) {
            if (std::chrono::steady_clock::now() > deadline) {
                set(error, SCI_ERR_BUSY); // the receiver is not keeping up
                return;
            }
            std::this_thread::yield();
            ticket = ring->head.load(std::memory_order_relaxed);
            continue;
        }
        if (ring->head.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel)) {
            break;
        }
    }
    wire::DataSlot& slot = ring->slots[ticket % wire::k_data_ring_slots];
    slot.length = length;
    if (length > 0) {
        std::memcpy(slot.data, data, length);
    }
    slot.ready.store(ticket + 1, std::memory_order_release);
    set(error, ring_bell(interrupt));
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCICreateInterrupt)
SCI_VENDOR_NAMES(SCIRemoveInterrupt)
SCI_VENDOR_NAMES(SCIWaitForInterrupt)
SCI_VENDOR_NAMES(SCIConnectInterrupt)
SCI_VENDOR_NAMES(SCIDisconnectInterrupt)
SCI_VENDOR_NAMES(SCITriggerInterrupt)
SCI_VENDOR_NAMES(SCICreateDataInterrupt)
SCI_VENDOR_NAMES(SCIRemoveDataInterrupt)
SCI_VENDOR_NAMES(SCIWaitForDataInterrupt)
SCI_VENDOR_NAMES(SCIConnectDataInterrupt)
SCI_VENDOR_NAMES(SCIDisconnectDataInterrupt)
SCI_VENDOR_NAMES(SCITriggerDataInterrupt)
