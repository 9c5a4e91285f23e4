/*
 * sisci_api.h: the SISCI API as implemented by the dis-tool software fabric (libsisci).
 *
 * Function names, argument lists and constant names follow the vendor SISCI API, so SISCI
 * programs compile unchanged and link with -lsisci. A process belongs to one logical node:
 * $DIS_NODE_ID (default: the lowest node in the fabric directory $DIS_FABRIC). Every call
 * reports its result in *error (SCI_ERR_OK on success); see sisci_error.h.
 *
 * Implementation notes (see tools/disd/README.md for the full design):
 *  - Segments are shared memory owned by the node daemon (disd); PIO is plain loads and
 *    stores on the mapping.
 *  - DMA runs on the node daemon's DMA engine, shared by all processes of the node.
 *  - SCI_FLAG_DIS_SHARED_ACCESS (dis-specific) lets processes of other uids connect to and
 *    map a segment; without it only the creator's uid and root may.
 */
#ifndef DIS_SISCI_API_H
#define DIS_SISCI_API_H

#include <stddef.h>

#include "dis_types.h"
#include "sisci_error.h"
#include "sisci_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Vendor link names ------------------------------------------------------------------
 * The vendor's headers rename each SCIxxx to _SISCI_PUBLIC_FUNC_ST_SCIxxx (_MT_ with
 * _REENTRANT). This header keeps the plain names; libsisci exports every public function under
 * all three, so programs and link probes written either way find it. */
#if defined(_REENTRANT)
#define _SISCI_EXPANDE_FUNCTION_NAME(name) _SISCI_PUBLIC_FUNC_MT_##name
#define _SISCI_EXPANDE_VARIABLE_NAME(name) _SISCI_PUBLIC_VAR_MT_##name
#else
#define _SISCI_EXPANDE_FUNCTION_NAME(name) _SISCI_PUBLIC_FUNC_ST_##name
#define _SISCI_EXPANDE_VARIABLE_NAME(name) _SISCI_PUBLIC_VAR_ST_##name
#endif
#define _SISCI_EXPANDE_CONSTANT_NAME(name) _SISCI_PUBLIC_CONST_##name

/* ---- General constants ------------------------------------------------------------------ */
#define SCI_NO_FLAGS 0x0u
#define SCI_NO_CALLBACK NULL
#define SCI_INFINITE_TIMEOUT 0xffffffffu
/* Node id that addresses every node of the fabric (reflective memory); vendor value. */
#define DIS_BROADCAST_NODEID_GROUP_ALL 252u
/* Largest payload of one data interrupt, in bytes. */
#define SCI_MAX_DATA_INTERRUPT_SIZE 2048u

/* ---- Flags -------------------------------------------------------------------------------
 * Values are the vendor's where they are publicly known (marked V); the vendor reuses bits
 * between functions, so two flags may share a value: each function checks only the flags it
 * takes and rejects any other bit with SCI_ERR_ILLEGAL_FLAG. Unmarked values are this
 * implementation's own, chosen not to collide with any flag of the same function. */
/* SCICreateSegment, SCIConnectSegment, SCIAttachLocalSegment, SCIPrepareSegment */
#define SCI_FLAG_USE_CALLBACK 0x00000001u    /* V: deliver events through the callback */
#define SCI_FLAG_EMPTY 0x00000002u           /* V: SCICreateSegment: memory comes later */
#define SCI_FLAG_PRIVATE 0x00000004u         /* V: segment not visible to other nodes */
#define SCI_FLAG_DMA_SOURCE_ONLY 0x00000008u /* V: accepted for compatibility */
#define SCI_FLAG_AUTO_ID 0x20000000u         /* V: SCICreateSegment: choose a free id */
#define SCI_FLAG_BROADCAST 0x00040000u       /* V: reflective-memory segment */
#define SCI_FLAG_SHARED 0x00800000u          /* SCIConnectSegment: accepted */
/* SCIRegisterSegmentMemory, SCIAttachPhysicalMemory */
#define SCI_FLAG_LOCK_USER_MEM 0x00000400u /* V: accepted (the memory is shared memory) */
#define SCI_FLAG_PHYSICAL 0x00001000u      /* V */
#define SCI_FLAG_CUDA_BUFFER 0x00002000u   /* V: refused here: no CUDA */
/* SCISetSegmentUnavailable, SCIRemoveSegment */
#define SCI_FLAG_NOTIFY 0x00004000u           /* notify connected peers */
#define SCI_FLAG_FORCE_DISCONNECT 0x00008000u /* drop connected peers */
#define SCI_FLAG_FORCE_REMOVE 0x00000020u     /* V: SCIRemoveSegment: accepted */
/* SCIMapLocalSegment, SCIMapRemoteSegment */
#define SCI_FLAG_FIXED_MAP_ADDR 0x00000001u /* V: map at the given address */
#define SCI_FLAG_READONLY_MAP 0x00000002u   /* V: map without write access */
#define SCI_FLAG_LOCK_OPERATION 0x00000004u /* V */
#define SCI_FLAG_IO_MAP_IOSPACE                                                                    \
    0x00000080u /* V: uncached (device) map; see SCIMapRemoteSegment                               \
                 */
