/* SPDX-License-Identifier: MIT */
#pragma once

/* pyrunnerd's state and the functions its files share. One global, D: the
 * daemon is one event loop, and everything runs on it. */

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "connset.h"
#include "engine.h"
#include "macro.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"

typedef struct Req Req;
TAILQ_HEAD(ReqList, Req);
typedef struct Session Session;
TAILQ_HEAD(SessionList, Session);

typedef struct Daemon {
        struct event_base *base;
        PyrConfig cfg;
        Engine *engine;
        struct evhttp *http;
        struct evconnlistener *listener;
        struct evhttp_bound_socket *bound;
        Metrics metrics;
        RateLimiter rl;
        KeyList keys;
        RequestLimits limits_run, limits_invoke;
        bool engine_ready, self_test_done, self_test_passed, draining, listener_off;
        bool accept_paused;          /* out of fds: accepting again shortly */
        bool rate_set;               /* rate-limit given explicitly: it applies to every client */
        json_t *self_test_failures;
        char reason[512];
        char *zygote_error;          /* the zygote's start-up error in full (a traceback) */
        unsigned active, queued, sending, max_concurrency;
        size_t held_bytes;           /* of replies not yet taken by their clients */
        struct ReqList queue, all;
        struct SessionList sessions;
        unsigned n_sessions;
        struct event *ev_sessions;   /* the idle and lifetime sweep */
        ConnSet conns;
        struct event *ev_term, *ev_int, *ev_drain, *ev_adopt, *ev_trim, *ev_accept;
        uint64_t next_id;
} Daemon;

struct Req {
        struct evhttp_request *req;
        Route route;
        char id[20];
        struct timespec t0;
        size_t bytes_in;
        RunRequest run;
        Session *session;            /* a cell's, while it runs */
        uint64_t ticket;
        bool submitted, queued, gone;
        /* Accept: text/event-stream: the reply streams (stream.c). */
        bool stream, stream_started;
        unsigned char tail[2][4];    /* stdout's, stderr's cut character */
        uint8_t tail_len[2];
        size_t stream_bytes;
        struct event *ev_closed;
        TAILQ_ENTRY(Req) qlink, link;
};

extern Daemon D;

/* http-reply.c: requests, replies and the JSON log */
Req *req_new(struct evhttp_request *req);
void req_free(Req *r);
void log_json(json_t *o);
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each sends body (JSON unless content_type says otherwise), writes the
 * request's log line and frees r. */
void reply(Req *r, int code, const char *content_type, struct evbuffer *body, json_t *log_extra);
/* A reply's common headers; counts it as sending (for draining) until
 * its last byte is out. Its connection's entry, or NULL. */
Conn *reply_headers(Req *r, const char *content_type);
void reply_json(Req *r, int code, json_t *body, json_t *log_extra);
/* A JSON text, owned (freed once sent); NULL gives a 500. */
void reply_text(Req *r, int code, char *text, size_t len, json_t *log_extra);
void reply_error(Req *r, int code, const char *detail);
void reply_retry(Req *r, int code, const char *detail, int seconds);
void reply_http_error(Req *r, const HttpError *e);

/* stream.c: replies as Server-Sent Events */
/* Accept asks for text/event-stream: r's run will stream its output. */
void stream_setup(Req *r);
/* Sends the headers, if not done yet; events then follow. */
void stream_begin(Req *r);
void stream_on_run(RunStreamKind kind, const char *data, size_t len, void *userdata);
/* The last event, body ("result" for a 200, else "error"), and the end of
 * the reply: the bytes sent. */
size_t stream_end(Req *r, int code, struct evbuffer *body);
/* Its connection broke (evhttp let the request go) or stalled: the
 * client is gone, and the run stops. */
void stream_conn_closed(Conn *c);

/* runs.c: the run queue */
/* Queues or submits a parsed run (r->run), or answers 429. */
double now_s(void);
const char *presented_key(Req *r);

/* Answers 503 when no run may start now (draining, starting, a failed
 * self-test, the reply budget spent): true if it did. */
bool runs_refuse(Req *r);
void run_admit(Req *r);
/* sessions.c: the /sessions routes, and the sweep that ends idle ones. */
void sessions_init(void);
void sessions_handle(Req *r);
/* r's cell ended (res NULL: it never ran): its session was used, or is
 * gone with it. Nothing for other requests. */
void sessions_cell_done(Req *r, const RunResult *res);
/* Ends every idle session (draining). */
void sessions_end_all(void);
/* At exit: forgets them all (engine_free kills their sandboxes). */
void sessions_free_all(void);
void runs_start_next(void);
/* On the drain deadline: 503 to the queued, cancel the running. */
void runs_abort_all(void);

/* listen.c: the listening socket and the connection cap */
struct sockaddr;
void listen_start(const struct sockaddr *sa, int salen);
/* Closes the listening socket: new clients are refused at once. */
void listen_stop(void);
/* After evhttp_send_reply on c's connection: counts what its output
 * buffer now holds against max-reply-bytes until the client takes it,
 * and drops the connection if it takes too little (send-stall-s). */
void listen_hold_reply(Conn *c);
/* Frees evhttp and every connection. */
void listen_done(void);

/* settings.c */
struct sockaddr_storage;
/* Exits 2 with a one-line message on a bad setting. */
void settings_parse(int argc, char **argv, struct sockaddr_storage *ret_addr, int *ret_len);
_noreturn_ void fail_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* pyrunnerd.c */
/* Nothing in flight: ends the loop when draining, else trims the heap soon. */
void daemon_check_idle(void);
