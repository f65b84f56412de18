/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "macro.h"

int keys_add(KeyList *k, const char *list, const char *seps)
{
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save)) {
                while (isspace((unsigned char)*t))
                        t++;
                size_t n = strlen(t);
                while (n > 0 && isspace((unsigned char)t[n - 1]))
                        t[--n] = '\0';
                if (n == 0 || t[0] == '#')
                        continue;
                if (n >= KEY_MAX_LEN)
                        return -E2BIG;
                if (k->n >= MAX_KEYS)
                        return -ENOSPC;
                memcpy(k->keys[k->n++], t, n + 1);
        }
        return 0;
}

bool key_equal(const char *a, const char *b)
{
        /* Compare fixed-size buffers, so the time does not depend on
         * where the first difference is. */
        char x[KEY_MAX_LEN] = { 0 }, y[KEY_MAX_LEN] = { 0 };
        size_t la = strnlen(a, KEY_MAX_LEN), lb = strnlen(b, KEY_MAX_LEN);
        memcpy(x, a, MIN(la, KEY_MAX_LEN - 1));
        memcpy(y, b, MIN(lb, KEY_MAX_LEN - 1));
        unsigned char diff = la != lb;
        for (size_t i = 0; i < KEY_MAX_LEN; i++)
                diff |= (unsigned char)(x[i] ^ y[i]);
        return diff == 0;
}

const char *key_check(const KeyList *k, const char *authorization, const char *api_key_header)
{
        const char *given = api_key_header;
        if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
                given = authorization + 7;
        if (!given)
                return NULL;
        bool ok = false;
        for (size_t i = 0; i < k->n; i++)
                ok |= key_equal(given, k->keys[i]);
        return ok ? given : NULL;
}

bool sockaddr_is_loopback(const struct sockaddr *sa)
{
        if (!sa)
                return false;
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }
        return false;
}
