/* Local and remote segments: creation (ids, empty, registered and attached memory), offering,
 * events and callbacks, sharing and attaching, connecting, and the teardown rules. */
#include "compat.h"

#include <sys/mman.h>

#define SEG_MAIN 10u
#define SEG_NOTIFY 11u
#define SEG_BROADCAST 30u
#define SEG_SIZE 65536u

static volatile int cb_reason = 0;

static sci_callback_action_t remote_cb(void* arg, sci_remote_segment_t segment,
                                       sci_segment_cb_reason_t reason, sci_error_t status) {
    (void)segment;
    (void)status;
    *(volatile int*)arg = (int)reason;
    return SCI_CALLBACK_CONTINUE;
}

static sci_callback_action_t local_cb(void* arg, sci_local_segment_t segment,
                                      sci_segment_cb_reason_t reason, unsigned int nodeId,
                                      unsigned int localAdapterNo, sci_error_t error) {
    (void)arg;
    (void)segment;
    (void)nodeId;
    (void)localAdapterNo;
    (void)error;
    /* Link state changes keep the callback; a lost node ends it. */
    if (reason == SCI_CB_NOT_OPERATIONAL || reason == SCI_CB_OPERATIONAL) {
        return SCI_CALLBACK_CONTINUE;
    }
    return reason == SCI_CB_LOST ? SCI_CALLBACK_CANCEL : SCI_CALLBACK_CONTINUE;
}

/* Polls *flag for want for up to 10 s. */
static int wait_value(volatile int* flag, int want) {
    int i;
    for (i = 0; i < 1000 && *flag != want; ++i) {
        usleep(10000);
    }
    return *flag == want;
}

