/* SPDX-License-Identifier: MIT */
/* pyrunnerd: the HTTP/JSON service. One libevent loop: evhttp for HTTP,
 * the engine for sandboxes. It never runs Python and never blocks. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "macro.h"
#include "metrics.h"
#include "openapi_json.h"
#include "pyrunner-config.h"
#include "ratelimit.h"
#include "zygote-proto.h"

#define MAX_KEYS 64
#define KEY_MAX_LEN 256

typedef struct Req Req;
TAILQ_HEAD(ReqList, Req);

typedef struct Daemon {
        struct event_base *base;
        PyrConfig cfg;
        Engine *engine;
        struct evhttp *http;
        struct evconnlistener *listener;
        struct evhttp_bound_socket *bound;
        Metrics metrics;
        RateLimiter rl;
        char keys[MAX_KEYS][KEY_MAX_LEN];
        size_t n_keys;
        bool engine_ready, self_test_done, self_test_passed, draining, listener_off;
        json_t *self_test_failures;
        char reason[256];
        unsigned active, queued, sending, max_concurrency;
        struct ReqList queue, all;
        void **conns;                /* open-addressed set of evhttp_connection* */
        size_t conns_cap, n_conns;
        struct event *ev_term, *ev_int, *ev_drain;
        uint64_t next_id;
        uint64_t zygote_restarts;
        int exec_timeout_default_s, exec_timeout_max_s, exec_memory_default, exec_memory_max;
} Daemon;

struct Req {
        Daemon *d;
        struct evhttp_request *req;
        Route route;
        char id[20];
        struct timespec t0;
        size_t bytes_in;
        char *code, *stdin_data;
        size_t code_len, stdin_len;
        int64_t timeout_ms, memory_mb;
        uint64_t ticket;
        bool submitted, queued, gone;
        struct event *ev_closed;
        TAILQ_ENTRY(Req) qlink, link;
};

static Daemon D;

/* ---- logging: JSON lines on stderr, daemon-level code only ---- */

static double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void log_json(json_t *o)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        json_object_set_new(o, "ts", json_real((double)t.tv_sec + (double)t.tv_nsec / 1e9));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) {
                fprintf(stderr, "%s\n", s);
                free(s);
        }
        json_decref(o);
}

static __attribute__((format(printf, 2, 3))) void log_msg(const char *level, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_json(json_pack("{s:s, s:s}", "level", level, "msg", buf));
}

/* ---- replies ---- */

static void add_common_headers(Req *r, struct evkeyvalq *h)
{
        evhttp_add_header(h, "X-Request-Id", r->id);
        if (D.cfg.cors_origin[0]) {
                evhttp_add_header(h, "Access-Control-Allow-Origin", D.cfg.cors_origin);
                evhttp_add_header(h, "Vary", "Origin");
        }
}

static void req_free(Req *r)
{
        if (r->ev_closed)
                event_free(r->ev_closed);
        TAILQ_REMOVE(&D.all, r, link);
        free(r->code);
        free(r->stdin_data);
        free(r);
}

static const char *reason_phrase(int code)
{
        switch (code) {
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 499: return "Client Closed Request";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return NULL;
        }
}

static void maybe_stop(void)
{
        if (D.draining && D.active == 0 && D.queued == 0 && D.sending == 0)
                event_base_loopexit(D.base, NULL);
}

/* The last byte of a reply went out (for draining). */
static void on_sent(struct evhttp_request *req, void *arg)
{
        D.sending--;
        maybe_stop();
}

/* Sends body (JSON unless content_type says otherwise), logs, frees r. */
static void reply(Req *r, int code, const char *content_type, struct evbuffer *body, json_t *log_extra)
{
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
        size_t out = body ? evbuffer_get_length(body) : 0;

        if (r->ev_closed) {
                event_free(r->ev_closed);
                r->ev_closed = NULL;
        }
        add_common_headers(r, h);
        evhttp_add_header(h, "Content-Type", content_type ? content_type : "application/json");
        D.sending++;
        evhttp_request_set_on_complete_cb(r->req, on_sent, NULL);
        evhttp_send_reply(r->req, code, reason_phrase(code), body);
        if (body)
                evbuffer_free(body);

        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double secs = (double)(t.tv_sec - r->t0.tv_sec) + (double)(t.tv_nsec - r->t0.tv_nsec) / 1e9;
        metrics_request(&D.metrics, r->route, code, secs);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:I, s:I}", "level", "info", "msg", "request",
                              "request_id", r->id, "method",
                              evhttp_request_get_command(r->req) == EVHTTP_REQ_POST ? "POST" : "GET", "route",
                              route_name(r->route), "status", code, "duration_ms", secs * 1e3,
                              "bytes_in", (json_int_t)r->bytes_in, "bytes_out", (json_int_t)out);
        if (r->gone)
                json_object_set_new(o, "client", json_string("disconnected"));
        if (log_extra)
                json_object_update(o, log_extra);
        json_decref(log_extra);
        log_json(o);
        req_free(r);
}

