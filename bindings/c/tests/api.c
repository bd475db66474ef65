/*
 * api — in-process tests of the C API: the conventions (status codes, last error,
 * NULL arguments, NULL-tolerant _close), sections, anonymous pipes (message and byte
 * mode, the "more data" flag, peek, read modes, timeouts, end of stream), mailslots
 * (timeouts, info, too-small buffers, Full, broadcast and overrun) and ports (reject,
 * accept, calls, datagrams, no-reply, double reply) with a server thread.
 */
#include "common.h"

#include <pthread.h>

static void expect_message_contains(const char *part) {
    const char *m = culvert_last_error_message();
    if (strstr(m, part) == NULL) {
        fprintf(stderr, "api: last error \"%s\" lacks \"%s\"\n", m, part);
        exit(1);
    }
}

/* culvert_version() is "MAJOR.MINOR.PATCH[...]" and agrees with the header's macros. */
static void version(void) {
    const char *v = culvert_version();
    CHECK(v != NULL);
    CHECK(v == culvert_version()); /* static */
    char expected[64];
    snprintf(expected, sizeof expected, "%u.%u.%u", (unsigned)CULVERT_VERSION_MAJOR,
             (unsigned)CULVERT_VERSION_MINOR, (unsigned)CULVERT_VERSION_PATCH);
    size_t n = strlen(expected);
    if (strncmp(v, expected, n) != 0 || (v[n] != '\0' && v[n] != '-' && v[n] != '+')) {
        fprintf(stderr, "api: culvert_version() is \"%s\", the header says %s\n", v, expected);
        exit(1);
    }
}

static void conventions(void) {
    CHECK(strcmp(culvert_status_name(CULVERT_E_TIMEOUT), "CULVERT_E_TIMEOUT") == 0);
    CHECK(strcmp(culvert_status_name(12345), "CULVERT_E_UNKNOWN") == 0);
    CHECK(culvert_last_error_message() != NULL);

    /* NULL pointers and bad lengths are errors, never crashes. */
    CulvertPipe *p = NULL;
    EXPECT_STATUS(culvert_pipe_connect(NULL, 0, &p), CULVERT_E_INVALID_ARGUMENT);
    expect_message_contains("culvert_pipe_connect: name is NULL");
    CHECK(culvert_last_error_status() == CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_pipe_connect("x", 0, NULL), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_pipe_write(NULL, "x", 1, NULL), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_pipe_anonymous(7, &p, &p), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_section_data(NULL, NULL), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_port_reply(NULL, NULL, 0), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_port_accept(NULL, NULL, 0, NULL), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_mailslot_read(NULL, NULL, 0, NULL), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_section_from_fd(-1, NULL), CULVERT_E_INVALID_ARGUMENT);

    /* Names. */
    CulvertSection *s = NULL;
    EXPECT_STATUS(culvert_section_create("a/b", 4096, 0, &s), CULVERT_E_INVALID_NAME);
    EXPECT_STATUS(culvert_section_create("\xff", 4096, 0, &s), CULVERT_E_INVALID_NAME);
    EXPECT_STATUS(culvert_pipe_connect("no-such-pipe", 0, &p), CULVERT_E_NOT_FOUND);
    expect_message_contains("no-such-pipe");
    CulvertMailslotWriter *w = NULL;
    EXPECT_STATUS(culvert_mailslot_writer_open("no-such-slot", &w), CULVERT_E_NOT_FOUND);
    CulvertPortClient *c = NULL;
    EXPECT_STATUS(culvert_port_connect("no-such-port", NULL, 0, 100, NULL, 0, NULL, &c),
                  CULVERT_E_NOT_FOUND);
    EXPECT_STATUS(culvert_broadcast("no-such-group", "x", 1), CULVERT_E_NOT_FOUND);

    /* Every _close / _free accepts NULL. */
    OK(culvert_section_close(NULL));
    OK(culvert_pipe_close(NULL));
    OK(culvert_pipe_server_close(NULL));
    OK(culvert_mailslot_close(NULL));
    OK(culvert_mailslot_writer_close(NULL));
    OK(culvert_broadcast_sender_close(NULL));
    OK(culvert_port_server_close(NULL));
    OK(culvert_port_client_close(NULL));
    OK(culvert_connect_request_free(NULL));
    OK(culvert_incoming_free(NULL));
    OK(culvert_pending_call_free(NULL));
    OK(culvert_reply_free(NULL));
}

