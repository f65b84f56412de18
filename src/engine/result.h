/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text-util.h"

typedef enum RunStatus {
        RUN_SUCCESS,
        RUN_ERROR,
        RUN_TIMEOUT,
        RUN_MEMORY_EXCEEDED,
        RUN_OUTPUT_LIMIT,
        RUN_KILLED,
        RUN_INTERNAL_ERROR,
        _RUN_STATUS_MAX,
        _RUN_STATUS_INVALID = -EINVAL,
} RunStatus;

/* What the engine saw happen to a run; the input of classification. */
typedef struct RunOutcome {
        bool setup_failed;           /* sandbox set-up or zygote failure */
        bool timed_out;              /* our own wall-clock kill */
        bool output_exceeded;
        bool cancelled;
        bool protocol_error;         /* the sandbox sent garbage on ctl */
        uint64_t oom_kills;          /* cgroup counter delta */
        bool have_result;            /* a valid result frame arrived */
        bool result_is_error;
        bool result_memory_error;    /* the exception was MemoryError */
        int result_exit_code;
        bool have_wait_status;
        int wait_status;
} RunOutcome;

typedef struct RunResult {
        RunStatus status;
        int exit_code;               /* -1 when killed by a signal */
        int signal;                  /* 0 when none */
        char *out, *err;             /* owned, NUL-terminated, valid UTF-8 */
        size_t out_len, err_len;
        bool out_truncated, err_truncated;
        double execution_time;       /* seconds, wall, from the start of user code */
        double cpu_time;             /* seconds */
        double memory_used;          /* peak MiB */
        json_t *error;               /* owned structured error or NULL */
        char *message;               /* owned; why, for internal errors */
        char *result_repr;           /* owned; repr() of a global `result`, or NULL */
        char *result;                /* owned; the typed value's JSON text (docs/values.md) as the
                                      * sandbox wrote it, checked by json_check, or NULL */
        size_t result_len;
        /* JSON arrays as the engine built them from checked sandbox text,
         * spliced into the reply as they are; NULL: empty. */
        char *outputs;               /* [{"data": {MIME: content}}...]: display items */
        size_t outputs_len;
        bool outputs_truncated;      /* some were dropped: over max-outputs(-bytes) */
        bool files_wanted;           /* return_files was asked: "files" are in the reply */
        char *files;                 /* [{"path", "size", "encoding", "content"}...] */
        size_t files_len;
        char *files_skipped;         /* [{"path", "size", "reason"}...] */
        size_t files_skipped_len;
        bool in_session;             /* a session's cell: "session_ended" is in the reply */
        bool session_ended;          /* its session is gone with it */
        int64_t timeout_ms, memory_mb; /* the limits the run had */
} RunResult;

const char *run_status_name(RunStatus s);
RunStatus run_status_from_name(const char *s);
/* Precedence: internal error, timeout, output limit, memory, cancel, then
 * the program's own report, then its wait status. */
RunStatus run_classify(const RunOutcome *o, int *ret_exit_code, int *ret_signal);

void run_result_clear(RunResult *r);
/* A copy of src that the caller owns (run_result_clear): out and err by
 * length (they may hold NUL), the strings duplicated, error shared by
 * reference. -ENOMEM leaves *ret cleared. */
int run_result_copy(const RunResult *src, RunResult *ret);
/* One line for "error": "NameError on line 1", "timed out after 2 s"... */
char *run_result_summary(const RunResult *r);
/* The JSON object of docs/API: status, stdout, stderr, ..., all but
 * "result" (new reference). */
json_t *run_result_to_json(const RunResult *r);
/* The whole JSON text of docs/API: run_result_to_json() dumped with flags
 * (JSON_COMPACT among them), then "outputs" ("files" and "files_skipped"
 * when wanted) and last "result", their texts spliced in as they are. NUL-terminated, its length in *ret_len; NULL without memory. */
char *run_result_dumps(const RunResult *r, size_t flags, size_t *ret_len);