#define SCI_FLAG_NO_MEMORY_LOOPBACK 0x00000800u /* V */
#define SCI_FLAG_SHARED_MAP 0x00002000u         /* V */
/* SCICreateInterrupt, SCICreateDataInterrupt */
#define SCI_FLAG_FIXED_INTNO 0x00000002u /* V: use *interruptNo */
#define SCI_FLAG_SHARED_INT 0x00000004u  /* V: accepted for compatibility */
/* SCIStartDmaTransfer(Vec), SCIQuery(SCI_Q_DMA) */
#define SCI_FLAG_DMA_WAIT 0x00000004u    /* V: DMA call returns after completion */
#define SCI_FLAG_DMA_READ 0x00000010u    /* V: DMA pulls remote -> local */
#define SCI_FLAG_DMA_PHDMA 0x00000020u   /* V */
#define SCI_FLAG_DMA_GLOBAL 0x00000040u  /* V: accepted for compatibility */
#define SCI_FLAG_DMA_SYSDMA 0x00000100u  /* V: accepted; the engine is the same */
#define SCI_FLAG_DMA_ADAPTER 0x00000800u /* V: SCIQuery(SCI_Q_DMA): adapter engine */
/* SCIMemCpy, SCIFlush */
#define SCI_FLAG_BLOCK_READ 0x00020000u       /* SCIMemCpy: copy remote -> local */
#define SCI_FLAG_ERROR_CHECK 0x00040000u      /* SCIMemCpy: check the sequence after */
#define SCI_FLAG_NO_FLUSH 0x00080000u         /* accepted for compatibility */
#define SCI_FLAG_NO_STORE_BARRIER 0x00100000u /* SCIMemCpy: skip the final barrier */
#define SCI_FLAG_FLUSH_CPU_BUFFERS_ONLY 0x00200000u
/* SCICacheSync */
#define SCI_FLAG_CACHE_FLUSH 0x00100000u      /* V: write back (a full store fence here) */
#define SCI_FLAG_CACHE_INVALIDATE 0x00200000u /* V: re-read (a full load fence here) */
/* dis-specific: other (non-root) uids may connect to and map the segment or interrupt
 * (SCICreateSegment, SCICreateInterrupt, SCICreateDataInterrupt). */
#define SCI_FLAG_DIS_SHARED_ACCESS 0x40000000u
/* dis-specific, SCIWaitForDMAQueue: sleep in the kernel at once, without the spin that
 * normally precedes it (a waiter that wants its CPU back, or a benchmark of sleeping). */
