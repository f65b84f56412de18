/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"

static void expect_real(double x, const char *want)
{
        char buf[40];
        int n = json_format_real(x, buf, sizeof(buf));
        assert_int_equal(n, (int)strlen(want));
        assert_string_equal(buf, want);
}

static void test_format_real(void **state)
{
        expect_real(0.0035181879999999998, "0.003518188");
        expect_real(0.1, "0.1");
        expect_real(1.0, "1.0");
        expect_real(-0.0, "-0.0");
        expect_real(0.0, "0.0");
        expect_real(-2.5, "-2.5");
        expect_real(1200.0, "1200.0");
        expect_real(123456789012345.6, "123456789012345.6");
        expect_real(1e16, "1e16");
        expect_real(1.5e-7, "1.5e-7");
        expect_real(0.0001, "0.0001");
        expect_real(-1e-300, "-1e-300");
        expect_real(1.7976931348623157e308, "1.7976931348623157e308");
        expect_real(5e-324, "5e-324");
        expect_real(1.0 / 3, "0.3333333333333333");
        char buf[4];
        assert_int_equal(json_format_real(0.1, buf, sizeof(buf)), 3);
        assert_int_equal(json_format_real(0.125, buf, sizeof(buf)), -ENOBUFS);
        assert_int_equal(json_format_real(NAN, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(json_format_real(INFINITY, buf, sizeof(buf)), -EINVAL);
}

/* Every form reads back as the same double, and is at most 2 bytes longer
 * than jansson's (1e16 and up are written with an exponent). */
static void test_round_trip(void **state)
{
        uint64_t seed = 88172645463325252ull;
        char buf[40];
        for (int i = 0; i < 200000; i++) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                double x;
                memcpy(&x, &seed, sizeof(x));
                if (!isfinite(x))
                        continue;
                if (i % 2)
                        x = (double)(seed % 100000000) / 1e6; /* values like timings */
                int n = json_format_real(x, buf, sizeof(buf));
                assert_true(n > 0);
                double y = strtod(buf, NULL);
                assert_memory_equal(&x, &y, sizeof(x));
                assert_true(strpbrk(buf, ".e") != NULL);
                json_t *j = json_real(x);
                char *ref = json_dumps(j, JSON_ENCODE_ANY);
                assert_true((size_t)n <= strlen(ref) + 2);
                free(ref);
                json_decref(j);
        }
}

static void expect_dump(json_t *j, size_t flags, const char *want)
{
        char *s = json_dumps_shortest(j, flags);
        assert_non_null(s);
        assert_string_equal(s, want);
        free(s);
        json_decref(j);
}

static void test_dumps(void **state)
{
        expect_dump(json_pack("{s:f}", "execution_time", 0.0035181879999999998), JSON_COMPACT,
                    "{\"execution_time\":0.003518188}");
        /* Nested, negative, exponents; integers and strings untouched. */
        json_t *o = json_pack("{s:{s:[f,f,f,I,I]}, s:s, s:s, s:I}", "result", "values", -0.30000000000000004, 1e-10,
                              12345678.9, (json_int_t)12345678901234567LL, (json_int_t)-7, "text",
                              "0.30000000000000004 and 1e-10", "key\"0.10000000000000001\"", "tricky \\\" 2.50",
                              "n", (json_int_t)0);
        expect_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER,
                    "{\"result\":{\"values\":[-0.30000000000000004,1e-10,12345678.9,12345678901234567,-7]},"
                    "\"text\":\"0.30000000000000004 and 1e-10\",\"key\\\"0.10000000000000001\\\"\":"
                    "\"tricky \\\\\\\" 2.50\",\"n\":0}");
        expect_dump(json_pack("[f,f]", 0.1, 100.0), JSON_INDENT(2), "[\n  0.1,\n  100.0\n]");
        /* A precision flag does not make it lossy. */
        expect_dump(json_pack("[f]", 0.123456789), JSON_COMPACT | JSON_REAL_PRECISION(3), "[0.123456789]");
        expect_dump(json_pack("[f]", 0.1), JSON_COMPACT | JSON_ENSURE_ASCII, "[0.1]");
        expect_dump(json_pack("[s]", "\xc3\xa9 1.50"), JSON_COMPACT | JSON_ENSURE_ASCII, "[\"\\u00E9 1.50\"]");
        expect_dump(json_pack("[f]", 1e300), JSON_COMPACT, "[1e300]");
}

/* Whatever the tree, the text parses back to an equal tree. */
static void test_dumps_round_trip(void **state)
{
        json_t *a = json_array();
        for (int i = 0; i < 1000; i++) {
                json_array_append_new(a, json_real(i / 7.0 - 50));
                json_array_append_new(a, json_integer(i * 1000003));
                json_array_append_new(a, json_sprintf("%d.%de-%d", i, i, i % 30));
        }
        json_t *o = json_pack("{s:o, s:[f]}", "a", a, "tiny", 4.9e-324);
        char *s = json_dumps_shortest(o, JSON_COMPACT);
        json_error_t err;
        json_t *back = json_loads(s, 0, &err);
        assert_non_null(back);
        assert_true(json_equal(o, back));
        free(s);
        json_decref(back);
        json_decref(o);
}

