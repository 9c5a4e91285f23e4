// Minimal RAII owners of the SISCI handles the benchmarks use. Every failed call becomes a
// dis::Error naming the call; every handle is released in reverse order of acquisition.
// Only the standard SISCI API is used, so this builds against the vendor's library too.
// Internal to libdis.
#pragma once

#include <sisci_api.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace dis::bench::detail {

[[noreturn]] void throw_sci(const std::string& what, sci_error_t err);
inline void check_sci(sci_error_t err, const char* what) {
    if (err != SCI_ERR_OK)
        throw_sci(what, err);
}
unsigned int timeout_ms(std::chrono::milliseconds timeout);

// SCIInitialize + SCIOpen for the life of the object.
class SciDescriptor {
public:
    SciDescriptor();
    ~SciDescriptor();
    SciDescriptor(const SciDescriptor&) = delete;
    SciDescriptor& operator=(const SciDescriptor&) = delete;
    sci_desc_t get() const { return m_sd; }

private:
    sci_desc_t m_sd = nullptr;
};

std::uint32_t local_node_id(std::uint32_t adapter);

// A created, prepared, mapped and available local segment.
class LocalSegment {
public:
    LocalSegment(sci_desc_t sd, std::uint32_t id, std::size_t size, std::uint32_t adapter);
    ~LocalSegment();
    LocalSegment(const LocalSegment&) = delete;
    LocalSegment& operator=(const LocalSegment&) = delete;
    sci_local_segment_t handle() const { return m_segment; }
    unsigned char* bytes() const { return m_addr; }
    std::size_t size() const { return m_size; }

private:
    sci_local_segment_t m_segment = nullptr;
    sci_map_t m_map = nullptr;
    unsigned char* m_addr = nullptr;
    std::size_t m_size;
    std::uint32_t m_adapter;
    bool m_available = false;
};

// A connected and mapped remote segment.
class RemoteSegment {
public:
    // Retries until `timeout` while the segment does not exist yet; `keep_trying` may abort
    // the wait early by returning false (e.g. the responder process died).
    template <class KeepTrying>
    RemoteSegment(sci_desc_t sd, std::uint32_t node, std::uint32_t id, std::uint32_t adapter,
                  std::chrono::milliseconds timeout, KeepTrying&& keep_trying);
    RemoteSegment(sci_desc_t sd, std::uint32_t node, std::uint32_t id, std::uint32_t adapter,
                  std::chrono::milliseconds timeout)
        : RemoteSegment(sd, node, id, adapter, timeout, [] { return true; }) {}
    ~RemoteSegment();
    RemoteSegment(const RemoteSegment&) = delete;
    RemoteSegment& operator=(const RemoteSegment&) = delete;
    sci_remote_segment_t handle() const { return m_segment; }
    sci_map_t map() const { return m_map; }
    unsigned char* bytes() const { return m_addr; }
    std::size_t size() const { return m_size; }

private:
    bool try_connect(sci_desc_t sd, std::uint32_t node, std::uint32_t id, std::uint32_t adapter,
                     unsigned int wait_ms, sci_error_t& err);
    void map_all();
    sci_remote_segment_t m_segment = nullptr;
    sci_map_t m_map = nullptr;
    unsigned char* m_addr = nullptr;
    std::size_t m_size = 0;
};

template <class KeepTrying>
RemoteSegment::RemoteSegment(sci_desc_t sd, std::uint32_t node, std::uint32_t id,
                             std::uint32_t adapter, std::chrono::milliseconds timeout,
                             KeepTrying&& keep_trying) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    sci_error_t err = SCI_ERR_OK;
    while (!try_connect(sd, node, id, adapter, 100, err)) {
        // Only a segment that is not (yet) there is worth waiting for.
        bool retriable = err == SCI_ERR_NO_SUCH_SEGMENT || err == SCI_ERR_TIMEOUT ||
                         err == SCI_ERR_NOT_AVAILABLE || err == SCI_ERR_CONNECTION_REFUSED;
        if (!retriable || std::chrono::steady_clock::now() > deadline || !keep_trying())
            throw_sci(
                "SCIConnectSegment(node " + std::to_string(node) + ", segment 0x" +
                    [&] {
                        char b[16];
                        std::snprintf(b, sizeof b, "%x", id);
                        return std::string(b);
                    }() +
                    ")",
                err);
    }
    map_all();
}

class MapSequence {
public:
    explicit MapSequence(sci_map_t map);
    ~MapSequence();
    MapSequence(const MapSequence&) = delete;
    MapSequence& operator=(const MapSequence&) = delete;
    sci_sequence_t get() const { return m_seq; }

private:
    sci_sequence_t m_seq = nullptr;
};

class DmaQueue {
public:
    DmaQueue(sci_desc_t sd, std::uint32_t adapter, std::uint32_t max_entries);
    ~DmaQueue();
    DmaQueue(const DmaQueue&) = delete;
    DmaQueue& operator=(const DmaQueue&) = delete;
    sci_dma_queue_t get() const { return m_queue; }

private:
    sci_dma_queue_t m_queue = nullptr;
};

class LocalInterrupt {
public:
    LocalInterrupt(sci_desc_t sd, std::uint32_t adapter);
    ~LocalInterrupt();
    LocalInterrupt(const LocalInterrupt&) = delete;
    LocalInterrupt& operator=(const LocalInterrupt&) = delete;
    std::uint32_t number() const { return m_number; }
    // False on timeout.
    bool wait(unsigned int wait_ms);

private:
    sci_local_interrupt_t m_intr = nullptr;
    unsigned int m_number = 0;
};

class RemoteInterrupt {
public:
    RemoteInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter, std::uint32_t number,
                    std::chrono::milliseconds timeout);
    ~RemoteInterrupt();
    RemoteInterrupt(const RemoteInterrupt&) = delete;
    RemoteInterrupt& operator=(const RemoteInterrupt&) = delete;
    void trigger();

private:
    sci_remote_interrupt_t m_intr = nullptr;
};

class LocalDataInterrupt {
public:
    LocalDataInterrupt(sci_desc_t sd, std::uint32_t adapter);
    ~LocalDataInterrupt();
    LocalDataInterrupt(const LocalDataInterrupt&) = delete;
    LocalDataInterrupt& operator=(const LocalDataInterrupt&) = delete;
    std::uint32_t number() const { return m_number; }
    // Receives into data (capacity *length); false on timeout.
    bool wait(void* data, unsigned int* length, unsigned int wait_ms);

private:
    sci_local_data_interrupt_t m_intr = nullptr;
    unsigned int m_number = 0;
};

class RemoteDataInterrupt {
public:
    RemoteDataInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter,
                        std::uint32_t number, std::chrono::milliseconds timeout);
    ~RemoteDataInterrupt();
    RemoteDataInterrupt(const RemoteDataInterrupt&) = delete;
    RemoteDataInterrupt& operator=(const RemoteDataInterrupt&) = delete;
    void trigger(const void* data, unsigned int length);

private:
    sci_remote_data_interrupt_t m_intr = nullptr;
};

} // namespace dis::bench::detail