static void reply_json(Req *r, int code, json_t *body, json_t *log_extra)
{
        struct evbuffer *b = evbuffer_new();
        char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
        free(s);
        json_decref(body);
        reply(r, code, NULL, b, log_extra);
}

static void reply_error(Req *r, int code, const char *detail)
{
        reply_json(r, code, json_pack("{s:s}", "detail", detail), NULL);
}

static void reply_retry(Req *r, int code, const char *detail, int seconds)
{
        char v[16];
        snprintf(v, sizeof(v), "%d", MAX(seconds, 1));
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", v);
        reply_error(r, code, detail);
}

/* FastAPI-style 422: {"detail": [{"loc": ["body", field], "msg", "type"}]} */
static void reply_422(Req *r, const char *field, const char *type, const char *msg)
{
        json_t *item = json_pack("{s:[s,s], s:s, s:s}", "loc", "body", field, "msg", msg, "type", type);
        reply_json(r, 422, json_pack("{s:[o]}", "detail", item), NULL);
}

/* ---- authentication and limits ---- */

static bool key_equal(const char *a, const char *b)
{
        /* Constant time in the key length: compare fixed-size buffers. */
        char x[KEY_MAX_LEN] = { 0 }, y[KEY_MAX_LEN] = { 0 };
        size_t la = strnlen(a, KEY_MAX_LEN), lb = strnlen(b, KEY_MAX_LEN);
        memcpy(x, a, MIN(la, KEY_MAX_LEN - 1));
        memcpy(y, b, MIN(lb, KEY_MAX_LEN - 1));
        unsigned char diff = la != lb;
        for (size_t i = 0; i < KEY_MAX_LEN; i++)
                diff |= (unsigned char)(x[i] ^ y[i]);
        return diff == 0;
}

/* Returns the presented key (for rate limiting), or NULL when it is
 * missing or wrong. Every configured key is compared. */
static const char *check_key(struct evhttp_request *req)
{
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *auth = evhttp_find_header(h, "Authorization");
        const char *given = evhttp_find_header(h, "Integrations-API-Key");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
                given = auth + 7;
        if (!given)
                return NULL;
        bool ok = false;
        for (size_t i = 0; i < D.n_keys; i++)
                ok |= key_equal(given, D.keys[i]);
        return ok ? given : NULL;
}

static void client_label(struct evhttp_request *req, char *buf, size_t size)
{
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
        snprintf(buf, size, "ip:%s", addr ? addr : "?");
}

/* ---- connection cap ---- */

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

static void track_connection(struct evhttp_request *req)
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

/* ---- runs ---- */

static void start_next(void);

static json_t *result_log(const Req *r, const RunResult *res)
{
        json_t *o = json_pack("{s:s, s:f}", "run_status", run_status_name(res->status), "execution_time",
                              res->execution_time);
        if (D.cfg.debug_log) {
                json_object_set_new(o, "code", json_stringn(r->code, r->code_len));
                json_object_set_new(o, "stdout", json_stringn(res->out, res->out_len));
                json_object_set_new(o, "stderr", json_stringn(res->err, res->err_len));
        }
        return o;
}

static json_t *invoke_body(Req *r, const RunResult *res)
{
        char *msg = NULL;
        int n;
        switch (res->status) {
        case RUN_TIMEOUT:
                n = asprintf(&msg, "Execution timed out after %lld second%s", (long long)(r->timeout_ms / 1000),
                             r->timeout_ms == 1000 ? "" : "s");
                break;
        case RUN_MEMORY_EXCEEDED:
                n = asprintf(&msg, "Memory limit exceeded: %lldMB", (long long)r->memory_mb);
                break;
        case RUN_SUCCESS: {
                const char *value = res->result_repr ? res->result_repr : res->out;
                size_t len = res->result_repr ? strlen(res->result_repr) : res->out_len;
                while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == ' '))
                        len--;
                n = asprintf(&msg, "The Python code executed was:\n\n%s\n\nThe result of the execution is:\n\n%.*s",
                             r->code, (int)len, value);
                break;
        }
        case RUN_ERROR:
        case RUN_OUTPUT_LIMIT:
        case RUN_KILLED:
        case RUN_INTERNAL_ERROR:
        case _RUN_STATUS_MAX:
        case _RUN_STATUS_INVALID:
        default: {
                const char *m = json_string_value(json_object_get(res->error, "message"));
                char *summary = run_result_summary(res);
                n = asprintf(&msg, "Execution error: %s", m ? m : summary ? summary : "failed");
                free(summary);
                break;
        }
        }
        uint8_t u[16];
        char uuid[37];
        if (getrandom(u, sizeof(u), 0) != sizeof(u))
                memset(u, 0, sizeof(u));
        u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
        u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
        snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        json_t *o = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "status", "success", "invocationId", uuid, "response",
                              "message", n < 0 ? "Execution error" : msg, "type", "text");
        free(msg);
        return o;
}

