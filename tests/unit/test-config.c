/* SPDX-License-Identifier: MIT */
/* Unit tests for src/basic/config.c: the settings table, parsing, the
 * PYRUNNER_* environment and the cross-field checks. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"


static const ConfigEntry *entry(const char *name)
{
        const ConfigEntry *e = config_find(name);
        assert_non_null(e);
        return e;
}

static int64_t get_int(const PyrConfig *c, const char *name)
{
        int64_t v = INT64_MIN;
        assert_int_equal(config_get_int(c, entry(name), &v), 0);
        return v;
}

static void env_name(const char *name, char *buf, size_t size)
{
        size_t k = (size_t)snprintf(buf, size, "PYRUNNER_");
        for (const char *n = name; *n && k + 1 < size; n++)
                buf[k++] = *n == '-' ? '_' : (char)toupper((unsigned char)*n);
        buf[k] = '\0';
}

static void clear_env(void)
{
        for (size_t i = 0; i < config_table_size; i++) {
                char var[96];
                env_name(config_table[i].name, var, sizeof(var));
                unsetenv(var);
        }
}

static int setup_clear_env(void **state)
{
        clear_env();
        return 0;
}

/* ---- the table ---- */

static void test_table_bounds_property(void **state)
{
        assert_true(config_table_size > 0);
        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                assert_non_null(e->name);
                assert_non_null(e->help);
                assert_non_null(e->unit);
                assert_true(e->offset < sizeof(PyrConfig));
                if (e->type == CONFIG_INT) {
                        if (!(e->min <= e->def && e->def <= e->max))
                                fail_msg("%s: min %" PRId64 " def %" PRId64 " max %" PRId64, e->name,
                                         e->min, e->def, e->max);
                        assert_true(e->offset + sizeof(int64_t) <= sizeof(PyrConfig));
                        assert_int_equal(e->offset % _Alignof(int64_t), 0);
                } else {
                        assert_int_equal(e->type, CONFIG_STR);
                        assert_non_null(e->def_str);
                        assert_true(e->str_size > 0);
                        assert_true(e->offset + e->str_size <= sizeof(PyrConfig));
                        assert_true(strlen(e->def_str) < e->str_size);
                }
        }
}

static void test_table_names_unique_and_findable(void **state)
{
        for (size_t i = 0; i < config_table_size; i++) {
                const char *n = config_table[i].name;
                assert_ptr_equal(config_find(n), &config_table[i]);
                /* Names are lower-case words joined by '-': the flag and env spelling. */
                assert_true(*n != '\0');
                for (const char *p = n; *p; p++)
                        assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-');
                /* The env variable name must fit config_from_env's buffer. */
                assert_true(strlen("PYRUNNER_") + strlen(n) < 64);
                for (size_t j = i + 1; j < config_table_size; j++)
                        assert_string_not_equal(n, config_table[j].name);
                /* No two settings share storage. */
                for (size_t j = 0; j < config_table_size; j++)
                        if (j != i)
                                assert_true(config_table[i].offset != config_table[j].offset);
        }
        assert_null(config_find("no-such-setting"));
        assert_null(config_find(""));
        assert_null(config_find("timeout_ms"));
        assert_null(config_find("Timeout-ms"));
}

static void test_defaults_equal_table(void **state)
{
        PyrConfig c;
        memset(&c, 0x5a, sizeof(c));
        config_init_defaults(&c);

        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                if (e->type == CONFIG_INT) {
                        int64_t v = INT64_MIN;
                        assert_int_equal(config_get_int(&c, e, &v), 0);
                        assert_int_equal(v, e->def);
                } else {
                        assert_string_equal((const char *)&c + e->offset, e->def_str);
                        int64_t v = 42;
                        assert_int_equal(config_get_int(&c, e, &v), -EINVAL);
                        assert_int_equal(v, 42);
                }
        }
        /* Spot checks against the documented defaults, through the struct. */
        assert_int_equal(c.timeout_ms, 30000);
        assert_int_equal(c.max_timeout_ms, 300000);
        assert_int_equal(c.memory_mb, 512);
        assert_int_equal(c.min_memory_mb, 64);
        assert_int_equal(c.max_memory_mb, 2048);
        assert_int_equal(c.output_limit, 1 << 20);
        assert_int_equal(c.max_result_bytes, 16 << 20);
        assert_int_equal(c.pids_max, 64);
        assert_int_equal(c.cpu_percent, 0); /* no CPU quota unless asked for */
        assert_int_equal(c.pool_size, 4);
        assert_int_equal(c.sandbox_uid, 101000);
        assert_string_equal(c.preload, "numpy,pandas,scipy,sympy,matplotlib,sklearn");

        const char *why = NULL;
        assert_int_equal(config_validate(&c, &why), 0);
}

