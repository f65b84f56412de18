/* SPDX-License-Identifier: MIT */
/* Sessions over HTTP: /sessions and below (docs/API.md). A session is an
 * engine session (one sandbox kept alive) owned by the API key that made
 * it; any other key sees 404. Its id is 128 random bits. A sweep every
 * second ends the idle and the expired ones. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "daemon.h"
#include "json-util.h"

struct Session {
        char id[33];                 /* 32 hex digits */
        uint64_t eid;                /* the engine's */
        char owner[KEY_MAX_LEN + 1]; /* the API key; "" without keys */
        int64_t memory_mb, idle_timeout_s;
        time_t created_at;           /* wall clock, for people */
        double created, last_used;   /* now_s() */
        bool running;
        TAILQ_ENTRY(Session) link;
};

static const char *owner_of(Req *r)
{
        const char *k = D.keys.n > 0 ? presented_key(r) : NULL;
        return k ? k : "";
}

static void session_drop(Session *s)
{
        TAILQ_REMOVE(&D.sessions, s, link);
        D.n_sessions--;
        free(s);
}

/* A running cell ends as killed, and its end drops the session
 * (sessions_cell_done): its request still points at it until then. */
static void session_end(Session *s)
{
        engine_session_free(D.engine, s->eid);
        if (!s->running)
                session_drop(s);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
        double now = now_s();
        Session *s, *tmp;
        SessionInfo info;

        for (s = TAILQ_FIRST(&D.sessions); s; s = tmp) {
                tmp = TAILQ_NEXT(s, link);
                if (s->running) {
                        if (now - s->created > (double)D.cfg.session_max_lifetime_s)
                                engine_session_free(D.engine, s->eid); /* its cell's end drops it */
                        continue;
                }
                if (engine_session_info(D.engine, s->eid, &info) < 0)
                        session_drop(s); /* its sandbox died between cells */
                else if (now - s->last_used > (double)s->idle_timeout_s ||
                         now - s->created > (double)D.cfg.session_max_lifetime_s)
                        session_end(s);
        }
}

void sessions_init(void)
{
        TAILQ_INIT(&D.sessions);
        D.ev_sessions = event_new(D.base, -1, EV_PERSIST, on_sweep, NULL);
        if (!D.ev_sessions)
                fail_config("out of memory");
        event_add(D.ev_sessions, &(struct timeval){ .tv_sec = 1 });
}

void sessions_end_all(void)
{
        /* A running cell may finish, as any run in flight while we drain. */
        Session *s, *tmp;
        for (s = TAILQ_FIRST(&D.sessions); s; s = tmp) {
                tmp = TAILQ_NEXT(s, link);
                if (!s->running)
                        session_end(s);
        }
}

static void iso_time(time_t t, char out[32])
{
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *session_json(const Session *s)
{
        char created[32];
        SessionInfo info = { 0 };
        iso_time(s->created_at, created);
        (void)engine_session_info(D.engine, s->eid, &info);
        double idle = now_s() - s->last_used;
        return json_pack("{s:s, s:s, s:I, s:f, s:I, s:I, s:s, s:f}", "session_id", s->id, "state",
                         s->running ? "running" : "idle", "runs", (json_int_t)info.runs, "memory_used",
                         info.memory_used, "memory_limit", (json_int_t)s->memory_mb, "idle_timeout",
                         (json_int_t)s->idle_timeout_s, "created_at", created, "idle_seconds", idle);
}

/* POST /sessions {"memory_limit"?, "idle_timeout"?} */
static void session_create(Req *r)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        size_t len = evbuffer_get_length(in);
        int64_t memory = D.cfg.memory_mb, idle = D.cfg.session_idle_timeout_s;
        const char *owner = owner_of(r);
        json_auto_t *body = NULL;
        unsigned mine = 0;
        Session *s;

        if (len > 0) {
                static const JsonLimits shape = { .max_depth = 2, .max_containers = 4, .max_values = 16 };
                const char *key;
                json_t *v;
                const char *data = (const char *)evbuffer_pullup(in, -1);
                body = json_check(data, len, &shape) == 0 ? json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL)
                                                          : NULL;
                if (!json_is_object(body))
                        return reply_error(r, 400, "the body must be a small JSON object");
                json_object_foreach(body, key, v) {
                        json_int_t x = json_integer_value(v);
                        if (strcmp(key, "memory_limit") && strcmp(key, "idle_timeout"))
                                return reply_error(r, 422, "unknown field (memory_limit and idle_timeout are)");
                        if (!json_is_integer(v))
                                return reply_error(r, 422, "memory_limit and idle_timeout must be integers");
                        if (!strcmp(key, "memory_limit")) {
                                if (x < D.cfg.min_memory_mb || x > D.cfg.max_memory_mb)
                                        return reply_error(r, 422, "memory_limit is outside the server's bounds");
                                memory = x;
                        } else {
                                if (x < 1 || x > D.cfg.session_idle_timeout_s)
                                        return reply_error(r, 422, "idle_timeout must be 1 to the server's "
                                                                   "session-idle-timeout-s");
                                idle = x;
                        }
                }
        }
        if (runs_refuse(r))
                return;
        TAILQ_FOREACH(s, &D.sessions, link)
                mine += !strcmp(s->owner, owner);
        if (D.n_sessions >= (unsigned)D.cfg.max_sessions)
                return reply_retry(r, 429, "too many sessions on this server (max-sessions)", 5);
        if (mine >= (unsigned)D.cfg.max_sessions_per_key)
                return reply_retry(r, 429, "too many sessions for this key (max-sessions-per-key)", 5);
        s = calloc(1, sizeof(*s));
        uint8_t rnd[16];
        if (!s || getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                free(s);
                return reply_error(r, 500, "cannot make a session id");
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
        int e = engine_session_new(D.engine, memory, &s->eid);
        if (e < 0) {
                free(s);
                if (e == -EOPNOTSUPP)
                        return reply_error(r, 503, "sessions need a memory cgroup, which this server lacks");
                return reply_retry(r, 503, "no sandbox can be made now", 1);
        }
        snprintf(s->owner, sizeof(s->owner), "%s", owner);
        s->memory_mb = memory;
        s->idle_timeout_s = idle;
        s->created_at = time(NULL);
        s->created = s->last_used = now_s();
        TAILQ_INSERT_TAIL(&D.sessions, s, link);
        D.n_sessions++;
        reply_json(r, 201, session_json(s), NULL);
}

