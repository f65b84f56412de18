/* SPDX-License-Identifier: MIT */
/* Runs: the bounded queue in front of the engine, submission, and the
 * replies to finished runs. */
#include <assert.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "daemon.h"

static json_t *result_log(const Req *r, const RunResult *res)
{
        json_t *o = json_pack("{s:s, s:f}", "run_status", run_status_name(res->status), "execution_time",
                              res->execution_time);
        if (D.cfg.debug_log) {
                json_object_set_new(o, "code", json_stringn(r->run.code, r->run.code_len));
                json_object_set_new(o, "stdout", json_stringn(res->out, res->out_len));
                json_object_set_new(o, "stderr", json_stringn(res->err, res->err_len));
        }
        return o;
}

static void uuid4(char out[37])
{
        uint8_t u[16];
        if (getrandom(u, sizeof(u), 0) != sizeof(u))
                memset(u, 0, sizeof(u));
        u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
        u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* The executor route's reply: one text message. */
static json_t *invoke_body(const Req *r, const RunResult *res)
{
        char *msg = NULL, uuid[37];
        int n;
        switch (res->status) {
        case RUN_TIMEOUT:
                n = asprintf(&msg, "Execution timed out after %lld second%s", (long long)(r->run.timeout_ms / 1000),
                             r->run.timeout_ms == 1000 ? "" : "s");
                break;
        case RUN_MEMORY_EXCEEDED:
                n = asprintf(&msg, "Memory limit exceeded: %lldMB", (long long)r->run.memory_mb);
                break;
        case RUN_SUCCESS: {
                const char *value = res->result_repr ? res->result_repr : res->out;
                size_t len = res->result_repr ? strlen(res->result_repr) : res->out_len;
                while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == ' '))
                        len--;
                n = asprintf(&msg, "The Python code executed was:\n\n%s\n\nThe result of the execution is:\n\n%.*s",
                             r->run.code, (int)len, value);
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
        uuid4(uuid);
        json_t *o = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "status", "success", "invocationId", uuid, "response",
                              "message", n < 0 ? "Execution error" : msg, "type", "text");
        free(msg);
        return o;
}

static void on_run_done(const RunResult *res, void *userdata)
{
        Req *r = userdata;
        assert(D.active > 0 && r->submitted);
        D.active--;
        D.metrics.executions[res->status]++;
        metrics_observe(&D.metrics.execution_seconds, res->execution_time);
        sessions_cell_done(r, res);
        if (r->stream)
                stream_begin(r); /* even with nothing streamed before */
        if (r->route == ROUTE_INVOKE) {
                reply_json(r, 200, invoke_body(r, res), result_log(r, res));
        } else {
                size_t n = 0;
                char *s = run_result_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER, &n);
                reply_text(r, 200, s, n, result_log(r, res));
        }
        runs_start_next();
}

/* The run may end inside engine_submit (its done callback freeing r), so
 * r is set up before the call, undone only if engine_submit refused (then
 * done is never called), and not touched after it. */
static void submit(Req *r)
{
        r->submitted = true;
        D.active++;
        int e = engine_submit(D.engine, &r->run, on_run_done, r, &r->ticket);
        if (e < 0) {
                r->submitted = false;
                D.active--;
                if (e == -EBUSY)
                        reply_error(r, 409, "a cell of this session is running");
                else if (e == -ENOENT)
                        reply_error(r, 404, "the session has ended");
                else
                        reply_error(r, 500, "the engine refused the run");
        }
}

void runs_start_next(void)
{
        static bool busy;
        Req *r;

        /* A run that ends inside submit() calls us again: the loop below
         * goes on instead, so a queue of failing runs does not recurse. */
        if (busy)
                return;
        busy = true;
        while (D.active < D.max_concurrency && (r = TAILQ_FIRST(&D.queue))) {
                TAILQ_REMOVE(&D.queue, r, qlink);
                r->queued = false;
                D.queued--;
                submit(r);
        }
        busy = false;
        daemon_check_idle();
}

/* Whether the client behind fd has gone: end of file or an error (a RST).
 * Bytes it sent ahead (a pipelined request) say nothing either way. */
static bool peer_gone(evutil_socket_t fd, short what)
{
        char c;
        if (what & EV_CLOSED)
                return true;
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The client went away while its run waited or ran: stop the run. */
static void on_client_closed(evutil_socket_t fd, short what, void *arg)
{
        Req *r = arg;
        if (!peer_gone(fd, what)) {
                /* Data ahead: from now on only a clean close is seen. */
                event_del(r->ev_closed);
                event_assign(r->ev_closed, D.base, fd, EV_CLOSED, on_client_closed, r);
                event_add(r->ev_closed, NULL);
                return;
        }
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

void run_admit(Req *r)
{
        /* Watch for the client leaving while we work (evhttp does not).
         * EV_CLOSED alone misses a reset: libevent reports EPOLLERR as
         * readable and writable, never as closed. */
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
        r->ev_closed = event_new(D.base, fd, EV_READ | EV_CLOSED, on_client_closed, r);
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

void runs_abort_all(void)
{
        Req *r, *tmp;
        for (r = TAILQ_FIRST(&D.queue); r; r = tmp) {
                tmp = TAILQ_NEXT(r, qlink);
                TAILQ_REMOVE(&D.queue, r, qlink);
                r->queued = false;
                D.queued--;
                reply_retry(r, 503, "the service is shutting down", 5);
        }
        /* A cancelled run may end inside engine_cancel, and its reply frees
         * its request (others' too, through the queue): collect tickets
         * first, then cancel by ticket, holding no request across a call. */
        size_t n = 0;
        _cleanup_free_ uint64_t *tickets = calloc(D.active, sizeof(uint64_t));
        TAILQ_FOREACH(r, &D.all, link)
                if (r->submitted && tickets && n < D.active)
                        tickets[n++] = r->ticket;
        for (size_t i = 0; i < n; i++)
                engine_cancel(D.engine, tickets[i]);
        runs_start_next();
}