#define SCI_FLAG_DIS_SLEEP_WAIT 0x08000000u
/* SmartIO (all V). SCIBorrowDevice: */
#define SCI_FLAG_EXCLUSIVE 0x01000000u /* V: nobody else may borrow the device meanwhile */
/* SCICreateDeviceSegment placement hints (accepted; device segments are host memory here): */
#define SCI_FLAG_DEVICE_SIDE_ONLY 0x02001000u
#define SCI_FLAG_LOCAL_ONLY 0x02002000u
#define SCI_FLAG_DEVICE_PREFER_BANDWIDTH 0x04000001u
#define SCI_FLAG_HOST_PREFER_BANDWIDTH 0x04000002u
/* SCIConnectDeviceSegmentPath and slot selection: refused (SCI_ERR_FLAG_NOT_IMPLEMENTED). */
#define SCI_FLAG_SPECIFY_PATH 0x10000000u
#define SCI_FLAG_SPECIFY_SLOT 0x20000000u
/* SCIRegisterPCIeRequester, SCIUnregisterPCIeRequester: */
#define SCI_FLAG_PCIE_REQUESTER_GLOBAL 0x00000001u
/* SCIConnectDeviceMemory (the SISCI 4.x call): segmentNo is a BAR (own value). */
#define SCI_FLAG_BAR 0x00400000u
/* Device segment kinds (SCIConnectDeviceSegment, SCICreateDeviceSegment; V). */
#define SCI_MEMTYPE_BAR 0x00000001u     /* a BAR of the device: segmentId is the BAR number */
#define SCI_MEMTYPE_PRIVATE 0x00000002u /* memory of this borrower, made for the device */
#define SCI_MEMTYPE_SHARED 0x00000004u  /* memory every borrower of the device connects to */
/* SCICreateDeviceSegment access hints (V; accepted, they only guide placement). */
#define SCI_MEMACCESS_DEVICE_READ 0x00000001u
#define SCI_MEMACCESS_DEVICE_WRITE 0x00000002u
#define SCI_MEMACCESS_HOST_READ 0x00000004u
#define SCI_MEMACCESS_HOST_WRITE 0x00000008u
#define SCI_MEMACCESS_MULTIHOST_READ (0x00000010u | SCI_MEMACCESS_HOST_READ)
#define SCI_MEMACCESS_MULTIHOST_WRITE (0x00000010u | SCI_MEMACCESS_HOST_WRITE)
#define SCI_MEMACCESS_P2P_READ (0x00000020u | SCI_MEMACCESS_DEVICE_READ)
#define SCI_MEMACCESS_P2P_WRITE (0x00000020u | SCI_MEMACCESS_DEVICE_WRITE)
/* dis-specific, SCIDisWaitForDeviceInterrupt: the interrupt kinds (*type), the values of
 * pci-epf-test's IRQ_TYPE register and of pcitest's PCITEST_IRQ_TYPE_*. */
#define SCI_DIS_DEVICE_IRQ_INTX 0u
#define SCI_DIS_DEVICE_IRQ_MSI 1u
#define SCI_DIS_DEVICE_IRQ_MSIX 2u

/* ---- SCIQuery commands ------------------------------------------------------------------ */
#define SCI_Q_VENDORID 1u /* sci_query_string_t */
#define SCI_Q_API 2u      /* sci_query_string_t */
#define SCI_Q_ADAPTER 3u  /* sci_query_adapter_t */
#define SCI_Q_SYSTEM 4u   /* sci_query_system_t */
#define SCI_Q_DMA 5u      /* sci_query_dma_t */
#define SCI_Q_DEVICE 6u   /* sci_smartio_query_device_t (SmartIO) */

/* SCI_Q_ADAPTER subcommands; data points to an unsigned int unless noted. */
#define SCI_Q_ADAPTER_NODEID 0x100u
#define SCI_Q_ADAPTER_SERIAL_NUMBER 0x101u
#define SCI_Q_ADAPTER_CARD_TYPE 0x102u
#define SCI_Q_ADAPTER_CONFIGURED 0x103u
#define SCI_Q_ADAPTER_NUMBER_OF_LINKS 0x104u
#define SCI_Q_ADAPTER_LINK_OPERATIONAL 0x105u /* portNo selects the link */
#define SCI_Q_ADAPTER_LINK_WIDTH 0x106u       /* lanes; portNo selects the link */
#define SCI_Q_ADAPTER_LINK_SPEED 0x107u       /* MT/s (8000 = 8GT/s); portNo: link */
#define SCI_Q_ADAPTER_DMA_SIZE_ALIGNMENT 0x108u
#define SCI_Q_ADAPTER_DMA_OFFSET_ALIGNMENT 0x109u
#define SCI_Q_ADAPTER_SUGGESTED_MIN_DMA_SIZE 0x10Au
#define SCI_Q_ADAPTER_DMA_MTU 0x10Bu
#define SCI_Q_ADAPTER_BDF 0x10Cu
#define SCI_Q_ADAPTER_MCAST_MAX_GROUPS 0x10Du

/* SCI_Q_SYSTEM subcommands. */
#define SCI_Q_SYSTEM_CPU_CACHE_LINE_SIZE 0x200u
#define SCI_Q_SYSTEM_WRITE_POSTING_ENABLED 0x201u
#define SCI_Q_SYSTEM_WRITE_COMBINING_ENABLED 0x202u

