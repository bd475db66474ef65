/*
 * pipe_echo_client — a message-pipe client in C (pairs with pipe_echo_server, or with
 * any server that echoes each message).
 *
 *     pipe_echo_client <name>
 *
 * Connects to the named pipe <name> (retrying while the server is not up yet), sends
 * messages of many sizes and checks each echo; reads replies with a small buffer to
 * show the "more data" flag, peeks at a waiting message, then switches to byte read
 * mode and reads two echoed messages as one byte stream. Exits 0 when all is well.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "culvert.h"

static int fail(const char *what, CulvertStatus status) {
    fprintf(stderr, "pipe_echo_client: %s: %s: %s\n", what, culvert_status_name(status),
            culvert_last_error_message());
    return 1;
}

static void pattern(uint8_t *buf, size_t len, size_t seed) {
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)((i * 31 + seed * 7) % 251);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads one whole message into buf (cap bytes) in chunk-byte pieces. */
static CulvertStatus read_whole(CulvertPipe *pipe, uint8_t *buf, size_t cap, size_t chunk,
                                size_t *len, size_t *pieces) {
    size_t got = 0;
    *pieces = 0;
    for (;;) {
        size_t want = cap - got < chunk ? cap - got : chunk;
        size_t n = 0;
        bool more = false;
        CulvertStatus s = culvert_pipe_read_message(pipe, buf + got, want, &n, &more);
        if (s != CULVERT_OK) return s;
        got += n;
        (*pieces)++;
        if (!more) break;
        if (got == cap) return CULVERT_E_BUFFER_TOO_SMALL;
    }
    *len = got;
    return CULVERT_OK;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "echo";
    CulvertPipe *pipe = NULL;
    CulvertStatus s;
    for (int attempt = 0;; attempt++) { /* the server may not be up yet */
        s = culvert_pipe_connect(name, 10000, &pipe);
        if (s != CULVERT_E_NOT_FOUND || attempt >= 2000) break;
        sleep_ms(10);
    }
    if (s != CULVERT_OK) return fail("connect", s);

    const size_t max = 1 << 20;
    uint8_t *sent = malloc(max), *got = malloc(max);
    if (sent == NULL || got == NULL) return 1;

    /* Four 128-byte writes come back as four 128-byte messages. */
    for (size_t i = 0; i < 4; i++) {
        pattern(sent, 128, i);
        if ((s = culvert_pipe_write(pipe, sent, 128, NULL)) != CULVERT_OK) return fail("write", s);
    }
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0, pieces = 0;
        if ((s = read_whole(pipe, got, max, 4096, &len, &pieces)) != CULVERT_OK)
            return fail("read 128", s);
        pattern(sent, 128, i);
        if (len != 128 || memcmp(sent, got, 128) != 0) {
            fprintf(stderr, "pipe_echo_client: 128-byte message %zu came back wrong\n", i);
            return 1;
        }
    }

    /* Many sizes, read with a 1000-byte buffer: long ones come in pieces. */
    const size_t sizes[] = {0, 1, 999, 1000, 1001, 16 * 1024, 200 * 1024, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], len = 0, pieces = 0;
        pattern(sent, n, k + 10);
        if ((s = culvert_pipe_write(pipe, sent, n, NULL)) != CULVERT_OK) return fail("write", s);
        if (k == 2) { /* wait for the echo, then peek at it without consuming it */
            CulvertPeek peek = {0};
            for (int i = 0; i < 5000 && !peek.has_message; i++) {
                if ((s = culvert_pipe_peek(pipe, &peek)) != CULVERT_OK) return fail("peek", s);
                if (!peek.has_message) sleep_ms(1);
            }
            if (!peek.has_message || peek.next_message_len != n) {
                fprintf(stderr, "pipe_echo_client: peek saw %zu, expected %zu\n",
                        peek.next_message_len, n);
                return 1;
            }
        }
        if ((s = read_whole(pipe, got, max, 1000, &len, &pieces)) != CULVERT_OK)
            return fail("read", s);
        size_t expect_pieces = n == 0 ? 1 : (n + 999) / 1000;
        if (len != n || memcmp(sent, got, n) != 0 || pieces != expect_pieces) {
            fprintf(stderr, "pipe_echo_client: %zu-byte message came back as %zu bytes in %zu pieces\n",
                    n, len, pieces);
            return 1;
        }
    }

    /* Byte read mode on a message pipe: two echoed messages read as one stream. */
    if ((s = culvert_pipe_write(pipe, "hello ", 6, NULL)) != CULVERT_OK) return fail("write", s);
    if ((s = culvert_pipe_write(pipe, "world", 5, NULL)) != CULVERT_OK) return fail("write", s);
    if ((s = culvert_pipe_set_read_mode(pipe, CULVERT_READ_BYTE)) != CULVERT_OK)
        return fail("set_read_mode", s);
    size_t total = 0;
    while (total < 11) {
        size_t n = 0;
        if ((s = culvert_pipe_read(pipe, got + total, 64, &n)) != CULVERT_OK) return fail("read", s);
        if (n == 0) {
            fprintf(stderr, "pipe_echo_client: unexpected end of stream\n");
            return 1;
        }
        total += n;
    }
    if (total != 11 || memcmp(got, "hello world", 11) != 0) {
        fprintf(stderr, "pipe_echo_client: byte-mode read got %zu bytes\n", total);
        return 1;
    }

    culvert_pipe_close(pipe);
    free(sent);
    free(got);
    printf("c pipe_echo_client: all echoes correct\n");
    return 0;
}
