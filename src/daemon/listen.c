/* SPDX-License-Identifier: MIT */
/* The listening socket and the cap on open connections.
 *
 * libevent 2.1.12 has no evhttp_set_max_connections (that came in 2.2) and
 * keeps its accept callback private, but it asks evhttp_set_bevcb's
 * callback for the bufferevent of every connection it accepts, before
 * anything else happens on it. That is where a connection is counted, and
 * at the cap the listener is disabled, so further clients wait in the
 * kernel's backlog. Once the accept callback has returned, the new
 * evhttp_connection is the bufferevent's callback argument: it is then
 * given a close callback, which gives the slot back. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "daemon.h"

static void update_listener(void)
{
        bool on = D.listener && !D.draining && !D.accept_paused && !connset_full(&D.conns);
        if (!D.listener || on == !D.listener_off)
                return;
        if (on)
                evconnlistener_enable(D.listener);
        else
                evconnlistener_disable(D.listener);
        D.listener_off = !on;
}

/* Less than this taken in send-stall-s while more is held: stalled. */
#define STALL_MIN_BYTES (64u << 10)

static void release_held(Conn *c, size_t n)
{
        n = MIN(n, c->held);
        c->held -= n;
        c->taken += n;
        D.held_bytes -= n;
}

/* The client took bytes from its output buffer. */
static void on_out_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
        release_held(arg, info->n_deleted);
}

static void arm_stall(Conn *c)
{
        /* Shutting down: a reply nobody takes does not hold it up. */
        struct timeval tv = { D.draining ? 1 : D.cfg.send_stall_s, 0 };
        c->taken = 0;
        evtimer_add(c->ev_stall, &tv);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
        Conn *c = arg;
        if (!c->held)
                return;
        if (c->taken >= STALL_MIN_BYTES) {
                arm_stall(c);
                return;
        }
        log_json(json_pack("{s:s, s:s, s:I, s:I}", "level", "warning", "msg",
                           "dropped a client that stopped reading its reply", "held_bytes", (json_int_t)c->held,
                           "stall_s", (json_int_t)D.cfg.send_stall_s));
        /* A reset, so that the kernel drops what its socket still queues
         * for the client too, instead of sending that on at its pace. */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        (void)setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        /* A stream's request is still ours (freeing the connection would
         * free it): its run stops, and its reply then drops the connection. */
        if (c->stream_req)
                stream_conn_closed(c);
        else
                evhttp_connection_free(c->evcon); /* on_conn_close gives back what it held */
}

void listen_hold_reply(Conn *c)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t len = evbuffer_get_length(out);

        if (len <= c->held)
                return;
        D.held_bytes += len - c->held;
        c->held = len;
        if (!c->out_cb)
                c->out_cb = evbuffer_add_cb(out, on_out_drained, c);
        if (!c->ev_stall)
                c->ev_stall = evtimer_new(D.base, on_stall, c);
        if (!c->out_cb || !c->ev_stall) {
                /* Out of memory: nothing would give the count back. */
                evhttp_connection_free(c->evcon);
                return;
        }
        /* A stream grows its reply event by event: the check counts from
         * the first byte held, not the latest. */
        if (!evtimer_pending(c->ev_stall, NULL))
                arm_stall(c);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
        Conn *c = connset_find(&D.conns, evcon);
        if (!c)
                return;
        stream_conn_closed(c);
        if (c->out_cb)
                evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
        if (c->ev_stall)
                event_free(c->ev_stall);
        release_held(c, c->held);
        bool was_sending = c->sending;
        connset_remove(&D.conns, c);
        update_listener();
        if (was_sending) {
                /* The reply broke off: on_sent will not come. */
                D.sending--;
                daemon_check_idle();
        }
}

/* evhttp accepted a connection and asks for its bufferevent. */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
        struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
        Conn *c;
        if (!bev)
                return NULL; /* evhttp tries once more, uncounted */
        if (connset_add(&D.conns, bev, &c) < 0)
                return bev;
        /* Our reference keeps bev valid until on_adopt, even if evhttp
         * gives up on the connection first. */
        bufferevent_incref(bev);
        event_active(D.ev_adopt, EV_TIMEOUT, 1);
        update_listener();
        return bev;
}