static void sections(void) {
    CulvertSection *a = NULL, *b = NULL;
    OK(culvert_section_create("api-sect", 10000, 0600, &a));
    EXPECT_STATUS(culvert_section_create("api-sect", 10000, 0, &b), CULVERT_E_ALREADY_EXISTS);
    EXPECT_STATUS(culvert_section_create("api-sect2", 0, 0, &b), CULVERT_E_INVALID_ARGUMENT);
    CulvertSectionData da, db;
    OK(culvert_section_data(a, &da));
    CHECK(da.len >= 10000 && da.len % 4096 == 0);
    memcpy(da.data, "shared!", 8);
    OK(culvert_section_open("api-sect", &b));
    OK(culvert_section_data(b, &db));
    CHECK(db.len == da.len && db.data != da.data);
    CHECK(memcmp(db.data, "shared!", 8) == 0);
    bool creator = false;
    OK(culvert_section_is_creator(a, &creator));
    CHECK(creator);
    OK(culvert_section_is_creator(b, &creator));
    CHECK(!creator);
    OK(culvert_section_unlink("api-sect"));
    EXPECT_STATUS(culvert_section_unlink("api-sect"), CULVERT_E_NOT_FOUND);
    CulvertSection *c = NULL;
    EXPECT_STATUS(culvert_section_open("api-sect", &c), CULVERT_E_NOT_FOUND);
    /* Mappings outlive the name. */
    ((char *)db.data)[0] = 'S';
    CHECK(((char *)da.data)[0] == 'S');
    OK(culvert_section_close(b));
    OK(culvert_section_close(a));

    /* Anonymous sections travel by descriptor. */
    OK(culvert_section_anonymous(4096, &a));
    int fd = -1;
    OK(culvert_section_fd(a, &fd));
    CHECK(fd >= 0);
    OK(culvert_section_from_fd(fd, &b));
    OK(culvert_section_data(a, &da));
    OK(culvert_section_data(b, &db));
    ((uint8_t *)da.data)[100] = 42;
    CHECK(((uint8_t *)db.data)[100] == 42);
    OK(culvert_section_close(a));
    OK(culvert_section_close(b));
}

