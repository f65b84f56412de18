/* SPDX-License-Identifier: MIT */
/* pyrunnerd: the HTTP/JSON service. One libevent loop: evhttp for HTTP,
 * the engine for sandboxes. It never runs Python and never blocks. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon.h"
#include "openapi_json.h"
#include "pyrunner-config.h"
#include "selftest_py.h"
#include "text-util.h"
#include "zygote-proto.h"

Daemon D;

/* Big results leave the heap full of free holes that glibc keeps
 * resident (33 MB holding 120 kB in use, seen in a soak): give them back
 * once the daemon has been idle for a second (not after every run: the
 * next one would fault the pages in again). */
static bool in_flight(void)
{
        return D.active || D.queued || D.sending;
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
        if (!in_flight())
                (void)malloc_trim(0);
}

void daemon_check_idle(void)
{
        if (in_flight())
                return;
        if (D.draining)
                event_base_loopexit(D.base, NULL);
        else if (D.ev_trim)
                evtimer_add(D.ev_trim, &(struct timeval){ .tv_sec = 1 }); /* restarts it */
}

double now_s(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- GET / and GET /metrics ---- */

/* The configured key r presents, if any. */
const char *presented_key(Req *r)
{
        struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
        return key_check(&D.keys, evhttp_find_header(in, "Authorization"),
                         evhttp_find_header(in, "Integrations-API-Key"));
}

/* detail: the caller may see the zygote's start-up error in full (host
 * paths and source lines: not for anyone without a key). */
static json_t *health_body(bool detail)
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
        if (D.zygote_error && detail)
                json_object_set_new(o, "zygote_error", json_string(D.zygote_error));
        return o;
}

static void handle_health(Req *r)
{
        /* 503 unless healthy, so that a probe looking only at the code
         * keeps traffic away; the body says why. */
        json_t *h = health_body(D.keys.n == 0 || presented_key(r));
        bool ok = strcmp(json_string_value(json_object_get(h, "status")), "healthy") == 0;
        if (!ok)
                evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "2");
        reply_json(r, ok ? 200 : 503, h, NULL);
}

static void handle_metrics(Req *r)
{
        struct evbuffer *b = evbuffer_new();
        EngineStats st = { 0 };
        if (D.engine)
                engine_get_stats(D.engine, &st);
        /* The first zygote, and the first spare, are not restarts. */
        uint64_t first = 1 + (D.cfg.spare_zygote ? 1 : 0);
        uint64_t restarts = st.zygote_starts > first ? st.zygote_starts - first : 0;
        metrics_render(&D.metrics, b, D.queued, D.active, restarts, D.held_bytes);
        reply(r, 200, "text/plain; version=0.0.4", b, NULL);
}

static void handle_openapi(Req *r)
{
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, openapi_json, sizeof(openapi_json) - 1);
        reply(r, 200, NULL, b, NULL);
}

/* ---- POST /run and the executor route ---- */

