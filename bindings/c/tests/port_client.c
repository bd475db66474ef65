/*
 * port_client — a C client of the Rust port server (`rust_peer port-server`).
 *
 *     port_client <name>
 *     port_client <name> expect-crash
 *
 * Connects with "hello from C", then: a small inline call, a 1 MiB call whose request
 * and reply both travel in shared-memory views (checked byte for byte, read in
 * place), the same with the request written in place into a loan of the client's
 * heap, two asynchronous calls collected out of order, a cancelled call, three
 * datagrams, and "quit" (answered "bye 3").
 *
 * With `expect-crash` (against `rust_peer port-server-crash`, which dies holding the
 * request): the call fails with CULVERT_E_PEER_DIED instead of hanging.
 */
#include "common.h"

static void expect_reply(CulvertReply *reply, const uint8_t *request, size_t len, bool view) {
    CulvertBytes p;
    OK(culvert_reply_payload(reply, &p));
    CHECK(p.len == len);
    CHECK(p.is_view == view);
    for (size_t i = 0; i < len; i++) CHECK(p.data[i] == inverted(request[i]));
}

int main(int argc, char **argv) {
    test_name = "port_client";
    const char *name = argc > 1 ? argv[1] : "calc";
    CulvertPortClient *client = NULL;
    char answer[64];
    size_t answer_len = 0;
    CulvertStatus s;
    for (int attempt = 0;; attempt++) {
        s = culvert_port_connect(name, "hello from C", 12, 10000, answer, sizeof answer,
                                 &answer_len, &client);
        if (s != CULVERT_E_NOT_FOUND || attempt >= 2000) break;
        sleep_ms(10);
    }
    OK(s);
    CHECK(answer_len == 7 && memcmp(answer, "welcome", 7) == 0);

    if (argc > 2 && strcmp(argv[2], "expect-crash") == 0) {
        CulvertReply *reply = NULL;
        double t0 = now_s();
        EXPECT_STATUS(culvert_port_call(client, "are you there?", 14, 30000, &reply),
                      CULVERT_E_PEER_DIED);
        /* A second call fails at once: the connection knows its server is gone. */
        CulvertStatus again = culvert_port_call(client, "x", 1, 30000, &reply);
        CHECK(again == CULVERT_E_PEER_DIED || again == CULVERT_E_CLOSED);
        printf("c port_client: the server died; the call failed with CULVERT_E_PEER_DIED "
               "after %.0f ms\n", (now_s() - t0) * 1e3);
        OK(culvert_port_client_close(client));
        return 0;
    }

    size_t max_message = 0, inline_max = 0;
    OK(culvert_port_client_limits(client, &max_message, &inline_max));
    CHECK(max_message == (1u << 20));

    /* Inline call. */
    CulvertReply *reply = NULL;
    OK(culvert_port_call(client, "abc", 3, 10000, &reply));
    expect_reply(reply, (const uint8_t *)"abc", 3, false);
    OK(culvert_reply_free(reply));

    /* 1 MiB: request and reply in views. */
    const size_t big = 1 << 20;
    uint8_t *request = malloc(big);
    CHECK(request != NULL);
    pattern(request, big, 3);
    double t0 = now_s();
    OK(culvert_port_call(client, request, big, 20000, &reply));
    double took = now_s() - t0;
    expect_reply(reply, request, big, true);
    OK(culvert_reply_free(reply));

    /* 1 MiB written in place into a loan of our heap. */
    CulvertLoan *loan = NULL;
    uint8_t *room = NULL;
    size_t room_len = 0;
    OK(culvert_port_loan(client, big, 10000, &loan));
    OK(culvert_loan_data(loan, &room, &room_len));
    CHECK(room_len == big);
    pattern(request, big, 4);
    memcpy(room, request, big);
    OK(culvert_port_call_loaned(client, loan, 20000, &reply));
    expect_reply(reply, request, big, true);
    OK(culvert_reply_free(reply));

    /* Asynchronous calls, collected out of order. */
    CulvertPendingCall *a = NULL, *b = NULL;
    OK(culvert_port_call_async(client, "first", 5, &a));
    OK(culvert_port_call_async(client, "second", 6, &b));
    uint64_t ida = 0, idb = 0;
    OK(culvert_pending_call_id(a, &ida));
    OK(culvert_pending_call_id(b, &idb));
    CHECK(ida != idb);
    OK(culvert_pending_call_wait(b, 10000, &reply));
    expect_reply(reply, (const uint8_t *)"second", 6, false);
    OK(culvert_reply_free(reply));
    OK(culvert_pending_call_wait(a, 10000, &reply));
    expect_reply(reply, (const uint8_t *)"first", 5, false);
    OK(culvert_reply_free(reply));
    EXPECT_STATUS(culvert_pending_call_wait(a, 0, &reply), CULVERT_E_INVALID_ARGUMENT);
    OK(culvert_pending_call_free(a));
    OK(culvert_pending_call_free(b));

    /* A cancelled call: later waits say so. */
    CulvertPendingCall *c = NULL;
    OK(culvert_port_call_async(client, "never mind", 10, &c));
    OK(culvert_pending_call_cancel(c));
    EXPECT_STATUS(culvert_pending_call_wait(c, 1000, &reply), CULVERT_E_CANCELLED);
    OK(culvert_pending_call_free(c));

    for (uint8_t i = 0; i < 3; i++) OK(culvert_port_send_datagram(client, &i, 1, 10000));

    OK(culvert_port_call(client, "quit", 4, 10000, &reply));
    CulvertBytes bye;
    OK(culvert_reply_payload(reply, &bye));
    CHECK(bye.len == 5 && memcmp(bye.data, "bye 3", 5) == 0);
    OK(culvert_reply_free(reply));
    OK(culvert_port_client_close(client));
    free(request);
    printf("c port_client: all calls correct (1 MiB view call in %.2f ms)\n", took * 1e3);
    (void)inline_max;
    return 0;
}