static void on_run_done(const RunResult *res, void *userdata)
{
        Req *r = userdata;
        D.active--;
        D.metrics.executions[res->status]++;
        metrics_observe(&D.metrics.execution_seconds, res->execution_time);
        json_t *body = r->route == ROUTE_INVOKE ? invoke_body(r, res) : run_result_to_json(res);
        reply_json(r, 200, body, result_log(r, res));
        start_next();
}

static void submit(Req *r)
{
        RunRequest rr = {
                .code = r->code, .code_len = r->code_len,
                .stdin_data = r->stdin_data, .stdin_len = r->stdin_len,
                .timeout_ms = r->timeout_ms, .memory_mb = r->memory_mb,
        };
        int e = engine_submit(D.engine, &rr, on_run_done, r, &r->ticket);
        if (e < 0) {
                reply_error(r, 500, "the engine refused the run");
                return;
        }
        r->submitted = true;
        D.active++;
}

static void start_next(void)
{
        Req *r;
        while (D.active < D.max_concurrency && (r = TAILQ_FIRST(&D.queue))) {
                TAILQ_REMOVE(&D.queue, r, qlink);
                r->queued = false;
                D.queued--;
                submit(r);
        }
        maybe_stop();
}

/* The client went away while its run waited or ran: stop the run. */
static void on_client_closed(evutil_socket_t fd, short what, void *arg)
{
        Req *r = arg;
        r->gone = true;
        event_free(r->ev_closed);
        r->ev_closed = NULL;
        if (r->queued) {
                TAILQ_REMOVE(&D.queue, r, qlink);
                r->queued = false;
                D.queued--;
                reply_error(r, 499, "client closed the connection");
        } else if (r->submitted) {
                engine_cancel(D.engine, r->ticket);
        }
}

/* ---- request parsing ---- */

static bool json_content_type(struct evhttp_request *req)
{
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (!ct)
                return false;
        while (isspace((unsigned char)*ct))
                ct++;
        size_t n = strlen("application/json");
        return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || isspace((unsigned char)ct[n]));
}

/* Reads an optional integer field within [lo, hi]; replies 422 itself. */
static bool get_int_field(Req *r, json_t *body, const char *name, int64_t lo, int64_t hi, int64_t *val)
{
        json_t *v = json_object_get(body, name);
        char msg[160];
        if (!v)
                return true;
        if (!json_is_integer(v)) {
                snprintf(msg, sizeof(msg), "%s must be an integer", name);
                reply_422(r, name, "type_error", msg);
                return false;
        }
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi) {
                snprintf(msg, sizeof(msg), "%s must be between %lld and %lld", name, (long long)lo, (long long)hi);
                reply_422(r, name, "value_error", msg);
                return false;
        }
        *val = x;
        return true;
}

