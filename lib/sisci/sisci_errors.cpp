// SCIGetErrorString: one text per error code, in one table.
#include "api_util.hpp"

namespace {

struct ErrorText {
    sci_error_t code;
    const char* text;
};

// SCI_ERR_NO_SUCH_INTNO has the code of SCI_ERR_NO_SUCH_SEGMENT, so one row serves both.
constexpr ErrorText k_error_texts[] = {
    {SCI_ERR_OK, "OK"},
    {SCI_ERR_BUSY, "Resource busy"},
    {SCI_ERR_FLAG_NOT_IMPLEMENTED,
     "Flag legal but its feature not implemented here (e.g. SCI_FLAG_CUDA_BUFFER: this "
     "SISCI has no CUDA)"},
    {SCI_ERR_ILLEGAL_FLAG, "Illegal flag option"},
    {SCI_ERR_NOSPC, "Out of local resources"},
    {SCI_ERR_API_NOSPC, "Out of local API resources"},
    {SCI_ERR_HW_NOSPC, "Out of hardware resources"},
    {SCI_ERR_NOT_IMPLEMENTED, "Not implemented"},
    {SCI_ERR_ILLEGAL_ADAPTERNO, "Illegal adapter number"},
    {SCI_ERR_NO_SUCH_ADAPTERNO, "No such adapter"},
    {SCI_ERR_TIMEOUT, "Operation timed out"},
    {SCI_ERR_OUT_OF_RANGE, "Out of range"},
    {SCI_ERR_NO_SUCH_SEGMENT, "No such segment or interrupt"},
    {SCI_ERR_ILLEGAL_NODEID, "Illegal node id"},
    {SCI_ERR_CONNECTION_REFUSED, "Connection refused"},
    {SCI_ERR_SEGMENT_NOT_CONNECTED, "Segment not connected"},
    {SCI_ERR_SIZE_ALIGNMENT, "Size not aligned"},
    {SCI_ERR_OFFSET_ALIGNMENT, "Offset not aligned"},
    {SCI_ERR_ILLEGAL_PARAMETER, "Illegal parameter"},
    {SCI_ERR_MAX_ENTRIES, "Too many entries"},
    {SCI_ERR_SEGMENT_NOT_PREPARED, "Segment not prepared"},
    {SCI_ERR_ILLEGAL_ADDRESS, "Illegal address"},
    {SCI_ERR_ILLEGAL_OPERATION, "Illegal operation"},
    {SCI_ERR_ILLEGAL_QUERY, "Illegal query"},
    {SCI_ERR_SEGMENTID_USED, "Segment id already used"},
    {SCI_ERR_SYSTEM, "System error"},
    {SCI_ERR_CANCELLED, "Operation cancelled"},
    {SCI_ERR_NOT_CONNECTED, "Not connected"},
    {SCI_ERR_NOT_AVAILABLE, "Not available"},
    {SCI_ERR_INCONSISTENT_VERSIONS, "Inconsistent versions"},
    {SCI_ERR_COND_INT_RACE_PROBLEM, "Interrupt race"},
    {SCI_ERR_OVERFLOW, "Overflow"},
    {SCI_ERR_NOT_INITIALIZED, "Not initialized (no fabric node reachable)"},
    {SCI_ERR_ACCESS, "Access denied"},
    {SCI_ERR_NOT_SUPPORTED, "Not supported (e.g. physical or device memory: the software "
                            "fabric has host memory only)"},
    {SCI_ERR_DEPRECATED, "Deprecated"},
    {SCI_ERR_DMA_NOT_AVAILABLE, "DMA not available"},
    {SCI_ERR_DMA_DISABLED, "DMA disabled"},
    {SCI_ERR_NO_SUCH_NODEID, "No such node id"},
    {SCI_ERR_NODE_NOT_RESPONDING, "Node not responding"},
    {SCI_ERR_NO_REMOTE_LINK_ACCESS, "No remote link access"},
    {SCI_ERR_NO_LINK_ACCESS, "No link access"},
    {SCI_ERR_TRANSFER_FAILED, "Transfer failed"},
    {SCI_ERR_EWOULD_BLOCK, "Operation would block"},
    {SCI_ERR_SEMAPHORE_COUNT_EXCEEDED, "Semaphore count exceeded"},
    {SCI_ERR_IRQL_ILLEGAL, "Illegal IRQ level"},
    {SCI_ERR_REMOTE_BUSY, "Remote busy"},
    {SCI_ERR_LOCAL_BUSY, "Local busy"},
    {SCI_ERR_ALL_BUSY, "All busy"},
    {SCI_ERR_NO_SUCH_FDID, "No such fabric device id (no lender node has that device)"},
};

constexpr bool codes_unique() {
    for (const ErrorText& a : k_error_texts) {
        int same = 0;
        for (const ErrorText& b : k_error_texts) {
            same += a.code == b.code ? 1 : 0;
        }
        if (same != 1) {
            return false;
        }
    }
    return true;
}
static_assert(codes_unique(), "one row per error code");

} // namespace

SCI_API const char* SCIGetErrorString(sci_error_t error) {
    for (const ErrorText& e : k_error_texts) {
        if (e.code == error) {
            return e.text;
        }
    }
    return "Unknown error";
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCIGetErrorString)
