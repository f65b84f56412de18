/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"

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