/* Right after accept: file each new connection under its evhttp_connection. */
static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
        Conn *c;
        while ((c = connset_first_pending(&D.conns))) {
                struct bufferevent *bev = c->bev;
                void *evcon = NULL;
                /* evhttp's connection is the callback argument; freeing a
                 * bufferevent clears it. */
                bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
                if (evcon && connset_adopt(&D.conns, c, evcon) == -EEXIST) {
                        connset_remove(&D.conns, connset_find(&D.conns, evcon)); /* closed unseen */
                        (void)connset_adopt(&D.conns, c, evcon);
                }
                if (c->evcon)
                        evhttp_connection_set_closecb(evcon, on_conn_close, NULL);
                else
                        connset_remove(&D.conns, c);
                bufferevent_decref(bev);
        }
        update_listener();
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
        D.accept_paused = false;
        update_listener();
}

/* accept() failed. Out of fds, evconnlistener would try again at once
 * and forever: pause accepting for a moment instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
        int err = EVUTIL_SOCKET_ERROR();
        if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
                return;
        log_msg("warning", "accept: %s; not accepting for 100 ms", strerror(err));
        D.accept_paused = true;
        update_listener();
        struct timeval tv = { 0, 100000 };
        evtimer_add(D.ev_accept, &tv);
}

/* Each connection takes an fd, and each sandbox about a dozen (pipes,
 * its channel, pidfds, cgroup files): take the hard limit, and fewer
 * connections if even that is short (a soft limit of 1,024 is common). */
static void fit_fd_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
                (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        uint64_t runs = (uint64_t)D.max_concurrency + (uint64_t)D.cfg.pool_size + 2;
        uint64_t other = 64 + 16 * runs;
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= other + (uint64_t)D.cfg.max_connections)
                return;
        int64_t fit = rl.rlim_cur > other + 16 ? (int64_t)(rl.rlim_cur - other) : 16;
        log_msg("warning", "max-connections lowered from %lld to %lld: RLIMIT_NOFILE is %llu",
                (long long)D.cfg.max_connections, (long long)fit, (unsigned long long)rl.rlim_cur);
        D.cfg.max_connections = fit;
}

void listen_start(const struct sockaddr *sa, int salen)
{
        fit_fd_limit();
        if (connset_init(&D.conns, (size_t)D.cfg.max_connections) < 0)
                fail_config("out of memory");
        D.ev_adopt = event_new(D.base, -1, 0, on_adopt, NULL);
        if (!D.ev_adopt)
                fail_config("out of memory");
        evhttp_set_bevcb(D.http, on_accept, NULL);
        D.listener = evconnlistener_new_bind(D.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 1024,
                                             sa, salen);
        if (!D.listener)
                fail_config("cannot listen on %s: %s", D.cfg.listen, strerror(errno));
        D.ev_accept = evtimer_new(D.base, on_accept_resume, NULL);
        if (!D.ev_accept)
                fail_config("out of memory");
        evconnlistener_set_error_cb(D.listener, on_accept_error);
        D.bound = evhttp_bind_listener(D.http, D.listener);
        if (!D.bound)
                fail_config("cannot serve on %s", D.cfg.listen);
}

void listen_stop(void)
{
        for (size_t i = 0; i < D.conns.n_slots; i++) {
                Conn *c = D.conns.slots[i];
                if (c && c->held)
                        arm_stall(c);
        }
        evhttp_del_accept_socket(D.http, D.bound);
        D.bound = NULL;
        D.listener = NULL;
        D.listener_off = true;
}

void listen_done(void)
{
        Conn *c;
        D.listener = NULL; /* evhttp_free frees it */
        evhttp_free(D.http);
        D.http = NULL;
        while ((c = connset_first_pending(&D.conns))) {
                struct bufferevent *bev = c->bev;
                connset_remove(&D.conns, c);
                bufferevent_decref(bev);
        }
        connset_done(&D.conns);
        event_free(D.ev_adopt);
        if (D.ev_accept)
                event_free(D.ev_accept);
}