static void message_pipes(void) {
    CulvertPipe *a = NULL, *b = NULL;
    OK(culvert_pipe_anonymous(CULVERT_PIPE_MESSAGE, &a, &b));
    uint8_t buf[1024], msg[128];
    size_t n = 0;
    bool more = true;
    /* Four 128-byte writes are read as four 128-byte messages. */
    for (size_t i = 0; i < 4; i++) {
        pattern(msg, 128, i);
        OK(culvert_pipe_write(a, msg, 128, &n));
        CHECK(n == 128);
    }
    for (size_t i = 0; i < 4; i++) {
        OK(culvert_pipe_read(b, buf, sizeof buf, &n));
        pattern(msg, 128, i);
        CHECK(n == 128 && memcmp(buf, msg, 128) == 0);
    }
    /* A short buffer: the rest of the message comes next, with `more`. */
    OK(culvert_pipe_write(a, "ping-pong", 9, NULL));
    CulvertPeek peek;
    OK(culvert_pipe_peek(b, &peek));
    CHECK(peek.has_message && peek.next_message_len == 9 && peek.bytes_available == 9);
    OK(culvert_pipe_read_message(b, buf, 4, &n, &more));
    CHECK(n == 4 && more && memcmp(buf, "ping", 4) == 0);
    OK(culvert_pipe_peek(b, &peek));
    CHECK(peek.has_message && peek.next_message_len == 5);
    OK(culvert_pipe_read_message(b, buf, 4, &n, &more));
    CHECK(n == 4 && more && memcmp(buf, "-pon", 4) == 0);
    OK(culvert_pipe_read_message(b, buf, 4, &n, &more));
    CHECK(n == 1 && !more && buf[0] == 'g');
    OK(culvert_pipe_peek(b, &peek));
    CHECK(!peek.has_message && peek.bytes_available == 0);
    /* Zero-length messages. */
    OK(culvert_pipe_write(a, NULL, 0, NULL));
    OK(culvert_pipe_read_message(b, buf, sizeof buf, &n, &more));
    CHECK(n == 0 && !more);
    /* Byte read mode reads across message boundaries. */
    OK(culvert_pipe_write(a, "ab", 2, NULL));
    OK(culvert_pipe_write(a, "cd", 2, NULL));
    OK(culvert_pipe_set_read_mode(b, CULVERT_READ_BYTE));
    OK(culvert_pipe_read(b, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "abcd", 4) == 0);
    EXPECT_STATUS(culvert_pipe_set_read_mode(b, 9), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_pipe_read(b, buf, 0, &n), CULVERT_E_INVALID_ARGUMENT);
    /* Timeouts and non-blocking mode. */
    OK(culvert_pipe_set_timeouts(b, 20, -1));
    EXPECT_STATUS(culvert_pipe_read(b, buf, sizeof buf, &n), CULVERT_E_TIMEOUT);
    OK(culvert_pipe_set_nonblocking(b, true));
    EXPECT_STATUS(culvert_pipe_read_message(b, buf, sizeof buf, &n, NULL), CULVERT_E_WOULD_BLOCK);
    OK(culvert_pipe_set_nonblocking(b, false));
    /* Transact with a message already waiting: busy, nothing sent. */
    OK(culvert_pipe_write(b, "answer", 6, NULL));
    EXPECT_STATUS(culvert_pipe_transact(a, "question", 8, buf, sizeof buf, &n, &more),
                  CULVERT_E_BUSY);
    OK(culvert_pipe_read_message(a, buf, sizeof buf, &n, &more));
    CHECK(n == 6 && !more && memcmp(buf, "answer", 6) == 0);
    OK(culvert_pipe_peek(b, &peek));
    CHECK(!peek.has_message && peek.bytes_available == 0);
    /* Too large: nothing is written. */
    uint8_t *huge = calloc(1, (1 << 20) + 1);
    CHECK(huge != NULL);
    EXPECT_STATUS(culvert_pipe_write(a, huge, (1 << 20) + 1, NULL), CULVERT_E_MESSAGE_TOO_LARGE);
    CHECK(culvert_last_error_detail() == (1 << 20));
    free(huge);
    uint32_t pid = 0;
    OK(culvert_pipe_peer_pid(a, &pid));
    CHECK(pid != 0);
    /* End of stream. */
    OK(culvert_pipe_write(a, "last", 4, NULL));
    OK(culvert_pipe_close(a));
    OK(culvert_pipe_set_read_mode(b, CULVERT_READ_MESSAGE));
    OK(culvert_pipe_read(b, buf, sizeof buf, &n));
    CHECK(n == 4);
    OK(culvert_pipe_read(b, buf, sizeof buf, &n));
    CHECK(n == 0);
    EXPECT_STATUS(culvert_pipe_read_message(b, buf, sizeof buf, &n, &more), CULVERT_E_CLOSED);
    EXPECT_STATUS(culvert_pipe_write(b, "x", 1, NULL), CULVERT_E_CLOSED);
    OK(culvert_pipe_close(b));

    /* Byte pipes: message read mode is refused; writes merge. */
    OK(culvert_pipe_anonymous(CULVERT_PIPE_BYTE, &a, &b));
    EXPECT_STATUS(culvert_pipe_set_read_mode(b, CULVERT_READ_MESSAGE), CULVERT_E_INVALID_ARGUMENT);
    for (int i = 0; i < 4; i++) OK(culvert_pipe_write(a, "0123456789", 10, NULL));
    size_t total = 0;
    while (total < 40) {
        OK(culvert_pipe_read(b, buf + total, sizeof buf - total, &n));
        CHECK(n > 0);
        total += n;
    }
    CHECK(memcmp(buf + 30, "0123456789", 10) == 0);
    /* Half-close: b reads "end" then end of stream; a still reads what b writes. */
    OK(culvert_pipe_write(a, "end", 3, NULL));
    OK(culvert_pipe_shutdown_write(a));
    EXPECT_STATUS(culvert_pipe_write(a, "x", 1, NULL), CULVERT_E_CLOSED);
    OK(culvert_pipe_read(b, buf, sizeof buf, &n));
    CHECK(n == 3 && memcmp(buf, "end", 3) == 0);
    OK(culvert_pipe_read(b, buf, sizeof buf, &n));
    CHECK(n == 0);
    OK(culvert_pipe_write(b, "back", 4, NULL));
    OK(culvert_pipe_read(a, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "back", 4) == 0);
    OK(culvert_pipe_close(a));
    OK(culvert_pipe_close(b));
}

