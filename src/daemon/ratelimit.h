/* SPDX-License-Identifier: MIT */
#pragma once

/* Token buckets per client key, in a fixed table (oldest entry reused). */

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_SLOTS 1024

typedef struct RateBucket {
        uint64_t key_hash;
        double tokens;
        double last;                 /* seconds, monotonic */
} RateBucket;

typedef struct RateLimiter {
        double rate, burst;          /* tokens per second; capacity */
        RateBucket slots[RATELIMIT_SLOTS];
} RateLimiter;

void ratelimit_init(RateLimiter *rl, double rate, double burst);
/* Takes one token for key at time now; false (and *retry_after seconds)
 * when the bucket is empty. A rate of 0 disables limiting. */
bool ratelimit_take(RateLimiter *rl, const char *key, double now, double *retry_after);

/* Whether a request is rate limited. A rate set explicitly applies to
 * everyone; the default only to clients off the loopback interface of a
 * server with API keys, so that a local user (or benchmark) is never
 * refused while a public deployment keeps its protection. */
struct sockaddr;
bool ratelimit_applies(bool rate_set, bool have_keys, const struct sockaddr *peer);
