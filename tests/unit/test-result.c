/* SPDX-License-Identifier: MIT */
/* Unit tests for src/engine/result.c: classification of a run, status names,
 * UTF-8 validation/sanitising, the JSON result object and its copy. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "result.h"

#define FFFD "\xef\xbf\xbd"

/* Wait statuses as the kernel encodes them. */
static int exited(int code)
{
        return (code & 0xff) << 8;
}

static int signaled(int sig)
{
        return sig & 0x7f;
}

/* ---- run_classify ---- */

typedef struct ClassifyCase {
        const char *what;
        RunOutcome o;
        RunStatus status;
        int exit_code, signal;
} ClassifyCase;

static void check_cases(const ClassifyCase *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const ClassifyCase *c = &cases[i];
                int code = 12345, sig = 12345;
                RunStatus s = run_classify(&c->o, &code, &sig);
                if (s != c->status || code != c->exit_code || sig != c->signal)
                        fail_msg("%s: got %s exit %d signal %d, expected %s exit %d signal %d", c->what,
                                 run_status_name(s), code, sig, run_status_name(c->status), c->exit_code,
                                 c->signal);
        }
}

static void test_classify_precedence(void **state)
{
        const ClassifyCase cases[] = {
                { "setup_failed beats everything",
                  { .setup_failed = true, .timed_out = true, .output_exceeded = true, .cancelled = true,
                    .protocol_error = true, .oom_kills = 2, .have_result = true, .result_memory_error = true,
                    .have_wait_status = true, .wait_status = signaled(SIGKILL) },
                  RUN_INTERNAL_ERROR, -1, SIGKILL },
                { "setup_failed alone",
                  { .setup_failed = true }, RUN_INTERNAL_ERROR, -1, 0 },
                { "setup_failed beats a successful result",
                  { .setup_failed = true, .have_result = true, .have_wait_status = true, .wait_status = exited(0) },
                  RUN_INTERNAL_ERROR, 0, 0 },
                { "timed_out beats output and oom",
                  { .timed_out = true, .output_exceeded = true, .oom_kills = 1, .cancelled = true,
                    .have_wait_status = true, .wait_status = signaled(SIGKILL) },
                  RUN_TIMEOUT, -1, SIGKILL },
                { "timed_out beats a result",
                  { .timed_out = true, .have_result = true, .result_exit_code = 0 },
                  RUN_TIMEOUT, 0, 0 },
                { "output_exceeded beats oom",
                  { .output_exceeded = true, .oom_kills = 3, .have_wait_status = true,
                    .wait_status = signaled(SIGKILL) },
                  RUN_OUTPUT_LIMIT, -1, SIGKILL },
                { "output_exceeded beats cancel and result",
                  { .output_exceeded = true, .cancelled = true, .have_result = true },
                  RUN_OUTPUT_LIMIT, 0, 0 },
                { "oom kill with SIGKILL wait status is memory, not killed",
                  { .oom_kills = 1, .have_wait_status = true, .wait_status = signaled(SIGKILL) },
                  RUN_MEMORY_EXCEEDED, -1, SIGKILL },
                { "oom kill beats cancel",
                  { .oom_kills = 1, .cancelled = true }, RUN_MEMORY_EXCEEDED, -1, 0 },
                { "oom kill beats a successful result",
                  { .oom_kills = 5, .have_result = true, .have_wait_status = true, .wait_status = exited(0) },
                  RUN_MEMORY_EXCEEDED, 0, 0 },
                { "MemoryError result",
                  { .have_result = true, .result_is_error = true, .result_memory_error = true,
                    .result_exit_code = 1 },
                  RUN_MEMORY_EXCEEDED, 1, 0 },
                { "MemoryError flag without a result is ignored",
                  { .result_memory_error = true, .have_wait_status = true, .wait_status = exited(0) },
                  RUN_SUCCESS, 0, 0 },
                { "cancelled beats a result",
                  { .cancelled = true, .have_result = true, .result_is_error = true, .result_exit_code = 1 },
                  RUN_KILLED, 1, 0 },
                { "cancelled with SIGKILL",
                  { .cancelled = true, .have_wait_status = true, .wait_status = signaled(SIGKILL) },
                  RUN_KILLED, -1, SIGKILL },
                { "result success",
                  { .have_result = true, .result_exit_code = 0 }, RUN_SUCCESS, 0, 0 },
                { "result error",
                  { .have_result = true, .result_is_error = true, .result_exit_code = 1 }, RUN_ERROR, 1, 0 },
                { "result beats a protocol error and a signal",
                  { .have_result = true, .protocol_error = true, .have_wait_status = true,
                    .wait_status = signaled(SIGKILL) },
                  RUN_SUCCESS, -1, SIGKILL },
                { "wait status wins over the result's exit code",
                  { .have_result = true, .result_is_error = true, .result_exit_code = 1, .have_wait_status = true,
                    .wait_status = exited(2) },
                  RUN_ERROR, 2, 0 },
                { "no result, exited 0",
                  { .have_wait_status = true, .wait_status = exited(0) }, RUN_SUCCESS, 0, 0 },
                { "no result, exited 3",
                  { .have_wait_status = true, .wait_status = exited(3) }, RUN_ERROR, 3, 0 },
                { "no result, exited 255",
                  { .have_wait_status = true, .wait_status = exited(255) }, RUN_ERROR, 255, 0 },
                { "no result, SIGKILL",
                  { .have_wait_status = true, .wait_status = signaled(SIGKILL) }, RUN_KILLED, -1, SIGKILL },
                { "no result, SIGSEGV",
                  { .have_wait_status = true, .wait_status = signaled(SIGSEGV) }, RUN_KILLED, -1, SIGSEGV },
                { "no result, SIGSYS (seccomp)",
                  { .have_wait_status = true, .wait_status = signaled(SIGSYS) }, RUN_KILLED, -1, SIGSYS },
                { "no result, core-dumping SIGABRT",
                  { .have_wait_status = true, .wait_status = signaled(SIGABRT) | 0x80 },
                  RUN_KILLED, -1, SIGABRT },
                { "SIGXCPU is a CPU timeout",
                  { .have_wait_status = true, .wait_status = signaled(SIGXCPU) }, RUN_TIMEOUT, -1, SIGXCPU },
                { "protocol error without result",
                  { .protocol_error = true, .have_wait_status = true, .wait_status = exited(0) },
                  RUN_ERROR, 0, 0 },
                { "protocol error without anything else",
                  { .protocol_error = true }, RUN_ERROR, -1, 0 },
                { "nothing known at all",
                  { .have_result = false }, RUN_INTERNAL_ERROR, -1, 0 },
        };
        check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- status names ---- */

static void test_status_names_round_trip(void **state)
{
        static const char *const expected[] = {
                [RUN_SUCCESS] = "success",
                [RUN_ERROR] = "error",
                [RUN_TIMEOUT] = "timeout",
                [RUN_MEMORY_EXCEEDED] = "memory_exceeded",
                [RUN_OUTPUT_LIMIT] = "output_limit",
                [RUN_KILLED] = "killed",
                [RUN_INTERNAL_ERROR] = "internal_error",
        };
        for (int s = 0; s < _RUN_STATUS_MAX; s++) {
                const char *n = run_status_name((RunStatus)s);
                assert_non_null(n);
                assert_string_equal(n, expected[s]);
                assert_int_equal(run_status_from_name(n), s);
        }
}

static void test_status_names_invalid(void **state)
{
        assert_null(run_status_name(_RUN_STATUS_MAX));
        assert_null(run_status_name(_RUN_STATUS_INVALID));
        assert_null(run_status_name((RunStatus)-1));
        assert_null(run_status_name((RunStatus)1000));
        assert_int_equal(run_status_from_name(NULL), _RUN_STATUS_INVALID);
        assert_int_equal(run_status_from_name(""), _RUN_STATUS_INVALID);
        assert_int_equal(run_status_from_name("bogus"), _RUN_STATUS_INVALID);
        assert_int_equal(run_status_from_name("Success"), _RUN_STATUS_INVALID);
        assert_int_equal(run_status_from_name("success "), _RUN_STATUS_INVALID);
        assert_int_equal(run_status_from_name("memory-exceeded"), _RUN_STATUS_INVALID);
        assert_int_equal(_RUN_STATUS_INVALID, -EINVAL);
}

/* ---- UTF-8 ---- */

typedef struct Utf8Case {
        const char *what;
        const char *in;
        size_t len;
        const char *sanitized; /* NULL: same as the input */
        size_t sanitized_len;
} Utf8Case;

#define VALID(w, s) { w, s, sizeof(s) - 1, NULL, 0 }
#define INVALID(w, s, out) { w, s, sizeof(s) - 1, out, sizeof(out) - 1 }

static const Utf8Case utf8_cases[] = {
        VALID("empty", ""),
        VALID("ASCII", "hello, world\n\t~\x7f"),
        VALID("2-byte U+00E9", "caf\xc3\xa9"),
        VALID("2-byte U+0080 (smallest)", "\xc2\x80"),
        VALID("2-byte U+07FF (largest)", "\xdf\xbf"),
        VALID("3-byte U+20AC", "\xe2\x82\xac"),
        VALID("3-byte U+0800 (smallest)", "\xe0\xa0\x80"),
        VALID("3-byte U+D7FF (below surrogates)", "\xed\x9f\xbf"),
        VALID("3-byte U+E000 (above surrogates)", "\xee\x80\x80"),
        VALID("3-byte U+FFFD", FFFD),
        VALID("3-byte U+FFFF", "\xef\xbf\xbf"),
        VALID("4-byte U+1F600", "\xf0\x9f\x98\x80"),
        VALID("4-byte U+10000 (smallest)", "\xf0\x90\x80\x80"),
        VALID("4-byte U+10FFFF (largest)", "\xf4\x8f\xbf\xbf"),
        VALID("mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"),
        INVALID("overlong 2-byte '/'", "\xc0\xaf", FFFD FFFD),
        INVALID("overlong 2-byte U+007F", "\xc1\xbf", FFFD FFFD),
        INVALID("overlong 3-byte '/'", "\xe0\x80\xaf", FFFD FFFD FFFD),
        INVALID("overlong 3-byte U+07FF", "\xe0\x9f\xbf", FFFD FFFD FFFD),
        INVALID("overlong 4-byte '/'", "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD),
        INVALID("overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD),
        INVALID("surrogate U+D800", "\xed\xa0\x80", FFFD FFFD FFFD),
        INVALID("surrogate U+DFFF", "\xed\xbf\xbf", FFFD FFFD FFFD),
        INVALID("surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD),
        INVALID("U+110000", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
        INVALID("F5 lead", "\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD),
        INVALID("5-byte lead", "\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD),
        INVALID("FE", "\xfe", FFFD),
        INVALID("FF", "a\xffz", "a" FFFD "z"),
        INVALID("truncated 2-byte at end", "a\xc3", "a" FFFD),
        INVALID("truncated 3-byte at end", "a\xe2\x82", "a" FFFD FFFD),
        INVALID("truncated 4-byte at end", "a\xf0\x9f\x98", "a" FFFD FFFD FFFD),
        INVALID("truncated 3-byte before ASCII", "\xe2\x82z", FFFD FFFD "z"),
        INVALID("lone continuation", "\x80", FFFD),
        INVALID("lone continuation inside", "a\xbf" "b", "a" FFFD "b"),
        INVALID("two continuations after a char", "\xc3\xa9\x80\x80", "\xc3\xa9" FFFD FFFD),
};

static void test_utf8_valid_cases(void **state)
{
        for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
                const Utf8Case *c = &utf8_cases[i];
                bool v = utf8_valid(c->in, c->len);
                if (v != !c->sanitized)
                        fail_msg("utf8_valid(%s) = %d", c->what, v);
        }
}

static void test_utf8_sanitize_cases(void **state)
{
        for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
                const Utf8Case *c = &utf8_cases[i];
                const char *want = c->sanitized ? c->sanitized : c->in;
                size_t want_len = c->sanitized ? c->sanitized_len : c->len;
                size_t got_len = 12345;
                char *got = utf8_sanitize(c->in, c->len, &got_len);

                assert_non_null(got);
                if (got_len != want_len || memcmp(got, want, want_len) != 0)
                        fail_msg("utf8_sanitize(%s): length %zu, expected %zu", c->what, got_len, want_len);
                assert_int_equal(got[got_len], '\0');
                assert_true(utf8_valid(got, got_len));
                free(got);
        }
}

/* A stream cut inside a character keeps its first bytes for the next
 * piece; anything complete or invalid goes now. */
static void test_utf8_cut(void **state)
{
        assert_int_equal(utf8_cut("", 0), 0);
        assert_int_equal(utf8_cut("ab", 2), 2);
        assert_int_equal(utf8_cut("a\xc3", 2), 1);            /* é cut */
        assert_int_equal(utf8_cut("a\xc3\xa9", 3), 3);
        assert_int_equal(utf8_cut("\xe2\x82", 2), 0);        /* € cut */
        assert_int_equal(utf8_cut("\xe2\x82\xac", 3), 3);
        assert_int_equal(utf8_cut("x\xf0\x9f\x98", 4), 1);  /* an emoji cut */
        assert_int_equal(utf8_cut("\xf0\x9f\x98\x80", 4), 4);
        assert_int_equal(utf8_cut("a\x80", 2), 2);            /* stray continuation */
        assert_int_equal(utf8_cut("a\xff", 2), 2);            /* never valid */
        assert_int_equal(utf8_cut("a\xf5\x80", 3), 3);
}

static void test_utf8_nul(void **state)
{
        /* utf8_valid refuses NUL (results are C strings)... */
        assert_false(utf8_valid("a\0b", 3));
        assert_false(utf8_valid("\0", 1));
        assert_true(utf8_valid("a\0b", 1));

        /* ...while utf8_sanitize passes it through: it is valid UTF-8, and
         * the length is what counts for stdout/stderr. */
        size_t n = 0;
        char *s = utf8_sanitize("a\0b\xff", 4, &n);
        assert_non_null(s);
        assert_int_equal(n, 2 + 1 + 3);
        assert_memory_equal(s, "a\0b" FFFD, n + 1);
        free(s);
}

static void test_utf8_sanitize_len_and_null_ret(void **state)
{
        /* Only len bytes are read; cutting into a sequence makes it invalid. */
        char *s = utf8_sanitize("\xc3\xa9xyz", 1, NULL);
        assert_non_null(s);
        assert_string_equal(s, FFFD);
        free(s);

        size_t n = 99;
        s = utf8_sanitize("", 0, &n);
        assert_non_null(s);
        assert_int_equal(n, 0);
        assert_string_equal(s, "");
        free(s);

        /* The worst case triples the size. */
        char bad[64];
        memset(bad, 0xff, sizeof(bad));
        s = utf8_sanitize(bad, sizeof(bad), &n);
        assert_non_null(s);
        assert_int_equal(n, 3 * sizeof(bad));
        assert_true(utf8_valid(s, n));
        free(s);
}

static void test_utf8_exhaustive_two_bytes(void **state)
{
        /* Every 2-byte string: sanitize output is valid, and equals the input
         * exactly when the input is valid. */
        for (unsigned a = 1; a < 256; a++)
                for (unsigned b = 1; b < 256; b++) {
                        char in[2] = { (char)a, (char)b };
                        size_t n;
                        char *s = utf8_sanitize(in, 2, &n);
                        assert_non_null(s);
                        assert_true(utf8_valid(s, n));
                        if (utf8_valid(in, 2)) {
                                assert_int_equal(n, 2);
                                assert_memory_equal(s, in, 2);
                        }
                        free(s);
                }
}

/* ---- JSON ---- */

static void expect_type(json_t *o, const char *key, json_type type)
{
        json_t *v = json_object_get(o, key);
        if (!v)
                fail_msg("\"%s\" missing", key);
        if (json_typeof(v) != type)
                fail_msg("\"%s\" has type %d, expected %d", key, (int)json_typeof(v), (int)type);
}

static void fill(RunResult *r, RunStatus status)
{
        memset(r, 0, sizeof(*r));
        r->status = status;
        r->exit_code = -1;
        r->out = strdup("out\n");
        r->out_len = 4;
        r->err = strdup("");
        r->err_len = 0;
        r->execution_time = 0.25;
        r->cpu_time = 0.125;
        r->memory_used = 12.5;
        r->timeout_ms = 2000;
        r->memory_mb = 512;
        assert_non_null(r->out);
        assert_non_null(r->err);
}

static void test_json_success_fields(void **state)
{
        RunResult r;
        fill(&r, RUN_SUCCESS);
        r.exit_code = 0;
        r.out_truncated = true;

        size_t n;
        char *text = run_result_dumps(&r, JSON_COMPACT, &n);
        assert_non_null(text);
        assert_int_equal(strlen(text), n);
        json_t *o = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
        free(text);
        assert_non_null(o);
        expect_type(o, "status", JSON_STRING);
        expect_type(o, "stdout", JSON_STRING);
        expect_type(o, "stderr", JSON_STRING);
        expect_type(o, "stdout_truncated", JSON_TRUE);
        expect_type(o, "stderr_truncated", JSON_FALSE);
        expect_type(o, "exit_code", JSON_INTEGER);
        expect_type(o, "signal", JSON_NULL);
        expect_type(o, "execution_time", JSON_REAL);
        expect_type(o, "cpu_time", JSON_REAL);
        expect_type(o, "memory_used", JSON_REAL);
        expect_type(o, "error", JSON_NULL);
        expect_type(o, "error_info", JSON_NULL);
        expect_type(o, "result", JSON_NULL);

        assert_string_equal(json_string_value(json_object_get(o, "status")), "success");
        assert_string_equal(json_string_value(json_object_get(o, "stdout")), "out\n");
        assert_string_equal(json_string_value(json_object_get(o, "stderr")), "");
        assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 0);
        assert_true(json_real_value(json_object_get(o, "execution_time")) == 0.25);
        assert_true(json_real_value(json_object_get(o, "cpu_time")) == 0.125);
        assert_true(json_real_value(json_object_get(o, "memory_used")) == 12.5);
        expect_type(o, "outputs", JSON_ARRAY);
        expect_type(o, "outputs_truncated", JSON_FALSE);
        assert_int_equal(json_object_size(o), 15);

        json_decref(o);
        run_result_clear(&r);
        assert_null(r.out);
}

/* The value's, the outputs' and the files' texts go into the reply as they
 * are, as the last members. */
static void test_dumps_splices_the_value(void **state)
{
        RunResult r;
        fill(&r, RUN_SUCCESS);
        r.result = strdup("[1, {\"$type\": \"tuple\", \"items\": [\"\u00e9\"]}]");
        r.result_len = strlen(r.result);
        r.outputs = strdup("[{\"data\":{\"text/plain\":\"1\"}}]");
        r.outputs_len = strlen(r.outputs);
        r.files_wanted = true;
        r.files_skipped = strdup("[{\"path\":\"p\",\"size\":1,\"reason\":\"not_regular\"}]");
        r.files_skipped_len = strlen(r.files_skipped);
        size_t n;
        char *text = run_result_dumps(&r, JSON_COMPACT | JSON_PRESERVE_ORDER, &n);
        assert_non_null(text);
        const char *tail = ",\"outputs\":[{\"data\":{\"text/plain\":\"1\"}}],\"files\":[],"
                           "\"files_skipped\":[{\"path\":\"p\",\"size\":1,\"reason\":\"not_regular\"}],"
                           "\"result\":[1, {\"$type\": \"tuple\", \"items\": [\"\u00e9\"]}]}";
        assert_true(n > strlen(tail));
        assert_string_equal(text + n - strlen(tail), tail);
        json_t *o = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(o);
        assert_int_equal(json_object_size(o), 17);
        assert_int_equal(json_array_size(json_object_get(o, "result")), 2);
        json_decref(o);
        free(text);
        run_result_clear(&r);
}

static void test_json_error_with_info(void **state)
{
        RunResult r;
        fill(&r, RUN_ERROR);
        r.exit_code = 1;
        r.error = json_pack("{s:s, s:s, s:i}", "type", "ZeroDivisionError", "message", "division by zero",
                            "line", 3);
        assert_non_null(r.error);

        json_t *o = run_result_to_json(&r);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "error");
        expect_type(o, "error", JSON_STRING);
        assert_string_equal(json_string_value(json_object_get(o, "error")), "ZeroDivisionError on line 3");
        expect_type(o, "error_info", JSON_OBJECT);
        /* Passed through as the same object, with its own reference. */
        assert_ptr_equal(json_object_get(o, "error_info"), r.error);
        assert_int_equal(r.error->refcount, 2);
        assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 1);
        json_decref(o);
        assert_int_equal(r.error->refcount, 1);
        assert_string_equal(json_string_value(json_object_get(r.error, "type")), "ZeroDivisionError");
        run_result_clear(&r);
}

static void test_json_null_exit_and_signal(void **state)
{
        RunResult r;
        fill(&r, RUN_KILLED);
        r.exit_code = -1;
        r.signal = SIGKILL;

        json_t *o = run_result_to_json(&r);
        assert_non_null(o);
        expect_type(o, "exit_code", JSON_NULL);
        expect_type(o, "signal", JSON_INTEGER);
        assert_int_equal(json_integer_value(json_object_get(o, "signal")), SIGKILL);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "killed");
        expect_type(o, "error", JSON_STRING);
        json_decref(o);
        run_result_clear(&r);
}

static void test_json_stdout_with_nul(void **state)
{
        RunResult r;
        fill(&r, RUN_SUCCESS);
        r.exit_code = 0;
        free(r.out);
        r.out = utf8_sanitize("a\0b", 3, &r.out_len);
        assert_non_null(r.out);

        json_t *o = run_result_to_json(&r);
        assert_non_null(o);
        json_t *out = json_object_get(o, "stdout");
        assert_non_null(out);
        assert_int_equal(json_string_length(out), 3);
        assert_memory_equal(json_string_value(out), "a\0b", 3);
        json_decref(o);
        run_result_clear(&r);
}

static void expect_summary(RunResult *r, const char *want)
{
        char *s = run_result_summary(r);
        json_t *o = run_result_to_json(r);
        assert_non_null(o);
        if (!want) {
                assert_null(s);
                expect_type(o, "error", JSON_NULL);
        } else {
                assert_non_null(s);
                assert_string_equal(s, want);
                assert_string_equal(json_string_value(json_object_get(o, "error")), want);
        }
        free(s);
        json_decref(o);
}

static void test_summaries(void **state)
{
        RunResult r;

        fill(&r, RUN_SUCCESS);
        expect_summary(&r, NULL);
        run_result_clear(&r);

        fill(&r, RUN_TIMEOUT);
        r.timeout_ms = 2000;
        expect_summary(&r, "Execution timed out after 2 s");
        r.timeout_ms = 2500;
        expect_summary(&r, "Execution timed out after 2.5 s");
        r.timeout_ms = 100;
        expect_summary(&r, "Execution timed out after 0.1 s");
        run_result_clear(&r);

        fill(&r, RUN_MEMORY_EXCEEDED);
        r.memory_mb = 512;
        expect_summary(&r, "Memory limit of 512 MB exceeded");
        run_result_clear(&r);

        fill(&r, RUN_OUTPUT_LIMIT);
        expect_summary(&r, "Output limit exceeded");
        run_result_clear(&r);

        fill(&r, RUN_KILLED);
        r.signal = SIGKILL;
        expect_summary(&r, "Killed by signal 9 (Killed)");
        r.signal = 0;
        expect_summary(&r, "Killed");
        run_result_clear(&r);

        fill(&r, RUN_INTERNAL_ERROR);
        expect_summary(&r, "Internal error: unknown");
        r.message = strdup("zygote died");
        expect_summary(&r, "Internal error: zygote died");
        run_result_clear(&r);

        fill(&r, RUN_ERROR);
        r.exit_code = 3;
        expect_summary(&r, "Exited with code 3");
        r.error = json_pack("{s:s}", "type", "KeyError");
        expect_summary(&r, "KeyError");
        json_decref(r.error);
        /* A line that is not an integer is left out. */
        r.error = json_pack("{s:s, s:s}", "type", "NameError", "line", "1");
        expect_summary(&r, "NameError");
        json_decref(r.error);
        r.error = json_pack("{s:s, s:i}", "type", "NameError", "line", 1);
        expect_summary(&r, "NameError on line 1");
        json_decref(r.error);
        /* No type: fall back to the exit code. */
        r.error = json_pack("{s:i}", "line", 1);
        expect_summary(&r, "Exited with code 3");
        run_result_clear(&r);
}

static void test_result_clear_zeroes(void **state)
{
        RunResult r;
        fill(&r, RUN_ERROR);
        r.error = json_object();
        r.message = strdup("m");
        run_result_clear(&r);
        assert_null(r.out);
        assert_null(r.err);
        assert_null(r.error);
        assert_null(r.message);
        assert_int_equal(r.status, RUN_SUCCESS);
        /* Clearing twice is harmless. */
        run_result_clear(&r);
}

static void test_result_copy(void **state)
{
        RunResult r, c;
        fill(&r, RUN_ERROR);
        free(r.out);
        r.out = malloc(4);
        memcpy(r.out, "a\0b", 4); /* output may hold NUL */
        r.out_len = 3;
        r.exit_code = 3;
        r.signal = 9;
        r.out_truncated = true;
        r.error = json_pack("{s:s}", "type", "ZeroDivisionError");
        r.result = strdup("[7]");
        r.result_len = 3;
        r.message = strdup("why");
        r.result_repr = strdup("[1]");
        assert_int_equal(run_result_copy(&r, &c), 0);
        assert_int_equal(c.status, RUN_ERROR);
        assert_int_equal(c.exit_code, 3);
        assert_int_equal(c.signal, 9);
        assert_true(c.out_truncated);
        assert_int_equal(c.timeout_ms, 2000);
        assert_true(c.cpu_time == 0.125);
        assert_int_equal(c.out_len, 3);
        assert_memory_equal(c.out, "a\0b", 4);
        assert_ptr_not_equal(c.out, r.out);
        assert_int_equal(c.err_len, 0);
        assert_string_equal(c.err, "");
        assert_ptr_not_equal(c.err, r.err);
        assert_string_equal(c.message, "why");
        assert_ptr_not_equal(c.message, r.message);
        assert_string_equal(c.result_repr, "[1]");
        assert_ptr_not_equal(c.result_repr, r.result_repr);
        assert_ptr_equal(c.error, r.error);
        assert_int_equal(c.result_len, 3);
        assert_ptr_not_equal(c.result, r.result);
        /* Each owns its half: clearing the original leaves the copy whole
         * (ASan would see a use-after-free). */
        run_result_clear(&r);
        assert_string_equal(json_string_value(json_object_get(c.error, "type")), "ZeroDivisionError");
        assert_string_equal(c.result, "[7]");
        assert_string_equal(c.message, "why");
        run_result_clear(&c);
}

static void test_result_copy_nulls(void **state)
{
        RunResult r = { .status = RUN_INTERNAL_ERROR, .exit_code = -1 }, c;
        assert_int_equal(run_result_copy(&r, &c), 0);
        assert_int_equal(c.status, RUN_INTERNAL_ERROR);
        assert_null(c.out);
        assert_null(c.err);
        assert_null(c.error);
        assert_null(c.message);
        assert_null(c.result_repr);
        assert_null(c.result);
        run_result_clear(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classify_precedence),
                cmocka_unit_test(test_status_names_round_trip),
                cmocka_unit_test(test_status_names_invalid),
                cmocka_unit_test(test_utf8_valid_cases),
                cmocka_unit_test(test_utf8_sanitize_cases),
                cmocka_unit_test(test_utf8_nul),
                cmocka_unit_test(test_utf8_cut),
                cmocka_unit_test(test_utf8_sanitize_len_and_null_ret),
                cmocka_unit_test(test_utf8_exhaustive_two_bytes),
                cmocka_unit_test(test_json_success_fields),
                cmocka_unit_test(test_dumps_splices_the_value),
                cmocka_unit_test(test_json_error_with_info),
                cmocka_unit_test(test_json_null_exit_and_signal),
                cmocka_unit_test(test_json_stdout_with_nul),
                cmocka_unit_test(test_summaries),
                cmocka_unit_test(test_result_clear_zeroes),
                cmocka_unit_test(test_result_copy),
                cmocka_unit_test(test_result_copy_nulls),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
