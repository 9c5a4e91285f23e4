// The one RAII layer over the SISCI C API inside libdis, used by the fabric views
// (topology, probe: dis/sisci.hpp wraps it for front ends) and by the benchmarks. Every failed
// call becomes a dis::Error naming the call, its kind from the one sci_error_t -> ErrorKind
// table below; every handle is released in reverse order of acquisition. Only the standard
// SISCI API is used, so this builds against a vendor SISCI too. Internal to libdis: the
// public headers never include sisci_api.h.
#pragma once

#include "dis/error.hpp"

#include <sisci_api.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dis::sci {

// ---- errors ---------------------------------------------------------------------------------

struct ErrorKindEntry {
    sci_error_t error;
    ErrorKind kind;
};

// Every SISCI error code with the kind the exit-code contract gives it (dis-tool(1)).
std::span<const ErrorKindEntry> error_kinds() noexcept;
// The kind of `err`; ErrorKind::internal for a code the table does not know.
ErrorKind error_kind(sci_error_t err) noexcept;
// "SCI_ERR_..." text from SCIGetErrorString.
std::string error_string(sci_error_t err);
// "<what> failed: <text> (0x...)".
std::string failure_text(const std::string& what, sci_error_t err);

[[noreturn]] void throw_error(const std::string& what, sci_error_t err);
inline void check(sci_error_t err, const char* what) {
    if (err != SCI_ERR_OK)
        throw_error(what, err);
}
// SCIInitialize and SCIOpen take no user input: a failure there means this process's node
// (its daemon, its driver) is unreachable, except for access and resource errors.
[[noreturn]] void throw_open_error(const std::string& what, sci_error_t err);

// A SISCI timeout argument for `timeout` (at least 1 ms, below SCI_INFINITE_TIMEOUT).
unsigned int timeout_ms(std::chrono::milliseconds timeout);

// ---- library and descriptor -----------------------------------------------------------------

// SCIInitialize on construction, SCITerminate on destruction.
class Library {
public:
    Library();
    ~Library();
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
};

// An open SISCI descriptor (SCIOpen / SCIClose); needs a Library that outlives it.
class Descriptor {
public:
    explicit Descriptor(const Library& library);
    ~Descriptor();
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    sci_desc_t get() const { return m_sd; }

private:
    sci_desc_t m_sd = nullptr;
};

// SCIGetLocalNodeId of `adapter`.
std::uint32_t local_node_id(std::uint32_t adapter);

// ---- segments -------------------------------------------------------------------------------

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
        if (!retriable || std::chrono::steady_clock::now() > deadline || !keep_trying()) {
            char hex[16];
            std::snprintf(hex, sizeof hex, "%x", id);
            throw_error(
                "SCIConnectSegment(node " + std::to_string(node) + ", segment 0x" + hex + ")", err);
        }
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

// ---- DMA and interrupts ---------------------------------------------------------------------

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

// ---- SmartIO devices -----------------------------------------------------------------------
// Declare a Device before its DeviceSegments and DeviceMappings: they go first (reverse
// order), as SCIReturnDevice requires.

// What SCIQuery(SCI_Q_DEVICE_INFO) says about a device (it need not be borrowed).
struct DeviceInfo {
    std::uint32_t fdid = 0;
    std::uint32_t node_id = 0; // the lender
    std::uint32_t vendor_id = 0;
    std::uint32_t device_id = 0;
    std::uint32_t class_code = 0;
    std::uint32_t num_bars = 0;
    std::string name;
};
DeviceInfo device_info(std::uint32_t fdid);
// SCIGetDeviceList: the fdids of every reachable lender's devices (filter: NULL for all).
std::vector<std::uint32_t> device_list(sci_desc_t sd,
                                       const sci_smartio_device_info_t* filter = nullptr);

// A borrowed device (SCIBorrowDevice / SCIReturnDevice): shared, or exclusive.
class Device {
public:
    Device(sci_desc_t sd, std::uint32_t fdid, bool exclusive);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    sci_smartio_device_t handle() const { return m_device; }
    std::uint32_t fdid() const { return m_fdid; }
    // SCIReleaseExclusiveBorrow: the borrow becomes shared.
    void release_exclusive();
    // SCIReturnDevice now, throwing when it is refused (the destructor cannot say so).
    void give_back();
    struct Interrupt {
        unsigned int type;   // SCI_DIS_DEVICE_IRQ_INTX/MSI/MSIX
        unsigned int number; // its vector
    };
    // The next interrupt the device raised, waiting up to `timeout`; nullopt on timeout.
    // (dis-specific: SCIDisWaitForDeviceInterrupt; a vendor SISCI has no such call.)
    std::optional<Interrupt> wait_interrupt(std::chrono::milliseconds timeout);

private:
    sci_smartio_device_t m_device = nullptr;
    std::uint32_t m_fdid;
};

// A connected and mapped device segment: a BAR (SCI_MEMTYPE_BAR, id = BAR number, mapped with
// SCI_FLAG_IO_MAP_IOSPACE) or device memory (SCI_MEMTYPE_PRIVATE/SHARED), which the second
// constructor makes first (SCICreateDeviceSegment with `hints`, SCI_MEMACCESS_*).
class DeviceSegment {
public:
    DeviceSegment(const Device& device, unsigned int memtype, std::uint32_t id);
    DeviceSegment(const Device& device, unsigned int memtype, std::uint32_t id, std::size_t size,
                  unsigned int hints);
    ~DeviceSegment();
    DeviceSegment(const DeviceSegment&) = delete;
    DeviceSegment& operator=(const DeviceSegment&) = delete;
    sci_remote_segment_t handle() const { return m_segment; }
    sci_map_t map() const { return m_map; }
    volatile unsigned char* bytes() const { return m_addr; }
    // 32-bit registers at byte offset `offset` (a BAR's register file).
    volatile std::uint32_t* reg(std::size_t offset) const {
        return reinterpret_cast<volatile std::uint32_t*>(m_addr + offset);
    }
    std::size_t size() const { return m_size; }
    // Unmaps and disconnects now, throwing when either is refused.
    void close();

private:
    void connect(const Device& device, unsigned int memtype, std::uint32_t id);
    sci_remote_segment_t m_segment = nullptr;
    sci_map_t m_map = nullptr;
    volatile unsigned char* m_addr = nullptr;
    std::size_t m_size = 0;
};

// A segment mapped for a device's DMA (SCIMap{Local,Remote}SegmentForDevice): io_addr() is the
// address the device uses. size 0: from offset to the segment's end.
class DeviceMapping {
public:
    DeviceMapping(const Device& device, sci_local_segment_t segment, std::size_t offset = 0,
                  std::size_t size = 0, std::uint32_t adapter = 0);
    DeviceMapping(const Device& device, sci_remote_segment_t segment, std::size_t offset = 0,
                  std::size_t size = 0);
    ~DeviceMapping();
    DeviceMapping(const DeviceMapping&) = delete;
    DeviceMapping& operator=(const DeviceMapping&) = delete;
    sci_ioaddr_t io_addr() const { return m_io_addr; }

private:
    sci_smartio_device_t m_device;
    sci_local_segment_t m_local = nullptr;
    std::uint32_t m_adapter = 0;
    sci_remote_segment_t m_remote = nullptr;
    sci_ioaddr_t m_io_addr = 0;
};

} // namespace dis::sci