/* SCI_Q_DMA subcommands (flags select SCI_FLAG_DMA_ADAPTER/SYSDMA/GLOBAL). */
#define SCI_Q_DMA_AVAILABLE 0x300u    /* unsigned int: 1 available */
#define SCI_Q_DMA_CAPABILITIES 0x301u /* sci_dma_capabilities_t */

/* SCI_Q_DEVICE subcommands. */
#define SCI_Q_DEVICE_INFO 0x400u /* sci_smartio_device_info_t */

/* DIS_ADAPTER_SOFTWARE_FABRIC (the SCI_Q_ADAPTER_CARD_TYPE answer): see dis_types.h. */

/* ---- Library and descriptors ------------------------------------------------------------ */
void SCIInitialize(unsigned int flags, sci_error_t* error);
void SCITerminate(void);
void SCIOpen(sci_desc_t* sd, unsigned int flags, sci_error_t* error);
void SCIClose(sci_desc_t sd, unsigned int flags, sci_error_t* error);

const char* SCIGetErrorString(sci_error_t error);
const char* SCIGetAdapterTypeString(unsigned int adapterType);
void SCIQuery(unsigned int command, void* data, unsigned int flags, sci_error_t* error);
void SCIGetLocalNodeId(unsigned int adapterNo, unsigned int* nodeId, unsigned int flags,
                       sci_error_t* error);
/* Returns 1 when node nodeId answers, 0 otherwise (*error says why). */
int SCIProbeNode(sci_desc_t sd, unsigned int localAdapterNo, unsigned int nodeId,
                 unsigned int flags, sci_error_t* error);
/* The node ids of the node named adapterName in the fabric config (or "nodeN" for a node
 * without a name), asked of the live nodes: (*nodeIdList)[0] is 0 when none matched. */
void SCIGetNodeIdByAdapterName(const char* adapterName, dis_nodeId_list_t* nodeIdList,
                               dis_adapter_type_t* type, unsigned int flags, sci_error_t* error);
/* As SCIGetNodeIdByAdapterName; adapterNoList (DIS_MAX_NSCIS entries) gets the local adapter
 * number that reaches each node. */
void SCIGetNodeInfoByAdapterName(const char* adapterName, unsigned int* adapterNoList,
                                 dis_nodeId_list_t* nodeIdList, dis_adapter_type_t* type,
                                 unsigned int flags, sci_error_t* error);

/* ---- Local segments --------------------------------------------------------------------- */
void SCICreateSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                      size_t size, sci_cb_local_segment_t callback, void* callbackArg,
                      unsigned int flags, sci_error_t* error);
/* SCI_FLAG_EMPTY segments: address and size must be page aligned. */
void SCIRegisterSegmentMemory(void* address, size_t size, sci_local_segment_t segment,
                              unsigned int flags, sci_error_t* error);
void SCIPrepareSegment(sci_local_segment_t segment, unsigned int localAdapterNo, unsigned int flags,
                       sci_error_t* error);
void SCISetSegmentAvailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                            unsigned int flags, sci_error_t* error);
void SCISetSegmentUnavailable(sci_local_segment_t segment, unsigned int localAdapterNo,
                              unsigned int flags, sci_error_t* error);
/* SCIAttachPhysicalMemory: host memory (address, page aligned, ioaddress 0) is attached as
 * with SCIRegisterSegmentMemory. SCI_FLAG_CUDA_BUFFER and SCI_FLAG_PHYSICAL fail with
 * SCI_ERR_FLAG_NOT_IMPLEMENTED (no CUDA here), an ioaddress with SCI_ERR_NOT_SUPPORTED. */
void SCIAttachPhysicalMemory(sci_ioaddr_t ioaddress, void* address, unsigned int busNo, size_t size,
                             sci_local_segment_t segment, unsigned int flags, sci_error_t* error);
/* Refused with SCI_ERR_BUSY while this process maps the segment, while any node maps it, or
 * while another process has it attached. Remote connections do not refuse it: each connector
 * gets SCI_CB_DISCONNECT and its later maps, DMA and sequences fail (SCI_ERR_NOT_CONNECTED). */
void SCIRemoveSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error);
void SCIShareSegment(sci_local_segment_t segment, unsigned int flags, sci_error_t* error);
void SCIAttachLocalSegment(sci_desc_t sd, sci_local_segment_t* segment, unsigned int segmentId,
                           size_t* size, sci_cb_local_segment_t callback, void* callbackArg,
                           unsigned int flags, sci_error_t* error);
sci_segment_cb_reason_t SCIWaitForLocalSegmentEvent(sci_local_segment_t segment,
                                                    unsigned int* sourcenodeId,
                                                    unsigned int* localAdapterNo,
                                                    unsigned int timeout, unsigned int flags,
                                                    sci_error_t* error);
unsigned int SCIGetLocalSegmentId(sci_local_segment_t segment);
size_t SCIGetLocalSegmentSize(sci_local_segment_t segment);

/* ---- Remote segments -------------------------------------------------------------------- */
void SCIConnectSegment(sci_desc_t sd, sci_remote_segment_t* segment, unsigned int nodeId,
                       unsigned int segmentId, unsigned int localAdapterNo,
                       sci_cb_remote_segment_t callback, void* callbackArg, unsigned int timeout,
                       unsigned int flags, sci_error_t* error);
void SCIDisconnectSegment(sci_remote_segment_t segment, unsigned int flags, sci_error_t* error);
size_t SCIGetRemoteSegmentSize(sci_remote_segment_t segment);
unsigned int SCIGetRemoteSegmentId(sci_remote_segment_t segment);
unsigned int SCIGetRemoteSegmentNodeId(sci_remote_segment_t segment);
sci_segment_cb_reason_t SCIWaitForRemoteSegmentEvent(sci_remote_segment_t segment,
                                                     sci_error_t* status, unsigned int timeout,
                                                     unsigned int flags, sci_error_t* error);

/* ---- Mapping and PIO -------------------------------------------------------------------- */
volatile void* SCIMapLocalSegment(sci_local_segment_t segment, sci_map_t* map, size_t offset,
                                  size_t size, void* addr, unsigned int flags, sci_error_t* error);
volatile void* SCIMapRemoteSegment(sci_remote_segment_t segment, sci_map_t* map, size_t offset,
                                   size_t size, void* addr, unsigned int flags, sci_error_t* error);
void SCIUnmapSegment(sci_map_t map, unsigned int flags, sci_error_t* error);
void SCICreateMapSequence(sci_map_t map, sci_sequence_t* sequence, unsigned int flags,
                          sci_error_t* error);
void SCIRemoveSequence(sci_sequence_t sequence, unsigned int flags, sci_error_t* error);
sci_sequence_status_t SCIStartSequence(sci_sequence_t sequence, unsigned int flags,
                                       sci_error_t* error);
sci_sequence_status_t SCICheckSequence(sci_sequence_t sequence, unsigned int flags,
                                       sci_error_t* error);
void SCIMemCpy(sci_sequence_t sequence, void* memAddr, sci_map_t remoteMap, size_t remoteOffset,
               size_t size, unsigned int flags, sci_error_t* error);
void SCIFlush(sci_sequence_t sequence, unsigned int flags);
/* CPU cache maintenance for memory shared with devices or peers (map may be NULL):
 * SCI_FLAG_CACHE_FLUSH makes this CPU's writes visible, SCI_FLAG_CACHE_INVALIDATE makes
 * others' writes visible to its later reads. On one coherent host these are fences. */
void SCICacheSync(sci_map_t map, void* addr, size_t length, unsigned int flags, sci_error_t* error);
void SCIStoreBarrier(sci_sequence_t sequence, unsigned int flags);

/* ---- DMA -------------------------------------------------------------------------------- */
void SCICreateDMAQueue(sci_desc_t sd, sci_dma_queue_t* dq, unsigned int localAdapterNo,
                       unsigned int maxEntries, unsigned int flags, sci_error_t* error);
void SCIRemoveDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error);
void SCIStartDmaTransfer(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                         sci_remote_segment_t remoteSegment, size_t localOffset, size_t size,
                         size_t remoteOffset, sci_cb_dma_t callback, void* callbackArg,
                         unsigned int flags, sci_error_t* error);
void SCIStartDmaTransferVec(sci_dma_queue_t dq, sci_local_segment_t localSegment,
                            sci_remote_segment_t remoteSegment, size_t vecLength,
                            dis_dma_vec_t* disDmaVec, sci_cb_dma_t callback, void* callbackArg,
                            unsigned int flags, sci_error_t* error);
