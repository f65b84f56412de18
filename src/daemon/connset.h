/* SPDX-License-Identifier: MIT */
#pragma once

/* The open client connections, bounded by a cap, from accept to close.
 * evhttp hands out its connection object only after accept, so a new
 * connection is first known by its bufferevent ("pending") and then by
 * its evhttp_connection ("adopted"), which is the lookup key. Pure
 * bookkeeping on opaque pointers: no libevent calls. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

typedef struct Conn {
        void *bev;                   /* the bufferevent made at accept */
        void *evcon;                 /* NULL while pending */
        bool sending;                /* a reply is being written */
        size_t held;                 /* bytes of replies the client has not taken yet */
        size_t taken;                /* bytes it took since the last stall check */
        void *out_cb;                /* the callback on its output buffer */
        void *ev_stall;              /* the stall check, while it holds bytes */
        void *stream_req;            /* the Req whose event stream it carries */
        TAILQ_ENTRY(Conn) pending;
} Conn;

typedef struct ConnSet {
        size_t cap, n;               /* n counts pending and adopted */
        Conn **slots;                /* open addressing by evcon, > 2 x cap slots */
        size_t n_slots;              /* a power of two */
        TAILQ_HEAD(ConnPending, Conn) pending_list;
} ConnSet;

int connset_init(ConnSet *s, size_t cap);
/* Frees every entry. */
void connset_done(ConnSet *s);
/* A newly accepted connection: -ENOSPC once cap are open. */
int connset_add(ConnSet *s, void *bev, Conn **ret);
Conn *connset_first_pending(const ConnSet *s);
/* Files a pending entry under its evhttp_connection: -EEXIST if one is
 * already there (the entry stays pending). */
int connset_adopt(ConnSet *s, Conn *c, void *evcon);
Conn *connset_find(const ConnSet *s, const void *evcon);
/* Forgets a pending or adopted entry and frees it. */
void connset_remove(ConnSet *s, Conn *c);
static inline bool connset_full(const ConnSet *s) { return s->n >= s->cap; }
