/*
 * pipe_echo_server — a message-pipe echo server in C.
 *
 *     pipe_echo_server <name> [connections]
 *
 * Binds the named message pipe <name> (in $CULVERT_ROOT, default /dev/shm), accepts
 * [connections] clients (default 1) one after the other, and sends every message it
 * reads back unchanged until the client disconnects. Messages of any length (up to
 * the pipe's 1 MiB maximum) are read with a fixed buffer: culvert_pipe_read_message
 * sets `more` while the message continues (Windows' ERROR_MORE_DATA), and nothing is
 * lost between the pieces.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "culvert.h"

static int fail(const char *what, CulvertStatus status) {
    fprintf(stderr, "pipe_echo_server: %s: %s: %s\n", what, culvert_status_name(status),
            culvert_last_error_message());
    return 1;
}

/* Echoes messages on one connection until the client goes; returns the count or -1.
 * Stores the client's process id in *pid once it is known. */
static long echo(CulvertPipe *pipe, uint32_t *pid) {
    size_t cap = 64 * 1024, len = 0;
    uint8_t *msg = malloc(cap);
    long echoed = 0;
    if (msg == NULL) return -1;
    for (;;) {
        size_t n = 0;
        bool more = false;
        CulvertStatus s = culvert_pipe_read_message(pipe, msg + len, cap - len, &n, &more);
        if (s == CULVERT_E_CLOSED || s == CULVERT_E_PEER_DIED) break; /* end of stream */
        if (s != CULVERT_OK) {
            fail("read_message", s);
            echoed = -1;
            break;
        }
        if (*pid == 0) culvert_pipe_peer_pid(pipe, pid);
        len += n;
        if (more) { /* the rest of the message comes with the next read */
            if (len == cap) {
                uint8_t *bigger = realloc(msg, cap * 2);
                if (bigger == NULL) {
                    echoed = -1;
                    break;
                }
                msg = bigger;
                cap *= 2;
            }
            continue;
        }
        s = culvert_pipe_write(pipe, msg, len, NULL);
        if (s != CULVERT_OK) {
            fail("write", s);
            echoed = -1;
            break;
        }
        len = 0;
        echoed++;
    }
    free(msg);
    return echoed;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "echo";
    long connections = argc > 2 ? atol(argv[2]) : 1;

    CulvertPipeOptions opts;
    culvert_pipe_options_default(&opts);
    opts.mode = CULVERT_PIPE_MESSAGE;
    opts.max_instances = 4;

    CulvertPipeServer *server = NULL;
    CulvertStatus s = culvert_pipe_server_bind(name, &opts, &server);
    if (s != CULVERT_OK) return fail("bind", s);

    int rc = 0;
    for (long c = 0; c < connections; c++) {
        CulvertPipe *pipe = NULL;
        s = culvert_pipe_server_accept(server, 30000, &pipe);
        if (s != CULVERT_OK) {
            rc = fail("accept", s);
            break;
        }
        uint32_t pid = 0;
        long echoed = echo(pipe, &pid);
        culvert_pipe_close(pipe);
        if (echoed < 0) {
            rc = 1;
            break;
        }
        printf("c pipe_echo_server: echoed %ld messages to pid %u\n", echoed, (unsigned)pid);
    }
    culvert_pipe_server_close(server);
    return rc;
}