/* ---- config_set ---- */

static void test_set_in_range_every_entry(void **state)
{
        PyrConfig c;
        config_init_defaults(&c);

        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                if (e->type != CONFIG_INT)
                        continue;
                const int64_t vals[] = { e->min, e->max, e->def, e->min + (e->max - e->min) / 2 };
                for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
                        char s[32];
                        snprintf(s, sizeof(s), "%" PRId64, vals[k]);
                        assert_int_equal(config_set(&c, e->name, s), 0);
                        assert_int_equal(get_int(&c, e->name), vals[k]);
                }
        }
}

static void test_set_out_of_range_every_entry(void **state)
{
        PyrConfig c;
        config_init_defaults(&c);

        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                if (e->type != CONFIG_INT)
                        continue;
                char s[32];
                snprintf(s, sizeof(s), "%" PRId64, e->min - 1);
                assert_int_equal(config_set(&c, e->name, s), -ERANGE);
                snprintf(s, sizeof(s), "%" PRId64, e->max + 1);
                assert_int_equal(config_set(&c, e->name, s), -ERANGE);
                assert_int_equal(config_set(&c, e->name, "99999999999999999999999"), -ERANGE);
                assert_int_equal(config_set(&c, e->name, "-99999999999999999999999"), -ERANGE);
                /* A refused value leaves the setting alone. */
                assert_int_equal(get_int(&c, e->name), e->def);
        }
}

static void test_set_rejects_malformed(void **state)
{
        static const char *const bad[] = {
                "", "abc", "12abc", "12 ", " 12", "\t12", "\n12", "12\n", "1e3", "1.5", "0x10",
                "--1", "+-1", "1 2", "-", "+",
        };
        PyrConfig c;
        config_init_defaults(&c);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = config_set(&c, "timeout-ms", bad[i]);
                if (r != -EINVAL)
                        fail_msg("config_set(timeout-ms, \"%s\") = %d, expected -EINVAL", bad[i], r);
        }
        assert_int_equal(c.timeout_ms, 30000);
}

static void test_set_accepts_sign_and_zeros(void **state)
{
        PyrConfig c;
        config_init_defaults(&c);

        /* strtoll semantics: an explicit '+' and leading zeros are fine. */
        assert_int_equal(config_set(&c, "timeout-ms", "+500"), 0);
        assert_int_equal(c.timeout_ms, 500);
        assert_int_equal(config_set(&c, "timeout-ms", "000700"), 0);
        assert_int_equal(c.timeout_ms, 700);
        assert_int_equal(config_set(&c, "pool-size", "0"), 0);
        assert_int_equal(c.pool_size, 0);
        assert_int_equal(config_set(&c, "pool-size", "-0"), 0);
        assert_int_equal(c.pool_size, 0);
        assert_int_equal(config_set(&c, "pool-size", "-1"), -ERANGE);
}

static void test_set_unknown_name(void **state)
{
        PyrConfig c, before;
        config_init_defaults(&c);
        before = c;

        assert_int_equal(config_set(&c, "no-such-setting", "1"), -ENOENT);
        assert_int_equal(config_set(&c, "", "1"), -ENOENT);
        assert_int_equal(config_set(&c, "timeout_ms", "1000"), -ENOENT);
        assert_int_equal(config_set(&c, "TIMEOUT-MS", "1000"), -ENOENT);
        assert_int_equal(config_set(&c, "--timeout-ms", "1000"), -ENOENT);
        assert_memory_equal(&c, &before, sizeof(c));
}

