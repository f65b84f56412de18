/* SPDX-License-Identifier: MIT */
/* Replies as Server-Sent Events: a run's stdout, stderr and displays as
 * they come, then its full reply as the last event. The engine hands us
 * the pieces from its events, so each is written at once; what the client
 * has not taken counts against max-reply-bytes as any reply does, a client
 * far behind misses live events, and one that stops reading is dropped
 * after send-stall-s. */
#include <event2/buffer.h>
#include <stdio.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon.h"
#include "json-util.h"
#include "text-util.h"

void stream_setup(Req *r)
{
        const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Accept");
        /* No media-range parsing: asking for it at all is asking. */
        for (const char *p = accept; p && *p; p++)
                if (!strncasecmp(p, "text/event-stream", 17)) {
                        r->stream = true;
                        r->run.on_stream = stream_on_run;
                        return;
                }
}

void stream_begin(Req *r)
{
        if (r->stream_started || r->gone)
                return;
        Conn *c = reply_headers(r, "text/event-stream");
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
        evhttp_add_header(h, "Cache-Control", "no-cache");
        /* nginx would otherwise hold the events back in its buffer. */
        evhttp_add_header(h, "X-Accel-Buffering", "no");
        evhttp_send_reply_start(r->req, 200, "OK");
        r->stream_started = true;
        if (c)
                c->stream_req = r;
}

/* One event. Its data goes one line per "data:" field: a display bundle
 * is JSON from the sandbox, whose whitespace may hold CR or LF, which
 * would otherwise end the event early. */
static void send_event(Req *r, const char *name, const char *data, size_t len)
{
        struct evbuffer *b = evbuffer_new();
        if (!b)
                return;
        evbuffer_add_printf(b, "event: %s\n", name);
        for (size_t i = 0;;) {
                size_t n = 0;
                while (i + n < len && data[i + n] != '\r' && data[i + n] != '\n')
                        n++;
                evbuffer_add(b, "data: ", 6);
                evbuffer_add(b, data + i, n);
                evbuffer_add(b, "\n", 1);
                i += n;
                if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
                        i++;
                if (++i >= len)
                        break;
        }
        evbuffer_add(b, "\n", 1);
        r->stream_bytes += evbuffer_get_length(b);
        evhttp_send_reply_chunk(r->req, b);
        evbuffer_free(b);
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        Conn *c = evcon ? connset_find(&D.conns, evcon) : NULL;
        if (c)
                listen_hold_reply(c);
}

/* {"text": ...} of what is whole in tail + data; a character cut at the
 * end waits for the next piece (or the end, as U+FFFD). */
static void send_text(Req *r, int which, const char *data, size_t len, bool last)
{
        size_t tl = r->tail_len[which];
        _cleanup_free_ char *all = malloc(tl + len + 1);
        if (!all)
                return;
        memcpy(all, r->tail[which], tl);
        memcpy(all + tl, data, len);
        size_t n = last ? tl + len : utf8_cut(all, tl + len);
        r->tail_len[which] = (uint8_t)(tl + len - n);
        memcpy(r->tail[which], all + n, r->tail_len[which]);
        if (n == 0)
                return;
        size_t clean_len;
        _cleanup_free_ char *clean = utf8_sanitize(all, n, &clean_len);
        json_t *o = clean ? json_pack("{s:s%}", "text", clean, clean_len) : NULL;
        _cleanup_free_ char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (s)
                send_event(r, which ? "stderr" : "stdout", s, strlen(s));
}

/* A client this far behind misses live events (the result event still
 * has everything) rather than the daemon holding them for it. */
#define STREAM_BACKLOG_MAX (4u << 20)

void stream_on_run(RunStreamKind kind, const char *data, size_t len, void *userdata)
{
        Req *r = userdata;
        if (r->gone)
                return;
        stream_begin(r);
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        Conn *c = evcon ? connset_find(&D.conns, evcon) : NULL;
        if (c && c->held > STREAM_BACKLOG_MAX)
                return;
        if (kind == RUN_STREAM_OUTPUT) {
                _cleanup_free_ char *s = malloc(len + 10);
                if (!s)
                        return;
                memcpy(s, "{\"data\":", 8);
                memcpy(s + 8, data, len);
                s[8 + len] = '}';
                send_event(r, "output", s, len + 9);
        } else {
                send_text(r, kind == RUN_STREAM_STDERR, data, len, false);
        }
}

size_t stream_end(Req *r, int code, struct evbuffer *body)
{
        for (int which = 0; which < 2; which++)
                if (r->tail_len[which])
                        send_text(r, which, "", 0, true);
        size_t len = body ? evbuffer_get_length(body) : 0;
        const char *s = len ? (const char *)evbuffer_pullup(body, -1) : "{}";
        /* reply_text's body ends in a newline: the event adds its own. */
        while (len > 0 && s[len - 1] == '\n')
                len--;
        if (code == 200) {
                send_event(r, "result", s, len ? len : 2);
        } else {
                /* An error body is an object: the status goes in front. */
                char *e = NULL;
                bool more = len > 2 && s[0] == '{';
                int n = asprintf(&e, "{\"status\":%d%s%.*s", code, more ? "," : "}", more ? (int)len - 1 : 0,
                                 s + 1);
                if (n > 0)
                        send_event(r, "error", e, (size_t)n);
                free(e);
        }
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        Conn *c = evcon ? connset_find(&D.conns, evcon) : NULL;
        if (c)
                c->stream_req = NULL;
        evhttp_send_reply_end(r->req);
        return r->stream_bytes;
}

void stream_conn_closed(Conn *c)
{
        Req *r = c->stream_req;
        c->stream_req = NULL;
        if (!r || r->gone)
                return;
        r->gone = true;
        if (r->ev_closed) {
                event_free(r->ev_closed);
                r->ev_closed = NULL;
        }
        if (r->submitted)
                engine_cancel(D.engine, r->ticket);
}
