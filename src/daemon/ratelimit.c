/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <string.h>

#include "auth.h"
#include "ratelimit.h"

static uint64_t hash_key(const char *s)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ull;
        }
        return h ? h : 1;
}

void ratelimit_init(RateLimiter *rl, double rate, double burst)
{
        memset(rl, 0, sizeof(*rl));
        rl->rate = rate;
        rl->burst = burst;
}

bool ratelimit_take(RateLimiter *rl, const char *key, double now, double *retry_after)
{
        if (rl->rate <= 0)
                return true;
        uint64_t h = hash_key(key);
        RateBucket *b = NULL, *oldest = &rl->slots[h % RATELIMIT_SLOTS];
        for (unsigned i = 0; i < 8; i++) {
                RateBucket *s = &rl->slots[(h + i) % RATELIMIT_SLOTS];
                if (s->key_hash == h) {
                        b = s;
                        break;
                }
                if (s->key_hash == 0 || s->last < oldest->last)
                        oldest = s;
        }
        if (!b) {
                b = oldest;
                b->key_hash = h;
                b->tokens = rl->burst;
                b->last = now;
        }
        b->tokens = fmin(rl->burst, b->tokens + (now - b->last) * rl->rate);
        b->last = now;
        if (b->tokens >= 1) {
                b->tokens -= 1;
                return true;
        }
        if (retry_after)
                *retry_after = (1 - b->tokens) / rl->rate;
        return false;
}

bool ratelimit_applies(bool rate_set, bool have_keys, const struct sockaddr *peer)
{
        return rate_set || (have_keys && !sockaddr_is_loopback(peer));
}
