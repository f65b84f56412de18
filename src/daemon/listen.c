/* SPDX-License-Identifier: MIT */
/* The listening socket and the cap on open connections. */
#include <errno.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static size_t conn_slot(void *p)
{
        return ((uintptr_t)p >> 4) % D.conns_cap;
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
        size_t i = conn_slot(evcon);
        for (size_t k = 0; k < D.conns_cap; k++, i = (i + 1) % D.conns_cap)
                if (D.conns[i] == evcon) {
                        /* Backward-shift deletion keeps probe chains intact. */
                        D.conns[i] = NULL;
                        size_t j = (i + 1) % D.conns_cap;
                        while (D.conns[j]) {
                                void *p = D.conns[j];
                                D.conns[j] = NULL;
                                size_t s = conn_slot(p);
                                while (D.conns[s])
                                        s = (s + 1) % D.conns_cap;
                                D.conns[s] = p;
                                j = (j + 1) % D.conns_cap;
                        }
                        D.n_conns--;
                        break;
                }
        if (D.listener && D.listener_off && !D.draining && D.n_conns < (size_t)D.cfg.max_connections) {
                evconnlistener_enable(D.listener);
                D.listener_off = false;
        }
}

void listen_track(struct evhttp_request *req)
{
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        size_t i = conn_slot(evcon);
        while (D.conns[i]) {
                if (D.conns[i] == evcon)
                        return;
                i = (i + 1) % D.conns_cap;
        }
        D.conns[i] = evcon;
        D.n_conns++;
        evhttp_connection_set_closecb(evcon, on_conn_close, NULL);
        if (D.n_conns >= (size_t)D.cfg.max_connections && !D.listener_off && D.listener) {
                evconnlistener_disable(D.listener);
                D.listener_off = true;
        }
}

void listen_start(const struct sockaddr *sa, int salen)
{
        D.conns_cap = (size_t)D.cfg.max_connections * 2 + 1;
        D.conns = calloc(D.conns_cap, sizeof(void *));
        if (!D.conns)
                fail_config("out of memory");
        D.listener = evconnlistener_new_bind(D.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                             sa, salen);
        if (!D.listener)
                fail_config("cannot listen on %s: %s", D.cfg.listen, strerror(errno));
        D.bound = evhttp_bind_listener(D.http, D.listener);
        if (!D.bound)
                fail_config("cannot serve on %s", D.cfg.listen);
}

void listen_stop(void)
{
        evhttp_del_accept_socket(D.http, D.bound);
        D.bound = NULL;
        D.listener = NULL;
        D.listener_off = true;
}

void listen_done(void)
{
        free(D.conns);
        D.conns = NULL;
}