/* A named-pipe client on its own thread: connect waits for the server's accept. */
static void *pipe_client_thread(void *arg) {
    CulvertPipe **client = arg;
    OK(culvert_pipe_connect("api-pipe", 5000, client));
    OK(culvert_pipe_write(*client, "hi", 2, NULL));
    return NULL;
}

static void named_pipes(void) {
    CulvertPipeOptions opts;
    OK(culvert_pipe_options_default(&opts));
    CHECK(opts.mode == CULVERT_PIPE_BYTE && opts.max_instances == 16);
    opts.mode = CULVERT_PIPE_MESSAGE;
    opts.max_instances = 1;
    opts.default_timeout_ms = 50;
    CulvertPipeServer *server = NULL, *again = NULL;
    OK(culvert_pipe_server_bind("api-pipe", &opts, &server));
    EXPECT_STATUS(culvert_pipe_server_bind("api-pipe", &opts, &again), CULVERT_E_ALREADY_EXISTS);
    CulvertPipe *conn = NULL, *client = NULL, *second = NULL;
    EXPECT_STATUS(culvert_pipe_server_accept(server, 0, &conn), CULVERT_E_TIMEOUT);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pipe_client_thread, &client) == 0);
    OK(culvert_pipe_server_accept(server, 5000, &conn));
    CHECK(pthread_join(t, NULL) == 0);
    uint8_t buf[16];
    size_t n = 0;
    OK(culvert_pipe_read(conn, buf, sizeof buf, &n));
    CHECK(n == 2 && memcmp(buf, "hi", 2) == 0);
    uint32_t pid = 0;
    OK(culvert_pipe_peer_pid(conn, &pid));
    CHECK(pid != 0);
    /* The one instance is taken: the next client is busy after the default timeout. */
    EXPECT_STATUS(culvert_pipe_connect("api-pipe", CULVERT_PIPE_SERVER_DEFAULT_WAIT, &second), CULVERT_E_BUSY);
    OK(culvert_pipe_close(client));
    OK(culvert_pipe_close(conn));
    OK(culvert_pipe_server_close(server));
    EXPECT_STATUS(culvert_pipe_connect("api-pipe", 0, &client), CULVERT_E_NOT_FOUND);
}