/* A setting counts as set only once a value was accepted for it. */
static void test_is_set(void **state)
{
        PyrConfig c;
        config_init_defaults(&c);
        for (size_t i = 0; i < config_table_size; i++)
                assert_false(config_is_set(&c, config_table[i].name));
        assert_int_equal(config_set(&c, "rate-limit", "nope"), -EINVAL);
        assert_false(config_is_set(&c, "rate-limit"));
        /* Set to its default value: still set. */
        assert_int_equal(config_set(&c, "rate-limit", "100"), 0);
        assert_true(config_is_set(&c, "rate-limit"));
        assert_false(config_is_set(&c, "rate-burst"));
        assert_int_equal(config_set(&c, "preload", ""), 0);
        assert_true(config_is_set(&c, "preload"));
        assert_false(config_is_set(&c, "no-such-setting"));
        setenv("PYRUNNER_RATE_BURST", "7", 1);
        assert_int_equal(config_from_env(&c, NULL), 0);
        unsetenv("PYRUNNER_RATE_BURST");
        assert_true(config_is_set(&c, "rate-burst"));
        assert_int_equal(c.rate_burst, 7);
}

static void test_set_string(void **state)
{
        PyrConfig c;
        config_init_defaults(&c);
        const ConfigEntry *e = entry("preload");
        char s[512];

        assert_int_equal(e->type, CONFIG_STR);
        assert_int_equal(e->str_size, sizeof(c.preload));

        assert_int_equal(config_set(&c, "preload", "numpy"), 0);
        assert_string_equal(c.preload, "numpy");
        assert_int_equal(config_set(&c, "preload", ""), 0);
        assert_string_equal(c.preload, "");

        /* The longest value that fits: str_size - 1 characters. */
        memset(s, 'a', e->str_size - 1);
        s[e->str_size - 1] = '\0';
        assert_int_equal(config_set(&c, "preload", s), 0);
        assert_int_equal(strlen(c.preload), e->str_size - 1);

        /* One more is refused and leaves the old value. */
        assert_int_equal(config_set(&c, "preload", "x"), 0);
        memset(s, 'b', e->str_size);
        s[e->str_size] = '\0';
        assert_int_equal(config_set(&c, "preload", s), -ERANGE);
        memset(s, 'c', sizeof(s) - 1);
        s[sizeof(s) - 1] = '\0';
        assert_int_equal(config_set(&c, "preload", s), -ERANGE);
        assert_string_equal(c.preload, "x");
}

/* ---- parse_int64 ---- */