static sci_local_segment_t offer(sci_desc_t sd, unsigned int id, size_t size, unsigned int flags) {
    sci_error_t err;
    sci_local_segment_t seg = NULL;
    SCICreateSegment(sd, &seg, id, size, SCI_NO_CALLBACK, NULL, flags, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(seg, ADAPTER, SCI_FLAG_DMA_SOURCE_ONLY, &err);
    EXPECT_OK(err);
    SCISetSegmentAvailable(seg, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    return seg;
}

/* Memory that is not a segment's becomes one: registered and attached host memory. */
static void empty_segments(sci_desc_t sd) {
    sci_error_t err;
    sci_local_segment_t seg;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char* mem = (unsigned char*)mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(mem != MAP_FAILED);
    mem[0] = 0x5a;

    SCICreateSegment(sd, &seg, 0, 0, SCI_NO_CALLBACK, NULL, SCI_FLAG_EMPTY | SCI_FLAG_AUTO_ID,
                     &err);
    EXPECT_OK(err);
    SCIRegisterSegmentMemory(mem, 2 * page, seg, SCI_FLAG_CUDA_BUFFER, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_FLAG); /* an SCIAttachPhysicalMemory flag */
    SCIRegisterSegmentMemory(mem, 2 * page, seg, SCI_FLAG_LOCK_USER_MEM, &err);
    EXPECT_OK(err);
    EXPECT(SCIGetLocalSegmentSize(seg) == 2 * page);
    EXPECT(mem[0] == 0x5a);
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    SCICreateSegment(sd, &seg, 0, 0, SCI_NO_CALLBACK, NULL, SCI_FLAG_EMPTY | SCI_FLAG_AUTO_ID,
                     &err);
    EXPECT_OK(err);
    /* No CUDA in this SISCI: refused with a code and a text that say so, the segment intact. */
    SCIAttachPhysicalMemory(0, mem + 2 * page, 0, page, seg, SCI_FLAG_CUDA_BUFFER, &err);
    EXPECT_ERR(err, SCI_ERR_FLAG_NOT_IMPLEMENTED);
    EXPECT(strstr(SCIGetErrorString(err), "CUDA") != NULL);
    SCIAttachPhysicalMemory(0, mem + 2 * page, 0, page, seg, SCI_FLAG_PHYSICAL, &err);
    EXPECT_ERR(err, SCI_ERR_FLAG_NOT_IMPLEMENTED);
    SCIAttachPhysicalMemory(0x1000, NULL, 0, page, seg, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NOT_SUPPORTED);
    mem[2 * page] = 0xa5;
    SCIAttachPhysicalMemory(0, mem + 2 * page, 0, page, seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(SCIGetLocalSegmentSize(seg) == page);
    EXPECT(mem[2 * page] == 0xa5);
    SCIRemoveSegment(seg, SCI_FLAG_FORCE_REMOVE, &err);
    EXPECT_OK(err);
    munmap(mem, 4 * page);
}

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_segment_t seg;
    sci_local_segment_t notify_seg;
    sci_local_segment_t bcast;
    sci_local_segment_t attached;
    sci_local_segment_t priv;
    sci_map_t map;
    volatile unsigned char* p;
    unsigned int node = 0;
    unsigned int adapter = 99;
    size_t size = 0;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    empty_segments(sd);
    SCICreateSegment(sd, &priv, 0, 4096, SCI_NO_CALLBACK, NULL, SCI_FLAG_PRIVATE | SCI_FLAG_AUTO_ID,
                     &err);
    EXPECT_OK(err);
    EXPECT(SCIGetLocalSegmentId(priv) != 0);
    SCIRemoveSegment(priv, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    seg = offer(sd, SEG_MAIN, SEG_SIZE, SCI_FLAG_DIS_SHARED_ACCESS);
    EXPECT(SCIGetLocalSegmentId(seg) == SEG_MAIN);
    EXPECT(SCIGetLocalSegmentSize(seg) == SEG_SIZE);
    SCICreateSegment(sd, &notify_seg, SEG_NOTIFY, 4096, local_cb, NULL, SCI_FLAG_USE_CALLBACK,
                     &err);
    EXPECT_OK(err);
    SCIPrepareSegment(notify_seg, ADAPTER, SCI_NO_FLAGS, &err);
    SCISetSegmentAvailable(notify_seg, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    bcast = offer(sd, SEG_BROADCAST, 4096, SCI_FLAG_BROADCAST);
    p = (volatile unsigned char*)SCIMapLocalSegment(seg, &map, 0, SEG_SIZE, NULL, SCI_NO_FLAGS,
                                                    &err);
    EXPECT_OK(err);
    p[0] = 0;
    post(); /* 1: offered */

    EXPECT(SCIWaitForLocalSegmentEvent(seg, &node, &adapter, 10000, SCI_NO_FLAGS, &err) ==
           SCI_CB_CONNECT);
    EXPECT_OK(err);
    EXPECT(node == NODE_B);
    EXPECT(adapter == ADAPTER);
    wait_peer(); /* 2: node 8 wrote through its map, then unmapped (still connected) */
    EXPECT(p[0] == 0x42);

    /* Teardown rules: a local mapping refuses removal, so does an attachment. */
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY);
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIShareSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIAttachLocalSegment(sd, &attached, SEG_MAIN, &size, SCI_NO_CALLBACK, NULL, SCI_NO_FLAGS,
                          &err);
    EXPECT_OK(err);
    EXPECT(size == SEG_SIZE);
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_BUSY);
    SCIRemoveSegment(attached, SCI_NO_FLAGS, &err); /* detaches */
    EXPECT_OK(err);
    /* A remote connection does not: node 8 is told instead. */
    SCIRemoveSegment(seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post(); /* 3: removed */

    wait_peer(); /* 4: node 8 connected SEG_NOTIFY */
    SCISetSegmentUnavailable(notify_seg, ADAPTER, SCI_FLAG_NOTIFY | SCI_FLAG_FORCE_DISCONNECT,
                             &err);
    EXPECT_OK(err);
    post();      /* 5 */
    wait_peer(); /* 6: node 8 done */
    SCIRemoveSegment(notify_seg, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIRemoveSegment(bcast, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
}

static void node_b(void) {
    sci_error_t err;
    sci_error_t status;
    sci_desc_t sd;
    sci_remote_segment_t rs;
    sci_remote_segment_t notify_rs;
    sci_remote_segment_t bcast;
    sci_map_t map;
    volatile unsigned char* p;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    wait_peer(); /* 1 */
    SCIConnectSegment(sd, &rs, NODE_A, SEG_MAIN, ADAPTER, SCI_NO_CALLBACK, NULL,
                      SCI_INFINITE_TIMEOUT, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(SCIGetRemoteSegmentSize(rs) == SEG_SIZE);
    EXPECT(SCIGetRemoteSegmentId(rs) == SEG_MAIN);
    EXPECT(SCIGetRemoteSegmentNodeId(rs) == NODE_A);
    p = (volatile unsigned char*)SCIMapRemoteSegment(rs, &map, 0, 4096, NULL,
                                                     SCI_FLAG_IO_MAP_IOSPACE, &err);
    EXPECT_OK(err);
    if (p != NULL) {
        p[0] = 0x42;
    }
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIConnectSegment(sd, &bcast, DIS_BROADCAST_NODEID_GROUP_ALL, SEG_BROADCAST, ADAPTER,
                      SCI_NO_CALLBACK, NULL, 5000, SCI_FLAG_BROADCAST, &err);
    EXPECT_OK(err);
    if (err == SCI_ERR_OK) {
        SCIDisconnectSegment(bcast, SCI_NO_FLAGS, &err);
        EXPECT_OK(err);
    }
    post(); /* 2 */

    wait_peer(); /* 3: node 4 removed SEG_MAIN while we are connected */
    EXPECT(SCIWaitForRemoteSegmentEvent(rs, &status, 10000, SCI_NO_FLAGS, &err) ==
           SCI_CB_DISCONNECT);
    EXPECT_OK(err);
    SCIMapRemoteSegment(rs, &map, 0, 4096, NULL, SCI_NO_FLAGS, &err);
    EXPECT_ERR(err, SCI_ERR_NOT_CONNECTED);
    SCIDisconnectSegment(rs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    SCIConnectSegment(sd, &notify_rs, NODE_A, SEG_NOTIFY, ADAPTER, remote_cb, (void*)&cb_reason,
                      10000, SCI_FLAG_USE_CALLBACK | SCI_FLAG_SHARED, &err);
    EXPECT_OK(err);
    post();      /* 4 */
    wait_peer(); /* 5: made unavailable with SCI_FLAG_NOTIFY | SCI_FLAG_FORCE_DISCONNECT */
    EXPECT(wait_value(&cb_reason, SCI_CB_DISCONNECT));
    SCIDisconnectSegment(notify_rs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post(); /* 6 */
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
