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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_real),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_dumps),
                cmocka_unit_test(test_dumps_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