static void mailslots(void) {
    CulvertMailslot *slot = NULL;
    OK(culvert_mailslot_create("api-slot", 64, 4, 0, &slot));
    CulvertMailslot *dup = NULL;
    EXPECT_STATUS(culvert_mailslot_create("api-slot", 64, 4, 0, &dup), CULVERT_E_ALREADY_EXISTS);
    uint8_t buf[64];
    size_t n = 0;
    EXPECT_STATUS(culvert_mailslot_read(slot, buf, sizeof buf, &n), CULVERT_E_TIMEOUT);
    CulvertMailslotWriter *w = NULL;
    OK(culvert_mailslot_writer_open("api-slot", &w));
    OK(culvert_mailslot_write(w, "disk ok", 7));
    CulvertMailslotInfo info;
    OK(culvert_mailslot_info(slot, &info));
    CHECK(info.has_message && info.next_message_size == 7 && info.message_count == 1);
    /* Too small a buffer: the message stays; *len says what it needs. */
    EXPECT_STATUS(culvert_mailslot_read(slot, buf, 3, &n), CULVERT_E_BUFFER_TOO_SMALL);
    CHECK(n == 7 && culvert_last_error_detail() == 7);
    OK(culvert_mailslot_read(slot, buf, sizeof buf, &n));
    CHECK(n == 7 && memcmp(buf, "disk ok", 7) == 0);
    /* Writes never block: a full mailslot drops and says so. */
    for (int i = 0; i < 4; i++) OK(culvert_mailslot_write(w, "x", 1));
    EXPECT_STATUS(culvert_mailslot_write(w, "lost", 4), CULVERT_E_FULL);
    OK(culvert_mailslot_info(slot, &info));
    CHECK(info.dropped == 1 && info.message_count == 4);
    uint8_t big[65] = {0};
    EXPECT_STATUS(culvert_mailslot_write(w, big, sizeof big), CULVERT_E_MESSAGE_TOO_LARGE);
    CHECK(culvert_last_error_detail() == 64);
    /* A read with a timeout waits, then gives up. */
    OK(culvert_mailslot_set_read_timeout(slot, 30));
    for (int i = 0; i < 4; i++) OK(culvert_mailslot_read(slot, buf, sizeof buf, &n));
    double t0 = now_s();
    EXPECT_STATUS(culvert_mailslot_read(slot, buf, sizeof buf, &n), CULVERT_E_TIMEOUT);
    CHECK(now_s() - t0 >= 0.025);
    OK(culvert_mailslot_close(slot));
    EXPECT_STATUS(culvert_mailslot_write(w, "gone", 4), CULVERT_E_CLOSED);
    OK(culvert_mailslot_writer_close(w));

    /* Broadcast groups: every reader gets every message; a slow one is told. */
    CulvertMailslot *r1 = NULL, *r2 = NULL;
    OK(culvert_mailslot_join("api-group", 32, 2, 0, &r1));
    OK(culvert_mailslot_join("api-group", 0, 0, 0, &r2));
    OK(culvert_broadcast("api-group", "fire", 4));
    OK(culvert_mailslot_read(r1, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "fire", 4) == 0);
    OK(culvert_mailslot_read(r2, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "fire", 4) == 0);
    CulvertBroadcastSender *sender = NULL;
    OK(culvert_broadcast_sender_open("api-group", &sender));
    size_t readers = 0;
    OK(culvert_broadcast_sender_readers(sender, &readers));
    CHECK(readers == 2);
    for (uint8_t i = 0; i < 5; i++) OK(culvert_broadcast_sender_send(sender, &i, 1));
    /* r1 is 5 behind a 2-slot ring: it missed 3, then reads the last 2. */
    EXPECT_STATUS(culvert_mailslot_read(r1, buf, sizeof buf, &n), CULVERT_E_OVERRUN);
    CHECK(culvert_last_error_detail() == 3);
    OK(culvert_mailslot_read(r1, buf, sizeof buf, &n));
    CHECK(n == 1 && buf[0] == 3);
    OK(culvert_mailslot_read(r1, buf, sizeof buf, &n));
    CHECK(n == 1 && buf[0] == 4);
    EXPECT_STATUS(culvert_mailslot_read(r1, buf, sizeof buf, &n), CULVERT_E_TIMEOUT);
    OK(culvert_broadcast_sender_close(sender));
    OK(culvert_mailslot_close(r1));
    OK(culvert_mailslot_close(r2));
}

