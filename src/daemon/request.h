/* SPDX-License-Identifier: MIT */
#pragma once

/* The body of POST /run and of the executor route, parsed and checked
 * against the server's limits: either a RunRequest or the 4xx to send.
 * Pure: no I/O, no globals. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "engine.h"

typedef struct RequestLimits {
        int64_t timeout_default_s, timeout_max_s;
        int64_t memory_default_mb, memory_min_mb, memory_max_mb;
        int64_t max_body_bytes, max_code_bytes, max_stdin_bytes;
        int64_t max_files, max_files_bytes;
} RequestLimits;

typedef struct HttpError {
        int status;                  /* 400, 413, 422 or 500 */
        const char *type;            /* 422: missing, type_error, value_error, extra_forbidden */
        char field[128];             /* 422: the body field (valid UTF-8, maybe cut) */
        char message[300];           /* for people; valid UTF-8 */
} HttpError;

/* POST /run's limits: the API speaks whole seconds, so settings below one
 * second round up. */
void request_limits_from_config(const PyrConfig *c, RequestLimits *ret);
/* application/json, with or without parameters. */
bool request_is_json(const char *content_type);
/* Parses body into ret (code and stdin_data are allocated, files and
 * return_files referenced; free them with request_clear). invoke: the
 * executor route, which has no stdin nor files. On a
 * client error returns -EINVAL with *reterr filled; -ENOMEM too sets
 * *reterr (500). */
int request_parse(const char *body, size_t len, const RequestLimits *limits, bool invoke, RunRequest *ret,
                  HttpError *reterr);
void request_clear(RunRequest *rr);
struct evkeyvalq;
/* What RFC 9112 says to refuse and evhttp lets through, which a proxy in
 * front may read differently (request smuggling): a header name that is
 * not a token ("Transfer-Encoding " before its colon), a control
 * character in a value, a second Content-Length or Transfer-Encoding, a
 * Content-Length that is not all digits (an obs-fold joins lines with a
 * space), a Transfer-Encoding other than chunked. -EINVAL with a 400 in
 * *reterr. A NUL ends evhttp's strings before we see them: a proxy that
 * follows RFC 9112 refuses those. */
int request_check_headers(const struct evkeyvalq *headers, HttpError *reterr);
/* The reply body for e: {"detail": message}, or for a 422 FastAPI's
 * {"detail": [{"loc": ["body", field], "msg": message, "type": type}]}. */
json_t *http_error_json(const HttpError *e);
