/*
 * dis_types.h: limits and node-lookup types shared by the SISCI API (dis-tool software fabric).
 * Compiles alone; sisci_types.h includes it.
 */
#ifndef DIS_DIS_TYPES_H
#define DIS_DIS_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

/* Adapters one node may have: the length of a dis_nodeId_list_t. */
#define DIS_MAX_NSCIS 4
/* Most entries one SCIStartDmaTransferVec takes (any queue, whatever its maxEntries). */
#define DIS_DMA_MAX_VECLEN 256

/* Node ids of one node's adapters, as SCIGetNodeIdByAdapterName fills it: the ids first, the
 * unused entries 0 (a list whose [0] is 0 found nothing). */
typedef unsigned int dis_nodeId_list_t[DIS_MAX_NSCIS];

/* Kind of adapter a name resolved to. */
typedef enum {
    DIS_VIRT_ADAPTER_UNKNOWN = 0,
    DIS_VIRT_ADAPTER_SOFTWARE_FABRIC = 0x5F0 /* = DIS_ADAPTER_SOFTWARE_FABRIC */
} dis_adapter_type_t;
typedef dis_adapter_type_t dis_virt_adapter_t;

/* Card type reported by SCI_Q_ADAPTER_CARD_TYPE for a software-fabric adapter. */
#define DIS_ADAPTER_SOFTWARE_FABRIC 0x5F0u

#ifdef __cplusplus
}
#endif

#endif /* DIS_DIS_TYPES_H */