static void handle_run(Req *r, bool invoke)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        size_t len = evbuffer_get_length(in);
        HttpError err;

        if (!request_is_json(evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type")))
                return reply_error(r, 415, "Content-Type must be application/json");
        if (request_parse((const char *)evbuffer_pullup(in, -1), len, invoke ? &D.limits_invoke : &D.limits_run,
                          invoke, &r->run, &err) < 0)
                return reply_http_error(r, &err);
        if (!invoke)
                stream_setup(r);
        if (!runs_refuse(r))
                run_admit(r);
}

bool runs_refuse(Req *r)
{
        if (D.draining)
                return reply_retry(r, 503, "the service is shutting down", 5), true;
        if (D.self_test_done && !D.self_test_passed)
                return reply_retry(r, 503, D.reason, 60), true;
        if (!D.engine_ready || !D.self_test_done)
                return reply_retry(r, 503, "the service is starting", 2), true;
        /* Replies that clients are slow to take stay in memory: a run's
         * answer may be tens of MiB, so past the budget no new ones. */
        if (D.held_bytes > (size_t)D.cfg.max_reply_bytes)
                return reply_retry(r, 503, "too many replies wait for their clients to read them", 1), true;
        return false;
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
        /* /sessions and below: the handler checks the method of each. */
        { "/sessions", ROUTE_SESSIONS, 0, true },
};

static const RouteDef *find_route(struct evhttp_request *req)
{
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        for (size_t i = 0; path && i < ELEMENTSOF(routes); i++)
                if (strcmp(path, routes[i].path) == 0 ||
                    (routes[i].route == ROUTE_SESSIONS && !strncmp(path, "/sessions/", 10)))
                        return &routes[i];
        return NULL;
}

static void client_label(struct evhttp_request *req, char *buf, size_t size)
{
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
        snprintf(buf, size, "ip:%s", addr ? addr : "?");
}

/* Authentication, then the rate limit: false once r is answered. */
static bool admit(Req *r, const RouteDef *def)
{
        const char *key = NULL;
        char label[KEY_MAX_LEN + 8];
        double retry = 1;

        if (!def->needs_auth)
                return true;
        if (D.keys.n > 0) {
                key = presented_key(r);
                if (!key) {
                        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
                        reply_error(r, 401, "a valid API key is required");
                        return false;
                }
                snprintf(label, sizeof(label), "key:%s", key);
        } else {
                client_label(r->req, label, sizeof(label));
        }
        const struct sockaddr *peer = evhttp_connection_get_addr(evhttp_request_get_connection(r->req));
        if (ratelimit_applies(D.rate_set, D.keys.n > 0, peer) && !ratelimit_take(&D.rl, label, now_s(), &retry)) {
                reply_retry(r, 429, "rate limit exceeded", (int)(retry + 0.999));
                return false;
        }
        return true;
}

static void on_request(struct evhttp_request *req, void *arg)
{
        Req *r = req_new(req);
        if (!r) {
                evhttp_send_error(req, 500, NULL);
                log_msg("error", "out of memory: a request was answered 500");
                return;
        }

        HttpError err;
        if (request_check_headers(evhttp_request_get_input_headers(req), &err) < 0)
                return reply_http_error(r, &err);
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        const RouteDef *def = find_route(req);
        if (!def)
                return reply_error(r, 404, "not found");
        r->route = def->route;

        if (cmd == EVHTTP_REQ_OPTIONS && D.cfg.cors_origin[0]) {
                struct evkeyvalq *h = evhttp_request_get_output_headers(req);
                evhttp_add_header(h, "Access-Control-Allow-Methods", def->method == EVHTTP_REQ_GET ? "GET"
                                                                     : def->method ? "POST" : "GET, POST, PUT, DELETE");
                evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type, Authorization, Integrations-API-Key");
                evhttp_add_header(h, "Access-Control-Max-Age", "600");
                return reply(r, 204, NULL, NULL, NULL);
        }
        if (def->method && cmd != def->method && !(cmd == EVHTTP_REQ_HEAD && def->method == EVHTTP_REQ_GET)) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                                  def->method == EVHTTP_REQ_GET ? "GET, HEAD" : "POST");
                return reply_error(r, 405, "method not allowed");
        }
        if (!admit(r, def))
                return;

        switch (def->route) {
        case ROUTE_HEALTH:
                return handle_health(r);
        case ROUTE_RUN:
                return handle_run(r, false);
        case ROUTE_INVOKE:
                return handle_run(r, true);
        case ROUTE_METRICS:
                return handle_metrics(r);
        case ROUTE_OPENAPI:
                return handle_openapi(r);
        case ROUTE_SESSIONS:
                return sessions_handle(r);
        case ROUTE_OTHER:
        case _ROUTE_MAX:
        default:
                return reply_error(r, 404, "not found");
        }
}

/* ---- start-up: the zygote, then escapes tried through a real sandbox ---- */

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

static void on_engine_notice(Engine *e, const char *event, const char *detail, void *userdata)
{
        log_json(json_pack("{s:s, s:s, s:s, s:s}", "level", "warning", "msg", "engine", "event", event, "detail", detail));
}

