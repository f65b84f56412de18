/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "text-util.h"

int json_format_real(double x, char *buf, size_t size)
{
        char sci[40];
        int prec, n;

        if (!isfinite(x))
                return -EINVAL;
        /* The fewest significant digits that read back as x. */
        for (prec = 1; prec <= 17; prec++) {
                snprintf(sci, sizeof(sci), "%.*e", prec - 1, x);
                double y = strtod(sci, NULL);
                if (y == x && signbit(y) == signbit(x))
                        break;
        }
        int exp10 = atoi(strchr(sci, 'e') + 1);
        if (exp10 >= -4 && exp10 < 16)
                n = snprintf(buf, size, "%.*f", prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, x);
        else
                n = snprintf(buf, size, "%.*e", prec - 1, x);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        char *e = strchr(buf, 'e');
        if (e) {
                /* 1.5e-07 -> 1.5e-7, 1e+16 -> 1e16, as jansson writes them */
                char *digits = e + 1 + (e[1] == '-'), *from = e + 1 + (e[1] == '-' || e[1] == '+');
                while (*from == '0' && from[1])
                        from++;
                memmove(digits, from, strlen(from) + 1);
                n = (int)strlen(buf);
        } else if (!strchr(buf, '.')) {
                if ((size_t)n + 2 >= size)
                        return -ENOBUFS;
                memcpy(buf + n, ".0", 3);
                n += 2;
        }
        return n;
}

static bool number_char(char c)
{
        return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* jansson writes every real with a '.' or an 'e', and no integer with one. */
static bool is_real(const char *tok, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (tok[i] == '.' || tok[i] == 'e' || tok[i] == 'E')
                        return true;
        return false;
}

char *json_dumps_shortest(const json_t *json, size_t flags)
{
        char *s = json_dumps(json, flags & ~(size_t)JSON_REAL_PRECISION(0x1f));
        if (!s)
                return NULL;
        size_t len = strlen(s);
        /* A real never grows by more than 2 bytes, and takes at least 3. */
        char *out = malloc(len + len / 3 * 2 + 1), *w = out;
        if (!out) {
                free(s);
                return NULL;
        }
        bool in_string = false;
        for (const char *p = s; *p;) {
                if (in_string) {
                        if (*p == '\\' && p[1])
                                *w++ = *p++;
                        else if (*p == '"')
                                in_string = false;
                        *w++ = *p++;
                } else if (*p == '"') {
                        in_string = true;
                        *w++ = *p++;
                } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                        const char *start = p;
                        while (number_char(*p))
                                p++;
                        size_t n = (size_t)(p - start);
                        char tok[64], buf[40];
                        int k = -1;
                        if (n < sizeof(tok) && is_real(start, n)) {
                                memcpy(tok, start, n);
                                tok[n] = '\0';
                                k = json_format_real(strtod(tok, NULL), buf, sizeof(buf));
                        }
                        if (k > 0 && (size_t)k <= n + 2) {
                                memcpy(w, buf, (size_t)k);
                                w += k;
                        } else {
                                memcpy(w, start, n);
                                w += n;
                        }
                } else {
                        *w++ = *p++;
                }
        }
        *w = '\0';
        free(s);
        return out;
}

int json_dumpf_shortest(const json_t *json, FILE *f, size_t flags)
{
        char *s = json_dumps_shortest(json, flags);
        int r = s && fputs(s, f) >= 0 ? 0 : -1;
        free(s);
        return r;
}

#define JSON_CHECK_MAX_DEPTH 4096

typedef struct Scan {
        const unsigned char *p, *end;
} Scan;

