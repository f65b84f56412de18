/* SPDX-License-Identifier: MIT */
/* libFuzzer target for what reads untrusted bytes without a sandbox between:
 * the frame reader and the JSON check (a sandbox writes those bytes), the config parsers
 * (flags, PYRUNNER_* variables) and the UTF-8 checks of stdout/stderr.
 *
 *   make fuzz && ./build-fuzz/tests/fuzz/fuzz-frame -max_total_time=30
 *
 * Every property is checked against an independent reference; a violated
 * one aborts, so libFuzzer saves the input. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz-check.h"
#include "frame.h"
#include "json-util.h"
#include "result.h"


/* ---- frames ---- */

static void fuzz_frames(const uint8_t *data, size_t size, size_t max_payload)
{
        size_t off = 0;
        unsigned sum = 0;

        for (;;) {
                size_t avail = size - off, len = SIZE_MAX;
                int r = frame_peek(data + off, avail, max_payload, &len);
                if (avail < FRAME_HEADER_SIZE) {
                        CHECK(r == 0);
                        CHECK(len == SIZE_MAX);
                        break;
                }
                const uint8_t *h = data + off;
                size_t announced = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
                if (announced > max_payload || announced > FRAME_MAX_HARD) {
                        CHECK(r == -EMSGSIZE);
                        break;
                }
                if (avail - FRAME_HEADER_SIZE < announced) {
                        CHECK(r == 0);
                        CHECK(len == SIZE_MAX);
                        break;
                }
                CHECK(r == 1);
                CHECK(len == announced);
                /* The header frame_put_header makes for this length is this one. */
                uint8_t again[FRAME_HEADER_SIZE];
                frame_put_header(again, (uint32_t)len);
                CHECK(memcmp(again, h, FRAME_HEADER_SIZE) == 0);
                /* Touch the payload so ASan sees any overrun. */
                for (size_t i = 0; i < len; i++)
                        sum += h[FRAME_HEADER_SIZE + i];
                off += FRAME_HEADER_SIZE + len;
        }
        (void)sum;
}

/* ---- config ---- */

/* parse_seconds_ms, written differently: in __int128 nothing overflows.
 * Like the original it gives up with -ERANGE as soon as the value read so
 * far cannot be held in int64 milliseconds, before looking at the rest of
 * the string. */
static int ref_seconds_ms(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret)
{
        __int128 ms = 0;
        int digits = 0, frac = 0;
        const char *p = s;

        for (; *p >= '0' && *p <= '9'; p++, digits++) {
                ms = ms * 10 + (*p - '0');
                if (ms * 1000 > INT64_MAX)
                        return -ERANGE;
        }
        ms *= 1000;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++, digits++, frac++) {
                        if (frac == 3)
                                return -EINVAL;
                        static const int scale[] = { 100, 10, 1 };
                        ms += (*p - '0') * scale[frac];
                        if (ms > INT64_MAX)
                                return -ERANGE;
                }
        if (*p != '\0' || digits == 0)
                return -EINVAL;
        if (ms < min_ms || ms > max_ms)
                return -ERANGE;
        *ret = (int64_t)ms;
        return 0;
}

static void check_seconds(const char *s, int64_t min_ms, int64_t max_ms)
{
        int64_t got = INT64_MIN + 1, want = INT64_MIN + 1;
        int r = parse_seconds_ms(s, min_ms, max_ms, &got);
        int rr = ref_seconds_ms(s, min_ms, max_ms, &want);
        if (r != rr || got != want) {
                fprintf(stderr, "parse_seconds_ms(\"%s\", %" PRId64 ", %" PRId64 ") = %d, %" PRId64
                                "; reference %d, %" PRId64 "\n", s, min_ms, max_ms, r, got, rr, want);
                abort();
        }
}

static void check_int64(const char *s, int64_t min, int64_t max)
{
        int64_t v = 12345;
        int r = parse_int64(s, min, max, &v);
        CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r == 0) {
                CHECK(v >= min && v <= max);
                /* Its decimal form parses back to the same value. */
                char buf[32];
                int64_t w = 0;
                snprintf(buf, sizeof(buf), "%" PRId64, v);
                CHECK(parse_int64(buf, min, max, &w) == 0 && w == v);
        } else {
                CHECK(v == 12345);
        }
}

static void fuzz_config(const uint8_t *data, size_t size)
{
        /* name NUL value [NUL ...] */
        const uint8_t *nul = memchr(data, 0, size);
        size_t name_len = nul ? (size_t)(nul - data) : size;
        const uint8_t *vstart = nul ? nul + 1 : data + size;
        const uint8_t *vend = memchr(vstart, 0, (size_t)(data + size - vstart));
        size_t value_len = (size_t)((vend ? vend : data + size) - vstart);

        char *name = malloc(name_len + 1), *value = malloc(value_len + 1);
        if (!name || !value) {
                free(name);
                free(value);
                return;
        }
        memcpy(name, data, name_len);
        name[name_len] = '\0';
        memcpy(value, vstart, value_len);
        value[value_len] = '\0';

        PyrConfig c, before;
        config_init_defaults(&c);
        before = c;
        const ConfigEntry *e = config_find(name);
        int r = config_set(&c, name, value);
        CHECK(r == 0 || r == -ENOENT || r == -EINVAL || r == -ERANGE);
        CHECK((r == -ENOENT) == !e);
        if (r < 0) {
                CHECK(memcmp(&c, &before, sizeof(c)) == 0);
        } else if (e->type == CONFIG_INT) {
                int64_t v;
                CHECK(config_get_int(&c, e, &v) == 0);
                CHECK(v >= e->min && v <= e->max);
        } else {
                CHECK(strcmp((const char *)&c + e->offset, value) == 0);
        }
        const char *why = NULL;
        int vr = config_validate(&c, &why);
        CHECK(vr == 0 || (vr == -EINVAL && why && *why));

        /* The same strings through the parsers directly, with the bounds the
         * CLI uses and with the widest ones. */
        check_seconds(value, 100, 300000);
        check_seconds(name, 100, 300000);
        check_seconds(value, 0, INT64_MAX);
        check_seconds(value, INT64_MIN, INT64_MAX);
        check_int64(value, INT64_MIN, INT64_MAX);
        check_int64(value, 1, INT32_MAX);
        check_int64(name, 0, 64);

        free(name);
        free(value);
}

