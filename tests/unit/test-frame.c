/* SPDX-License-Identifier: MIT */
/* Unit tests for src/basic/frame.c: the 4-byte big-endian length framing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

#define UNTOUCHED ((size_t)0xdeadbeef)

/* A header announcing len followed by len payload bytes (a pattern). */
static uint8_t *make_frame(uint32_t len)
{
        uint8_t *buf = malloc((size_t)FRAME_HEADER_SIZE + len);
        assert_non_null(buf);
        frame_put_header(buf, len);
        for (uint32_t i = 0; i < len; i++)
                buf[FRAME_HEADER_SIZE + i] = (uint8_t)(i * 7u + 1u);
        return buf;
}

static void test_header_bytes_big_endian(void **state)
{
        uint8_t h[FRAME_HEADER_SIZE];

        frame_put_header(h, 0x01020304u);
        assert_int_equal(h[0], 0x01);
        assert_int_equal(h[1], 0x02);
        assert_int_equal(h[2], 0x03);
        assert_int_equal(h[3], 0x04);

        frame_put_header(h, 0);
        assert_int_equal(h[0] | h[1] | h[2] | h[3], 0);

        frame_put_header(h, 0xffffffffu);
        assert_int_equal(h[0] & h[1] & h[2] & h[3], 0xff);
}

static void test_header_round_trip(void **state)
{
        static const uint32_t lens[] = { 0, 1, 255, 256, 65535, 65536, (1u << 24) + 3 };

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                uint32_t len = lens[i];
                uint8_t *buf = make_frame(len);
                size_t got = UNTOUCHED;

                assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE + (size_t)len, FRAME_MAX_HARD, &got), 1);
                assert_int_equal(got, len);

                /* The header alone is a frame only when the payload is empty. */
                got = UNTOUCHED;
                int r = frame_peek(buf, FRAME_HEADER_SIZE, FRAME_MAX_HARD, &got);
                if (len == 0) {
                        assert_int_equal(r, 1);
                        assert_int_equal(got, 0);
                } else {
                        assert_int_equal(r, 0);
                        assert_int_equal(got, UNTOUCHED);
                }
                free(buf);
        }
}

static void test_peek_partial_header(void **state)
{
        uint8_t h[FRAME_HEADER_SIZE];
        size_t got = UNTOUCHED;

        frame_put_header(h, 10);
        for (size_t avail = 0; avail < FRAME_HEADER_SIZE; avail++) {
                assert_int_equal(frame_peek(h, avail, 1024, &got), 0);
                assert_int_equal(got, UNTOUCHED);
        }
        /* An oversize announcement is only noticed once the header is complete. */
        frame_put_header(h, 0xffffffffu);
        for (size_t avail = 0; avail < FRAME_HEADER_SIZE; avail++)
                assert_int_equal(frame_peek(h, avail, 1024, &got), 0);
        assert_int_equal(frame_peek(h, FRAME_HEADER_SIZE, 1024, &got), -EMSGSIZE);
}

static void test_peek_partial_payload(void **state)
{
        uint8_t *buf = make_frame(100);
        size_t got = UNTOUCHED;

        for (size_t avail = FRAME_HEADER_SIZE; avail < FRAME_HEADER_SIZE + 100; avail++) {
                assert_int_equal(frame_peek(buf, avail, 1024, &got), 0);
                assert_int_equal(got, UNTOUCHED);
        }
        free(buf);
}

static void test_peek_exact_and_extra(void **state)
{
        uint8_t buf[FRAME_HEADER_SIZE + 5 + 3] = { 0 };
        size_t got = UNTOUCHED;

        frame_put_header(buf, 5);
        memcpy(buf + FRAME_HEADER_SIZE, "hello", 5);
        assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE + 5, 5, &got), 1);
        assert_int_equal(got, 5);

        /* Bytes of the next frame after this one do not change the answer. */
        got = UNTOUCHED;
        assert_int_equal(frame_peek(buf, sizeof(buf), 5, &got), 1);
        assert_int_equal(got, 5);
}

static void test_peek_max_payload_boundary(void **state)
{
        uint8_t *buf = make_frame(64);
        size_t got = UNTOUCHED;

        /* Exactly max_payload is fine. */
        assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE + 64, 64, &got), 1);
        assert_int_equal(got, 64);
        /* One more than max_payload is refused, complete or not. */
        got = UNTOUCHED;
        assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE + 64, 63, &got), -EMSGSIZE);
        assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE, 63, &got), -EMSGSIZE);
        assert_int_equal(frame_peek(buf, FRAME_HEADER_SIZE + 64, 0, &got), -EMSGSIZE);
        assert_int_equal(got, UNTOUCHED);
        free(buf);
}

static void test_peek_hard_limit(void **state)
{
        uint8_t h[FRAME_HEADER_SIZE];
        size_t got = UNTOUCHED;

        /* FRAME_MAX_HARD itself is allowed (just incomplete here)... */
        frame_put_header(h, FRAME_MAX_HARD);
        assert_int_equal(frame_peek(h, sizeof(h), SIZE_MAX, &got), 0);
        /* ...one byte more is refused even when the caller allows anything. */
        frame_put_header(h, FRAME_MAX_HARD + 1);
        assert_int_equal(frame_peek(h, sizeof(h), SIZE_MAX, &got), -EMSGSIZE);
        frame_put_header(h, 0xffffffffu);
        assert_int_equal(frame_peek(h, sizeof(h), SIZE_MAX, &got), -EMSGSIZE);
        frame_put_header(h, 0x80000000u);
        assert_int_equal(frame_peek(h, sizeof(h), SIZE_MAX, &got), -EMSGSIZE);
        assert_int_equal(got, UNTOUCHED);
}

static void test_peek_consume_stream(void **state)
{
        /* Three frames back to back, the way the engine's read buffer sees them. */
        static const char *const payloads[] = { "{}", "", "{\"status\":\"success\"}" };
        uint8_t buf[256];
        size_t n = 0;

        for (size_t i = 0; i < 3; i++) {
                size_t l = strlen(payloads[i]);
                frame_put_header(buf + n, (uint32_t)l);
                memcpy(buf + n + FRAME_HEADER_SIZE, payloads[i], l);
                n += FRAME_HEADER_SIZE + l;
        }

        size_t off = 0, seen = 0, len;
        while (frame_peek(buf + off, n - off, 1024, &len) == 1) {
                assert_true(seen < 3);
                assert_int_equal(len, strlen(payloads[seen]));
                assert_memory_equal(buf + off + FRAME_HEADER_SIZE, payloads[seen], len);
                off += FRAME_HEADER_SIZE + len;
                seen++;
        }
        assert_int_equal(seen, 3);
        assert_int_equal(off, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_bytes_big_endian),
                cmocka_unit_test(test_header_round_trip),
                cmocka_unit_test(test_peek_partial_header),
                cmocka_unit_test(test_peek_partial_payload),
                cmocka_unit_test(test_peek_exact_and_extra),
                cmocka_unit_test(test_peek_max_payload_boundary),
                cmocka_unit_test(test_peek_hard_limit),
                cmocka_unit_test(test_peek_consume_stream),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
