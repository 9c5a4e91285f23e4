// The SISCI RAII layer of libdis (sci.hpp) and its one error table.
#include "sci.hpp"

#include "dis/strings.hpp"

#include <cstring>
#include <ctime>

namespace dis::sci {

namespace {

constexpr unsigned int k_no_flags = 0;

// The exit-code contract (dis-tool(1)) decides the kinds: a request the fabric cannot take is
// the user's input (2), a resource in use is busy (2), an unreachable node or lost connection
// is the fabric (3), refused access and exhausted resources are the OS (4), and what should
// not happen at all is internal (4).
constexpr ErrorKindEntry k_error_table[] = {
    // Something asked for is not there.
    {SCI_ERR_NO_SUCH_NODEID, ErrorKind::not_found},
    {SCI_ERR_NO_SUCH_SEGMENT, ErrorKind::not_found}, // also SCI_ERR_NO_SUCH_INTNO
    {SCI_ERR_NO_SUCH_ADAPTERNO, ErrorKind::not_found},
    {SCI_ERR_NO_SUCH_FDID, ErrorKind::not_found}, // SmartIO: no lender has that device
    // The request itself is wrong or beyond what this SISCI offers.
    {SCI_ERR_ILLEGAL_FLAG, ErrorKind::invalid_input},
    {SCI_ERR_FLAG_NOT_IMPLEMENTED, ErrorKind::invalid_input},
    {SCI_ERR_NOT_IMPLEMENTED, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_ADAPTERNO, ErrorKind::invalid_input},
    {SCI_ERR_OUT_OF_RANGE, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_NODEID, ErrorKind::invalid_input},
    {SCI_ERR_SIZE_ALIGNMENT, ErrorKind::invalid_input},
    {SCI_ERR_OFFSET_ALIGNMENT, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_PARAMETER, ErrorKind::invalid_input},
    {SCI_ERR_MAX_ENTRIES, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_ADDRESS, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_OPERATION, ErrorKind::invalid_input},
    {SCI_ERR_ILLEGAL_QUERY, ErrorKind::invalid_input},
    {SCI_ERR_NOT_SUPPORTED, ErrorKind::invalid_input},
    {SCI_ERR_DEPRECATED, ErrorKind::invalid_input},
    {SCI_ERR_OVERFLOW, ErrorKind::invalid_input},
    {SCI_ERR_DMA_DISABLED, ErrorKind::invalid_input},
    // In use: the same request may succeed later.
    {SCI_ERR_BUSY, ErrorKind::busy},
    {SCI_ERR_NOT_AVAILABLE, ErrorKind::busy},
    {SCI_ERR_SEGMENTID_USED, ErrorKind::busy},
    {SCI_ERR_DMA_NOT_AVAILABLE, ErrorKind::busy},
    {SCI_ERR_EWOULD_BLOCK, ErrorKind::busy},
    {SCI_ERR_REMOTE_BUSY, ErrorKind::busy},
    {SCI_ERR_LOCAL_BUSY, ErrorKind::busy},
    {SCI_ERR_ALL_BUSY, ErrorKind::busy},
    // The fabric did not answer or the connection is gone.
    {SCI_ERR_TIMEOUT, ErrorKind::timeout},
    {SCI_ERR_NODE_NOT_RESPONDING, ErrorKind::fabric_down},
    {SCI_ERR_NOT_INITIALIZED, ErrorKind::fabric_down},
    {SCI_ERR_NO_LINK_ACCESS, ErrorKind::fabric_down},
    {SCI_ERR_NO_REMOTE_LINK_ACCESS, ErrorKind::fabric_down},
    {SCI_ERR_CONNECTION_REFUSED, ErrorKind::fabric_down},
    {SCI_ERR_SEGMENT_NOT_CONNECTED, ErrorKind::fabric_down},
    {SCI_ERR_NOT_CONNECTED, ErrorKind::fabric_down},
    {SCI_ERR_TRANSFER_FAILED, ErrorKind::fabric_down},
    {SCI_ERR_INCONSISTENT_VERSIONS, ErrorKind::fabric_down},
    // The operating system refused or ran out.
    {SCI_ERR_ACCESS, ErrorKind::permission},
    {SCI_ERR_NOSPC, ErrorKind::os},
    {SCI_ERR_API_NOSPC, ErrorKind::os},
    {SCI_ERR_HW_NOSPC, ErrorKind::os},
    {SCI_ERR_SYSTEM, ErrorKind::os},
    // Should not happen to a correct caller.
    {SCI_ERR_SEGMENT_NOT_PREPARED, ErrorKind::internal},
    {SCI_ERR_CANCELLED, ErrorKind::internal},
    {SCI_ERR_COND_INT_RACE_PROBLEM, ErrorKind::internal},
    {SCI_ERR_SEMAPHORE_COUNT_EXCEEDED, ErrorKind::internal},
    {SCI_ERR_IRQL_ILLEGAL, ErrorKind::internal},
};

} // namespace

std::span<const ErrorKindEntry> error_kinds() noexcept {
    return k_error_table;
}

ErrorKind error_kind(sci_error_t err) noexcept {
    for (const auto& e : k_error_table)
        if (e.error == err)
            return e.kind;
    return ErrorKind::internal;
}

std::string error_string(sci_error_t err) {
    const char* text = SCIGetErrorString(err);
    return text && *text ? text : "unknown SISCI error";
}

std::string failure_text(const std::string& what, sci_error_t err) {
    return what + " failed: " + error_string(err) + " (" + hex(static_cast<unsigned>(err)) + ")";
}

void throw_error(const std::string& what, sci_error_t err) {
    throw Error(error_kind(err), failure_text(what, err));
}

void throw_open_error(const std::string& what, sci_error_t err) {
    ErrorKind kind = error_kind(err);
    if (kind == ErrorKind::not_found || kind == ErrorKind::invalid_input ||
        kind == ErrorKind::busy || kind == ErrorKind::timeout)
        kind = ErrorKind::fabric_down;
    throw Error(kind, failure_text(what, err));
}

unsigned int timeout_ms(std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0)
        return 1;
    if (timeout.count() >= SCI_INFINITE_TIMEOUT)
        return SCI_INFINITE_TIMEOUT - 1;
    return static_cast<unsigned int>(timeout.count());
}

