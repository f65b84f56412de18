/* SPDX-License-Identifier: MIT */
#pragma once

/* The engine runs code in sandboxes forked from a zygote. It lives on the
 * caller's libevent loop, never blocks, never runs Python and never logs:
 * results and errors come back through callbacks and return values. */

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "cgroup.h"
#include "result.h"

typedef struct Engine Engine;
typedef struct Run Run;

/* What a streamed run makes as it makes it (RunRequest.on_stream). */
typedef enum RunStreamKind { RUN_STREAM_STDOUT, RUN_STREAM_STDERR, RUN_STREAM_OUTPUT } RunStreamKind;
/* stdout or stderr bytes as written (a UTF-8 character may be cut
 * between two calls), or a display bundle's JSON text. Always from the
 * engine's own events, in order, and all of them before done; it must
 * not call the engine. What the caps leave out is not streamed either. */
typedef void (*run_stream_fn)(RunStreamKind kind, const char *data, size_t len, void *userdata);

typedef struct RunRequest {
        const char *code;
        size_t code_len;
        const char *stdin_data;
        size_t stdin_len;
        int64_t timeout_ms;          /* 0: the configured default */
        int64_t memory_mb;           /* 0: the configured default */
        /* Written below the working directory before the code runs:
         * [{"path", "content", "encoding": "utf-8"|"base64"}], or NULL. */
        json_t *files;
        /* true (every file the run created or changed) or [glob...]: the
         * result lists them in "files". NULL or false: none. */
        json_t *return_files;
        /* A cell of this session (engine_session_new), in its state; its
         * memory limit is the session's. 0: a one-shot run. */
        uint64_t session;
        /* NULL: nothing streamed. Called with done's userdata. */
        run_stream_fn on_stream;
} RunRequest;

/* Checks a request's files against the caps: 0, or -EINVAL (-E2BIG over
 * them) with *ret_field naming the bad field and *ret_why saying why. */
int run_files_check(json_t *files, int64_t max_files, int64_t max_bytes, const char **ret_field,
                    const char **ret_why);
int run_return_files_check(json_t *return_files, const char **ret_why);

typedef void (*run_done_fn)(const RunResult *result, void *userdata);
/* Called once the first zygote is ready (error 0) or could not start. */
typedef void (*engine_ready_fn)(Engine *e, int error, const char *message, void *userdata);
/* Something the caller should log: a stray sandbox killed, a zygote
 * replaced, a missed deadline. event is a short name, detail one line. */
typedef void (*engine_notice_fn)(Engine *e, const char *event, const char *detail, void *userdata);

typedef struct EngineOptions {
        const char *zygote_path;     /* NULL: next to the running binary */
        uint32_t layers;             /* ZYG_LAYER_ALL; fewer only for tests */
        bool no_cgroups;
        engine_ready_fn on_ready;
        engine_notice_fn on_notice;  /* may be NULL */
        void *userdata;
        /* Unit tests only (tests/unit/test-engine.c): speak the zygote
         * protocol on test_zygote_fd, with test_zygote_pid standing for the
         * zygote, instead of starting one. Off when the pid is 0. */
        int test_zygote_fd;
        pid_t test_zygote_pid;
} EngineOptions;

typedef struct EngineStats {
        uint64_t runs_started, runs_finished, zygote_starts, zygote_deaths;
        uint64_t watchdog_kills;     /* zygotes replaced for not answering */
        uint64_t strays_killed;      /* sandboxes the janitor found unowned */
        uint64_t deadline_misses;    /* runs ended by a phase deadline */
        unsigned active, idle, queued;
} EngineStats;

/* A loop for the engine: its timers read the precise monotonic clock. The
 * coarse one that libevent uses by default ticks every jiffy (4 ms), so a
 * deadline could fire up to a tick before its time. NULL without memory. */
struct event_base *engine_base_new(void);
int engine_new(struct event_base *base, const PyrConfig *cfg, const EngineOptions *opts, Engine **ret);
/* Kills everything. Runs still pending are dropped without their done
 * callbacks, as no callback runs inside an engine call: to answer them,
 * engine_cancel() each and run the loop until engine_idle() first. */
void engine_free(Engine *e);

/* Validates and queues a run: -EINVAL empty code, -EILSEQ code not UTF-8
 * text, -E2BIG code or stdin too large, -ERANGE a limit outside the
 * configured bounds. On success done is called exactly once, always from a
 * later pass of the loop (never from inside an engine call), after which
 * the run is gone. Every run ends within its phase deadlines: queue-timeout
 * for a sandbox, start-timeout for it to start, then its own timeout plus
 * kill-grace; a missed phase ends it as internal_error. */
int engine_submit(Engine *e, const RunRequest *req, run_done_fn done, void *userdata, uint64_t *ret_ticket);
/* engine_submit's errors for a cell: -ENOENT no such session (or ended),
 * -EBUSY a cell of it runs already. */
/* Kills a run; its done callback still fires (later), with status killed. */
void engine_cancel(Engine *e, uint64_t ticket);

/* A session: one sandbox kept alive for many runs (cells), one at a time,
 * in the same __main__. It starts now; a cell sent meanwhile waits for it.
 * It ends when its sandbox does (a memory kill, a cell that ignored its
 * interrupt, engine_session_free). -EAGAIN: no zygote or uid is free;
 * -EOPNOTSUPP: no memory cgroup, which a session needs between cells. */
int engine_session_new(Engine *e, int64_t memory_mb, uint64_t *ret_id);
void engine_session_free(Engine *e, uint64_t id);
/* Stops its running cell as its timeout would: KeyboardInterrupt, then,
 * past interrupt-grace-ms, the session is killed. -ENOENT, or -EALREADY
 * when nothing runs. */
int engine_session_interrupt(Engine *e, uint64_t id);
typedef struct SessionInfo {
        bool running;
        unsigned runs;
        double memory_used;          /* MiB now (cgroup), 0 without one */
        } SessionInfo;
/* -ENOENT once it has ended. */
int engine_session_info(const Engine *e, uint64_t id, SessionInfo *ret);

/* Zygote's READY info (Python and library versions), or NULL. */
const char *engine_info(const Engine *e);
const CgroupRoot *engine_cgroup(const Engine *e);
/* The active isolation layers, as GET / and `pyrunner info` report them. */
json_t *engine_layers_json(const Engine *e);
void engine_get_stats(const Engine *e, EngineStats *ret);
/* True once nothing is running and every sandbox is cleaned up. */
bool engine_idle(const Engine *e);
