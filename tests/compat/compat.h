/*
 * compat.h: what the compatibility programs share. Each program is one API area, written
 * against the public SISCI headers only, as a SISCI user would; it compiles as C99 and as C++.
 * A program runs on a 2-node fabric (nodes 4 and 8, names "alpha" and "beta"; see
 * run_compat.sh): it forks, the parent is node 4, the child node 8, and the two take turns
 * through a pair of pipes. Exit status 0: every check passed.
 */
#ifndef DIS_COMPAT_H
#define DIS_COMPAT_H

#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* usleep, MAP_ANONYMOUS */

#include <dis_types.h>
#include <sisci_api.h>
#include <sisci_error.h>
#include <sisci_types.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_A 4u
#define NODE_B 8u
#define ADAPTER 0u

static int compat_failures = 0;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: node %u: check failed: %s\n", __FILE__, __LINE__, compat_node, \
                    #cond);                                                                        \
            ++compat_failures;                                                                     \
        }                                                                                          \
    } while (0)

/* A call's *error is the expected code (the text names it on failure). */
#define EXPECT_ERR(err, want)                                                                      \
    do {                                                                                           \
        if ((err) != (want)) {                                                                     \
            fprintf(stderr, "%s:%d: node %u: got 0x%x (%s), want %s\n", __FILE__, __LINE__,        \
                    compat_node, (unsigned)(err), SCIGetErrorString(err), #want);                  \
            ++compat_failures;                                                                     \
        }                                                                                          \
    } while (0)
#define EXPECT_OK(err) EXPECT_ERR(err, SCI_ERR_OK)

static unsigned int compat_node = 0;
static int compat_to_peer = -1;
static int compat_from_peer = -1;

/* Turn taking: post() lets the peer's wait_peer() return. */
static inline void post(void) {
    char c = 1;
    if (write(compat_to_peer, &c, 1) != 1) {
        ++compat_failures;
    }
}

/* Waits up to 30 s for the peer's post(); 0 when it came. */
static inline int wait_peer(void) {
    struct pollfd p;
    char c;
    p.fd = compat_from_peer;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 30000) != 1 || read(compat_from_peer, &c, 1) != 1) {
        fprintf(stderr, "node %u: the peer did not answer\n", compat_node);
        ++compat_failures;
        return -1;
    }
    return 0;
}

/* Runs node_a as node 4 and node_b as node 8 (a child process), each between SCIInitialize
 * and SCITerminate; the exit status of the program. */
static inline int run_two_nodes(void (*node_a)(void), void (*node_b)(void)) {
    int ab[2];
    int ba[2];
    pid_t child;
    int status = 0;
    sci_error_t err;
    if (pipe(ab) != 0 || pipe(ba) != 0) {
        perror("pipe");
        return 2;
    }
    child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    compat_node = child == 0 ? NODE_B : NODE_A;
    setenv("DIS_NODE_ID", child == 0 ? "8" : "4", 1);
    compat_to_peer = child == 0 ? ba[1] : ab[1];
    compat_from_peer = child == 0 ? ab[0] : ba[0];
    SCIInitialize(SCI_NO_FLAGS, &err);
    EXPECT_OK(err);
    if (err == SCI_ERR_OK) {
        (child == 0 ? node_b : node_a)();
        SCITerminate();
    }
    if (child == 0) {
        _exit(compat_failures == 0 ? 0 : 1);
    }
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "node 8 failed (status 0x%x)\n", (unsigned)status);
        ++compat_failures;
    }
    if (compat_failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", compat_failures);
    }
    return compat_failures == 0 ? 0 : 1;
}

#endif /* DIS_COMPAT_H */
