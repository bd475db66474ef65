/* Helpers of the C binding tests. */
#ifndef CULVERT_TEST_COMMON_H
#define CULVERT_TEST_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "culvert.h"

static const char *test_name = "c-test";

/* Fails the test unless `call` returns `expected`. */
#define EXPECT_STATUS(call, expected)                                                         \
    do {                                                                                      \
        CulvertStatus s_ = (call);                                                            \
        if (s_ != (expected)) {                                                               \
            fprintf(stderr, "%s: %s:%d: %s returned %s, expected %s (%s)\n", test_name,       \
                    __FILE__, __LINE__, #call, culvert_status_name(s_),                       \
                    culvert_status_name(expected), culvert_last_error_message());             \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define OK(call) EXPECT_STATUS(call, CULVERT_OK)

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s: %s:%d: check failed: %s\n", test_name, __FILE__, __LINE__,  \
                    #cond);                                                                   \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pattern shared with rust_peer: byte i of message `seed`. */
static inline void pattern(uint8_t *buf, size_t len, size_t seed) {
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)((i * 31 + seed * 7) % 251);
}

/* A byte inverted (the port servers' answer: every request byte XOR 0xFF). */
static inline uint8_t inverted(uint8_t b) {
    return (uint8_t)(255u - b);
}

#endif
