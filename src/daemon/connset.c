/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "connset.h"

/* More slots than twice the cap, so that a free slot always ends a probe. */
int connset_init(ConnSet *s, size_t cap)
{
        size_t n = 4;
        if (cap == 0 || cap > SIZE_MAX / 8)
                return -EINVAL;
        while (n <= 2 * cap)
                n *= 2;
        *s = (ConnSet){ .cap = cap, .n_slots = n };
        TAILQ_INIT(&s->pending_list);
        s->slots = calloc(n, sizeof(Conn *));
        return s->slots ? 0 : -ENOMEM;
}

void connset_done(ConnSet *s)
{
        Conn *c;
        while ((c = TAILQ_FIRST(&s->pending_list)))
                connset_remove(s, c);
        for (size_t i = 0; s->slots && i < s->n_slots; i++)
                free(s->slots[i]);
        free(s->slots);
        s->slots = NULL;
        s->n = 0;
}

static size_t home(const ConnSet *s, const void *p)
{
        uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
        return (size_t)(h >> 32) & (s->n_slots - 1);
}

/* The slot holding evcon, or the free slot where it would go. */
static size_t probe(const ConnSet *s, const void *evcon)
{
        size_t i = home(s, evcon);
        while (s->slots[i] && s->slots[i]->evcon != evcon)
                i = (i + 1) & (s->n_slots - 1);
        return i;
}

int connset_add(ConnSet *s, void *bev, Conn **ret)
{
        if (connset_full(s))
                return -ENOSPC;
        Conn *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->bev = bev;
        TAILQ_INSERT_TAIL(&s->pending_list, c, pending);
        s->n++;
        *ret = c;
        return 0;
}

Conn *connset_first_pending(const ConnSet *s)
{
        return TAILQ_FIRST(&s->pending_list);
}

int connset_adopt(ConnSet *s, Conn *c, void *evcon)
{
        size_t i = probe(s, evcon);
        if (s->slots[i])
                return -EEXIST;
        TAILQ_REMOVE(&s->pending_list, c, pending);
        c->evcon = evcon;
        s->slots[i] = c;
        return 0;
}

Conn *connset_find(const ConnSet *s, const void *evcon)
{
        return evcon ? s->slots[probe(s, evcon)] : NULL;
}

void connset_remove(ConnSet *s, Conn *c)
{
        if (!c->evcon) {
                TAILQ_REMOVE(&s->pending_list, c, pending);
        } else {
                size_t mask = s->n_slots - 1, i = probe(s, c->evcon);
                /* Backward-shift deletion: move up every later entry of the
                 * run whose home is not between the hole and itself. */
                s->slots[i] = NULL;
                for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
                        size_t h = home(s, s->slots[j]->evcon);
                        if (((j - h) & mask) >= ((j - i) & mask)) {
                                s->slots[i] = s->slots[j];
                                s->slots[j] = NULL;
                                i = j;
                        }
                }
        }
        s->n--;
        free(c);
}
