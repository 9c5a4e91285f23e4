// Temporary stubs: every entry point reports SCI_ERR_NOT_IMPLEMENTED until implemented.
#include "sisci_api.h"

extern "C" {

void SCIInitialize(unsigned int flags, sci_error_t* error) {
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCITerminate(void) {}

void SCIOpen(sci_desc_t* sd, unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIClose(sci_desc_t sd, unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

const char* SCIGetErrorString(sci_error_t error) {
    (void)error;
    return "not implemented";
}

const char* SCIGetAdapterTypeString(unsigned int adapterType) {
    (void)adapterType;
    return "not implemented";
}

void SCIQuery(unsigned int command, void* data, unsigned int flags, sci_error_t* error) {
    (void)command;
    (void)data;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIGetLocalNodeId(unsigned int adapterNo, unsigned int* nodeId, unsigned int flags,
                       sci_error_t* error) {
    (void)adapterNo;
    (void)nodeId;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

int SCIProbeNode(sci_desc_t sd, unsigned int localAdapterNo, unsigned int nodeId,
                 unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)localAdapterNo;
    (void)nodeId;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return 0;
}

void SCICreateSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                      size_t size, sci_cb_local_segment_t callback, void* callbackArg,
                      unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)segment;
    (void)segmentId;
    (void)size;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRegisterSegmentMemory(void* address, size_t size, sci_local_segment_t segment,
                              unsigned int flags, sci_error_t* error) {
    (void)address;
    (void)size;
    (void)segment;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIPrepareSegment(sci_local_segment_t segment, unsigned int localAdapterNo, unsigned int flags,
                       sci_error_t* error) {
    (void)segment;
    (void)localAdapterNo;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCISetSegmentAvailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                            unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)localAdapterNo;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCISetSegmentUnavailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                              unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)localAdapterNo;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRemoveSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIShareSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIAttachLocalSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                           size_t* size, sci_cb_local_segment_t callback, void* callbackArg,
                           unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)segment;
    (void)segmentId;
    (void)size;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

sci_segment_cb_reason_t SCIWaitForLocalSegmentEvent(sci_local_segment_t segment,
                                                    unsigned int* sourcenodeId,
                                                    unsigned int* localAdapterNo,
                                                    unsigned int timeout, unsigned int flags,
                                                    sci_error_t* error) {
    (void)segment;
    (void)sourcenodeId;
    (void)localAdapterNo;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return SCI_CB_LOST;
}

unsigned int SCIGetLocalSegmentId(sci_local_segment_t segment) {
    (void)segment;
    return 0;
}

size_t SCIGetLocalSegmentSize(sci_local_segment_t segment) {
    (void)segment;
    return 0;
}

void SCIConnectSegment(sci_desc_t sd, sci_remote_segment_t* segment, unsigned int nodeId,
                       unsigned int segmentId, unsigned int localAdapterNo,
                       sci_cb_remote_segment_t callback, void* callbackArg, unsigned int timeout,
                       unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)segment;
    (void)nodeId;
    (void)segmentId;
    (void)localAdapterNo;
    (void)callback;
    (void)callbackArg;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIDisconnectSegment(sci_remote_segment_t segment, unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

size_t SCIGetRemoteSegmentSize(sci_remote_segment_t segment) {
    (void)segment;
    return 0;
}

unsigned int SCIGetRemoteSegmentId(sci_remote_segment_t segment) {
    (void)segment;
    return 0;
}

unsigned int SCIGetRemoteSegmentNodeId(sci_remote_segment_t segment) {
    (void)segment;
    return 0;
}

sci_segment_cb_reason_t SCIWaitForRemoteSegmentEvent(sci_remote_segment_t segment,
                                                     sci_error_t* status, unsigned int timeout,
                                                     unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)status;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return SCI_CB_LOST;
}

volatile void* SCIMapLocalSegment(sci_local_segment_t segment, sci_map_t* map, size_t offset,
                                  size_t size, void* addr, unsigned int flags, sci_error_t* error) {
    (void)segment;
    (void)map;
    (void)offset;
    (void)size;
    (void)addr;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return nullptr;
}

volatile void* SCIMapRemoteSegment(sci_remote_segment_t segment, sci_map_t* map, size_t offset,
                                   size_t size, void* addr, unsigned int flags,
                                   sci_error_t* error) {
    (void)segment;
    (void)map;
    (void)offset;
    (void)size;
    (void)addr;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return nullptr;
}

void SCIUnmapSegment(sci_map_t map, unsigned int flags, sci_error_t* error) {
    (void)map;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCICreateMapSequence(sci_map_t map, sci_sequence_t* sequence, unsigned int flags,
                          sci_error_t* error) {
    (void)map;
    (void)sequence;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRemoveSequence(sci_sequence_t sequence, unsigned int flags, sci_error_t* error) {
    (void)sequence;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

sci_sequence_status_t SCIStartSequence(sci_sequence_t sequence, unsigned int flags,
                                       sci_error_t* error) {
    (void)sequence;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return SCI_SEQ_NOT_RETRIABLE;
}

sci_sequence_status_t SCICheckSequence(sci_sequence_t sequence, unsigned int flags,
                                       sci_error_t* error) {
    (void)sequence;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return SCI_SEQ_NOT_RETRIABLE;
}

void SCIMemCpy(sci_sequence_t sequence, void* memAddr, sci_map_t remoteMap, size_t remoteOffset,
               size_t size, unsigned int flags, sci_error_t* error) {
    (void)sequence;
    (void)memAddr;
    (void)remoteMap;
    (void)remoteOffset;
    (void)size;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIFlush(sci_sequence_t sequence, unsigned int flags) {
    (void)sequence;
    (void)flags;
}

void SCIStoreBarrier(sci_sequence_t sequence, unsigned int flags) {
    (void)sequence;
    (void)flags;
}

void SCICreateDMAQueue(sci_desc_t sd, sci_dma_queue_t* dq, unsigned int localAdapterNo,
                       unsigned int maxEntries, unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)dq;
    (void)localAdapterNo;
    (void)maxEntries;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRemoveDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error) {
    (void)dq;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIStartDmaTransfer(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                         sci_remote_segment_t remoteSegment, size_t localOffset, size_t size,
                         size_t remoteOffset, sci_cb_dma_t callback, void* callbackArg,
                         unsigned int flags, sci_error_t* error) {
    (void)dq;
    (void)localSegment;
    (void)remoteSegment;
    (void)localOffset;
    (void)size;
    (void)remoteOffset;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIStartDmaTransferVec(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                            sci_remote_segment_t remoteSegment, size_t vecLength,
                            dis_dma_vec_t* disDmaVec, sci_cb_dma_t callback, void* callbackArg,
                            unsigned int flags, sci_error_t* error) {
    (void)dq;
    (void)localSegment;
    (void)remoteSegment;
    (void)vecLength;
    (void)disDmaVec;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

sci_dma_queue_state_t SCIDMAQueueState(sci_dma_queue_t dq) {
    (void)dq;
    return SCI_DMAQUEUE_ERROR;
}

sci_dma_queue_state_t SCIWaitForDMAQueue(sci_dma_queue_t dq, unsigned int timeout,
                                         unsigned int flags, sci_error_t* error) {
    (void)dq;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
    return SCI_DMAQUEUE_ERROR;
}

void SCIAbortDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error) {
    (void)dq;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCICreateInterrupt(sci_desc_t sd, sci_local_interrupt_t* interrupt,
                        unsigned int localAdapterNo, unsigned int* interruptNo,
                        sci_cb_interrupt_t callback, void* callbackArg, unsigned int flags,
                        sci_error_t* error) {
    (void)sd;
    (void)interrupt;
    (void)localAdapterNo;
    (void)interruptNo;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRemoveInterrupt(sci_local_interrupt_t interrupt, unsigned int flags, sci_error_t* error) {
    (void)interrupt;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIWaitForInterrupt(sci_local_interrupt_t interrupt, unsigned int timeout, unsigned int flags,
                         sci_error_t* error) {
    (void)interrupt;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIConnectInterrupt(sci_desc_t sd, sci_remote_interrupt_t* interrupt, unsigned int nodeId,
                         unsigned int localAdapterNo, unsigned int interruptNo,
                         unsigned int timeout, unsigned int flags, sci_error_t* error) {
    (void)sd;
    (void)interrupt;
    (void)nodeId;
    (void)localAdapterNo;
    (void)interruptNo;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIDisconnectInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags,
                            sci_error_t* error) {
    (void)interrupt;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCITriggerInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags, sci_error_t* error) {
    (void)interrupt;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCICreateDataInterrupt(sci_desc_t sd, sci_local_data_interrupt_t* interrupt,
                            unsigned int localAdapterNo, unsigned int* interruptNo,
                            sci_cb_data_interrupt_t callback, void* callbackArg, unsigned int flags,
                            sci_error_t* error) {
    (void)sd;
    (void)interrupt;
    (void)localAdapterNo;
    (void)interruptNo;
    (void)callback;
    (void)callbackArg;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIRemoveDataInterrupt(sci_local_data_interrupt_t interrupt, unsigned int flags,
                            sci_error_t* error) {
    (void)interrupt;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIWaitForDataInterrupt(sci_local_data_interrupt_t interrupt, void* data, unsigned int* size,
                             unsigned int timeout, unsigned int flags, sci_error_t* error) {
    (void)interrupt;
    (void)data;
    (void)size;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIConnectDataInterrupt(sci_desc_t sd, sci_remote_data_interrupt_t* interrupt,
                             unsigned int nodeId, unsigned int localAdapterNo,
                             unsigned int interruptNo, unsigned int timeout, unsigned int flags,
                             sci_error_t* error) {
    (void)sd;
    (void)interrupt;
    (void)nodeId;
    (void)localAdapterNo;
    (void)interruptNo;
    (void)timeout;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCIDisconnectDataInterrupt(sci_remote_data_interrupt_t interrupt, unsigned int flags,
                                sci_error_t* error) {
    (void)interrupt;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

void SCITriggerDataInterrupt(sci_remote_data_interrupt_t interrupt, void* data, unsigned int length,
                             unsigned int flags, sci_error_t* error) {
    (void)interrupt;
    (void)data;
    (void)length;
    (void)flags;
    (void)error;
    *error = SCI_ERR_NOT_IMPLEMENTED;
}

} // extern "C"
