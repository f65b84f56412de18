/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text-util.h"

void error_gist(const char *message, char *out, size_t size)
{
        const char *tb = strstr(message, "Traceback (most recent call last)");
        if (!tb) {
                snprintf(out, size, "%.*s", (int)strcspn(message, "\n"), message);
                return;
        }
        const char *end = message + strlen(message);
        while (end > tb && end[-1] == '\n')
                end--;
        const char *last = end;
        while (last > tb && last[-1] != '\n')
                last--;
        snprintf(out, size, "%.*s%.*s", (int)(tb - message), message, (int)(end - last), last);
}

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
size_t utf8_seq(const unsigned char *s, size_t left)
{
        unsigned char c = s[0];
        size_t n;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (left < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

bool utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(p + i, len - i);
                if (n == 0 || (n == 1 && p[i] == 0))
                        return false;
                i += n;
        }
        return true;
}

size_t utf8_cut(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        for (size_t back = 1; back <= 3 && back <= len; back++) {
                unsigned char c = p[len - back];
                if ((c & 0xc0) == 0x80)
                        continue;
                size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 1;
                return need > back && c <= 0xf4 ? len - back : len;
        }
        return len;
}

char *utf8_sanitize(const char *s, size_t len, size_t *ret_len)
{
        const unsigned char *p = (const unsigned char *)s;
        char *out = malloc(len * 3 + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(p + i, len - i);
                if (n == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                }
        }
        out[o] = '\0';
        if (ret_len)
                *ret_len = o;
        return out;
}

long long base64_decoded_size(const char *s, size_t len)
{
        if (len % 4)
                return -EBADMSG;
        size_t pad = len > 0 && s[len - 1] == '=' ? 1 + (len > 1 && s[len - 2] == '=') : 0;
        for (size_t i = 0; i < len - pad; i++) {
                unsigned char c = (unsigned char)s[i];
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '+' || c == '/';
                if (!ok)
                        return -EBADMSG;
        }
        return (long long)(len / 4 * 3 - pad);
}

bool rel_path_ok(const char *s, size_t len)
{
        if (len == 0 || len > 4095 || memchr(s, '\0', len))
                return false;
        for (size_t i = 0; i <= len;) {
                const char *slash = memchr(s + i, '/', len - i);
                size_t n = (slash ? (size_t)(slash - s) : len) - i;
                if (n == 0 || n > 255 || (n == 1 && s[i] == '.') || (n == 2 && s[i] == '.' && s[i + 1] == '.'))
                        return false;
                i += n + 1;
                if (!slash)
                        break;
        }
        return true;
}
