/* SPDX-License-Identifier: MIT */
/* Requests and their replies: ids, headers, bodies, and the one JSON log
 * line each request gets. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "json-util.h"

void log_json(json_t *o)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        json_object_set_new(o, "ts", json_real((double)t.tv_sec + (double)t.tv_nsec / 1e9));
        char *s = json_dumps_shortest(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) {
                fprintf(stderr, "%s\n", s);
                free(s);
        }
        json_decref(o);
}

void log_msg(const char *level, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_json(json_pack("{s:s, s:s}", "level", level, "msg", buf));
}

Req *req_new(struct evhttp_request *req)
{
        Req *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->req = req;
        r->route = ROUTE_OTHER;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        snprintf(r->id, sizeof(r->id), "%016llx", (unsigned long long)++D.next_id);
        r->bytes_in = evbuffer_get_length(evhttp_request_get_input_buffer(req));
        TAILQ_INSERT_TAIL(&D.all, r, link);
        return r;
}

void req_free(Req *r)
{
        if (r->queued) {
                TAILQ_REMOVE(&D.queue, r, qlink);
                D.queued--;
        }
        if (r->ev_closed)
                event_free(r->ev_closed);
        /* A cell answered without running (its client left while queued). */
        sessions_cell_done(r, NULL);
        TAILQ_REMOVE(&D.all, r, link);
        request_clear(&r->run);
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

/* The last byte of a reply went out (for draining). A reply whose
 * connection breaks first ends in listen.c's close callback instead. */
static void on_sent(struct evhttp_request *req, void *arg)
{
        Conn *c = connset_find(&D.conns, evhttp_request_get_connection(req));
        if (c && c->sending) {
                c->sending = false;
                D.sending--;
                daemon_check_idle();
        }
}

Conn *reply_headers(Req *r, const char *content_type)
{
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
        Conn *c = connset_find(&D.conns, evhttp_request_get_connection(r->req));

        evhttp_add_header(h, "X-Request-Id", r->id);
        if (D.cfg.cors_origin[0]) {
                evhttp_add_header(h, "Access-Control-Allow-Origin", D.cfg.cors_origin);
                evhttp_add_header(h, "Vary", "Origin");
        }
        evhttp_add_header(h, "Content-Type", content_type ? content_type : "application/json");
        if (c) {
                c->sending = true;
                D.sending++;
                evhttp_request_set_on_complete_cb(r->req, on_sent, NULL);
        }
        return c;
}

static void send_reply(Req *r, int code, const char *content_type, struct evbuffer *body)
{
        Conn *c = reply_headers(r, content_type);
        evhttp_send_reply(r->req, code, reason_phrase(code), body);
        if (c && c->evcon)
                listen_hold_reply(c);
}

/* Nobody reads it: drop the connection, and the request with it (or the
 * request alone, which evhttp let go when the connection broke). */
static void drop_connection(Req *r)
{
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        Conn *c = evcon ? connset_find(&D.conns, evcon) : NULL;
        if (c)
                c->stream_req = NULL;
        if (evcon)
                evhttp_connection_free(evcon);
        else
                evhttp_send_reply_end(r->req);
        r->req = NULL;
}

void reply(Req *r, int code, const char *content_type, struct evbuffer *body, json_t *log_extra)
{
        const char *method = evhttp_request_get_command(r->req) == EVHTTP_REQ_POST ? "POST" : "GET";
        size_t out = 0;

        if (r->ev_closed) {
                event_free(r->ev_closed);
                r->ev_closed = NULL;
        }
        if (r->gone) {
                code = 499;
                out = r->stream_bytes;
                drop_connection(r);
        } else if (r->stream_started) {
                out = stream_end(r, code, body);
        } else {
                out = body ? evbuffer_get_length(body) : 0;
                send_reply(r, code, content_type, body);
        }
        if (body)
                evbuffer_free(body);

        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double secs = (double)(t.tv_sec - r->t0.tv_sec) + (double)(t.tv_nsec - r->t0.tv_nsec) / 1e9;
        metrics_request(&D.metrics, r->route, code, secs);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:I, s:I}", "level", "info", "msg", "request",
                              "request_id", r->id, "method", method, "route", route_name(r->route), "status", code,
                              "duration_ms", secs * 1e3, "bytes_in", (json_int_t)r->bytes_in, "bytes_out",
                              (json_int_t)out);
        if (r->gone)
                json_object_set_new(o, "client", json_string("disconnected"));
        if (r->stream_started)
                json_object_set_new(o, "stream", json_true());
        if (log_extra)
                json_object_update(o, log_extra);
        json_decref(log_extra);
        log_json(o);
        req_free(r);
}

static void free_text(const void *data, size_t len, void *arg)
{
        free((void *)data);
}

void reply_text(Req *r, int code, char *text, size_t len, json_t *log_extra)
{
        struct evbuffer *b = evbuffer_new();
        if (!text) {
                /* A body that could not be made (no memory, bad UTF-8). */
                code = 500;
                text = strdup("{\"detail\":\"the reply could not be made\"}");
                len = text ? strlen(text) : 0;
        }
        /* By reference: a result may be max-result-bytes long. */
        if (!b || !text || evbuffer_add_reference(b, text, len, free_text, NULL) < 0)
                free(text);
        if (b)
                evbuffer_add(b, "\n", 1);
        reply(r, code, NULL, b, log_extra);
}

void reply_json(Req *r, int code, json_t *body, json_t *log_extra)
{
        char *s = body ? json_dumps_shortest(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(body);
        reply_text(r, code, s, s ? strlen(s) : 0, log_extra);
}

void reply_error(Req *r, int code, const char *detail)
{
        reply_json(r, code, json_pack("{s:s}", "detail", detail), NULL);
}

void reply_retry(Req *r, int code, const char *detail, int seconds)
{
        char v[16];
        snprintf(v, sizeof(v), "%d", MAX(seconds, 1));
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", v);
        reply_error(r, code, detail);
}

void reply_http_error(Req *r, const HttpError *e)
{
        reply_json(r, e->status, http_error_json(e), NULL);
}