sci_dma_queue_state_t SCIDMAQueueState(sci_dma_queue_t dq);
sci_dma_queue_state_t SCIWaitForDMAQueue(sci_dma_queue_t dq, unsigned int timeout,
                                         unsigned int flags, sci_error_t* error);
void SCIAbortDMAQueue(sci_dma_queue_t dq, unsigned int flags, sci_error_t* error);

/* ---- Interrupts ------------------------------------------------------------------------- */
void SCICreateInterrupt(sci_desc_t sd, sci_local_interrupt_t* interrupt,
                        unsigned int localAdapterNo, unsigned int* interruptNo,
                        sci_cb_interrupt_t callback, void* callbackArg, unsigned int flags,
                        sci_error_t* error);
void SCIRemoveInterrupt(sci_local_interrupt_t interrupt, unsigned int flags, sci_error_t* error);
void SCIWaitForInterrupt(sci_local_interrupt_t interrupt, unsigned int timeout, unsigned int flags,
                         sci_error_t* error);
void SCIConnectInterrupt(sci_desc_t sd, sci_remote_interrupt_t* interrupt, unsigned int nodeId,
                         unsigned int localAdapterNo, unsigned int interruptNo,
                         unsigned int timeout, unsigned int flags, sci_error_t* error);
void SCIDisconnectInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags,
                            sci_error_t* error);
void SCITriggerInterrupt(sci_remote_interrupt_t interrupt, unsigned int flags, sci_error_t* error);

/* ---- Data interrupts -------------------------------------------------------------------- */
void SCICreateDataInterrupt(sci_desc_t sd, sci_local_data_interrupt_t* interrupt,
                            unsigned int localAdapterNo, unsigned int* interruptNo,
                            sci_cb_data_interrupt_t callback, void* callbackArg, unsigned int flags,
                            sci_error_t* error);
void SCIRemoveDataInterrupt(sci_local_data_interrupt_t interrupt, unsigned int flags,
                            sci_error_t* error);
/* *size: capacity of data on entry, length of the received payload on return. */
void SCIWaitForDataInterrupt(sci_local_data_interrupt_t interrupt, void* data, unsigned int* size,
                             unsigned int timeout, unsigned int flags, sci_error_t* error);
void SCIConnectDataInterrupt(sci_desc_t sd, sci_remote_data_interrupt_t* interrupt,
                             unsigned int nodeId, unsigned int localAdapterNo,
                             unsigned int interruptNo, unsigned int timeout, unsigned int flags,
                             sci_error_t* error);
void SCIDisconnectDataInterrupt(sci_remote_data_interrupt_t interrupt, unsigned int flags,
                                sci_error_t* error);
void SCITriggerDataInterrupt(sci_remote_data_interrupt_t interrupt, void* data, unsigned int length,
                             unsigned int flags, sci_error_t* error);

/* ---- SmartIO: borrowing devices --------------------------------------------------------
 * A device lives on a lender node (fdid >> 16) and is lent by its pool (leases, policy, audit:
 * dis-tool-device(1)); see sisci-smartio(7) for the whole contract and the teardown rules. */

/* The fdids of the devices of every reachable lender that match filter (NULL: all), at most
 * length of them into fdids; returns how many matched (may exceed length). */
size_t SCIGetDeviceList(sci_desc_t sd, unsigned int* fdids, size_t length,
                        const sci_smartio_device_info_t* filter, unsigned int flags,
                        sci_error_t* error);
/* Borrows fdid, shared (flags 0) or SCI_FLAG_EXCLUSIVE. A busy device fails at once with
 * SCI_ERR_NOT_AVAILABLE, an unknown fdid with SCI_ERR_NO_SUCH_FDID, a borrow the lender's
 * policy refuses with SCI_ERR_ACCESS. The lease is renewed by the library while this process
 * runs (dis-specific: $DIS_SMARTIO_LEASE_MS asks for a lease time, $DIS_SMARTIO_JOIN joins a
 * lease another process holds). */
void SCIBorrowDevice(sci_desc_t sd, sci_smartio_device_t* device, unsigned int fdid,
                     unsigned int flags, sci_error_t* error);
/* Refused with SCI_ERR_BUSY while device segments of the handle are connected or segments are
 * mapped for the device; after the device was lost it only frees the handle. */