Library::Library() {
    sci_error_t err = SCI_ERR_OK;
    SCIInitialize(k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_open_error("SCIInitialize", err);
}

Library::~Library() {
    SCITerminate();
}

Descriptor::Descriptor(const Library&) {
    sci_error_t err = SCI_ERR_OK;
    SCIOpen(&m_sd, k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_open_error("SCIOpen", err);
}

Descriptor::~Descriptor() {
    sci_error_t err = SCI_ERR_OK;
    SCIClose(m_sd, k_no_flags, &err); // nothing useful to do with a failure here
}

std::uint32_t local_node_id(std::uint32_t adapter) {
    unsigned int node = 0;
    sci_error_t err = SCI_ERR_OK;
    SCIGetLocalNodeId(adapter, &node, k_no_flags, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIGetLocalNodeId(adapter " + std::to_string(adapter) + ")", err);
    return node;
}

LocalSegment::LocalSegment(sci_desc_t sd, std::uint32_t id, std::size_t size, std::uint32_t adapter)
    : m_size(size), m_adapter(adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateSegment(sd, &m_segment, id, size, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check(err, "SCICreateSegment");
    try {
        SCIPrepareSegment(m_segment, adapter, SCI_NO_FLAGS, &err);
        check(err, "SCIPrepareSegment");
        volatile void* addr =
            SCIMapLocalSegment(m_segment, &m_map, 0, size, nullptr, SCI_NO_FLAGS, &err);
        check(err, "SCIMapLocalSegment");
        m_addr = static_cast<unsigned char*>(const_cast<void*>(addr));
        SCISetSegmentAvailable(m_segment, adapter, SCI_NO_FLAGS, &err);
        check(err, "SCISetSegmentAvailable");
        m_available = true;
    } catch (...) {
        if (m_map)
            SCIUnmapSegment(m_map, SCI_NO_FLAGS, &err);
        SCIRemoveSegment(m_segment, SCI_NO_FLAGS, &err);
        throw;
    }
}

LocalSegment::~LocalSegment() {
    sci_error_t err = SCI_ERR_OK;
    if (m_available)
        SCISetSegmentUnavailable(m_segment, m_adapter, SCI_FLAG_FORCE_DISCONNECT, &err);
    SCIUnmapSegment(m_map, SCI_NO_FLAGS, &err);
    SCIRemoveSegment(m_segment, SCI_NO_FLAGS, &err);
}

bool RemoteSegment::try_connect(sci_desc_t sd, std::uint32_t node, std::uint32_t id,
                                std::uint32_t adapter, unsigned int wait_ms, sci_error_t& err) {
    err = SCI_ERR_OK;
    SCIConnectSegment(sd, &m_segment, node, id, adapter, nullptr, nullptr, wait_ms, SCI_NO_FLAGS,
                      &err);
    if (err == SCI_ERR_OK)
        return true;
    // An immediate refusal would turn the retry loop into a busy loop.
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    return false;
}

void RemoteSegment::map_all() {
    sci_error_t err = SCI_ERR_OK;
    m_size = SCIGetRemoteSegmentSize(m_segment);
    volatile void* addr =
        SCIMapRemoteSegment(m_segment, &m_map, 0, m_size, nullptr, SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK) {
        sci_error_t ignored;
        SCIDisconnectSegment(m_segment, SCI_NO_FLAGS, &ignored);
        throw_error("SCIMapRemoteSegment", err);
    }
    m_addr = static_cast<unsigned char*>(const_cast<void*>(addr));
}

RemoteSegment::~RemoteSegment() {
    sci_error_t err = SCI_ERR_OK;
    SCIUnmapSegment(m_map, SCI_NO_FLAGS, &err);
    SCIDisconnectSegment(m_segment, SCI_NO_FLAGS, &err);
}

MapSequence::MapSequence(sci_map_t map) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateMapSequence(map, &m_seq, SCI_NO_FLAGS, &err);
    check(err, "SCICreateMapSequence");
}

MapSequence::~MapSequence() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveSequence(m_seq, SCI_NO_FLAGS, &err);
}

DmaQueue::DmaQueue(sci_desc_t sd, std::uint32_t adapter, std::uint32_t max_entries) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateDMAQueue(sd, &m_queue, adapter, max_entries, SCI_NO_FLAGS, &err);
    check(err, "SCICreateDMAQueue");
}

DmaQueue::~DmaQueue() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveDMAQueue(m_queue, SCI_NO_FLAGS, &err);
}

