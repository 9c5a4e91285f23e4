/* Maps and PIO: local and remote maps (fixed address, read-only, I/O space), sequences,
 * SCIMemCpy both ways, barriers, flushes and SCICacheSync. */
#include "compat.h"

#include <sys/mman.h>

#define SEG_ID 20u
#define SEG_SIZE 65536u

static void node_a(void) {
    sci_error_t err;
    sci_desc_t sd;
    sci_local_segment_t seg;
    sci_map_t map;
    sci_map_t fixed;
    volatile unsigned char* p;
    volatile unsigned char* q;
    void* want;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCICreateSegment(sd, &seg, SEG_ID, SEG_SIZE, SCI_NO_CALLBACK, NULL, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIPrepareSegment(seg, ADAPTER, SCI_NO_FLAGS, &err);
    SCISetSegmentAvailable(seg, ADAPTER, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    p = (volatile unsigned char*)SCIMapLocalSegment(seg, &map, 0, SEG_SIZE, NULL, SCI_NO_FLAGS,
                                                    &err);
    EXPECT_OK(err);
    memset((void*)p, 0, SEG_SIZE);
    p[100] = 7;
    /* Flags are per function: another function's flag (or bit) is refused. */
    SCIMapLocalSegment(seg, &fixed, 0, 4096, NULL, SCI_FLAG_IO_MAP_IOSPACE, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_FLAG);
    SCICacheSync(map, (void*)p, 1, SCI_FLAG_DMA_READ, &err);
    EXPECT_ERR(err, SCI_ERR_ILLEGAL_FLAG);

    /* A second map at an address of our choice (reserved first), offset by one page. */
    want = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(want != MAP_FAILED);
    q = (volatile unsigned char*)SCIMapLocalSegment(seg, &fixed, page, page, want,
                                                    SCI_FLAG_FIXED_MAP_ADDR, &err);
    EXPECT_OK(err);
    EXPECT((void*)q == want);
    p[page + 1] = 9;
    SCICacheSync(fixed, (void*)q, page, SCI_FLAG_CACHE_INVALIDATE, &err);
    EXPECT_OK(err);
    EXPECT(q[1] == 9);
    SCICacheSync(fixed, (void*)q, page + 1, SCI_FLAG_CACHE_FLUSH, &err);
    EXPECT_ERR(err, SCI_ERR_OUT_OF_RANGE);
    SCIUnmapSegment(fixed, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);

    post();      /* 1: offered */
    wait_peer(); /* 2: node 8 wrote and read */
    SCICacheSync(NULL, (void*)p, SEG_SIZE, SCI_FLAG_CACHE_INVALIDATE | SCI_FLAG_CACHE_FLUSH, &err);
    EXPECT_OK(err);
    EXPECT(p[0] == 0xab && p[4095] == 0xab);
    EXPECT(p[8192] == 1 && p[8192 + 99] == 100);
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
    sci_remote_segment_t rs;
    sci_map_t map;
    sci_map_t ro;
    sci_sequence_t seq;
    volatile unsigned char* p;
    volatile unsigned char* r;
    unsigned char buf[4096];
    unsigned char back[100];
    int i;

    SCIOpen(&sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    wait_peer(); /* 1 */
    SCIConnectSegment(sd, &rs, NODE_A, SEG_ID, ADAPTER, SCI_NO_CALLBACK, NULL, 10000, SCI_NO_FLAGS,
                      &err);
    EXPECT_OK(err);
    p = (volatile unsigned char*)SCIMapRemoteSegment(rs, &map, 0, SEG_SIZE, NULL,
                                                     SCI_FLAG_IO_MAP_IOSPACE, &err);
    EXPECT_OK(err);
    r = (volatile unsigned char*)SCIMapRemoteSegment(rs, &ro, 0, 4096, NULL, SCI_FLAG_READONLY_MAP,
                                                     &err);
    EXPECT_OK(err);
    EXPECT(r != NULL && r[100] == 7);
    SCICreateMapSequence(map, &seq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    EXPECT(SCIStartSequence(seq, SCI_NO_FLAGS, &err) == SCI_SEQ_OK);
    EXPECT_OK(err);
    memset(buf, 0xab, sizeof buf);
    SCIMemCpy(seq, buf, map, 0, sizeof buf, SCI_FLAG_ERROR_CHECK, &err);
    EXPECT_OK(err);
    for (i = 0; i < 100; ++i) {
        buf[i] = (unsigned char)(i + 1);
    }
    SCIMemCpy(NULL, buf, map, 8192, 100, SCI_FLAG_NO_STORE_BARRIER | SCI_FLAG_NO_FLUSH, &err);
    EXPECT_OK(err);
    SCIStoreBarrier(seq, SCI_NO_FLAGS);
    SCIFlush(seq, SCI_NO_FLAGS);
    SCIFlush(NULL, SCI_FLAG_FLUSH_CPU_BUFFERS_ONLY);
    SCIMemCpy(seq, back, map, 8192, sizeof back, SCI_FLAG_BLOCK_READ, &err);
    EXPECT_OK(err);
    EXPECT(back[0] == 1 && back[99] == 100);
    SCIMemCpy(seq, back, map, SEG_SIZE - 10, sizeof back, SCI_FLAG_BLOCK_READ, &err);
    EXPECT_ERR(err, SCI_ERR_OUT_OF_RANGE);
    EXPECT(SCICheckSequence(seq, SCI_NO_FLAGS, &err) == SCI_SEQ_OK);
    EXPECT_OK(err);
    EXPECT(p[0] == 0xab);
    SCICacheSync(map, (void*)p, SEG_SIZE, SCI_FLAG_CACHE_FLUSH, &err);
    EXPECT_OK(err);
    SCIRemoveSequence(seq, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post();      /* 2 */
    wait_peer(); /* 3 */
    SCIUnmapSegment(ro, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIUnmapSegment(map, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIDisconnectSegment(rs, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    SCIClose(sd, SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    post(); /* 4 */
    /* The sequence states a program may test for. */
    EXPECT(SCI_SEQ_OK != SCI_SEQ_RETRIABLE && SCI_SEQ_NOT_RETRIABLE != SCI_SEQ_PENDING);
}

int main(void) {
    return run_two_nodes(node_a, node_b);
}