/* The port server thread: rejects the first client, accepts the second, then serves
 * until "quit". Each request is answered with its bytes inverted. */
static void *port_server_thread(void *arg) {
    CulvertPortServer *server = arg;
    CulvertConnectRequest *req = NULL;
    OK(culvert_port_listen(server, 10000, &req));
    OK(culvert_port_reject(req, "go away", 7));
    OK(culvert_port_listen(server, 10000, &req));
    CulvertBytes hello;
    uint32_t pid = 0;
    OK(culvert_connect_request_info(req, &hello, &pid));
    CHECK(hello.len == 5 && memcmp(hello.data, "again", 5) == 0);
    CulvertConnectionId id;
    OK(culvert_port_accept(req, "ok", 2, &id));
    for (;;) {
        CulvertIncoming *in = NULL;
        OK(culvert_port_receive(server, 10000, &in));
        CulvertIncomingInfo info;
        CulvertBytes p;
        OK(culvert_incoming_info(in, &info));
        OK(culvert_incoming_payload(in, &p));
        CHECK(info.connection.index == id.index && info.connection.epoch == id.epoch);
        if (info.kind == CULVERT_MESSAGE_DATAGRAM) {
            CHECK(p.len == 4 && memcmp(p.data, "note", 4) == 0);
            EXPECT_STATUS(culvert_port_reply(in, "x", 1), CULVERT_E_INVALID_ARGUMENT);
        } else if (p.len == 8 && memcmp(p.data, "no-reply", 8) == 0) {
            /* freed without a reply: the caller gets CULVERT_E_CLOSED */
        } else {
            bool quit = p.len == 4 && memcmp(p.data, "quit", 4) == 0;
            if (p.len > 4064) {
                /* A large reply is written in place into a loan of the server's heap. */
                CulvertLoan *loan = NULL;
                uint8_t *room = NULL;
                size_t room_len = 0;
                OK(culvert_incoming_loan_reply(in, p.len, 10000, &loan));
                OK(culvert_loan_data(loan, &room, &room_len));
                CHECK(room != NULL && room_len == p.len);
                for (size_t i = 0; i < p.len; i++) room[i] = inverted(p.data[i]);
                OK(culvert_port_reply_loaned(in, loan));
                EXPECT_STATUS(culvert_port_reply(in, "x", 1), CULVERT_E_INVALID_ARGUMENT);
                OK(culvert_incoming_free(in));
                continue;
            }
            uint8_t *answer = malloc(p.len + 1);
            CHECK(answer != NULL);
            for (size_t i = 0; i < p.len; i++) answer[i] = inverted(p.data[i]);
            OK(culvert_port_reply(in, answer, p.len));
            EXPECT_STATUS(culvert_port_reply(in, answer, p.len), CULVERT_E_INVALID_ARGUMENT);
            /* The payload stays readable after the reply. */
            if (p.len > 0) CHECK(inverted(p.data[0]) == answer[0]);
            free(answer);
            if (quit) {
                OK(culvert_incoming_free(in));
                break;
            }
        }
        OK(culvert_incoming_free(in));
    }
    return NULL;
}