LocalInterrupt::LocalInterrupt(sci_desc_t sd, std::uint32_t adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateInterrupt(sd, &m_intr, adapter, &m_number, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check(err, "SCICreateInterrupt");
}

LocalInterrupt::~LocalInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

bool LocalInterrupt::wait(unsigned int wait_ms) {
    sci_error_t err = SCI_ERR_OK;
    SCIWaitForInterrupt(m_intr, wait_ms, SCI_NO_FLAGS, &err);
    if (err == SCI_ERR_TIMEOUT)
        return false;
    check(err, "SCIWaitForInterrupt");
    return true;
}

RemoteInterrupt::RemoteInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter,
                                 std::uint32_t number, std::chrono::milliseconds timeout) {
    sci_error_t err = SCI_ERR_OK;
    SCIConnectInterrupt(sd, &m_intr, node, adapter, number, timeout_ms(timeout), SCI_NO_FLAGS,
                        &err);
    check(err, "SCIConnectInterrupt");
}

RemoteInterrupt::~RemoteInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIDisconnectInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

void RemoteInterrupt::trigger() {
    sci_error_t err = SCI_ERR_OK;
    SCITriggerInterrupt(m_intr, SCI_NO_FLAGS, &err);
    check(err, "SCITriggerInterrupt");
}