static void handle_run(Req *r, bool invoke)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        size_t len = evbuffer_get_length(in);
        json_error_t jerr;

        if (!json_content_type(r->req))
                return reply_error(r, 415, "Content-Type must be application/json");
        if (len > (size_t)D.cfg.max_body_bytes)
                return reply_error(r, 413, "request body too large");
        json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len,
                                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!body) {
                char msg[300];
                snprintf(msg, sizeof(msg), "malformed JSON: %s", jerr.text);
                return reply_error(r, 400, msg);
        }
        if (!json_is_object(body)) {
                json_decref(body);
                return reply_error(r, 400, "the body must be a JSON object");
        }
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
                if (strcmp(key, "code") && strcmp(key, "timeout") && strcmp(key, "memory_limit") &&
                    (invoke || strcmp(key, "stdin"))) {
                        char msg[160];
                        snprintf(msg, sizeof(msg), "unknown field '%.100s'", key);
                        reply_422(r, key, "extra_forbidden", msg);
                        json_decref(body);
                        return;
                }
        }
        json_t *code = json_object_get(body, "code");
        if (!code) {
                json_decref(body);
                return reply_422(r, "code", "missing", "code is required");
        }
        if (!json_is_string(code)) {
                json_decref(body);
                return reply_422(r, "code", "type_error", "code must be a string");
        }
        if (json_string_length(code) == 0 || json_string_length(code) > (size_t)D.cfg.max_code_bytes) {
                char msg[120];
                snprintf(msg, sizeof(msg), "code must be 1 to %lld bytes", (long long)D.cfg.max_code_bytes);
                json_decref(body);
                return reply_422(r, "code", "value_error", msg);
        }
        if (memchr(json_string_value(code), '\0', json_string_length(code))) {
                json_decref(body);
                return reply_422(r, "code", "value_error", "code must not contain NUL characters");
        }
        /* The API speaks whole seconds; settings below one second round up. */
        int64_t t_def = invoke ? D.exec_timeout_default_s : MAX(1, D.cfg.timeout_ms / 1000);
        int64_t t_max = invoke ? D.exec_timeout_max_s : MAX(1, D.cfg.max_timeout_ms / 1000);
        int64_t m_def = invoke ? D.exec_memory_default : D.cfg.memory_mb;
        int64_t m_max = invoke ? D.exec_memory_max : D.cfg.max_memory_mb;
        int64_t timeout = t_def, memory = m_def;
        if (!get_int_field(r, body, "timeout", 1, t_max, &timeout) ||
            !get_int_field(r, body, "memory_limit", D.cfg.min_memory_mb, m_max, &memory)) {
                json_decref(body);
                return;
        }
        json_t *stdin_v = json_object_get(body, "stdin");
        if (stdin_v && !json_is_string(stdin_v) && !json_is_null(stdin_v)) {
                json_decref(body);
                return reply_422(r, "stdin", "type_error", "stdin must be a string");
        }
        if (json_is_string(stdin_v) && json_string_length(stdin_v) > (size_t)D.cfg.max_stdin_bytes) {
                json_decref(body);
                return reply_422(r, "stdin", "value_error", "stdin is too large");
        }
        r->code = strndup(json_string_value(code), json_string_length(code));
        r->code_len = json_string_length(code);
        if (json_is_string(stdin_v)) {
                r->stdin_len = json_string_length(stdin_v);
                r->stdin_data = malloc(r->stdin_len + 1);
                if (r->stdin_data)
                        memcpy(r->stdin_data, json_string_value(stdin_v), r->stdin_len);
        }
        json_decref(body);
        if (!r->code || (r->stdin_len && !r->stdin_data))
                return reply_error(r, 500, "out of memory");
        r->timeout_ms = timeout * 1000;
        r->memory_mb = memory;

        if (D.draining)
                return reply_retry(r, 503, "the service is shutting down", 5);
        if (D.self_test_done && !D.self_test_passed)
                return reply_retry(r, 503, D.reason, 60);
        if (!D.engine_ready || !D.self_test_done)
                return reply_retry(r, 503, "the service is starting", 2);

        /* Watch for the client leaving while we work (evhttp does not). */
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
        r->ev_closed = event_new(D.base, fd, EV_CLOSED, on_client_closed, r);
        event_add(r->ev_closed, NULL);

        if (D.active < D.max_concurrency) {
                submit(r);
        } else if (D.queued < (unsigned)D.cfg.max_queue) {
                TAILQ_INSERT_TAIL(&D.queue, r, qlink);
                r->queued = true;
                D.queued++;
        } else {
                reply_retry(r, 429, "too many runs waiting; try again shortly", 1);
        }
}

static json_t *health_body(void)
{
        json_error_t jerr;
        const char *info = D.engine ? engine_info(D.engine) : NULL;
        json_t *zi = info ? json_loads(info, 0, &jerr) : NULL;
        const char *status = D.draining ? "draining"
                             : D.self_test_done && !D.self_test_passed ? "degraded"
                             : !D.engine_ready || !D.self_test_done ? "starting"
                                                                    : "healthy";
        json_t *caps = json_object();
        json_object_set_new(caps, "max_timeout", json_integer(D.cfg.max_timeout_ms / 1000));
        json_object_set_new(caps, "max_memory_mb", json_integer(D.cfg.max_memory_mb));
        json_object_set_new(caps, "min_memory_mb", json_integer(D.cfg.min_memory_mb));
        json_object_set_new(caps, "default_timeout", json_integer(D.cfg.timeout_ms / 1000));
        json_object_set_new(caps, "default_memory_mb", json_integer(D.cfg.memory_mb));
        json_object_set_new(caps, "max_code_bytes", json_integer(D.cfg.max_code_bytes));
        json_object_set_new(caps, "python", json_incref(json_object_get(zi, "python")) ?: json_null());
        json_t *libs = json_object_get(zi, "libraries");
        json_object_set_new(caps, "libraries", libs ? json_incref(libs) : json_object());

        json_t *layers = D.engine ? engine_layers_json(D.engine) : json_object();
        json_object_set_new(caps, "layers", layers);
        json_object_set_new(caps, "self_test",
                            json_pack("{s:b, s:o}", "passed", D.self_test_passed, "failures",
                                      D.self_test_failures ? json_incref(D.self_test_failures) : json_array()));
        json_decref(zi);
        json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "service", "pyrunner", "status", status, "version",
                              PYRUNNER_VERSION, "capabilities", caps);
        if (strcmp(status, "healthy") != 0)
                json_object_set_new(o, "reason", json_string(D.reason[0] ? D.reason : status));
        return o;
}

