/* Load for scripts/bench-monitor-cpu.sh: one SISCI client per node of a software fabric,
 * together holding COUNT segments of 4 KiB (prepared and available) until stdin closes.
 * Usage: bench-monitor-segments FABRIC_DIR COUNT NODE...   Prints "ready" once all exist. */
#include <sisci_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int hold(const char* dir, unsigned node, unsigned first_id, unsigned count, int ready) {
    char id[16];
    sci_error_t e;
    sci_desc_t sd;
    snprintf(id, sizeof id, "%u", node);
    setenv("DIS_FABRIC", dir, 1);
    setenv("DIS_NODE_ID", id, 1);
    SCIInitialize(0, &e);
    SCIOpen(&sd, 0, &e);
    if (e != SCI_ERR_OK)
        return 2;
    for (unsigned i = 0; i < count; ++i) {
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, first_id + i, 4096, NULL, NULL, 0, &e);
        if (e == SCI_ERR_OK)
            SCIPrepareSegment(seg, 0, 0, &e);
        if (e == SCI_ERR_OK)
            SCISetSegmentAvailable(seg, 0, 0, &e);
        if (e != SCI_ERR_OK) {
            fprintf(stderr, "node %u: segment %u: %s\n", node, first_id + i, SCIGetErrorString(e));
            return 3;
        }
    }
    char c = 'r';
    if (write(ready, &c, 1) != 1)
        return 4;
    while (read(0, &c, 1) > 0) /* until stdin closes */
        ;
    SCIClose(sd, 0, &e); /* releases the segments */
    SCITerminate();
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FABRIC_DIR COUNT NODE...\n", argv[0]);
        return 2;
    }
    const unsigned count = (unsigned)strtoul(argv[2], NULL, 10);
    const unsigned nodes = (unsigned)(argc - 3);
    int ready[2];
    if (pipe(ready) != 0)
        return 4;
    for (unsigned i = 0; i < nodes; ++i) {
        const unsigned share = count / nodes + (i < count % nodes ? 1 : 0);
        if (fork() == 0) {
            close(ready[0]);
            _exit(hold(argv[1], (unsigned)strtoul(argv[3 + i], NULL, 10), 1000 + i * 1000, share,
                       ready[1]));
        }
    }
    close(ready[1]);
    unsigned got = 0;
    char c;
    while (got < nodes && read(ready[0], &c, 1) == 1)
        ++got;
    if (got < nodes) {
        fprintf(stderr, "bench-monitor-segments: a node's client failed\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    int status, rc = 0;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = 1;
    return rc;
}
