/*
 * port_server — an ALPC-like port server in C (called from Rust by
 * `rust_peer port-client`, or from C by tests/port_client.c).
 *
 *     port_server <name>
 *
 * Creates the port <name>, accepts one client (answering its connect payload with
 * "welcome"), then serves: each request is answered with its bytes inverted (XOR
 * 0xFF), datagrams are counted, and the request "quit" is answered with
 * "bye <datagrams>" before the server exits.
 *
 * Payloads above the port's inline limit (4064 bytes by default) arrive in a
 * shared-memory view: culvert_incoming_payload points straight into it (no copy), and
 * the block goes back to the client's heap when the incoming message is freed. Their
 * replies are written in place into a loan of the server's heap
 * (culvert_incoming_loan_reply, culvert_port_reply_loaned): no copy either.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "culvert.h"

static int fail(const char *what, CulvertStatus status) {
    fprintf(stderr, "port_server: %s: %s: %s\n", what, culvert_status_name(status),
            culvert_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "calc";
    CulvertPortServer *server = NULL;
    CulvertStatus s = culvert_port_server_create(name, NULL, &server);
    if (s != CULVERT_OK) return fail("create", s);

    /* One client: look at its connect payload, then accept it. */
    CulvertConnectRequest *request = NULL;
    if ((s = culvert_port_listen(server, 30000, &request)) != CULVERT_OK) return fail("listen", s);
    CulvertBytes hello;
    uint32_t pid = 0;
    culvert_connect_request_info(request, &hello, &pid);
    printf("c port_server: connect from pid %u: \"%.*s\"\n", (unsigned)pid, (int)hello.len,
           (const char *)hello.data);
    if ((s = culvert_port_accept(request, "welcome", 7, NULL)) != CULVERT_OK)
        return fail("accept", s);

    size_t cap = 0;
    uint8_t *answer = NULL;
    long datagrams = 0, requests = 0, views = 0;
    int rc = 0;
    for (;;) {
        CulvertIncoming *in = NULL;
        if ((s = culvert_port_receive(server, 30000, &in)) != CULVERT_OK) {
            rc = fail("receive", s);
            break;
        }
        CulvertIncomingInfo info;
        CulvertBytes payload;
        culvert_incoming_info(in, &info);
        culvert_incoming_payload(in, &payload);
        if (info.kind == CULVERT_MESSAGE_DATAGRAM) {
            datagrams++;
            culvert_incoming_free(in);
            continue;
        }
        requests++;
        if (payload.is_view) views++;
        int quit = payload.len == 4 && memcmp(payload.data, "quit", 4) == 0;
        if (quit) {
            char bye[32];
            int n = snprintf(bye, sizeof bye, "bye %ld", datagrams);
            s = culvert_port_reply(in, bye, (size_t)n);
        } else if (payload.is_view) {
            CulvertLoan *loan = NULL;
            uint8_t *room = NULL;
            size_t room_len = 0;
            s = culvert_incoming_loan_reply(in, payload.len, 30000, &loan);
            if (s == CULVERT_OK) s = culvert_loan_data(loan, &room, &room_len);
            if (s == CULVERT_OK) {
                for (size_t i = 0; i < room_len; i++) room[i] = (uint8_t)(payload.data[i] ^ 0xFF);
                s = culvert_port_reply_loaned(in, loan);
            } else {
                culvert_loan_free(loan);
            }
        } else {
            if (payload.len > cap) {
                uint8_t *bigger = realloc(answer, payload.len);
                if (bigger == NULL) {
                    culvert_incoming_free(in);
                    rc = 1;
                    break;
                }
                answer = bigger;
                cap = payload.len;
            }
            for (size_t i = 0; i < payload.len; i++) answer[i] = (uint8_t)(payload.data[i] ^ 0xFF);
            s = culvert_port_reply(in, answer, payload.len);
        }
        culvert_incoming_free(in); /* returns the view block, if any */
        if (s != CULVERT_OK && s != CULVERT_E_CANCELLED) {
            rc = fail("reply", s);
            break;
        }
        if (quit) break;
    }
    printf("c port_server: %ld requests (%ld in views), %ld datagrams\n", requests, views,
           datagrams);
    free(answer);
    /* Give the client a moment to collect the last reply before the port closes. */
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    culvert_port_server_close(server);
    return rc;
}