static void on_engine_ready(Engine *e, int error, const char *message, void *userdata)
{
        if (error < 0) {
                char gist[sizeof(D.reason) - 64];
                error_gist(message ? message : "?", gist, sizeof(gist));
                snprintf(D.reason, sizeof(D.reason), "the zygote could not start: %s", gist);
                free(D.zygote_error);
                D.zygote_error = message ? strdup(message) : NULL;
                log_json(json_pack("{s:s, s:s, s:s?}", "level", "error", "msg", D.reason, "detail", D.zygote_error));
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
        RunRequest rr = { .code = selftest_py, .code_len = strlen(selftest_py), .timeout_ms = 10000 };
        if (engine_submit(e, &rr, on_self_test, NULL, NULL) < 0) {
                D.self_test_done = true;
                snprintf(D.reason, sizeof(D.reason), "the self-test could not be submitted");
        }
}

/* ---- shutdown ---- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
        log_msg("warning", "drain deadline passed: killing %u runs", D.active + D.queued);
        runs_abort_all();
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
        sessions_end_all();
        listen_stop();
        struct timeval tv = { D.cfg.drain_timeout_ms / 1000, (D.cfg.drain_timeout_ms % 1000) * 1000 };
        D.ev_drain = evtimer_new(D.base, on_drain_timeout, NULL);
        evtimer_add(D.ev_drain, &tv);
        runs_start_next();
}

/* ---- main: a list of steps ---- */

static void start_engine(void)
{
        /* The zygote is a separate program started now, before we serve. */
        EngineOptions opts = { .layers = ZYG_LAYER_ALL, .on_ready = on_engine_ready, .on_notice = on_engine_notice };
        int r = engine_new(D.base, &D.cfg, &opts, &D.engine);
        if (r < 0)
                fail_config("cannot start the engine: %s", strerror(-r));
}

static void start_http(void)
{
        D.http = evhttp_new(D.base);
        if (!D.http)
                fail_config("out of memory");
        evhttp_set_max_headers_size(D.http, (ev_ssize_t)D.cfg.max_header_bytes);
        /* Bodies a little over our limit get our JSON 413; far over it,
         * evhttp stops reading and answers 413 itself. */
        evhttp_set_max_body_size(D.http, (ev_ssize_t)D.cfg.max_body_bytes + (1 << 20));
        evhttp_set_timeout(D.http, (int)D.cfg.idle_timeout_s);
        evhttp_set_allowed_methods(D.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
        evhttp_set_default_content_type(D.http, "application/json");
        evhttp_set_gencb(D.http, on_request, NULL);
}

static void watch_signals(void)
{
        D.ev_term = evsignal_new(D.base, SIGTERM, on_signal, NULL);
        D.ev_int = evsignal_new(D.base, SIGINT, on_signal, NULL);
        D.ev_trim = evtimer_new(D.base, on_trim, NULL);
        if (!D.ev_term || !D.ev_int || !D.ev_trim)
                fail_config("out of memory");
        event_add(D.ev_term, NULL);
        event_add(D.ev_int, NULL);
}

static void log_listening(void)
{
        log_json(json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:s}", "level", "info", "msg", "listening", "listen",
                           D.cfg.listen, "version", PYRUNNER_VERSION, "auth", D.keys.n > 0, "max_concurrency",
                           (int)D.max_concurrency, "cgroup", cg_mode_name(engine_cgroup(D.engine)->mode)));
}

/* Drained (or told twice): drop what is left, stop sandboxes and zygote. */
static void shut_down(void)
{
        Req *q;
        while ((q = TAILQ_FIRST(&D.all)))
                req_free(q);
        listen_done();
        sessions_free_all();
        engine_free(D.engine);
        if (D.ev_drain)
                event_free(D.ev_drain);
        event_free(D.ev_term);
        event_free(D.ev_int);
        event_free(D.ev_trim);
        event_base_free(D.base);
        json_decref(D.self_test_failures);
        free(D.zygote_error);
        log_msg("info", "stopped");
}

int main(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int sslen;

        signal(SIGPIPE, SIG_IGN);
        settings_parse(argc, argv, &ss, &sslen);
        TAILQ_INIT(&D.queue);
        TAILQ_INIT(&D.all);
        ratelimit_init(&D.rl, (double)D.cfg.rate_limit, (double)D.cfg.rate_burst);
        D.base = engine_base_new();
        if (!D.base)
                fail_config("out of memory");
        start_engine();
        sessions_init();
        start_http();
        listen_start((struct sockaddr *)&ss, sslen);
        watch_signals();
        log_listening();
        event_base_dispatch(D.base);
        shut_down();
        return 0;
}
