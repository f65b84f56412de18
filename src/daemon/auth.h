/* SPDX-License-Identifier: MIT */
#pragma once

/* API keys: the configured list and the constant-time check of what a
 * client presents. Pure functions, no libevent. */

#include <stdbool.h>
#include <stddef.h>

#define MAX_KEYS 64
#define KEY_MAX_LEN 256

typedef struct KeyList {
        char keys[MAX_KEYS][KEY_MAX_LEN];
        size_t n;
} KeyList;

/* Adds the keys of list, split at any of seps; blanks around a key, empty
 * items and items starting with '#' are skipped. -E2BIG: a key of
 * KEY_MAX_LEN bytes or more; -ENOSPC: more than MAX_KEYS keys. */
int keys_add(KeyList *k, const char *list, const char *seps);
/* Constant time in the key length. */
bool key_equal(const char *a, const char *b);
/* The key presented by the Authorization (Bearer, preferred) or
 * Integrations-API-Key header values (either may be NULL), if it is one of
 * k's; else NULL. Every configured key is compared. */
const char *key_check(const KeyList *k, const char *authorization, const char *api_key_header);
/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
struct sockaddr;
bool sockaddr_is_loopback(const struct sockaddr *sa);
