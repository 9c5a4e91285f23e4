/*
 * sisci_pingpong: a plain C SISCI program (built against the installed headers only) that
 * ping-pongs between two nodes through a remote segment and an interrupt.
 *
 *   DIS_NODE_ID=4 sisci_pingpong server ROUNDS
 *   DIS_NODE_ID=8 sisci_pingpong client SERVER_NODE ROUNDS
 *
 * The server owns segment 0x5050 (two 64-bit words); the client writes ping i into word 0
 * (PIO, SCIMemCpy on odd rounds) and waits until the server echoes it into word 1. At the end
 * the client triggers the server's interrupt 77 to tell it to quit. Exit 0 when every round
 * trip returned the right value.
 */
#include <sisci_api.h>
#include <sisci_error.h>
#include <sisci_types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEGMENT_ID 0x5050u
#define INTERRUPT_NO 77u
#define NO_FLAGS 0u

static int check(sci_error_t err, const char* what) {
    if (err != SCI_ERR_OK) {
        fprintf(stderr, "sisci_pingpong: %s: %s (0x%x)\n", what, SCIGetErrorString(err), err);
        return 1;
    }
    return 0;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int server(sci_desc_t sd, unsigned long rounds) {
    sci_error_t err;
    sci_local_segment_t seg;
    sci_map_t map;
    sci_local_interrupt_t irq;
    unsigned int irq_no = INTERRUPT_NO;
    volatile uint64_t* words;
    unsigned long served = 0;

    SCICreateSegment(sd, &seg, SEGMENT_ID, 2 * sizeof(uint64_t), NULL, NULL, NO_FLAGS, &err);
    if (check(err, "SCICreateSegment"))
        return 1;
    SCIPrepareSegment(seg, 0, NO_FLAGS, &err);
    if (check(err, "SCIPrepareSegment"))
        return 1;
    words = (volatile uint64_t*)SCIMapLocalSegment(seg, &map, 0, 2 * sizeof(uint64_t), NULL,
                                                   NO_FLAGS, &err);
    if (check(err, "SCIMapLocalSegment"))
        return 1;
    words[0] = 0;
    words[1] = 0;
    SCICreateInterrupt(sd, &irq, 0, &irq_no, NULL, NULL, SCI_FLAG_FIXED_INTNO, &err);
    if (check(err, "SCICreateInterrupt"))
        return 1;
    SCISetSegmentAvailable(seg, 0, NO_FLAGS, &err);
    if (check(err, "SCISetSegmentAvailable"))
        return 1;

    /* Echo every ping until the client's interrupt says it is done. */
    while (served < rounds) {
        uint64_t ping = words[0];
        if (ping != words[1]) {
            words[1] = ping;
            SCIStoreBarrier(NULL, NO_FLAGS);
            ++served;
        }
    }
    SCIWaitForInterrupt(irq, 10000, NO_FLAGS, &err);
    if (check(err, "SCIWaitForInterrupt"))
        return 1;

    SCIRemoveInterrupt(irq, NO_FLAGS, &err);
    SCIUnmapSegment(map, NO_FLAGS, &err);
    do {
        SCIRemoveSegment(seg, NO_FLAGS, &err); /* busy until the client disconnected */
    } while (err == SCI_ERR_BUSY);
    if (check(err, "SCIRemoveSegment"))
        return 1;
    printf("server: echoed %lu pings\n", served);
    return 0;
}

static int client(sci_desc_t sd, unsigned int server_node, unsigned long rounds) {
    sci_error_t err;
    sci_remote_segment_t seg;
    sci_map_t map;
    sci_sequence_t seq;
    sci_remote_interrupt_t irq;
    volatile uint64_t* words;
    unsigned long i;
    double start, elapsed;

    SCIConnectSegment(sd, &seg, server_node, SEGMENT_ID, 0, NULL, NULL, 10000, NO_FLAGS, &err);
    if (check(err, "SCIConnectSegment"))
        return 1;
    if (SCIGetRemoteSegmentSize(seg) != 2 * sizeof(uint64_t)) {
        fprintf(stderr, "sisci_pingpong: unexpected segment size\n");
        return 1;
    }
    words = (volatile uint64_t*)SCIMapRemoteSegment(seg, &map, 0, 2 * sizeof(uint64_t), NULL,
                                                    NO_FLAGS, &err);
    if (check(err, "SCIMapRemoteSegment"))
        return 1;
    SCICreateMapSequence(map, &seq, NO_FLAGS, &err);
    if (check(err, "SCICreateMapSequence"))
        return 1;

    start = now_us();
    for (i = 1; i <= rounds; ++i) {
        uint64_t ping = i;
        if (i % 2 == 1) {
            SCIMemCpy(seq, &ping, map, 0, sizeof(ping), NO_FLAGS, &err);
            if (check(err, "SCIMemCpy"))
                return 1;
        } else {
            words[0] = ping;
            SCIFlush(seq, NO_FLAGS);
        }
        while (words[1] != ping) {
            /* spin: the pong is a remote store into our mapping */
        }
    }
    elapsed = now_us() - start;
    if (SCICheckSequence(seq, NO_FLAGS, &err) != SCI_SEQ_OK || check(err, "SCICheckSequence")) {
        return 1;
    }

    SCIConnectInterrupt(sd, &irq, server_node, 0, INTERRUPT_NO, 10000, NO_FLAGS, &err);
    if (check(err, "SCIConnectInterrupt"))
        return 1;
    SCITriggerInterrupt(irq, NO_FLAGS, &err);
    if (check(err, "SCITriggerInterrupt"))
        return 1;
    SCIDisconnectInterrupt(irq, NO_FLAGS, &err);
    SCIRemoveSequence(seq, NO_FLAGS, &err);
    SCIUnmapSegment(map, NO_FLAGS, &err);
    SCIDisconnectSegment(seg, NO_FLAGS, &err);
    if (check(err, "SCIDisconnectSegment"))
        return 1;
    printf("client: %lu round trips, %.3f us each\n", rounds, elapsed / (double)rounds);
    return 0;
}

int main(int argc, char** argv) {
    sci_error_t err;
    sci_desc_t sd;
    unsigned int node_id = 0;
    int rc;

    if (argc < 3 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0) ||
        (strcmp(argv[1], "client") == 0 && argc < 4)) {
        fprintf(stderr, "usage: %s server ROUNDS | client SERVER_NODE ROUNDS\n", argv[0]);
        return 2;
    }
    SCIInitialize(NO_FLAGS, &err);
    if (check(err, "SCIInitialize"))
        return 3;
    SCIOpen(&sd, NO_FLAGS, &err);
    if (check(err, "SCIOpen"))
        return 3;
    SCIGetLocalNodeId(0, &node_id, NO_FLAGS, &err);
    if (check(err, "SCIGetLocalNodeId"))
        return 3;
    fprintf(stderr, "%s on node %u\n", argv[1], node_id);

    if (strcmp(argv[1], "server") == 0) {
        rc = server(sd, strtoul(argv[2], NULL, 10));
    } else {
        rc = client(sd, (unsigned int)strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
    }
    SCIClose(sd, NO_FLAGS, &err);
    SCITerminate();
    return rc;
}