static void handle_metrics(Req *r)
{
        struct evbuffer *b = evbuffer_new();
        EngineStats st = { 0 };
        if (D.engine)
                engine_get_stats(D.engine, &st);
        uint64_t restarts = st.zygote_starts > 0 ? st.zygote_starts - 1 : 0;
        metrics_render(&D.metrics, b, D.queued, D.active, restarts);
        reply(r, 200, "text/plain; version=0.0.4", b, NULL);
}

/* ---- routing ---- */

typedef struct RouteDef {
        const char *path;
        Route route;
        enum evhttp_cmd_type method;
        bool needs_auth;
} RouteDef;

static const RouteDef routes[] = {
        { "/", ROUTE_HEALTH, EVHTTP_REQ_GET, false },
        { "/run", ROUTE_RUN, EVHTTP_REQ_POST, true },
        { "/system/python_executor/execute_code/invoke", ROUTE_INVOKE, EVHTTP_REQ_POST, true },
        { "/metrics", ROUTE_METRICS, EVHTTP_REQ_GET, false },
        { "/openapi.json", ROUTE_OPENAPI, EVHTTP_REQ_GET, false },
};

static void on_request(struct evhttp_request *req, void *arg)
{
        Req *r = calloc(1, sizeof(*r));
        if (!r) {
                evhttp_send_error(req, 500, NULL);
                return;
        }
        r->req = req;
        r->route = ROUTE_OTHER;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        snprintf(r->id, sizeof(r->id), "%016llx", (unsigned long long)++D.next_id);
        r->bytes_in = evbuffer_get_length(evhttp_request_get_input_buffer(req));
        TAILQ_INSERT_TAIL(&D.all, r, link);
        track_connection(req);

        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        const RouteDef *def = NULL;
        for (size_t i = 0; path && i < ELEMENTSOF(routes); i++)
                if (strcmp(path, routes[i].path) == 0)
                        def = &routes[i];
        if (!def)
                return reply_error(r, 404, "not found");
        r->route = def->route;

        if (cmd == EVHTTP_REQ_OPTIONS && D.cfg.cors_origin[0]) {
                struct evkeyvalq *h = evhttp_request_get_output_headers(req);
                evhttp_add_header(h, "Access-Control-Allow-Methods", def->method == EVHTTP_REQ_GET ? "GET" : "POST");
                evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type, Authorization, Integrations-API-Key");
                evhttp_add_header(h, "Access-Control-Max-Age", "600");
                return reply(r, 204, NULL, NULL, NULL);
        }
        if (cmd != def->method && !(cmd == EVHTTP_REQ_HEAD && def->method == EVHTTP_REQ_GET)) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                                  def->method == EVHTTP_REQ_GET ? "GET, HEAD" : "POST");
                return reply_error(r, 405, "method not allowed");
        }

        const char *key = NULL;
        char label[KEY_MAX_LEN + 8];
        if (def->needs_auth && D.n_keys > 0) {
                key = check_key(req);
                if (!key) {
                        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
                        return reply_error(r, 401, "a valid API key is required");
                }
        }
        if (def->needs_auth) {
                if (key)
                        snprintf(label, sizeof(label), "key:%s", key);
                else
                        client_label(req, label, sizeof(label));
                double retry = 1;
                if (!ratelimit_take(&D.rl, label, now_s(), &retry))
                        return reply_retry(r, 429, "rate limit exceeded", (int)(retry + 0.999));
        }

        switch (def->route) {
        case ROUTE_HEALTH: {
                /* 503 unless healthy, so that a probe looking only at the
                 * code keeps traffic away; the body says why. */
                json_t *h = health_body();
                bool ok = strcmp(json_string_value(json_object_get(h, "status")), "healthy") == 0;
                if (!ok)
                        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "2");
                return reply_json(r, ok ? 200 : 503, h, NULL);
        }
        case ROUTE_RUN:
                return handle_run(r, false);
        case ROUTE_INVOKE:
                return handle_run(r, true);
        case ROUTE_METRICS:
                return handle_metrics(r);
        case ROUTE_OPENAPI: {
                struct evbuffer *b = evbuffer_new();
                evbuffer_add(b, openapi_json, sizeof(openapi_json) - 1);
                return reply(r, 200, NULL, b, NULL);
        }
        case ROUTE_OTHER:
        case _ROUTE_MAX:
        default:
                return reply_error(r, 404, "not found");
        }
}