static void test_parse_int64(void **state)
{
        int64_t v = 7;

        assert_int_equal(parse_int64("0", 0, 0, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_int64("-5", -10, 10, &v), 0);
        assert_int_equal(v, -5);
        assert_int_equal(parse_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(parse_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MIN);

        v = 7;
        assert_int_equal(parse_int64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_int64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_int64("11", 0, 10, &v), -ERANGE);
        assert_int_equal(parse_int64("-1", 0, 10, &v), -ERANGE);
        assert_int_equal(parse_int64(NULL, 0, 10, &v), -EINVAL);
        assert_int_equal(parse_int64("", 0, 10, &v), -EINVAL);
        assert_int_equal(parse_int64(" 1", 0, 10, &v), -EINVAL);
        assert_int_equal(parse_int64("1 ", 0, 10, &v), -EINVAL);
        assert_int_equal(v, 7);
}

/* ---- parse_seconds_ms ---- */

static void test_parse_seconds_ok(void **state)
{
        static const struct {
                const char *s;
                int64_t ms;
        } ok[] = {
                { "2", 2000 },   { "0.5", 500 },   { "1.25", 1250 }, { "1.250", 1250 }, { "0.001", 1 },
                { "0", 0 },      { "0.0", 0 },     { "300", 300000 }, { "007", 7000 },  { "1.", 1000 },
                /* A leading '.' counts: the fractional digits satisfy "some digit". */
                { ".5", 500 },   { ".001", 1 },    { "10.010", 10010 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int64_t v = -1;
                int r = parse_seconds_ms(ok[i].s, 0, INT64_MAX, &v);
                if (r != 0 || v != ok[i].ms)
                        fail_msg("parse_seconds_ms(\"%s\") = %d, %" PRId64 " ms; expected %" PRId64, ok[i].s, r, v,
                                 ok[i].ms);
        }
}

static void test_parse_seconds_rejects(void **state)
{
        static const char *const bad[] = {
                "", "abc", "1e3", "-1", "+1", " 1", "1 ", ".", "..5", "1..5", "1.2.3", "0.0001",
                "1.0000", "1s", "0x1", "1,5", "\t1",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t v = -7;
                int r = parse_seconds_ms(bad[i], 0, INT64_MAX, &v);
                if (r != -EINVAL)
                        fail_msg("parse_seconds_ms(\"%s\") = %d, expected -EINVAL", bad[i], r);
                assert_int_equal(v, -7);
        }
        int64_t v = -7;
        assert_int_equal(parse_seconds_ms(NULL, 0, INT64_MAX, &v), -EINVAL);
        assert_int_equal(v, -7);
}

static void test_parse_seconds_bounds(void **state)
{
        int64_t v = -7;

        /* The limits the CLI uses for --timeout: 0.1 s .. 300 s. */
        assert_int_equal(parse_seconds_ms("0.1", 100, 300000, &v), 0);
        assert_int_equal(v, 100);
        assert_int_equal(parse_seconds_ms("300", 100, 300000, &v), 0);
        assert_int_equal(v, 300000);
        v = -7;
        assert_int_equal(parse_seconds_ms("0.099", 100, 300000, &v), -ERANGE);
        assert_int_equal(parse_seconds_ms("0", 100, 300000, &v), -ERANGE);
        assert_int_equal(parse_seconds_ms("300.001", 100, 300000, &v), -ERANGE);
        assert_int_equal(parse_seconds_ms("301", 100, 300000, &v), -ERANGE);
        assert_int_equal(v, -7);

        /* Far too many digits is a range error, not a wrap-around. */
        assert_int_equal(parse_seconds_ms("99999999999999999999", 0, INT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_seconds_ms("922337203685477", 0, INT64_MAX, &v), 0);
        assert_int_equal(v, 922337203685477000);
}

/* Checks seconds near INT64_MAX / 1000 in a child: the overflow is
 * undefined behaviour, which UBSan builds abort on. */
static bool parse_seconds_near_int64_max_ok(void)
{
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDERR_FILENO); /* UBSan's report */
                int64_t v = -7;
                bool ok = parse_seconds_ms("9223372036854775", 0, INT64_MAX, &v) == 0 &&
                          v == INT64_C(9223372036854775000);
                /* Wide bounds so that a wrapped (negative) result shows. */
                ok = ok && parse_seconds_ms("9223372036854776", INT64_MIN, INT64_MAX, &v) == -ERANGE;
                ok = ok && parse_seconds_ms("9999999999999999", INT64_MIN, INT64_MAX, &v) == -ERANGE;
                ok = ok && parse_seconds_ms("9223372036854775.999", INT64_MIN, INT64_MAX, &v) == -ERANGE;
                _exit(ok ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_parse_seconds_overflow(void **state)
{
        /* 9223372036854775 s is 9223372036854775000 ms, just below
         * INT64_MAX; one more second, or the largest fraction, does not
         * fit and must be -ERANGE, never a wrapped value. */
        assert_true(parse_seconds_near_int64_max_ok());
}

/* ---- config_from_env ---- */

static void test_env_applies(void **state)
{
        PyrConfig c;
        const char *bad = "untouched";

        config_init_defaults(&c);
        setenv("PYRUNNER_TIMEOUT_MS", "5000", 1);
        setenv("PYRUNNER_MEMORY_MB", "256", 1);
        setenv("PYRUNNER_MAX_RESULT_BYTES", "65536", 1);
        setenv("PYRUNNER_ZYGOTE_MAX_FORKS", "1", 1);
        setenv("PYRUNNER_PRELOAD", "", 1);
        assert_int_equal(config_from_env(&c, &bad), 0);
        assert_string_equal(bad, "untouched");
        assert_int_equal(c.timeout_ms, 5000);
        assert_int_equal(c.memory_mb, 256);
        assert_int_equal(c.max_result_bytes, 65536);
        assert_int_equal(c.zygote_max_forks, 1);
        assert_string_equal(c.preload, "");
        /* Untouched settings keep their defaults. */
        assert_int_equal(c.pids_max, 64);
        clear_env();
}

static void test_env_empty_is_noop(void **state)
{
        PyrConfig c, d;
        config_init_defaults(&c);
        config_init_defaults(&d);
        assert_int_equal(config_from_env(&c, NULL), 0);
        assert_memory_equal(&c, &d, sizeof(c));
        /* Lower-case or unprefixed spellings are not ours. */
        setenv("pyrunner_timeout_ms", "5000", 1);
        setenv("TIMEOUT_MS", "5000", 1);
        setenv("PYRUNNER_TIMEOUT-MS", "5000", 1);
        assert_int_equal(config_from_env(&c, NULL), 0);
        assert_int_equal(c.timeout_ms, 30000);
        unsetenv("pyrunner_timeout_ms");
        unsetenv("TIMEOUT_MS");
        unsetenv("PYRUNNER_TIMEOUT-MS");
}

static void test_env_bad_value_names_setting(void **state)
{
        PyrConfig c;
        const char *bad = NULL;

        config_init_defaults(&c);
        setenv("PYRUNNER_PIDS_MAX", "lots", 1);
        assert_int_equal(config_from_env(&c, &bad), -EINVAL);
        assert_non_null(bad);
        assert_string_equal(bad, "pids-max");
        clear_env();

        bad = NULL;
        setenv("PYRUNNER_MEMORY_MB", "1", 1);
        assert_int_equal(config_from_env(&c, &bad), -ERANGE);
        assert_non_null(bad);
        assert_string_equal(bad, "memory-mb");
        assert_int_equal(c.memory_mb, 512);
        clear_env();

        bad = NULL;
        setenv("PYRUNNER_TIMEOUT_MS", "", 1);
        assert_int_equal(config_from_env(&c, &bad), -EINVAL);
        assert_string_equal(bad, "timeout-ms");
        clear_env();

        char big[512];
        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        bad = NULL;
        setenv("PYRUNNER_PRELOAD", big, 1);
        assert_int_equal(config_from_env(&c, &bad), -ERANGE);
        assert_string_equal(bad, "preload");
        clear_env();

        /* bad may be NULL. */
        setenv("PYRUNNER_NOFILE", "x", 1);
        assert_int_equal(config_from_env(&c, NULL), -EINVAL);
        clear_env();
}

static void test_env_every_entry_reachable(void **state)
{
        /* Each table entry is reachable as PYRUNNER_<NAME> ('-' -> '_'). */
        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                char var[96];
                PyrConfig c;
                const char *bad = NULL;

                config_init_defaults(&c);
                env_name(e->name, var, sizeof(var));
                setenv(var, "not-a-value!", 1);
                int r = config_from_env(&c, &bad);
                unsetenv(var);
                if (e->type == CONFIG_INT) {
                        assert_int_equal(r, -EINVAL);
                        assert_non_null(bad);
                        assert_string_equal(bad, e->name);
                } else {
                        assert_int_equal(r, 0);
                        assert_string_equal((const char *)&c + e->offset, "not-a-value!");
                }
        }
}

/* ---- config_validate ---- */

static void test_validate(void **state)
{
        PyrConfig c;
        const char *why = NULL;

        config_init_defaults(&c);
        assert_int_equal(config_validate(&c, &why), 0);

        /* Edges that are still fine. */
        c.timeout_ms = c.max_timeout_ms;
        c.memory_mb = c.min_memory_mb;
        assert_int_equal(config_validate(&c, &why), 0);
        c.memory_mb = c.max_memory_mb;
        assert_int_equal(config_validate(&c, &why), 0);
        c.min_memory_mb = c.max_memory_mb;
        assert_int_equal(config_validate(&c, &why), 0);

        config_init_defaults(&c);
        c.min_memory_mb = 4096;
        c.max_memory_mb = 1024;
        c.memory_mb = 2048;
        why = NULL;
        assert_int_equal(config_validate(&c, &why), -EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, "min-memory-mb"));

        config_init_defaults(&c);
        c.memory_mb = c.min_memory_mb - 1;
        why = NULL;
        assert_int_equal(config_validate(&c, &why), -EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, "memory-mb"));

        config_init_defaults(&c);
        c.memory_mb = c.max_memory_mb + 1;
        why = NULL;
        assert_int_equal(config_validate(&c, &why), -EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, "memory-mb"));

        config_init_defaults(&c);
        c.timeout_ms = c.max_timeout_ms + 1;
        why = NULL;
        assert_int_equal(config_validate(&c, &why), -EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, "timeout-ms"));

        /* Through config_set, the way the CLI gets there. */
        config_init_defaults(&c);
        assert_int_equal(config_set(&c, "max-timeout-ms", "1000"), 0);
        why = NULL;
        assert_int_equal(config_validate(&c, &why), -EINVAL);
        assert_non_null(why);
        assert_int_equal(config_set(&c, "timeout-ms", "1000"), 0);
        assert_int_equal(config_validate(&c, &why), 0);
}