static void skip_ws(Scan *s)
{
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int hex4(Scan *s)
{
        int v = 0;
        if (s->end - s->p < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                unsigned char c = *s->p++;
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                        c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        return -1;
                v = v << 4 | d;
        }
        return v;
}

/* A string, from its opening quote. */
static bool scan_string(Scan *s)
{
        s->p++;
        while (s->p < s->end) {
                unsigned char c = *s->p;
                if (c == '"') {
                        s->p++;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c >= 0x80) {
                        size_t n = utf8_seq(s->p, (size_t)(s->end - s->p));
                        if (!n)
                                return false;
                        s->p += n;
                        continue;
                }
                s->p++;
                if (c != '\\')
                        continue;
                if (s->p >= s->end)
                        return false;
                c = *s->p++;
                if (c && strchr("\"\\/bfnrt", c))
                        continue;
                if (c != 'u')
                        return false;
                int u = hex4(s);
                if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
                        return false;
                if (u >= 0xd800 && u <= 0xdbff) {
                        if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                                return false;
                        s->p += 2;
                        int lo = hex4(s);
                        if (lo < 0xdc00 || lo > 0xdfff)
                                return false;
                }
        }
        return false;
}

static bool scan_digits(Scan *s)
{
        const unsigned char *start = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                s->p++;
        return s->p > start;
}

static bool scan_number(Scan *s)
{
        if (*s->p == '-')
                s->p++;
        if (s->p < s->end && *s->p == '0')
                s->p++;
        else if (!scan_digits(s))
                return false;
        if (s->p < s->end && *s->p == '.') {
                s->p++;
                if (!scan_digits(s))
                        return false;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (!scan_digits(s))
                        return false;
        }
        return true;
}

static bool scan_word(Scan *s, const char *w)
{
        size_t n = strlen(w);
        if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
                return false;
        s->p += n;
        return true;
}

/* A key and its colon, at the key's opening quote. */
static bool scan_key(Scan *s)
{
        if (s->p >= s->end || *s->p != '"' || !scan_string(s))
                return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
                return false;
        s->p++;
        return true;
}

int json_check(const char *text, size_t len, const JsonLimits *lim)
{
        /* One bit per open container: set for an object. */
        uint64_t is_obj[JSON_CHECK_MAX_DEPTH / 64] = { 0 };
        unsigned max_depth = MIN(lim->max_depth, JSON_CHECK_MAX_DEPTH), depth = 0;
        size_t containers = 0, values = 0;
        Scan s = { (const unsigned char *)text, (const unsigned char *)text + len };

        for (;;) {
                /* A value. */
                skip_ws(&s);
                if (s.p >= s.end)
                        return -EBADMSG;
                if (++values > lim->max_values)
                        return -E2BIG;
                unsigned char c = *s.p;
                if (c == '{' || c == '[') {
                        if (++containers > lim->max_containers)
                                return -E2BIG;
                        if (depth >= max_depth)
                                return -ELOOP;
                        uint64_t bit = 1ull << (depth % 64);
                        is_obj[depth / 64] = c == '{' ? is_obj[depth / 64] | bit : is_obj[depth / 64] & ~bit;
                        depth++;
                        s.p++;
                        skip_ws(&s);
                        if (s.p < s.end && *s.p == (c == '{' ? '}' : ']'))
                                s.p++, depth--;
                        else if (c == '{') {
                                if (!scan_key(&s))
                                        return -EBADMSG;
                                continue;
                        } else
                                continue;
                } else if (c == '"') {
                        if (!scan_string(&s))
                                return -EBADMSG;
                } else if (c == '-' || (c >= '0' && c <= '9')) {
                        if (!scan_number(&s))
                                return -EBADMSG;
                } else if (!scan_word(&s, "true") && !scan_word(&s, "false") && !scan_word(&s, "null"))
                        return -EBADMSG;

                /* After a value: a comma, or the ends of containers. */
                for (;;) {
                        skip_ws(&s);
                        if (depth == 0)
                                return s.p == s.end ? 0 : -EBADMSG;
                        if (s.p >= s.end)
                                return -EBADMSG;
                        bool obj = is_obj[(depth - 1) / 64] >> ((depth - 1) % 64) & 1;
                        if (*s.p == (obj ? '}' : ']')) {
                                s.p++;
                                depth--;
                                continue;
                        }
                        if (*s.p != ',')
                                return -EBADMSG;
                        s.p++;
                        if (obj) {
                                skip_ws(&s);
                                if (!scan_key(&s))
                                        return -EBADMSG;
                        }
                        break;
                }
        }
}
