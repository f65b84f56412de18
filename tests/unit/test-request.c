/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "request.h"

static const RequestLimits lim = {
        .timeout_default_s = 30, .timeout_max_s = 300,
        .memory_default_mb = 512, .memory_min_mb = 64, .memory_max_mb = 2048,
        .max_body_bytes = 4096, .max_code_bytes = 100, .max_stdin_bytes = 10,
};

static int parse(const char *body, bool invoke, RunRequest *rr, HttpError *e)
{
        return request_parse(body, strlen(body), &lim, invoke, rr, e);
}

/* Expects a 422 about field, of the given type. */
static void expect_422(const char *body, bool invoke, const char *field, const char *type)
{
        RunRequest rr;
        HttpError e;
        assert_int_equal(parse(body, invoke, &rr, &e), -EINVAL);
        assert_int_equal(e.status, 422);
        assert_string_equal(e.field, field);
        assert_string_equal(e.type, type);
        assert_true(e.message[0] != '\0');
        assert_null(rr.code);
}

static void expect_status(const char *body, int status)
{
        RunRequest rr;
        HttpError e;
        assert_int_equal(parse(body, false, &rr, &e), -EINVAL);
        assert_int_equal(e.status, status);
        assert_true(e.message[0] != '\0');
}

static void test_defaults(void **state)
{
        RunRequest rr;
        HttpError e;
        assert_int_equal(parse("{\"code\": \"print(1)\"}", false, &rr, &e), 0);
        assert_int_equal(rr.code_len, 8);
        assert_string_equal(rr.code, "print(1)");
        assert_null(rr.stdin_data);
        assert_int_equal(rr.stdin_len, 0);
        assert_int_equal(rr.timeout_ms, 30000);
        assert_int_equal(rr.memory_mb, 512);
        request_clear(&rr);
        assert_null(rr.code);
}

static void test_code_around_white_space(void **state)
{
        static const char *const ok[] = {
                "{\"code\": \" x \"}", "{\"code\": \"\\n\\tpass\\n\"}", "{\"code\": \"\\u200b\"}", /* zero width: not space */
                "{\"code\": \"\\u00e9\"}", "{\"code\": \" \\ud83d\\ude00\"}", "{\"code\": \"#\"}",
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                RunRequest rr;
                HttpError e;
                assert_int_equal(parse(ok[i], false, &rr, &e), 0);
                request_clear(&rr);
        }
}

static void test_all_fields(void **state)
{
        RunRequest rr;
        HttpError e;
        assert_int_equal(parse("{\"code\": \"x\", \"timeout\": 300, \"memory_limit\": 64, \"stdin\": \"ab\\u0000c\"}",
                               false, &rr, &e), 0);
        assert_int_equal(rr.timeout_ms, 300000);
        assert_int_equal(rr.memory_mb, 64);
        assert_int_equal(rr.stdin_len, 4);
        assert_memory_equal(rr.stdin_data, "ab\0c", 4);
        request_clear(&rr);
        assert_int_equal(parse("{\"code\": \"x\", \"stdin\": null}", false, &rr, &e), 0);
        assert_int_equal(rr.stdin_len, 0);
        request_clear(&rr);
}

static void test_body_errors(void **state)
{
        expect_status("{", 400);
        expect_status("[1]", 400);
        expect_status("\"code\"", 400);
        expect_status("{\"code\": \"a\", \"code\": \"b\"}", 400);
        expect_status("{\"code\": \"\xff\"}", 400);
        char big[5000];
        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        expect_status(big, 413);
}