static void test_print_help_lists_everything(void **state)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        config_print_help(f, true);
        assert_int_equal(fclose(f), 0);
        assert_non_null(buf);

        for (size_t i = 0; i < config_table_size; i++) {
                char flag[96];
                snprintf(flag, sizeof(flag), "--%s ", config_table[i].name);
                if (!strstr(buf, flag))
                        fail_msg("help does not mention %s", flag);
        }
        free(buf);

        /* The CLI's help leaves out the daemon's settings. */
        f = open_memstream(&buf, &len);
        assert_non_null(f);
        config_print_help(f, false);
        assert_int_equal(fclose(f), 0);
        for (size_t i = 0; i < config_table_size; i++) {
                char flag[96];
                snprintf(flag, sizeof(flag), "--%s ", config_table[i].name);
                assert_true((strstr(buf, flag) != NULL) == !config_table[i].daemon_only);
        }
        free(buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_bounds_property),
                cmocka_unit_test(test_table_names_unique_and_findable),
                cmocka_unit_test(test_defaults_equal_table),
                cmocka_unit_test(test_set_in_range_every_entry),
                cmocka_unit_test(test_set_out_of_range_every_entry),
                cmocka_unit_test(test_set_rejects_malformed),
                cmocka_unit_test(test_set_accepts_sign_and_zeros),
                cmocka_unit_test(test_set_unknown_name),
                cmocka_unit_test(test_set_string),
                cmocka_unit_test(test_is_set),
                cmocka_unit_test(test_parse_int64),
                cmocka_unit_test(test_parse_seconds_ok),
                cmocka_unit_test(test_parse_seconds_rejects),
                cmocka_unit_test(test_parse_seconds_bounds),
                cmocka_unit_test(test_parse_seconds_overflow),
                cmocka_unit_test_setup(test_env_applies, setup_clear_env),
                cmocka_unit_test_setup(test_env_empty_is_noop, setup_clear_env),
                cmocka_unit_test_setup(test_env_bad_value_names_setting, setup_clear_env),
                cmocka_unit_test_setup(test_env_every_entry_reachable, setup_clear_env),
                cmocka_unit_test(test_validate),
                cmocka_unit_test(test_print_help_lists_everything),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