void SCIReturnDevice(sci_smartio_device_t device, unsigned int flags, sci_error_t* error);
/* An exclusive borrow becomes a shared one (others may then borrow the device too). */
void SCIReleaseExclusiveBorrow(sci_smartio_device_t device, unsigned int flags, sci_error_t* error);
/* The fdid of a borrowed device (0 for an invalid handle). */
unsigned int SCIGetFabricDeviceId(sci_smartio_device_t device);
/* Connects a device segment: a BAR (SCI_MEMTYPE_BAR, segmentId = BAR number), or a segment
 * made by SCICreateDeviceSegment (SCI_MEMTYPE_PRIVATE of this borrower, SCI_MEMTYPE_SHARED of
 * all borrowers). The result is a remote segment: SCIMapRemoteSegment, SCIDisconnectSegment,
 * SCIGetRemoteSegmentSize/NodeId and its events (SCI_CB_LOST when the device is lost) apply. */
void SCIConnectDeviceSegment(sci_smartio_device_t device, sci_remote_segment_t* segment,
                             unsigned int segmentId, unsigned int memtype,
                             sci_cb_remote_segment_t callback, void* callbackArg,
                             unsigned int flags, sci_error_t* error);
/* SISCI 4.x: SCIConnectDeviceSegment of BAR segmentNo (offset must be 0). */
void SCIConnectDeviceMemory(sci_desc_t sd, sci_remote_segment_t* segment,
                            unsigned int localAdapterNo, sci_smartio_device_t device,
                            unsigned int segmentNo, unsigned int offset, unsigned int flags,
                            sci_error_t* error);
/* Makes a device segment of size bytes (SCI_MEMTYPE_PRIVATE or SCI_MEMTYPE_SHARED); accessHints
 * (SCI_MEMACCESS_*) and the placement flags guide where it lives. It lasts until the device is
 * returned; a shared one that exists already: SCI_ERR_SEGMENTID_USED. */
void SCICreateDeviceSegment(sci_smartio_device_t device, unsigned int segmentId, size_t size,
                            unsigned int memtype, unsigned int accessHints, unsigned int flags,
                            sci_error_t* error);
/* Makes [offset, offset + size) of a local segment (size 0: to its end) reachable by the
 * device's DMA; *remoteAddr is the address the device uses. */
void SCIMapLocalSegmentForDevice(sci_local_segment_t segment, unsigned int localAdapterNo,
                                 sci_smartio_device_t device, sci_ioaddr_t* remoteAddr,
                                 size_t offset, size_t size, unsigned int flags,
                                 sci_error_t* error);
void SCIUnmapLocalSegmentForDevice(sci_local_segment_t segment, unsigned int localAdapterNo,
                                   sci_smartio_device_t device, unsigned int flags,
                                   sci_error_t* error);
/* The same for a remote segment (another node's segment, or a device segment). */
void SCIMapRemoteSegmentForDevice(sci_remote_segment_t segment, sci_smartio_device_t device,
                                  sci_ioaddr_t* remoteAddr, size_t offset, size_t size,
                                  unsigned int flags, sci_error_t* error);
void SCIUnmapRemoteSegmentForDevice(sci_remote_segment_t segment, sci_smartio_device_t device,
                                    unsigned int flags, sci_error_t* error);
/* Registers a local PCIe function (bus, devfn) as a requester of remote memory. On the software
 * fabric every process reaches every segment already: recorded and checked only. */
void SCIRegisterPCIeRequester(sci_desc_t sd, unsigned int localAdapterNo, unsigned int bus,
                              unsigned int devfn, unsigned int flags, sci_error_t* error);
void SCIUnregisterPCIeRequester(sci_desc_t sd, unsigned int localAdapterNo, unsigned int bus,
                                unsigned int devfn, unsigned int flags, sci_error_t* error);
/* dis-specific: waits up to timeout ms (SCI_INFINITE_TIMEOUT: forever) for an interrupt the
 * device raised (*type SCI_DIS_DEVICE_IRQ_*, *number its vector). SCI_ERR_TIMEOUT when none
 * came, SCI_ERR_NOT_AVAILABLE once the device was lost. */
void SCIDisWaitForDeviceInterrupt(sci_smartio_device_t device, unsigned int* type,
                                  unsigned int* number, unsigned int timeout, unsigned int flags,
                                  sci_error_t* error);

#ifdef __cplusplus
}
#endif

#endif /* DIS_SISCI_API_H */