/* ---- self-test: escapes tried through the real sandbox, fail closed ---- */

static const char self_test_code[] =
        "import ctypes, json, os, socket\n"
        "f = []\n"
        "if os.getuid() == 0 or os.geteuid() == 0: f.append('user code runs as uid 0')\n"
        "for p in ('/etc/shadow', '/root', '/home', '/sys', '/var'):\n"
        "    if os.path.exists(p): f.append('host path visible: ' + p)\n"
        "st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
        "for k in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb'):\n"
        "    if int(st.get(k, '1'), 16): f.append(k + ' is not empty')\n"
        "if st.get('Seccomp', '').strip() != '2': f.append('no seccomp filter')\n"
        "if st.get('NoNewPrivs', '').strip() != '1': f.append('no_new_privs is off')\n"
        "try:\n"
        "    open('/usr/.pyrunner-selftest', 'w'); f.append('/usr is writable')\n"
        "except OSError: pass\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=0.5); f.append('network reachable')\n"
        "except OSError: pass\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.syscall(272, 0x10000000) == 0 or ctypes.get_errno() != 1: f.append('unshare(CLONE_NEWUSER) not refused')\n"
        "if [p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2 and int(p) != os.getpid()]:\n"
        "    f.append('other processes visible')\n"
        "print(json.dumps(f))\n";

static void on_self_test(const RunResult *res, void *userdata)
{
        json_error_t jerr;
        json_t *f = res->status == RUN_SUCCESS ? json_loadb(res->out, res->out_len, 0, &jerr) : NULL;
        D.self_test_done = true;
        json_decref(D.self_test_failures);
        if (!json_is_array(f)) {
                json_decref(f);
                char *s = run_result_summary(res);
                f = json_pack("[s]", s ? s : "the self-test did not run");
                free(s);
        }
        D.self_test_failures = f;
        D.self_test_passed = json_array_size(f) == 0;
        if (D.self_test_passed) {
                D.reason[0] = '\0';
                log_json(json_pack("{s:s, s:s}", "level", "info", "msg", "self-test passed"));
        } else {
                snprintf(D.reason, sizeof(D.reason), "self-test failed: %s", json_string_value(json_array_get(f, 0)));
                log_json(json_pack("{s:s, s:s, s:O}", "level", "error", "msg",
                                   "self-test failed; /run answers 503", "failures", f));
        }
}

static void on_engine_ready(Engine *e, int error, const char *message, void *userdata)
{
        if (error < 0) {
                snprintf(D.reason, sizeof(D.reason), "the zygote could not start: %s", message ? message : "?");
                log_msg("error", "%s", D.reason);
                D.self_test_done = true;
                D.self_test_passed = false;
                return;
        }
        D.engine_ready = true;
        log_json(json_pack("{s:s, s:s, s:s}", "level", "info", "msg", "zygote ready", "info", engine_info(e)));
        if (!D.cfg.self_test) {
                D.self_test_done = D.self_test_passed = true;
                return;
        }
        RunRequest rr = { .code = self_test_code, .code_len = strlen(self_test_code), .timeout_ms = 10000 };
        if (engine_submit(e, &rr, on_self_test, NULL, NULL) < 0) {
                D.self_test_done = true;
                snprintf(D.reason, sizeof(D.reason), "the self-test could not be submitted");
        }
}

/* ---- shutdown ---- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
        Req *r, *tmp;
        log_msg("warning", "drain deadline passed: killing %u runs", D.active + D.queued);
        for (r = TAILQ_FIRST(&D.queue); r; r = tmp) {
                tmp = TAILQ_NEXT(r, qlink);
                TAILQ_REMOVE(&D.queue, r, qlink);
                r->queued = false;
                D.queued--;
                reply_retry(r, 503, "the service is shutting down", 5);
        }
        TAILQ_FOREACH(r, &D.all, link)
                if (r->submitted)
                        engine_cancel(D.engine, r->ticket);
        start_next();
        /* Replies to clients that stopped reading must not hold us up. */
        struct timeval tv = { 1, 0 };
        event_base_loopexit(D.base, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
        if (D.draining) {
                log_msg("warning", "second signal: stopping now");
                event_base_loopexit(D.base, NULL);
                return;
        }
        D.draining = true;
        log_msg("info", "signal %d: draining %u runs", (int)sig, D.active + D.queued);
        /* Close the listening socket: new clients are refused at once
         * rather than left waiting in the kernel's backlog. */
        evhttp_del_accept_socket(D.http, D.bound);
        D.bound = NULL;
        D.listener = NULL;
        D.listener_off = true;
        struct timeval tv = { D.cfg.drain_timeout_ms / 1000, (D.cfg.drain_timeout_ms % 1000) * 1000 };
        D.ev_drain = evtimer_new(D.base, on_drain_timeout, NULL);
        evtimer_add(D.ev_drain, &tv);
        start_next();
}

