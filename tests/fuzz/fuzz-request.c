/* SPDX-License-Identifier: MIT */
/* libFuzzer target for what a client sends: the JSON body of POST /run and
 * of the executor route, parsed and checked into a RunRequest with the
 * server's limits (request_parse), and the 4xx body made from a refusal.
 *
 *   make fuzz && mkdir -p /tmp/fuzz-request &&
 *   ./build-fuzz/tests/fuzz/fuzz-request -max_total_time=60 /tmp/fuzz-request tests/fuzz/corpus/fuzz-request
 *
 * (libFuzzer adds what it finds to the first directory, so not the seeds'.)
 *
 * The first byte picks the route and one of three sets of limits; the rest
 * is the body. An accepted request is checked against the limits and
 * against the body read independently; a refusal must make a valid reply. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "request.h"
#include "result.h"


static const RequestLimits limit_sets[3] = {
        /* the defaults of POST /run */
        { .timeout_default_s = 30, .timeout_max_s = 300, .memory_default_mb = 512, .memory_min_mb = 64,
          .memory_max_mb = 2048, .max_body_bytes = 2 << 20, .max_code_bytes = 1 << 20, .max_stdin_bytes = 1 << 20 },
        /* the executor route's */
        { .timeout_default_s = 5, .timeout_max_s = 30, .memory_default_mb = 100, .memory_min_mb = 64,
          .memory_max_mb = 500, .max_body_bytes = 2 << 20, .max_code_bytes = 1 << 20, .max_stdin_bytes = 1 << 20 },
        /* small, so that the fuzzer reaches every bound */
        { .timeout_default_s = 1, .timeout_max_s = 2, .memory_default_mb = 16, .memory_min_mb = 16,
          .memory_max_mb = 17, .max_body_bytes = 96, .max_code_bytes = 8, .max_stdin_bytes = 3 },
};

static bool valid_text(const char *s)
{
        return utf8_valid(s, strlen(s));
}

static void check_refusal(int r, const HttpError *e, size_t len, const RequestLimits *lim, const RunRequest *rr)
{
        CHECK(rr->code == NULL && rr->stdin_data == NULL);
        CHECK(r == -EINVAL || r == -ENOMEM);
        CHECK(r == -ENOMEM ? e->status == 500 : (e->status == 400 || e->status == 413 || e->status == 422));
        CHECK((e->status == 413) == (len > (size_t)lim->max_body_bytes));
        CHECK(e->message[0] && valid_text(e->message));
        if (e->status == 422) {
                static const char *const types[] = { "missing", "type_error", "value_error", "extra_forbidden" };
                bool known = false;
                for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                        known |= strcmp(e->type, types[i]) == 0;
                CHECK(known);
                CHECK(valid_text(e->field));
                CHECK(e->field[0] || strcmp(e->type, "extra_forbidden") == 0); /* {"": 1} */
        }
        /* The reply body can always be made. */
        json_t *body = http_error_json(e);
        CHECK(body);
        char *s = json_dumps(body, JSON_COMPACT);
        CHECK(s);
        free(s);
        json_decref(body);
}

/* Whether code is blank as Python's str.isspace() sees it. */
static bool ref_blank(const char *s, size_t n)
{
        json_t *j = json_stringn(s, n);
        CHECK(j);
        json_decref(j);
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                uint32_t cp;
                size_t k;
                if (c < 0x80) {
                        cp = c;
                        k = 1;
                } else if (c < 0xe0) {
                        cp = (uint32_t)(c & 0x1f) << 6 | ((unsigned char)s[i + 1] & 0x3f);
                        k = 2;
                } else if (c < 0xf0) {
                        cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)((unsigned char)s[i + 1] & 0x3f) << 6 |
                             ((unsigned char)s[i + 2] & 0x3f);
                        k = 3;
                } else {
                        return false; /* no white space above U+FFFF */
                }
                bool ws = (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
                          cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
                          cp == 0x202f || cp == 0x205f || cp == 0x3000;
                if (!ws)
                        return false;
                i += k;
        }
        return true;
}

static void check_accepted(const char *body, size_t len, const RequestLimits *lim, bool invoke, const RunRequest *rr)
{
        CHECK(rr->code && rr->code_len >= 1 && rr->code_len <= (size_t)lim->max_code_bytes);
        CHECK(rr->code[rr->code_len] == '\0' && strlen(rr->code) == rr->code_len);
        CHECK(utf8_valid(rr->code, rr->code_len));
        CHECK(!ref_blank(rr->code, rr->code_len));
        CHECK(rr->timeout_ms % 1000 == 0);
        CHECK(rr->timeout_ms >= 1000 && rr->timeout_ms <= lim->timeout_max_s * 1000);
        CHECK(rr->memory_mb >= lim->memory_min_mb && rr->memory_mb <= lim->memory_max_mb);
        CHECK(rr->stdin_len <= (size_t)lim->max_stdin_bytes);
        CHECK((rr->stdin_len == 0) == (rr->stdin_data == NULL));
        CHECK(!invoke || rr->stdin_len == 0);

        /* The same body read independently says the same. */
        json_error_t jerr;
        json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        CHECK(json_is_object(o));
        CHECK(json_object_size(o) <= (invoke ? 3u : 4u));
        json_t *code = json_object_get(o, "code");
        CHECK(json_string_length(code) == rr->code_len && memcmp(json_string_value(code), rr->code, rr->code_len) == 0);
        json_t *t = json_object_get(o, "timeout"), *m = json_object_get(o, "memory_limit");
        CHECK(rr->timeout_ms == (t ? json_integer_value(t) : lim->timeout_default_s) * 1000);
        CHECK(rr->memory_mb == (m ? json_integer_value(m) : lim->memory_default_mb));
        json_t *in = json_object_get(o, "stdin");
        CHECK(rr->stdin_len == (json_is_string(in) ? json_string_length(in) : 0));
        if (rr->stdin_len)
                CHECK(memcmp(rr->stdin_data, json_string_value(in), rr->stdin_len) == 0);
        json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const RequestLimits *lim = &limit_sets[(data[0] & 0x7f) % 3];
        bool invoke = data[0] & 0x80;
        const char *body = (const char *)data + 1;
        size_t len = size - 1;

        RunRequest rr;
        HttpError e;
        memset(&e, 0xa5, sizeof(e));
        e.type = NULL;
        int r = request_parse(body, len, lim, invoke, &rr, &e);
        if (r == 0)
                check_accepted(body, len, lim, invoke, &rr);
        else
                check_refusal(r, &e, len, lim, &rr);
        request_clear(&rr);
        return 0;
}
