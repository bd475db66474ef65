/*
 * mailslot_peer — the C side of the mailslot scenarios with `rust_peer`.
 *
 *     mailslot_peer reader <name> <count>   create the mailslot, read count messages
 *     mailslot_peer writer <name> <count>   open a writer, send count messages
 *
 * Message i is "msg <i> " followed by (i % 200) pattern bytes. Writes never block: a
 * full mailslot reports CULVERT_E_FULL (the message was dropped and counted), and the
 * writer sends it again after a pause, so the reader sees every message in order.
 */
#include "common.h"

static size_t message(size_t i, uint8_t *buf) {
    int n = snprintf((char *)buf, 32, "msg %zu ", i);
    pattern(buf + n, i % 200, i);
    return (size_t)n + i % 200;
}

int main(int argc, char **argv) {
    test_name = "mailslot_peer";
    if (argc < 4) {
        fprintf(stderr, "usage: mailslot_peer reader|writer <name> <count>\n");
        return 2;
    }
    const char *name = argv[2];
    size_t count = (size_t)atol(argv[3]);
    uint8_t expected[512], buf[512];

    if (strcmp(argv[1], "reader") == 0) {
        CulvertMailslot *slot = NULL;
        OK(culvert_mailslot_create(name, 512, 64, 30000, &slot));
        for (size_t i = 0; i < count; i++) {
            size_t len = 0;
            OK(culvert_mailslot_read(slot, buf, sizeof buf, &len));
            size_t want = message(i, expected);
            if (len != want || memcmp(buf, expected, len) != 0) {
                fprintf(stderr, "mailslot_peer: message %zu wrong (%zu bytes)\n", i, len);
                return 1;
            }
        }
        CulvertMailslotInfo info;
        OK(culvert_mailslot_info(slot, &info));
        CHECK(!info.has_message && info.message_count == 0);
        printf("c mailslot reader: %zu messages in order (%llu dropped and retried)\n", count,
               (unsigned long long)info.dropped);
        OK(culvert_mailslot_close(slot));
        return 0;
    }

    CulvertMailslotWriter *w = NULL;
    CulvertStatus s;
    for (int attempt = 0;; attempt++) { /* the reader may not be up yet */
        s = culvert_mailslot_writer_open(name, &w);
        if (s != CULVERT_E_NOT_FOUND || attempt >= 2000) break;
        sleep_ms(10);
    }
    OK(s);
    size_t full = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = message(i, buf);
        for (;;) {
            s = culvert_mailslot_write(w, buf, len);
            if (s != CULVERT_E_FULL) break;
            full++;
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        OK(s);
    }
    printf("c mailslot writer: %zu messages sent (%zu retries after CULVERT_E_FULL)\n", count, full);
    OK(culvert_mailslot_writer_close(w));
    return 0;
}