/* ---- configuration ---- */

static void usage(FILE *f)
{
        fprintf(f, "Usage: pyrunnerd [--listen HOST:PORT] [--config FILE] [--SETTING VALUE ...]\n"
                   "\n"
                   "Serves the pyrunner HTTP/JSON API (GET /, POST /run, GET /metrics, GET /openapi.json,\n"
                   "POST /system/python_executor/execute_code/invoke). Settings come from the defaults,\n"
                   "then --config FILE ('name = value' lines), then PYRUNNER_<NAME> variables, then flags.\n"
                   "The PYTHON_EXECUTOR_* variables set the executor route's defaults and maxima.\n"
                   "\nSettings:\n");
        config_print_help(f, true);
}

static _noreturn_ __attribute__((format(printf, 1, 2))) void fail_config(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "pyrunnerd: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(2);
}

static void add_keys(const char *list, const char *seps)
{
        char *copy = strdup(list), *save = NULL;
        for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save)) {
                while (isspace((unsigned char)*t))
                        t++;
                size_t n = strlen(t);
                while (n > 0 && isspace((unsigned char)t[n - 1]))
                        t[--n] = '\0';
                if (n == 0 || t[0] == '#')
                        continue;
                if (n >= KEY_MAX_LEN || D.n_keys >= MAX_KEYS)
                        fail_config("API keys must be shorter than %d characters, at most %d of them", KEY_MAX_LEN,
                                    MAX_KEYS);
                memcpy(D.keys[D.n_keys++], t, n + 1);
        }
        free(copy);
}

static int executor_env(const char *name, int def, int lo, int hi)
{
        const char *v = getenv(name);
        int64_t x;
        if (!v)
                return def;
        if (parse_int64(v, lo, hi, &x) < 0)
                fail_config("invalid %s '%s' (%d..%d)", name, v, lo, hi);
        return (int)x;
}

static void parse_config(int argc, char **argv)
{
        const char *bad = NULL, *why = NULL, *config_file = NULL;
        struct option longopts[64] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
        };
        size_t nopt = 2;
        for (size_t i = 0; i < config_table_size && nopt < ELEMENTSOF(longopts) - 1; i++)
                longopts[nopt++] = (struct option){ config_table[i].name, required_argument, NULL, 's' };

        config_init_defaults(&D.cfg);
        /* First pass: only --config and --help. */
        opterr = 0;
        int opt, idx;
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
                if (opt == 'c')
                        config_file = optarg;
                else if (opt == 'h') {
                        usage(stdout);
                        exit(0);
                } else if (opt == '?')
                        fail_config("unknown option '%s' (try --help)", argv[optind - 1]);
                else if (opt == ':')
                        fail_config("option '%s' needs a value", argv[optind - 1]);
        }
        if (optind < argc)
                fail_config("unexpected argument '%s'", argv[optind]);
        if (config_file) {
                unsigned line;
                if (config_from_file(&D.cfg, config_file, &line) < 0)
                        fail_config("%s:%u: invalid setting", config_file, line);
        }
        if (config_from_env(&D.cfg, &bad) < 0)
                fail_config("invalid value in PYRUNNER_ environment for %s", bad);
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1)
                if (opt == 's' && config_set(&D.cfg, longopts[idx].name, optarg) < 0)
                        fail_config("invalid value '%s' for --%s", optarg, longopts[idx].name);
        if (config_validate(&D.cfg, &why) < 0)
                fail_config("%s", why);

        add_keys(D.cfg.api_keys, ",");
        if (D.cfg.api_keys_file[0]) {
                FILE *f = fopen(D.cfg.api_keys_file, "re");
                char line[512];
                if (!f)
                        fail_config("cannot read %s: %s", D.cfg.api_keys_file, strerror(errno));
                while (fgets(line, sizeof(line), f))
                        add_keys(line, "\n");
                fclose(f);
        }
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        D.max_concurrency = D.cfg.max_concurrency ? (unsigned)D.cfg.max_concurrency : (unsigned)MAX(2, 2 * cores);
        D.exec_timeout_default_s = executor_env("PYTHON_EXECUTOR_DEFAULT_TIMEOUT", 5, 1, 300);
        D.exec_timeout_max_s = executor_env("PYTHON_EXECUTOR_MAX_TIMEOUT", 30, 1, (int)(D.cfg.max_timeout_ms / 1000));
        D.exec_memory_default = executor_env("PYTHON_EXECUTOR_DEFAULT_MAX_MEMORY", 100, (int)D.cfg.min_memory_mb,
                                             (int)D.cfg.max_memory_mb);
        D.exec_memory_max = executor_env("PYTHON_EXECUTOR_MAX_MEMORY", 500, (int)D.cfg.min_memory_mb,
                                         (int)D.cfg.max_memory_mb);
        D.exec_timeout_default_s = MIN(D.exec_timeout_default_s, D.exec_timeout_max_s);
        D.exec_memory_default = MIN(D.exec_memory_default, D.exec_memory_max);
}