LocalDataInterrupt::LocalDataInterrupt(sci_desc_t sd, std::uint32_t adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateDataInterrupt(sd, &m_intr, adapter, &m_number, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check(err, "SCICreateDataInterrupt");
}

LocalDataInterrupt::~LocalDataInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveDataInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

bool LocalDataInterrupt::wait(void* data, unsigned int* length, unsigned int wait_ms) {
    sci_error_t err = SCI_ERR_OK;
    SCIWaitForDataInterrupt(m_intr, data, length, wait_ms, SCI_NO_FLAGS, &err);
    if (err == SCI_ERR_TIMEOUT)
        return false;
    check(err, "SCIWaitForDataInterrupt");
    return true;
}

RemoteDataInterrupt::RemoteDataInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter,
                                         std::uint32_t number, std::chrono::milliseconds timeout) {
    sci_error_t err = SCI_ERR_OK;
    SCIConnectDataInterrupt(sd, &m_intr, node, adapter, number, timeout_ms(timeout), SCI_NO_FLAGS,
                            &err);
    check(err, "SCIConnectDataInterrupt");
}

RemoteDataInterrupt::~RemoteDataInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIDisconnectDataInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

void RemoteDataInterrupt::trigger(const void* data, unsigned int length) {
    sci_error_t err = SCI_ERR_OK;
    SCITriggerDataInterrupt(m_intr, const_cast<void*>(data), length, SCI_NO_FLAGS, &err);
    check(err, "SCITriggerDataInterrupt");
}

// ---- SmartIO devices -----------------------------------------------------------------------

DeviceInfo device_info(std::uint32_t fdid) {
    sci_smartio_device_info_t info{};
    sci_smartio_query_device_t query{};
    query.subcommand = SCI_Q_DEVICE_INFO;
    query.fdid = fdid;
    query.data = &info;
    sci_error_t err = SCI_ERR_OK;
    SCIQuery(SCI_Q_DEVICE, &query, SCI_NO_FLAGS, &err);
    check(err, ("SCIQuery(SCI_Q_DEVICE_INFO, fdid " + hex(fdid) + ")").c_str());
    DeviceInfo d;
    d.fdid = info.fdid;
    d.node_id = info.nodeid;
    d.vendor_id = info.pci_vendor_id;
    d.device_id = info.pci_device_id;
    d.class_code = info.pci_class;
    d.num_bars = info.num_bars;
    d.name.assign(info.user_name, strnlen(info.user_name, sizeof info.user_name));
    return d;
}

std::vector<std::uint32_t> device_list(sci_desc_t sd, const sci_smartio_device_info_t* filter) {
    std::vector<unsigned int> raw(64);
    for (;;) {
        sci_error_t err = SCI_ERR_OK;
        size_t n = SCIGetDeviceList(sd, raw.data(), raw.size(), filter, SCI_NO_FLAGS, &err);
        check(err, "SCIGetDeviceList");
        if (n <= raw.size()) {
            return {raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(n)};
        }
        raw.resize(n); // more than fit: ask again with room for all
    }
}

