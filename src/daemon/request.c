/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "json-util.h"
#include "macro.h"
#include "request.h"
#include "result.h"

/* The length of the longest prefix of s of at most max bytes that ends
 * on a character boundary (s is valid UTF-8, as jansson checks). */
static int utf8_prefix(const char *s, size_t max)
{
        size_t n = strnlen(s, max);
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return (int)n;
}

static __attribute__((format(printf, 5, 0))) int vfail(HttpError *e, int status, const char *type,
                                                        const char *field, const char *fmt, va_list ap)
{
        e->status = status;
        e->type = type;
        e->field[0] = '\0';
        if (field)
                snprintf(e->field, sizeof(e->field), "%.*s", utf8_prefix(field, sizeof(e->field) - 1), field);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        return status == 500 ? -ENOMEM : -EINVAL;
}

static __attribute__((format(printf, 4, 5))) int fail(HttpError *e, int status, const char *type,
                                                       const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(e, status, type, NULL, fmt, ap);
        va_end(ap);
        return r;
}

/* A 422 about field. */
static __attribute__((format(printf, 4, 5))) int fail_field(HttpError *e, const char *field, const char *type,
                                                             const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(e, 422, type, field, fmt, ap);
        va_end(ap);
        return r;
}

static bool is_tchar(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

int request_check_headers(const struct evkeyvalq *headers, HttpError *e)
{
        const struct evkeyval *h;
        unsigned n_cl = 0, n_te = 0;

        TAILQ_FOREACH(h, headers, next) {
                const unsigned char *k = (const unsigned char *)h->key, *v = (const unsigned char *)h->value;
                if (!*k)
                        return fail(e, 400, NULL, "empty header name");
                for (; *k; k++)
                        if (!is_tchar(*k))
                                return fail(e, 400, NULL, "invalid character in a header name");
                for (; *v; v++)
                        if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
                                return fail(e, 400, NULL, "control character in header %.64s", h->key);
                if (!strcasecmp(h->key, "Content-Length")) {
                        if (++n_cl > 1)
                                return fail(e, 400, NULL, "more than one Content-Length");
                        if (!*h->value || strspn(h->value, "0123456789") != strlen(h->value))
                                return fail(e, 400, NULL, "Content-Length must be digits");
                } else if (!strcasecmp(h->key, "Transfer-Encoding")) {
                        if (++n_te > 1)
                                return fail(e, 400, NULL, "more than one Transfer-Encoding");
                        if (strcasecmp(h->value, "chunked"))
                                return fail(e, 400, NULL, "Transfer-Encoding must be chunked");
                }
        }
        return 0;
}

void request_limits_from_config(const PyrConfig *c, RequestLimits *ret)
{
        *ret = (RequestLimits){
                .timeout_default_s = MAX(1, c->timeout_ms / 1000),
                .timeout_max_s = MAX(1, c->max_timeout_ms / 1000),
                .memory_default_mb = c->memory_mb,
                .memory_min_mb = c->min_memory_mb,
                .memory_max_mb = c->max_memory_mb,
                .max_body_bytes = c->max_body_bytes,
                .max_code_bytes = c->max_code_bytes,
                .max_stdin_bytes = c->max_stdin_bytes,
                .max_files = c->max_files,
                .max_files_bytes = c->max_files_bytes,
        };
}

bool request_is_json(const char *ct)
{
        size_t n = strlen("application/json");
        if (!ct)
                return false;
        while (isspace((unsigned char)*ct))
                ct++;
        return strncasecmp(ct, "application/json", n) == 0 &&
               (ct[n] == '\0' || ct[n] == ';' || isspace((unsigned char)ct[n]));
}

/* Whether s (valid UTF-8) is only white space, as Python's str.isspace()
 * sees it: what PyRunner's model refuses with 422 after strip(). */
static bool blank(const char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                uint32_t cp;
                if (c < 0x80) {
                        cp = c;
                        i += 1;
                } else if (c < 0xe0 && i + 1 < n) {
                        cp = (uint32_t)(c & 0x1f) << 6 | ((unsigned char)s[i + 1] & 0x3f);
                        i += 2;
                } else if (c < 0xf0 && i + 2 < n) {
                        cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)((unsigned char)s[i + 1] & 0x3f) << 6 |
                             ((unsigned char)s[i + 2] & 0x3f);
                        i += 3;
                } else {
                        return false; /* none above U+FFFF */
                }
                if (!((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
                      cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
                      cp == 0x202f || cp == 0x205f || cp == 0x3000))
                        return false;
        }
        return true;
}

/* An optional integer field within [lo, hi]. */
static int get_int(json_t *body, const char *name, int64_t lo, int64_t hi, int64_t *val, HttpError *e)
{
        json_t *v = json_object_get(body, name);
        if (!v)
                return 0;
        if (!json_is_integer(v))
                return fail_field(e, name, "type_error", "%s must be an integer", name);
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi)
                return fail_field(e, name, "value_error", "%s must be between %lld and %lld", name, (long long)lo,
                                  (long long)hi);
        *val = x;
        return 0;
}

