/* SPDX-License-Identifier: MIT */
#pragma once

/* What the engine's files share. Three kinds of object, each with explicit
 * states (docs/ARCHITECTURE.md, "The engine"):
 *
 *   Zyg      a zygote process and its socket
 *   Sandbox  one sandbox: pid 1, pid 2, pipes, ctl channel, cgroup
 *   Job      one request: code, limits, callback, what was seen, the result
 *
 * A Job runs on at most one Sandbox; a Sandbox runs at most one Job at a
 * time. User callbacks (done, on_ready, on_notice) only ever run from the
 * engine's own events, never inside an engine_*() call: finished jobs wait
 * on e->completed for ev_complete. */

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "cgroup.h"
#include "engine.h"
#include "result.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar) \
        for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

typedef struct Zyg Zyg;
typedef struct Sandbox Sandbox;
typedef struct Job Job;
typedef uint64_t usec_t;

/* STARTING -> READY -> RETIRING -> DEAD; any state -> DEAD. */
typedef enum ZygState { ZYG_STARTING, ZYG_READY, ZYG_RETIRING, ZYG_DEAD } ZygState;

struct Zyg {
        Engine *e;
        pid_t pid, factory_pid;
        int pidfd, sock;
        struct event *ev_sock, *ev_pid, *ev_watch;
        ZygState state;
        uint64_t forks;
        unsigned nsandboxes;         /* sandboxes that still name it */
        bool reaped, boosted;
        usec_t started, ping_sent;   /* ping_sent 0: no ping outstanding */
        usec_t closed;               /* when its socket was closed */
        TAILQ_ENTRY(Zyg) link;
};

/* SPAWNING -> IDLE -> BUSY -> DYING, or SPAWNING -> BUSY (a job waited for
 * it), or any -> DYING. A session's: SPAWNING -> HELD <-> BUSY, kept
 * between its jobs (cells) and never in the pool. DYING ends in
 * sandbox_free once pid 1, pid 2 and the cgroup are gone (or once nothing
 * more can be waited for). */
typedef enum SandboxState { SB_SPAWNING, SB_IDLE, SB_HELD, SB_BUSY, SB_DYING } SandboxState;

struct Sandbox {
        Engine *e;
        Zyg *zyg;
        uint64_t id;                 /* names it to the zygote and its cgroup */
        SandboxState state;
        Job *job;
        pid_t pid, init_pid;         /* 0 until SPAWNED */
        int init_pidfd, out_fd, err_fd;
        struct bufferevent *ctl, *in;
        struct event *ev_out, *ev_err, *ev_init, *ev_timer;
        bool spawned, ready_frame, pid_exited, init_exited, killed;
        bool session;                /* kept for many jobs (cells) */
        unsigned runs;               /* its jobs so far */
        usec_t last_used;
        bool freed;                  /* released; memory waits on e->dead */
        bool kill_delivered;         /* the kernel took a SIGKILL for all of it */
        int wait_status;
        bool have_wait_status;
        uint64_t exit_cpu_us;        /* pid 2's rusage, when there is no cgroup */
        Cgroup cg;
        bool has_cg;
        int32_t uid_slot;            /* its host uid is sandbox-uid + this; -1: none */
        int64_t cur_memory_mb;
        usec_t dying_since;
        unsigned rmdir_tries;
        TAILQ_ENTRY(Sandbox) link;   /* e->sandboxes, or e->dead once freed */
        TAILQ_ENTRY(Sandbox) ilink;  /* e->idle, while IDLE */
};

/* QUEUED -> STARTING (its sandbox is not ready yet) -> RUNNING -> DONE,
 * or QUEUED -> RUNNING (an idle sandbox), or any -> DONE. DONE jobs wait on
 * e->completed; their callback runs from ev_complete, then they are freed. */
typedef enum JobState { JOB_QUEUED, JOB_STARTING, JOB_RUNNING, JOB_DONE } JobState;

struct Job {
        Engine *e;
        uint64_t ticket;
        JobState state;
        Sandbox *sb;
        char *code, *stdin_data;
        size_t code_len, stdin_len;
        json_t *files_in;            /* the request's files, checked; or NULL */
        json_t *return_files;        /* true or [glob...]; NULL: none wanted */
        int64_t timeout_ms, memory_mb;
        run_done_fn done;
        run_stream_fn on_stream;
        void *userdata;
        /* Streamed pieces not yet given to on_stream: each a StreamHead
         * and its bytes. ev_stream gives them from the loop. */
        struct evbuffer *stream;
        struct event *ev_stream;
        struct event *deadline;      /* of the current phase */
        struct event *ev_watch;      /* memory watch without a cgroup */
        uint64_t watch_peak;
        char *out, *err;
        size_t out_len, err_len;
        bool out_trunc, err_trunc, kill_sent;
        bool interrupt_sent;         /* a session cell's SIGINT at its timeout */
        usec_t interrupt_until;      /* then the grace ends and it is killed */
        CgroupStats base;
        RunOutcome oc;
        usec_t t_submit, t_start, t_end;
        double runner_cpu;
        json_t *error_info;
        char *value;                 /* the result's value text, checked */
        size_t value_len;
        char *message, *result_repr;
        /* Display items and returned files, as the JSON array texts of
         * RunResult (without their brackets), within the caps. */
        struct evbuffer *outputs, *files, *files_skipped;
        size_t n_outputs, outputs_bytes, n_files, files_bytes, n_skipped;
        bool outputs_trunc;
        RunResult res;               /* built when DONE */
        TAILQ_ENTRY(Job) link;       /* e->jobs */
        TAILQ_ENTRY(Job) qlink;      /* e->queued or e->completed */
};