Device::Device(sci_desc_t sd, std::uint32_t fdid, bool exclusive) : m_fdid(fdid) {
    sci_error_t err = SCI_ERR_OK;
    SCIBorrowDevice(sd, &m_device, fdid, exclusive ? SCI_FLAG_EXCLUSIVE : SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIBorrowDevice(fdid " + hex(fdid) + ")", err);
}

Device::~Device() {
    sci_error_t err = SCI_ERR_OK;
    if (m_device != nullptr)
        SCIReturnDevice(m_device, SCI_NO_FLAGS, &err);
}

void Device::give_back() {
    sci_error_t err = SCI_ERR_OK;
    SCIReturnDevice(m_device, SCI_NO_FLAGS, &err);
    m_device = nullptr;
    if (err != SCI_ERR_OK)
        throw_error("SCIReturnDevice(fdid " + hex(m_fdid) + ")", err);
}

void Device::release_exclusive() {
    sci_error_t err = SCI_ERR_OK;
    SCIReleaseExclusiveBorrow(m_device, SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIReleaseExclusiveBorrow(fdid " + hex(m_fdid) + ")", err);
}

std::optional<Device::Interrupt> Device::wait_interrupt(std::chrono::milliseconds timeout) {
#ifdef SCI_DIS_DEVICE_IRQ_INTX
    Interrupt irq{0, 0};
    sci_error_t err = SCI_ERR_OK;
    SCIDisWaitForDeviceInterrupt(m_device, &irq.type, &irq.number, timeout_ms(timeout),
                                 SCI_NO_FLAGS, &err);
    if (err == SCI_ERR_TIMEOUT)
        return std::nullopt;
    if (err != SCI_ERR_OK)
        throw_error("SCIDisWaitForDeviceInterrupt(fdid " + hex(m_fdid) + ")", err);
    return irq;
#else
    (void)timeout;
    throw Error(ErrorKind::invalid_input, "device interrupts need dis-tool's libsisci");
#endif
}

DeviceSegment::DeviceSegment(const Device& device, unsigned int memtype, std::uint32_t id) {
    connect(device, memtype, id);
}

DeviceSegment::DeviceSegment(const Device& device, unsigned int memtype, std::uint32_t id,
                             std::size_t size, unsigned int hints) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateDeviceSegment(device.handle(), id, size, memtype, hints, SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCICreateDeviceSegment(fdid " + hex(device.fdid()) + ")", err);
    connect(device, memtype, id);
}

void DeviceSegment::connect(const Device& device, unsigned int memtype, std::uint32_t id) {
    sci_error_t err = SCI_ERR_OK;
    SCIConnectDeviceSegment(device.handle(), &m_segment, id, memtype, nullptr, nullptr,
                            SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIConnectDeviceSegment(fdid " + hex(device.fdid()) + ", " +
                        (memtype == SCI_MEMTYPE_BAR ? "BAR " : "segment ") + std::to_string(id) +
                        ")",
                    err);
    m_size = SCIGetRemoteSegmentSize(m_segment);
    unsigned int flags = memtype == SCI_MEMTYPE_BAR ? SCI_FLAG_IO_MAP_IOSPACE : SCI_NO_FLAGS;
    volatile void* addr = SCIMapRemoteSegment(m_segment, &m_map, 0, m_size, nullptr, flags, &err);
    if (err != SCI_ERR_OK) {
        sci_error_t ignored;
        SCIDisconnectSegment(m_segment, SCI_NO_FLAGS, &ignored);
        throw_error("SCIMapRemoteSegment(device segment)", err);
    }
    m_addr = static_cast<volatile unsigned char*>(addr);
}

DeviceSegment::~DeviceSegment() {
    sci_error_t err = SCI_ERR_OK;
    if (m_map != nullptr)
        SCIUnmapSegment(m_map, SCI_NO_FLAGS, &err);
    if (m_segment != nullptr)
        SCIDisconnectSegment(m_segment, SCI_NO_FLAGS, &err);
}

void DeviceSegment::close() {
    sci_error_t err = SCI_ERR_OK;
    SCIUnmapSegment(m_map, SCI_NO_FLAGS, &err);
    m_map = nullptr;
    check(err, "SCIUnmapSegment(device segment)");
    SCIDisconnectSegment(m_segment, SCI_NO_FLAGS, &err);
    m_segment = nullptr;
    check(err, "SCIDisconnectSegment(device segment)");
}

DeviceMapping::DeviceMapping(const Device& device, sci_local_segment_t segment, std::size_t offset,
                             std::size_t size, std::uint32_t adapter)
    : m_device(device.handle()), m_local(segment), m_adapter(adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCIMapLocalSegmentForDevice(segment, adapter, m_device, &m_io_addr, offset, size, SCI_NO_FLAGS,
                                &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIMapLocalSegmentForDevice(fdid " + hex(device.fdid()) + ")", err);
}

DeviceMapping::DeviceMapping(const Device& device, sci_remote_segment_t segment, std::size_t offset,
                             std::size_t size)
    : m_device(device.handle()), m_remote(segment) {
    sci_error_t err = SCI_ERR_OK;
    SCIMapRemoteSegmentForDevice(segment, m_device, &m_io_addr, offset, size, SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw_error("SCIMapRemoteSegmentForDevice(fdid " + hex(device.fdid()) + ")", err);
}

DeviceMapping::~DeviceMapping() {
    sci_error_t err = SCI_ERR_OK;
    if (m_local != nullptr)
        SCIUnmapLocalSegmentForDevice(m_local, m_adapter, m_device, SCI_NO_FLAGS, &err);
    else
        SCIUnmapRemoteSegmentForDevice(m_remote, m_device, SCI_NO_FLAGS, &err);
}

} // namespace dis::sci