static void test_field_errors(void **state)
{
        expect_422("{}", false, "code", "missing");
        expect_422("{\"code\": 1}", false, "code", "type_error");
        expect_422("{\"code\": null}", false, "code", "type_error");
        expect_422("{\"code\": \"\"}", false, "code", "value_error");
        expect_422("{\"code\": \"a\\u0000b\"}", false, "code", "value_error");
        expect_422("{\"code\": \"   \"}", false, "code", "value_error");
        expect_422("{\"code\": \" \\t\\n\\r\\u000b\\u000c\\u001f\"}", false, "code", "value_error");
        expect_422("{\"code\": \"\\u0085\\u00a0\\u1680\\u2000\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\"}", true,
                   "code", "value_error");
        char longcode[200];
        snprintf(longcode, sizeof(longcode), "{\"code\": \"%0101d\"}", 0);
        expect_422(longcode, false, "code", "value_error");
        expect_422("{\"code\": \"x\", \"timeout\": 0}", false, "timeout", "value_error");
        expect_422("{\"code\": \"x\", \"timeout\": 301}", false, "timeout", "value_error");
        expect_422("{\"code\": \"x\", \"timeout\": 30.0}", false, "timeout", "type_error");
        expect_422("{\"code\": \"x\", \"timeout\": \"30\"}", false, "timeout", "type_error");
        expect_422("{\"code\": \"x\", \"memory_limit\": 63}", false, "memory_limit", "value_error");
        expect_422("{\"code\": \"x\", \"memory_limit\": 2049}", false, "memory_limit", "value_error");
        expect_422("{\"code\": \"x\", \"stdin\": 5}", false, "stdin", "type_error");
        expect_422("{\"code\": \"x\", \"stdin\": \"01234567890\"}", false, "stdin", "value_error");
        expect_422("{\"code\": \"x\", \"extra\": 1}", false, "extra", "extra_forbidden");
}

/* A long unknown field name is cut for the reply at a character boundary:
 * the 422 body can still be made. */
static void test_long_field_name_stays_utf8(void **state)
{
        char body[400] = "{\"code\": \"x\", \"";
        for (int i = 0; i < 60; i++)
                strcat(body, "\xe2\x82\xac"); /* U+20AC, 3 bytes */
        strcat(body, "\": 1}");
        RunRequest rr;
        HttpError e;
        assert_int_equal(parse(body, false, &rr, &e), -EINVAL);
        assert_int_equal(e.status, 422);
        assert_int_equal(strlen(e.field) % 3, 0);
        assert_true(strlen(e.field) >= 120);
        json_t *j = http_error_json(&e);
        assert_non_null(j);
        json_decref(j);
}

static void test_invoke_has_no_stdin(void **state)
{
        RunRequest rr;
        HttpError e;
        expect_422("{\"code\": \"x\", \"stdin\": \"\"}", true, "stdin", "extra_forbidden");
        assert_int_equal(parse("{\"code\": \"x\", \"timeout\": 2}", true, &rr, &e), 0);
        assert_int_equal(rr.timeout_ms, 2000);
        request_clear(&rr);
}

static void test_limits_from_config(void **state)
{
        PyrConfig c;
        RequestLimits l;
        config_init_defaults(&c);
        c.timeout_ms = 500;
        request_limits_from_config(&c, &l);
        assert_int_equal(l.timeout_default_s, 1);
        assert_int_equal(l.timeout_max_s, c.max_timeout_ms / 1000);
        assert_int_equal(l.memory_min_mb, c.min_memory_mb);
        assert_int_equal(l.max_body_bytes, c.max_body_bytes);
}

static void test_content_type(void **state)
{
        assert_true(request_is_json("application/json"));
        assert_true(request_is_json("  Application/JSON; charset=utf-8"));
        assert_true(request_is_json("application/json ;x"));
        assert_false(request_is_json("application/jsonx"));
        assert_false(request_is_json("text/plain"));
        assert_false(request_is_json(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_all_fields),
                cmocka_unit_test(test_code_around_white_space),
                cmocka_unit_test(test_body_errors),
                cmocka_unit_test(test_field_errors),
                cmocka_unit_test(test_long_field_name_stays_utf8),
                cmocka_unit_test(test_invoke_has_no_stdin),
                cmocka_unit_test(test_limits_from_config),
                cmocka_unit_test(test_content_type),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
