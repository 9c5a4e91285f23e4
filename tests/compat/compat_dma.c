/* DMA: queues, single and vectored transfers (a whole DIS_DMA_MAX_VECLEN vector on a queue
 * made for one entry), push and pull, waiting, polling, callbacks and abort. */
#include "compat.h"

#define LOCAL_ID 41u
#define REMOTE_ID 40u
#define SEG_SIZE (1u << 20)

static volatile int dma_calls = 0;

static sci_callback_action_t dma_cb(void* arg, sci_dma_queue_t queue, sci_error_t status) {
    (void)queue;
    if (status == SCI_ERR_OK) {
        ++*(volatile int*)arg;
    }
    return SCI_CALLBACK_CANCEL;
}

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_segment_t seg;
    sci_map_t map;
    volatile unsigned char* p;
    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateSegment(sd, &seg, REMOTE_ID, SEG_SIZE, SCI_NO_CALLBACK, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(seg, ADAPTER, SCI_NO_FLAGS, &err);
    SCISetSegmentAvailable(seg, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    p = (volatile unsigned char*)SCIMapLocalSegment(seg, &map, 0, SEG_SIZE, NULL, SCI_NO_FLAGS,
                                                    &err);
    EXPECT_OK(err);
    memset((void*)p, 0, SEG_SIZE);
    p[SEG_SIZE - 1] = 0x77;
    post();      /* 1 */
    wait_peer(); /* 2: node 8 pushed */
    EXPECT(p[0] == 0x11 && p[4095] == 0x11);
    EXPECT(p[65536] == 0x22 && p[65536 + 255 * 64] == 0x22);
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();      /* 3 */
    wait_peer(); /* 4: node 8 disconnected */
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_segment_t local;
    sci_remote_segment_t remote;
    sci_dma_queue_t dq;
    sci_map_t map;
    volatile unsigned char* lp;
    static dis_dma_vec_t vec[DIS_DMA_MAX_VECLEN + 1];
    size_t i;
    int k;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateSegment(sd, &local, LOCAL_ID, SEG_SIZE, SCI_NO_CALLBACK, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(local, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    lp = (volatile unsigned char*)SCIMapLocalSegment(local, &map, 0, SEG_SIZE, NULL, SCI_NO_FLAGS,
                                                     &err);
    EXPECT_OK(err);
    memset((void*)lp, 0x11, 65536);
    memset((void*)(lp + 65536), 0x22, 65536);
    wait_peer(); /* 1 */
    SCIConnectSegment(sd, &remote, NODE_A, REMOTE_ID, ADAPTER, SCI_NO_CALLBACK, NULL, 10000,
                      SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateDMAQueue(sd, &dq, ADAPTER, 1, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(SCIDMAQueueState(dq) == SCI_DMAQUEUE_IDLE);

    /* One transfer, waited for by the call. */
    SCIStartDmaTransfer(dq, local, remote, 0, 4096, 0, SCI_NO_CALLBACK, NULL, SCI_FLAG_DMA_WAIT,
                        &err);
    EXPECT_OK(err);
    EXPECT(SCIDMAQueueState(dq) == SCI_DMAQUEUE_DONE);

    /* A full vector on a queue made for one entry. */
    for (i = 0; i < DIS_DMA_MAX_VECLEN; ++i) {
        vec[i].size = 64;
        vec[i].local_offset = 65536 + i * 64;
        vec[i].remote_offset = 65536 + i * 64;
        vec[i].flags = 0;
    }
    SCIStartDmaTransferVec(dq, local, remote, DIS_DMA_MAX_VECLEN, vec, SCI_NO_CALLBACK, NULL,
                           SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(SCIWaitForDMAQueue(dq, SCI_INFINITE_TIMEOUT, SCI_FLAG_DIS_SLEEP_WAIT, &err) ==
           SCI_DMAQUEUE_DONE);
    EXPECT_OK(err);
    vec[DIS_DMA_MAX_VECLEN] = vec[0];
    SCIStartDmaTransferVec(dq, local, remote, DIS_DMA_MAX_VECLEN + 1, vec, SCI_NO_CALLBACK, NULL,
                           SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_MAX_ENTRIES);

    /* Pull, with a completion callback; the queue polled until done. */
    SCIStartDmaTransfer(dq, local, remote, 200000, 1, SEG_SIZE - 1, dma_cb, (void*)&dma_calls,
                        SCI_FLAG_DMA_READ | SCI_FLAG_USE_CALLBACK | SCI_FLAG_DMA_GLOBAL, &err);
    EXPECT_OK(err);
    for (k = 0; k < 1000 && dma_calls == 0; ++k) {
        usleep(10000);
    }
    EXPECT(dma_calls == 1);
    EXPECT(lp[200000] == 0x77);
    SCIStartDmaTransfer(dq, local, remote, 0, 4096, 0, SCI_NO_CALLBACK, NULL, SCI_FLAG_DMA_SYSDMA,
                        &err);
    EXPECT_OK(err);
    SCIAbortDMAQueue(dq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    {
        sci_dma_queue_state_t st = SCIWaitForDMAQueue(dq, 10000, SCI_NO_FLAGS, &err);
        EXPECT(st == SCI_DMAQUEUE_DONE || st == SCI_DMAQUEUE_ABORTED || st == SCI_DMAQUEUE_ERROR);
        EXPECT(SCI_DMAQUEUE_GATHER != SCI_DMAQUEUE_POSTED);
    }
    SCIRemoveDMAQueue(dq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();      /* 2 */
    wait_peer(); /* 3 */
    SCIDisconnectSegment(remote, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    SCIRemoveSegment(local, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post(); /* 4 */
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