TAILQ_HEAD(ZygList, Zyg);
TAILQ_HEAD(SandboxList, Sandbox);
TAILQ_HEAD(JobList, Job);

typedef struct Suspect {
        pid_t pid;
        usec_t first_seen;
} Suspect;

struct Engine {
        struct event_base *base;
        PyrConfig cfg;
        EngineOptions opts;
        char zygote_path[4096];
        char scratch[64];            /* the zygotes' start-up files; removed by engine_free */
        char cache[256];             /* the zygotes' built-once caches; empty: none */
        char fault_cgroup[256];      /* test-only fault file, "" when off */
        char test_spawned[64];       /* test-only zygote sabotage, "" when off */
        bool no_watchdog, no_janitor; /* test-only sabotage */
        CgroupRoot cgroot;
        struct ZygList zygs;
        Zyg *current;
        Zyg *spare;                  /* started and waiting, or NULL */
        bool swap_wanted;            /* the spare takes over once ready */
        struct SandboxList sandboxes, idle, dead;
        uint8_t *uid_used;           /* by slot, sandbox-uids of them (as root) */
        uint32_t uid_next;           /* where the search for a free one starts */
        struct JobList jobs, queued, completed;
        unsigned n_idle, n_running;
        uint64_t next_id;
        EngineStats stats;
        bool ready_reported, freeing;
        char info[8192];
        struct event *ev_restart, *ev_complete, *ev_janitor, *ev_pool_retry, *ev_reap;
        unsigned restart_failures, pool_failures;
        bool dispatching, redispatch;
        Suspect suspects[64];
};

usec_t now_usec(void);
void engine_notice(Engine *e, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* engine-zygote.c */
int zyg_start(Engine *e);
/* Sets e->cache to the cache directory, if it is private (else empty). */
void engine_open_cache(Engine *e);
void zyg_dead(Zyg *z, const char *why);
void zyg_unref(Zyg *z);
void zyg_free(Zyg *z);
void zyg_retire(Zyg *z);
void zyg_update_priority(Zyg *z);
bool zyg_promote_spare(Engine *e);
void zyg_want_spare(Engine *e);
void zyg_replace_current(Engine *e);
void engine_on_restart(evutil_socket_t fd, short what, void *arg);

/* engine-sandbox.c */
int sandbox_spawn(Engine *e, int64_t memory_mb, bool session, Sandbox **ret);
/* A session's sandbox whose job is done, alive: kept for the next one. */
void sandbox_hold(Sandbox *sb);
void sandbox_kill(Sandbox *sb);
/* To DYING: it runs nothing more (a job is done with it, or it failed). */
void sandbox_let_go(Sandbox *sb);
/* Makes progress after any event; may finish its job or free it. */
void sandbox_check(Sandbox *sb);
void sandbox_on_spawned(Sandbox *sb, int error, const char *message, pid_t pid, pid_t init_pid, int pidfd);
void sandbox_on_exited(Sandbox *sb, int status, uint64_t cpu_us);
void sandbox_zygote_died(Sandbox *sb);
/* Reads what the pipes hold now, into the job. */
void sandbox_drain_output(Sandbox *sb);
/* The same, and what ctl holds. */
void sandbox_drain(Sandbox *sb);
void sandbox_free(Sandbox *sb);
/* Its start deadline passed: its job fails, a zygote that lost its SPAWNED is replaced. */
void sandbox_start_missed(Sandbox *sb);
void engine_on_reap(evutil_socket_t fd, short what, void *arg);
Sandbox *sandbox_by_id(Engine *e, uint64_t id);
int sandbox_send_frame(Sandbox *sb, json_t *obj);
void sandbox_set_timer(Sandbox *sb, int64_t ms);
/* Gives a job an idle sandbox (it starts now) or a spawning one. */
void sandbox_attach(Sandbox *sb, Job *j);

/* engine-job.c */
int job_new(Engine *e, Job **ret);
void job_start(Job *j);
/* Ends the job now: what it saw becomes its result; its sandbox is let go. */
void job_finish(Job *j);
/* Back to the head of the queue: its sandbox's zygote died before it ran. */
void job_requeue(Job *j);
void job_fail(Job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void job_append_output(Job *j, bool is_err, const char *buf, size_t n);
void job_handle_result(Job *j, json_t *m);
/* An "output" frame's bundle text (a JSON object); -EBADMSG if it is not
 * one, within bounds. Over the caps it is dropped and outputs_truncated set. */
int job_add_output(Job *j, const char *bundle, size_t len);
/* A "file" frame: its header m, and its content in base64 (len 0 when
 * skipped). -EBADMSG when malformed. Over the caps it is listed as skipped. */
int job_add_file(Job *j, json_t *m, const char *b64, size_t len);
void job_free(Job *j);
/* Gives on_stream what waits for it (the loop's turn, or before done). */
void job_flush_stream(Job *j);
void job_on_stream(evutil_socket_t fd, short what, void *arg);
void job_set_deadline(Job *j, int64_t ms);
/* A session cell's timeout: SIGINT to pid 2, then interrupt-grace-ms. */
void job_interrupt(Job *j);

/* engine-pool.c */
void engine_dispatch(Engine *e);
void pool_remove_idle(Sandbox *sb);
void engine_on_janitor(evutil_socket_t fd, short what, void *arg);
void engine_on_pool_retry(evutil_socket_t fd, short what, void *arg);

/* memwatch.c: private memory of pid and its descendants, from /proc. */
uint64_t memwatch_tree_rss(pid_t pid);