static bool is_loopback(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
        return false;
}

int main(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);

        signal(SIGPIPE, SIG_IGN);
        parse_config(argc, argv);
        if (evutil_parse_sockaddr_port(D.cfg.listen, (struct sockaddr *)&ss, &sslen) < 0)
                fail_config("cannot parse listen address '%s' (HOST:PORT)", D.cfg.listen);
        if (!is_loopback((struct sockaddr *)&ss) && D.n_keys == 0 && !D.cfg.insecure_no_auth)
                fail_config("refusing to serve %s without API keys; set --api-keys or --insecure-no-auth 1",
                            D.cfg.listen);

        TAILQ_INIT(&D.queue);
        TAILQ_INIT(&D.all);
        ratelimit_init(&D.rl, (double)D.cfg.rate_limit, (double)D.cfg.rate_burst);
        D.conns_cap = (size_t)D.cfg.max_connections * 2 + 1;
        D.conns = calloc(D.conns_cap, sizeof(void *));
        D.base = event_base_new();
        if (!D.conns || !D.base)
                fail_config("out of memory");

        /* The zygote is a separate program started now, before we serve. */
        EngineOptions opts = { .layers = ZYG_LAYER_ALL, .on_ready = on_engine_ready };
        int r = engine_new(D.base, &D.cfg, &opts, &D.engine);
        if (r < 0)
                fail_config("cannot start the engine: %s", strerror(-r));

        D.http = evhttp_new(D.base);
        evhttp_set_max_headers_size(D.http, (ev_ssize_t)D.cfg.max_header_bytes);
        /* Bodies a little over our limit get our JSON 413; far over it,
         * evhttp stops reading and answers 413 itself. */
        evhttp_set_max_body_size(D.http, (ev_ssize_t)D.cfg.max_body_bytes + (1 << 20));
        evhttp_set_timeout(D.http, (int)D.cfg.idle_timeout_s);
        evhttp_set_allowed_methods(D.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
        evhttp_set_default_content_type(D.http, "application/json");
        evhttp_set_gencb(D.http, on_request, NULL);
        D.listener = evconnlistener_new_bind(D.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                             (struct sockaddr *)&ss, sslen);
        if (!D.listener)
                fail_config("cannot listen on %s: %s", D.cfg.listen, strerror(errno));
        D.bound = evhttp_bind_listener(D.http, D.listener);
        if (!D.bound)
                fail_config("cannot serve on %s", D.cfg.listen);

        D.ev_term = evsignal_new(D.base, SIGTERM, on_signal, NULL);
        D.ev_int = evsignal_new(D.base, SIGINT, on_signal, NULL);
        event_add(D.ev_term, NULL);
        event_add(D.ev_int, NULL);
        log_json(json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:s}", "level", "info", "msg", "listening", "listen",
                           D.cfg.listen, "version", PYRUNNER_VERSION, "auth", D.n_keys > 0, "max_concurrency",
                           (int)D.max_concurrency, "cgroup", cg_mode_name(engine_cgroup(D.engine)->mode)));

        event_base_dispatch(D.base);

        /* Drained (or told twice): close clients, stop sandboxes and zygote. */
        Req *q;
        while ((q = TAILQ_FIRST(&D.all))) {
                if (q->queued) {
                        TAILQ_REMOVE(&D.queue, q, qlink);
                        q->queued = false;
                }
                if (q->ev_closed)
                        event_free(q->ev_closed);
                q->ev_closed = NULL;
                TAILQ_REMOVE(&D.all, q, link);
                free(q->code);
                free(q->stdin_data);
                free(q);
        }
        evhttp_free(D.http);
        engine_free(D.engine);
        if (D.ev_drain)
                event_free(D.ev_drain);
        event_free(D.ev_term);
        event_free(D.ev_int);
        event_base_free(D.base);
        json_decref(D.self_test_failures);
        free(D.conns);
        log_msg("info", "stopped");
        return 0;
}