static const JsonLimits wide = { 2048, SIZE_MAX, SIZE_MAX };

static int check(const char *s)
{
        return json_check(s, strlen(s), &wide);
}

static void test_check_grammar(void **state)
{
        static const char *const good[] = {
                "0", "-0", "1.5e-7", "-12.25E+3", "true", "false", "null", "\"\"", " [ ] ", "{}",
                "{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\ud83d\\ude00\\n\\/\"}",
                "\"\xc3\xa9\xf0\x9f\x98\x80\"", "[[[[]]]]", "\"\\u0000\"", "\r\n\t[1,2]\n",
                "123456789012345678901234567890", "1e400",
        };
        static const char *const bad[] = {
                "", " ", "01", "1.", ".5", "-", "1e", "+1", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
                "{\"a\":1,}", "{1:2}", "[1 2]", "{\"a\":1 \"b\":2}", "tru", "nul", "True", "[", "]",
                "[1]]", "{}{}", "1 2", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
                "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                "\"\xf4\x90\x80\x80\"", "\"\xff\"", "[1]x", "NaN", "Infinity", "'a'", "[\"a\":1]",
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
                if (check(good[i]) != 0)
                        fail_msg("json_check(%s) = %d, want 0", good[i], check(good[i]));
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                if (check(bad[i]) != -EBADMSG)
                        fail_msg("json_check(%s) = %d, want -EBADMSG", bad[i], check(bad[i]));
        assert_int_equal(json_check("[1]\0", 4, &wide), -EBADMSG);
        assert_int_equal(json_check("\"a\0\"", 4, &wide), -EBADMSG);
}

static void test_check_limits(void **state)
{
        const JsonLimits lim = { 3, 4, 10 };
        assert_int_equal(json_check("[[[]]]", 6, &lim), 0);
        assert_int_equal(json_check("[[[[]]]]", 8, &lim), -ELOOP);
        assert_int_equal(json_check("[{},{},{}]", 10, &lim), 0);
        assert_int_equal(json_check("[{},{},{},{}]", 13, &lim), -E2BIG);
        assert_int_equal(json_check("[1,2,3,4,5,6,7,8,9]", 19, &lim), 0);
        assert_int_equal(json_check("[1,2,3,4,5,6,7,8,9,0]", 21, &lim), -E2BIG);
        /* Depth past the bitset's 64-bit words. */
        char deep[2 * 300 + 1];
        memset(deep, '[', 300);
        memset(deep + 300, ']', 300);
        const JsonLimits d299 = { 299, SIZE_MAX, SIZE_MAX }, d300 = { 300, SIZE_MAX, SIZE_MAX };
        assert_int_equal(json_check(deep, 600, &d299), -ELOOP);
        assert_int_equal(json_check(deep, 600, &d300), 0);
        deep[150] = '{';
        assert_int_equal(json_check(deep, 600, &d300), -EBADMSG);
}

/* Against jansson on mutations of valid texts: what jansson reads, json_check
 * accepts; what json_check accepts and jansson does not is a number jansson
 * cannot hold. */
static void test_check_agrees_with_jansson(void **state)
{
        static const char *const seeds[] = {
                "{\"a\": [1, -2.5e3, {\"b\": null}], \"c\": \"x\\u00e9\\ud83d\\ude00\\n\", \"d\": [true, false]}",
                "[[\"\xc3\xa9\", {}], 0, [], {\"\": \"\"}]",
        };
        static const char alphabet[] = "{}[],:\"\\u0123456789abcdefABCDEF.eE+-tfnrl \t\n\x01\x80\xc3\xa9\xed\xf0";
        unsigned seed = 12345;
        char buf[256];
        int read_by_both = 0;
        for (int i = 0; i < 200000; i++) {
                const char *src = seeds[i % 2];
                size_t n = strlen(src);
                memcpy(buf, src, n);
                for (int k = 0; k < 1 + i % 3; k++) {
                        seed = seed * 1103515245 + 12345;
                        size_t at = (seed >> 8) % n;
                        char c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
                        switch ((seed >> 4) % 3) {
                        case 0:
                                buf[at] = c;
                                break;
                        case 1:
                                if (n < sizeof(buf) - 1) {
                                        memmove(buf + at + 1, buf + at, n - at);
                                        buf[at] = c;
                                        n++;
                                }
                                break;
                        default:
                                memmove(buf + at, buf + at + 1, n - at - 1);
                                n--;
                                break;
                        }
                }
                json_error_t err;
                json_t *j = json_loadb(buf, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
                int r = json_check(buf, n, &wide);
                if (j && r != 0)
                        fail_msg("jansson reads %.*s, json_check says %d", (int)n, buf, r);
                if (!j && r == 0 && !strstr(err.text, "too big") && !strstr(err.text, "overflow"))
                        fail_msg("json_check accepts %.*s, jansson: %s", (int)n, buf, err.text);
                read_by_both += j != NULL;
                json_decref(j);
        }
        /* The mutations reach both sides of the line. */
        assert_true(read_by_both > 10000 && read_by_both < 190000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_real),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_dumps),
                cmocka_unit_test(test_dumps_round_trip),
                cmocka_unit_test(test_check_grammar),
                cmocka_unit_test(test_check_limits),
                cmocka_unit_test(test_check_agrees_with_jansson),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