static void ports(void) {
    CulvertPortOptions opts;
    OK(culvert_port_options_default(&opts));
    CHECK(opts.max_message == (1u << 20) && opts.inline_max == 4064);
    opts.max_connections = 0;
    CulvertPortServer *server = NULL;
    EXPECT_STATUS(culvert_port_server_create("api-port", &opts, &server), CULVERT_E_INVALID_ARGUMENT);
    opts.max_connections = 4;
    OK(culvert_port_server_create("api-port", &opts, &server));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, port_server_thread, server) == 0);

    char answer[4];
    size_t answer_len = 0;
    CulvertPortClient *client = NULL;
    EXPECT_STATUS(culvert_port_connect("api-port", "hello", 5, 10000, answer, sizeof answer,
                                       &answer_len, &client),
                  CULVERT_E_REJECTED);
    /* The reason is 7 bytes; 4 fit. */
    CHECK(answer_len == 7 && memcmp(answer, "go a", 4) == 0);
    CHECK(culvert_last_error_detail() == 7);
    OK(culvert_port_connect("api-port", "again", 5, 10000, answer, sizeof answer, &answer_len,
                            &client));
    CHECK(answer_len == 2 && memcmp(answer, "ok", 2) == 0);

    CulvertReply *reply = NULL;
    CulvertBytes p;
    /* Inline and view-sized requests. */
    size_t sizes[] = {0, 1, 4064, 4065, 300000};
    uint8_t *req = malloc(300000);
    CHECK(req != NULL);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        pattern(req, sizes[k], k);
        OK(culvert_port_call(client, req, sizes[k], 10000, &reply));
        OK(culvert_reply_payload(reply, &p));
        CHECK(p.len == sizes[k] && p.data != NULL);
        CHECK(p.is_view == (sizes[k] > 4064));
        for (size_t i = 0; i < p.len; i++) CHECK(p.data[i] == inverted(req[i]));
        OK(culvert_reply_free(reply));
    }
    /* A request written in place into a loan of the client's heap. */
    CulvertLoan *loan = NULL;
    uint8_t *room = NULL;
    size_t room_len = 0;
    OK(culvert_port_loan(client, 300000, 10000, &loan));
    OK(culvert_loan_data(loan, &room, &room_len));
    CHECK(room != NULL && room_len == 300000);
    pattern(req, 300000, 9);
    memcpy(room, req, 300000);
    OK(culvert_port_call_loaned(client, loan, 10000, &reply));
    OK(culvert_reply_payload(reply, &p));
    CHECK(p.len == 300000 && p.is_view);
    for (size_t i = 0; i < p.len; i++) CHECK(p.data[i] == inverted(req[i]));
    OK(culvert_reply_free(reply));
    /* A loan freed unsent; a call without a loan; a loan beyond max_message. */
    OK(culvert_port_loan(client, 1000, 10000, &loan));
    OK(culvert_loan_free(loan));
    OK(culvert_loan_free(NULL));
    EXPECT_STATUS(culvert_port_call_loaned(client, NULL, 1000, &reply), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_loan_data(NULL, &room, &room_len), CULVERT_E_INVALID_ARGUMENT);
    EXPECT_STATUS(culvert_port_loan(client, (1u << 20) + 1, 1000, &loan),
                  CULVERT_E_MESSAGE_TOO_LARGE);
    free(req);
    EXPECT_STATUS(culvert_port_call(client, NULL, 5, 1000, &reply), CULVERT_E_INVALID_ARGUMENT);
    OK(culvert_port_send_datagram(client, "note", 4, -1));
    EXPECT_STATUS(culvert_port_call(client, "no-reply", 8, 10000, &reply), CULVERT_E_CLOSED);
    CulvertPendingCall *call = NULL;
    OK(culvert_port_call_async(client, "async", 5, &call));
    OK(culvert_pending_call_wait(call, -1, &reply));
    OK(culvert_reply_payload(reply, &p));
    CHECK(p.len == 5 && p.data[0] == inverted('a'));
    OK(culvert_reply_free(reply));
    OK(culvert_pending_call_free(call));
    OK(culvert_port_call(client, "quit", 4, 10000, &reply));
    OK(culvert_reply_free(reply));
    CHECK(pthread_join(t, NULL) == 0);
    OK(culvert_port_client_close(client));
    OK(culvert_port_server_close(server));
}

int main(void) {
    test_name = "api";
    version();
    conventions();
    sections();
    message_pipes();
    named_pipes();
    mailslots();
    ports();
    printf("c api: all in-process checks passed\n");
    return 0;
}
