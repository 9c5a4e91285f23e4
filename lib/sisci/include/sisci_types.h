/*
 * sisci_types.h: types of the SISCI API as implemented by the dis-tool software fabric.
 *
 * Names, argument lists and constant names follow the vendor SISCI API so that existing
 * SISCI programs compile unchanged. The handle types are opaque pointers. Flag values are the
 * vendor's where publicly known (see sisci_api.h).
 */
#ifndef DIS_SISCI_TYPES_H
#define DIS_SISCI_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "dis_types.h"
#include "sisci_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles. */
typedef struct sci_desc* sci_desc_t;
typedef struct sci_local_segment* sci_local_segment_t;
typedef struct sci_remote_segment* sci_remote_segment_t;
typedef struct sci_map* sci_map_t;
typedef struct sci_sequence* sci_sequence_t;
typedef struct sci_dma_queue* sci_dma_queue_t;
typedef struct sci_local_interrupt* sci_local_interrupt_t;
typedef struct sci_remote_interrupt* sci_remote_interrupt_t;
typedef struct sci_local_data_interrupt* sci_local_data_interrupt_t;
typedef struct sci_remote_data_interrupt* sci_remote_data_interrupt_t;
/* A borrowed SmartIO device (SCIBorrowDevice); sci_device_t is its name before SISCI 5.x. */
typedef struct sci_smartio_device* sci_smartio_device_t;
typedef sci_smartio_device_t sci_device_t;

typedef uint64_t sci_ioaddr_t;

/* What a callback asks the library to do afterwards. */
typedef enum {
    SCI_CALLBACK_CANCEL = 1, /* stop delivering callbacks for this object */
    SCI_CALLBACK_CONTINUE    /* keep the callback installed */
} sci_callback_action_t;

/* Segment events (callback reason or SCIWait*SegmentEvent result). */
typedef enum {
    SCI_CB_CONNECT = 1,
    SCI_CB_DISCONNECT,
    SCI_CB_NOT_OPERATIONAL,
    SCI_CB_OPERATIONAL,
    SCI_CB_LOST
} sci_segment_cb_reason_t;

/* State of a mapped sequence (SCIStartSequence/SCICheckSequence). */
typedef enum {
    SCI_SEQ_OK,
    SCI_SEQ_RETRIABLE,
    SCI_SEQ_NOT_RETRIABLE,
    SCI_SEQ_PENDING
} sci_sequence_status_t;

/* State of a DMA queue. */
typedef enum {
    SCI_DMAQUEUE_IDLE,
    SCI_DMAQUEUE_GATHER,
    SCI_DMAQUEUE_POSTED,
    SCI_DMAQUEUE_DONE,
    SCI_DMAQUEUE_ABORTED,
    SCI_DMAQUEUE_ERROR
} sci_dma_queue_state_t;

/* One element of a vectored DMA transfer (SCIStartDmaTransferVec). */
typedef struct {
    size_t size;
    size_t local_offset;
    size_t remote_offset;
    unsigned int flags;
} dis_dma_vec_t;

/* Callbacks. */
typedef sci_callback_action_t (*sci_cb_local_segment_t)(void* arg, sci_local_segment_t segment,
                                                        sci_segment_cb_reason_t reason,
                                                        unsigned int nodeId,
                                                        unsigned int localAdapterNo,
                                                        sci_error_t error);
typedef sci_callback_action_t (*sci_cb_remote_segment_t)(void* arg, sci_remote_segment_t segment,
                                                         sci_segment_cb_reason_t reason,
                                                         sci_error_t status);
typedef sci_callback_action_t (*sci_cb_dma_t)(void* arg, sci_dma_queue_t queue, sci_error_t status);
typedef sci_callback_action_t (*sci_cb_interrupt_t)(void* arg, sci_local_interrupt_t interrupt,
                                                    sci_error_t status);
typedef sci_callback_action_t (*sci_cb_data_interrupt_t)(void* arg,
                                                         sci_local_data_interrupt_t interrupt,
                                                         void* data, unsigned int length,
                                                         sci_error_t status);

/* SCIQuery argument blocks. */
typedef struct {
    unsigned int subcommand;
    unsigned int localAdapterNo;
    unsigned int portNo; /* link index for the SCI_Q_ADAPTER_LINK_* queries */
    void* data;
} sci_query_adapter_t;

typedef struct {
    unsigned int subcommand;
    void* data;
} sci_query_system_t;

typedef struct {
    unsigned int subcommand;
    unsigned int localAdapterNo;
    void* data;
} sci_query_dma_t;

typedef struct {
    char* str;
    size_t length;
} sci_query_string_t;

/* Filled by SCIQuery(SCI_Q_DMA, SCI_Q_DMA_CAPABILITIES). */
typedef struct {
    unsigned int max_transfer_size;  /* bytes per transfer */
    unsigned int max_vector_length;  /* entries per SCIStartDmaTransferVec */
    unsigned int offset_alignment;   /* bytes */
    unsigned int size_alignment;     /* bytes */
    unsigned int suggested_min_size; /* bytes */
    unsigned int supports_read;      /* SCI_FLAG_DMA_READ (pull) */
    unsigned int supports_vector;    /* SCIStartDmaTransferVec */
} sci_dma_capabilities_t;

/* ---- SmartIO ----------------------------------------------------------------------------
 * A lendable device: the SCIQuery(SCI_Q_DEVICE, SCI_Q_DEVICE_INFO) answer, and the filter of
 * SCIGetDeviceList (a field that is 0, or an empty user_name, matches every device). */
typedef struct {
    unsigned int fdid;          /* fabric device id: (lender node id << 16) | index */
    unsigned int nodeid;        /* the lender node */
    unsigned int adapter;       /* the local adapter that reaches it (0 here) */
    unsigned int bdf;           /* bus << 8 | devfn on the lender (emulated: the index) */
    unsigned int pci_vendor_id; /* e.g. 0x104c */
    unsigned int pci_device_id; /* e.g. 0xb500 */
    unsigned int pci_class;     /* class code, e.g. 0x010802 (NVMe), 0xff0000 */
    unsigned int num_bars;      /* BARs the device has (SCI_MEMTYPE_BAR 0 .. num_bars - 1) */
    char user_name[64];         /* the name the lender gave it, NUL-terminated */
} sci_smartio_device_info_t;
/* The name of sci_smartio_device_info_t before SISCI 5.x. */
typedef sci_smartio_device_info_t sci_dev_info_t;

/* SCIQuery(SCI_Q_DEVICE, ...) argument block. */
typedef struct {
    unsigned int subcommand; /* SCI_Q_DEVICE_INFO */
    unsigned int fdid;       /* the device asked about (it need not be borrowed) */
    void* data;              /* SCI_Q_DEVICE_INFO: a sci_smartio_device_info_t */
} sci_smartio_query_device_t;
/* The same block under its name before SISCI 5.x (global_devid is the fdid). */
typedef struct {
    unsigned int subcommand;
    unsigned int global_devid;
    void* data;
} sci_query_dev_t;

#ifdef __cplusplus
}
#endif

#endif /* DIS_SISCI_TYPES_H */
