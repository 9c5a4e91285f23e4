#include "sisci.hpp"

#include "dis/error.hpp"

#include <cstdio>

namespace dis::bench::detail {

namespace {

ErrorKind kind_of(sci_error_t err) {
    switch (err) {
    case SCI_ERR_NO_SUCH_NODEID:
    case SCI_ERR_NODE_NOT_RESPONDING:
    case SCI_ERR_NO_REMOTE_LINK_ACCESS:
    case SCI_ERR_NO_LINK_ACCESS:
    case SCI_ERR_NOT_INITIALIZED:
    case SCI_ERR_CONNECTION_REFUSED:
        return ErrorKind::fabric_down;
    case SCI_ERR_TIMEOUT:
        return ErrorKind::timeout;
    case SCI_ERR_NO_SUCH_SEGMENT:
        return ErrorKind::not_found;
    case SCI_ERR_ACCESS:
        return ErrorKind::permission;
    case SCI_ERR_ILLEGAL_PARAMETER:
    case SCI_ERR_SIZE_ALIGNMENT:
    case SCI_ERR_OFFSET_ALIGNMENT:
    case SCI_ERR_OUT_OF_RANGE:
    case SCI_ERR_ILLEGAL_NODEID:
    case SCI_ERR_ILLEGAL_ADAPTERNO:
    case SCI_ERR_NO_SUCH_ADAPTERNO:
    case SCI_ERR_MAX_ENTRIES:
    case SCI_ERR_NOT_SUPPORTED:
        return ErrorKind::invalid_input;
    default:
        return ErrorKind::os;
    }
}

} // namespace

void throw_sci(const std::string& what, sci_error_t err) {
    char code[16];
    std::snprintf(code, sizeof code, "0x%x", static_cast<unsigned>(err));
    const char* text = SCIGetErrorString(err);
    throw Error(kind_of(err),
                what + " failed: " + (text ? text : "unknown error") + " (" + code + ")");
}

unsigned int timeout_ms(std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0)
        return 1;
    if (timeout.count() >= SCI_INFINITE_TIMEOUT)
        return SCI_INFINITE_TIMEOUT - 1;
    return static_cast<unsigned int>(timeout.count());
}

SciDescriptor::SciDescriptor() {
    sci_error_t err = SCI_ERR_OK;
    SCIInitialize(SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK)
        throw Error(ErrorKind::fabric_down,
                    std::string("SCIInitialize failed: ") + SCIGetErrorString(err));
    SCIOpen(&m_sd, SCI_NO_FLAGS, &err);
    if (err != SCI_ERR_OK) {
        SCITerminate();
        throw Error(ErrorKind::fabric_down,
                    std::string("SCIOpen failed: ") + SCIGetErrorString(err));
    }
}

SciDescriptor::~SciDescriptor() {
    sci_error_t err = SCI_ERR_OK;
    SCIClose(m_sd, SCI_NO_FLAGS, &err);
    SCITerminate();
}

std::uint32_t local_node_id(std::uint32_t adapter) {
    unsigned int node = 0;
    sci_error_t err = SCI_ERR_OK;
    SCIGetLocalNodeId(adapter, &node, SCI_NO_FLAGS, &err);
    check_sci(err, "SCIGetLocalNodeId");
    return node;
}

LocalSegment::LocalSegment(sci_desc_t sd, std::uint32_t id, std::size_t size, std::uint32_t adapter)
    : m_size(size), m_adapter(adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateSegment(sd, &m_segment, id, size, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check_sci(err, "SCICreateSegment");
    try {
        SCIPrepareSegment(m_segment, adapter, SCI_NO_FLAGS, &err);
        check_sci(err, "SCIPrepareSegment");
        volatile void* addr =
            SCIMapLocalSegment(m_segment, &m_map, 0, size, nullptr, SCI_NO_FLAGS, &err);
        check_sci(err, "SCIMapLocalSegment");
        m_addr = static_cast<unsigned char*>(const_cast<void*>(addr));
        SCISetSegmentAvailable(m_segment, adapter, SCI_NO_FLAGS, &err);
        check_sci(err, "SCISetSegmentAvailable");
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
        throw_sci("SCIMapRemoteSegment", err);
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
    check_sci(err, "SCICreateMapSequence");
}

MapSequence::~MapSequence() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveSequence(m_seq, SCI_NO_FLAGS, &err);
}

DmaQueue::DmaQueue(sci_desc_t sd, std::uint32_t adapter, std::uint32_t max_entries) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateDMAQueue(sd, &m_queue, adapter, max_entries, SCI_NO_FLAGS, &err);
    check_sci(err, "SCICreateDMAQueue");
}

DmaQueue::~DmaQueue() {
    sci_error_t err = SCI_ERR_OK;
    SCIRemoveDMAQueue(m_queue, SCI_NO_FLAGS, &err);
}

LocalInterrupt::LocalInterrupt(sci_desc_t sd, std::uint32_t adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateInterrupt(sd, &m_intr, adapter, &m_number, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check_sci(err, "SCICreateInterrupt");
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
    check_sci(err, "SCIWaitForInterrupt");
    return true;
}

RemoteInterrupt::RemoteInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter,
                                 std::uint32_t number, std::chrono::milliseconds timeout) {
    sci_error_t err = SCI_ERR_OK;
    SCIConnectInterrupt(sd, &m_intr, node, adapter, number, timeout_ms(timeout), SCI_NO_FLAGS,
                        &err);
    check_sci(err, "SCIConnectInterrupt");
}

RemoteInterrupt::~RemoteInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIDisconnectInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

void RemoteInterrupt::trigger() {
    sci_error_t err = SCI_ERR_OK;
    SCITriggerInterrupt(m_intr, SCI_NO_FLAGS, &err);
    check_sci(err, "SCITriggerInterrupt");
}

LocalDataInterrupt::LocalDataInterrupt(sci_desc_t sd, std::uint32_t adapter) {
    sci_error_t err = SCI_ERR_OK;
    SCICreateDataInterrupt(sd, &m_intr, adapter, &m_number, nullptr, nullptr, SCI_NO_FLAGS, &err);
    check_sci(err, "SCICreateDataInterrupt");
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
    check_sci(err, "SCIWaitForDataInterrupt");
    return true;
}

RemoteDataInterrupt::RemoteDataInterrupt(sci_desc_t sd, std::uint32_t node, std::uint32_t adapter,
                                         std::uint32_t number, std::chrono::milliseconds timeout) {
    sci_error_t err = SCI_ERR_OK;
    SCIConnectDataInterrupt(sd, &m_intr, node, adapter, number, timeout_ms(timeout), SCI_NO_FLAGS,
                            &err);
    check_sci(err, "SCIConnectDataInterrupt");
}

RemoteDataInterrupt::~RemoteDataInterrupt() {
    sci_error_t err = SCI_ERR_OK;
    SCIDisconnectDataInterrupt(m_intr, SCI_NO_FLAGS, &err);
}

void RemoteDataInterrupt::trigger(const void* data, unsigned int length) {
    sci_error_t err = SCI_ERR_OK;
    SCITriggerDataInterrupt(m_intr, const_cast<void*>(data), length, SCI_NO_FLAGS, &err);
    check_sci(err, "SCITriggerDataInterrupt");
}

} // namespace dis::bench::detail