static Session *session_find(Req *r, const char *id, size_t len)
{
        const char *owner = owner_of(r);
        Session *s;
        TAILQ_FOREACH(s, &D.sessions, link)
                if (len == 32 && !memcmp(s->id, id, 32) && !strcmp(s->owner, owner))
                        return s;
        return NULL;
}

/* The first of a cell's forbidden fields that the body has, or NULL. */
static const char *cell_forbidden(Req *r)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        json_auto_t *o = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, NULL);
        return json_object_get(o, "memory_limit") ? "memory_limit" : json_object_get(o, "stdin") ? "stdin" : NULL;
}

/* POST /sessions/{id}/run: the body and reply of POST /run. */
static void session_run(Req *r, Session *s)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        HttpError err;

        if (!request_is_json(evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type")))
                return reply_error(r, 415, "Content-Type must be application/json");
        if (request_parse((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), &D.limits_run, false,
                          &r->run, &err) < 0)
                return reply_http_error(r, &err);
        const char *bad = cell_forbidden(r);
        if (bad) {
                err = (HttpError){ .status = 422, .type = "extra_forbidden" };
                snprintf(err.field, sizeof(err.field), "%s", bad);
                snprintf(err.message, sizeof(err.message), "a cell takes no %s (the session's memory limit holds)", bad);
                return reply_http_error(r, &err);
        }
        if (s->running)
                return reply_error(r, 409, "a cell of this session is running");
        if (runs_refuse(r))
                return;
        r->run.session = s->eid;
        stream_setup(r);
        r->session = s;
        s->running = true;
        s->last_used = now_s();
        run_admit(r);
}

void sessions_cell_done(Req *r, const RunResult *res)
{
        Session *s = r->session;
        r->session = NULL;
        if (!s)
                return;
        s->running = false;
        s->last_used = now_s();
        if (res && res->session_ended)
                session_drop(s);
        else if (engine_session_info(D.engine, s->eid, &(SessionInfo){ 0 }) < 0)
                session_drop(s); /* ended while its cell waited, which never ran */
}

void sessions_handle(Req *r)
{
        const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(r->req));
        enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
        struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);

        if (!strcmp(path, "/sessions")) {
                if (cmd == EVHTTP_REQ_POST)
                        return session_create(r);
                if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) {
                        const char *owner = owner_of(r);
                        json_t *list = json_array();
                        Session *s;
                        TAILQ_FOREACH(s, &D.sessions, link)
                                if (!strcmp(s->owner, owner))
                                        json_array_append_new(list, session_json(s));
                        return reply_json(r, 200, json_pack("{s:o}", "sessions", list), NULL);
                }
                evhttp_add_header(out, "Allow", "GET, HEAD, POST");
                return reply_error(r, 405, "method not allowed");
        }
        const char *id = path + strlen("/sessions/");
        const char *slash = strchr(id, '/');
        size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
        const char *sub = slash ? slash : "";
        Session *s = session_find(r, id, idlen);
        if (!s || (*sub && strcmp(sub, "/run") && strcmp(sub, "/interrupt")))
                return reply_error(r, 404, "no such session");
        if (!*sub) {
                if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
                        return reply_json(r, 200, session_json(s), NULL);
                if (cmd == EVHTTP_REQ_DELETE) {
                        session_end(s);
                        return reply(r, 204, NULL, NULL, NULL);
                }
                evhttp_add_header(out, "Allow", "GET, HEAD, DELETE");
                return reply_error(r, 405, "method not allowed");
        }
        if (cmd != EVHTTP_REQ_POST) {
                evhttp_add_header(out, "Allow", "POST");
                return reply_error(r, 405, "method not allowed");
        }
        if (!strcmp(sub, "/run"))
                return session_run(r, s);
        int e = engine_session_interrupt(D.engine, s->eid);
        if (e == -EALREADY)
                return reply_error(r, 409, "no cell of this session is running");
        if (e < 0)
                return reply_error(r, 404, "no such session");
        reply_json(r, 200, json_pack("{s:b}", "interrupted", 1), NULL);
}

void sessions_free_all(void)
{
        Session *s;
        while ((s = TAILQ_FIRST(&D.sessions)))
                session_drop(s);
        if (D.ev_sessions)
                event_free(TAKE_PTR(D.ev_sessions));
}