int request_parse(const char *data, size_t len, const RequestLimits *lim, bool invoke, RunRequest *ret,
                  HttpError *e)
{
        json_error_t jerr;
        json_auto_t *body = NULL;
        const char *key;
        json_t *v;
        int r;

        *ret = (RunRequest){ 0 };
        if (len > (size_t)lim->max_body_bytes)
                return fail(e, 413, NULL, "request body too large");
        /* What a tree of the body would cost is known before it is built:
         * a few scalars are what a request holds. */
        static const JsonLimits shape = { .max_depth = 16, .max_containers = 1024, .max_values = 16384 };
        r = json_check(data, len, &shape);
        if (r == -ELOOP)
                return fail(e, 400, NULL, "the body nests more than %u deep", shape.max_depth);
        if (r == -E2BIG)
                return fail(e, 400, NULL, "the body holds more JSON values than a request can use");
        body = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!body)
                /* jansson quotes the input near the error, maybe cut mid-character */
                return fail(e, 400, NULL, "malformed JSON: %s",
                            utf8_valid(jerr.text, strlen(jerr.text)) ? jerr.text : "invalid input");
        if (!json_is_object(body))
                return fail(e, 400, NULL, "the body must be a JSON object");
        json_object_foreach(body, key, v)
                if (strcmp(key, "code") && strcmp(key, "timeout") && strcmp(key, "memory_limit") &&
                    (invoke || (strcmp(key, "stdin") && strcmp(key, "files") && strcmp(key, "return_files"))))
                        return fail_field(e, key, "extra_forbidden", "unknown field '%.*s'", utf8_prefix(key, 100),
                                          key);

        json_t *code = json_object_get(body, "code");
        if (!code)
                return fail_field(e, "code", "missing", "code is required");
        if (!json_is_string(code))
                return fail_field(e, "code", "type_error", "code must be a string");
        size_t code_len = json_string_length(code);
        if (code_len == 0 || code_len > (size_t)lim->max_code_bytes)
                return fail_field(e, "code", "value_error", "code must be 1 to %lld bytes",
                                  (long long)lim->max_code_bytes);
        if (memchr(json_string_value(code), '\0', code_len))
                return fail_field(e, "code", "value_error", "code must not contain NUL characters");
        if (blank(json_string_value(code), code_len))
                return fail_field(e, "code", "value_error", "code must not be only white space");

        int64_t timeout = lim->timeout_default_s, memory = lim->memory_default_mb;
        r = get_int(body, "timeout", 1, lim->timeout_max_s, &timeout, e);
        if (r < 0)
                return r;
        r = get_int(body, "memory_limit", lim->memory_min_mb, lim->memory_max_mb, &memory, e);
        if (r < 0)
                return r;

        json_t *in = json_object_get(body, "stdin");
        if (in && !json_is_string(in) && !json_is_null(in))
                return fail_field(e, "stdin", "type_error", "stdin must be a string");
        size_t in_len = json_is_string(in) ? json_string_length(in) : 0;
        if (in_len > (size_t)lim->max_stdin_bytes)
                return fail_field(e, "stdin", "value_error", "stdin is too large");

        const char *field, *why;
        json_t *files = json_object_get(body, "files");
        if (json_is_null(files))
                files = NULL;
        if (files && run_files_check(files, lim->max_files, lim->max_files_bytes, &field, &why) < 0)
                return fail_field(e, field, "value_error", "%s", why);
        json_t *rf = json_object_get(body, "return_files");
        if (json_is_null(rf) || json_is_false(rf))
                rf = NULL;
        if (rf && run_return_files_check(rf, &why) < 0)
                return fail_field(e, "return_files", "value_error", "%s", why);

        _cleanup_free_ char *c = strndup(json_string_value(code), code_len);
        _cleanup_free_ char *s = in_len ? malloc(in_len) : NULL;
        if (!c || (in_len && !s))
                return fail(e, 500, NULL, "out of memory");
        if (in_len)
                memcpy(s, json_string_value(in), in_len);
        *ret = (RunRequest){
                .code = TAKE_PTR(c), .code_len = code_len,
                .stdin_data = TAKE_PTR(s), .stdin_len = in_len,
                .timeout_ms = timeout * 1000, .memory_mb = memory,
                .files = json_incref(files), .return_files = json_incref(rf),
        };
        return 0;
}

void request_clear(RunRequest *rr)
{
        free((char *)rr->code);
        free((char *)rr->stdin_data);
        json_decref(rr->files);
        json_decref(rr->return_files);
        *rr = (RunRequest){ 0 };
}

json_t *http_error_json(const HttpError *e)
{
        if (e->status != 422)
                return json_pack("{s:s}", "detail", e->message);
        return json_pack("{s:[{s:[s,s], s:s, s:s}]}", "detail", "loc", "body", e->field, "msg", e->message, "type",
                         e->type);
}