/* ---- UTF-8 ---- */

/* Well-formed UTF-8 after Unicode table 3-7, minus NUL. */
static bool ref_utf8_valid(const uint8_t *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                uint8_t b = s[i];
                uint8_t lo = 0x80, hi = 0xbf;
                size_t k;
                if (b == 0)
                        return false;
                if (b < 0x80) {
                        i++;
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf)
                        k = 1;
                else if (b >= 0xe0 && b <= 0xef) {
                        k = 2;
                        if (b == 0xe0)
                                lo = 0xa0;
                        else if (b == 0xed)
                                hi = 0x9f;
                } else if (b >= 0xf0 && b <= 0xf4) {
                        k = 3;
                        if (b == 0xf0)
                                lo = 0x90;
                        else if (b == 0xf4)
                                hi = 0x8f;
                } else
                        return false;
                if (n - i - 1 < k)
                        return false;
                if (s[i + 1] < lo || s[i + 1] > hi)
                        return false;
                for (size_t j = 2; j <= k; j++)
                        if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                                return false;
                i += k + 1;
        }
        return true;
}

static size_t count_nul(const uint8_t *s, size_t n)
{
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += s[i] == 0;
        return c;
}

/* Valid once NULs are allowed: each NUL-separated piece is valid. */
static bool valid_allowing_nul(const char *s, size_t n)
{
        size_t start = 0;
        for (size_t i = 0; i <= n; i++)
                if (i == n || s[i] == '\0') {
                        if (!utf8_valid(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        return true;
}

static void fuzz_utf8(const uint8_t *data, size_t size)
{
        const char *in = (const char *)data;
        bool valid = utf8_valid(in, size);
        CHECK(valid == ref_utf8_valid(data, size));

        size_t n = SIZE_MAX;
        char *s = utf8_sanitize(in, size, &n);
        if (!s)
                return;
        CHECK(n <= 3 * size);
        CHECK(s[n] == '\0');
        if (valid) {
                /* Sanitising valid input changes nothing. */
                CHECK(n == size && memcmp(s, in, size) == 0);
        }
        /* The output is valid, NULs aside: utf8_sanitize keeps NUL (valid
         * UTF-8) while utf8_valid refuses it; see the test report. */
        CHECK(count_nul((const uint8_t *)s, n) == count_nul(data, size));
        CHECK(valid_allowing_nul(s, n));
        if (!memchr(data, 0, size))
                CHECK(utf8_valid(s, n));

        /* Sanitising is idempotent. */
        size_t n2 = SIZE_MAX;
        char *s2 = utf8_sanitize(s, n, &n2);
        if (s2) {
                CHECK(n2 == n && memcmp(s2, s, n) == 0);
                free(s2);
        }

        /* Whatever comes out is accepted as a JSON string, NULs included. */
        RunResult rr;
        memset(&rr, 0, sizeof(rr));
        rr.status = RUN_SUCCESS;
        rr.exit_code = 0;
        rr.out = s;
        rr.out_len = n;
        size_t tlen = 0;
        char *text = run_result_dumps(&rr, JSON_COMPACT, &tlen);
        json_t *o = text ? json_loadb(text, tlen, 0, NULL) : NULL;
        free(text);
        if (o) {
                json_t *out = json_object_get(o, "stdout");
                CHECK(out && json_is_string(out));
                CHECK(json_string_length(out) == n);
                json_decref(o);
        }
        free(s);
}

/* ---- the JSON check of sandbox bytes, against jansson ---- */

static void fuzz_json_check(const uint8_t *data, size_t size)
{
        static const JsonLimits wide = { 2048, SIZE_MAX, SIZE_MAX };
        json_error_t err;
        json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        int r = json_check((const char *)data, size, &wide);
        CHECK(r == 0 || r == -EBADMSG);
        /* jansson reads it: so does the check. The check takes more only
         * for numbers that jansson cannot hold. */
        CHECK(!j || r == 0);
        CHECK(j || r != 0 || strstr(err.text, "too big") || strstr(err.text, "overflow"));
        json_decref(j);
        /* A budget only ever turns an accept into a refusal. */
        const JsonLimits tight = { 3, 4, 16 };
        int t = json_check((const char *)data, size, &tight);
        CHECK(t == 0 ? r == 0 : (t == -EBADMSG ? r == -EBADMSG : t == -ELOOP || t == -E2BIG));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_json_check(data, size);
        fuzz_frames(data, size, 4096);
        fuzz_frames(data, size, FRAME_MAX_HARD);
        fuzz_frames(data, size, SIZE_MAX);
        fuzz_config(data, size);
        fuzz_utf8(data, size);
        return 0;
}
