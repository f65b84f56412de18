/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "fd-util.h"
#include "frame.h"
#include "macro.h"
#include "pyrunner-config.h"
#include "zygote-proto.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar) \
        for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

typedef enum ZygState { ZYG_STARTING, ZYG_READY, ZYG_RETIRING, ZYG_DEAD } ZygState;

typedef struct Zyg {
        Engine *engine;
        pid_t pid;
        int pidfd, sock;
        struct event *ev_sock, *ev_pid;
        ZygState state;
        uint64_t forks;
        unsigned nruns;
        char *info;
        bool reaped;
        TAILQ_ENTRY(Zyg) link;
} Zyg;

typedef enum RunState { RS_QUEUED, RS_SPAWNING, RS_IDLE, RS_RUNNING, RS_DONE } RunState;

struct Run {
        Engine *e;
        Zyg *zyg;
        uint64_t id;                 /* names the sandbox to the zygote */
        uint64_t ticket;             /* names the request to the caller */
        RunState state;
        bool has_request, pooled;
        char *code, *stdin_data;
        size_t code_len, stdin_len;
        int64_t timeout_ms, memory_mb, cur_memory_mb;
        run_done_fn done;
        void *userdata;

        int out_fd, err_fd, init_pidfd;
        struct bufferevent *ctl, *in;
        struct event *ev_out, *ev_err, *ev_init, *timer, *ev_retry, *ev_watch;
        uint64_t watch_peak;         /* bytes, when no memory cgroup */
        char *out, *err;
        size_t out_len, err_len;
        bool out_trunc, err_trunc;

        Cgroup cg;
        bool has_cg;
        CgroupStats base;
        unsigned rmdir_tries;

        RunOutcome oc;
        pid_t pid;
        bool ready, pid_exited, init_exited, killed;
        struct timespec t_start, t_end;
        double runner_cpu;
        json_t *error_info;
        char *message;
        char *result_repr;
        json_t *result;
        TAILQ_ENTRY(Run) link;       /* e->runs */
        TAILQ_ENTRY(Run) qlink;      /* e->queued or e->idle */
        bool in_queue;
};

TAILQ_HEAD(RunList, Run);
TAILQ_HEAD(ZygList, Zyg);

struct Engine {
        struct event_base *base;
        PyrConfig cfg;
        EngineOptions opts;
        char zygote_path[PATH_MAX];
        CgroupRoot cgroot;
        struct ZygList zygs;
        Zyg *current;
        struct RunList runs, queued, idle;
        unsigned n_idle, n_spawning_pool, n_active;
        uint64_t next_id;
        EngineStats stats;
        bool ready_reported, freeing;
        char info[8192];
        struct event *ev_restart;
        unsigned restart_failures;
};

static void run_try_finish(Run *r);
static void run_kill(Run *r);
static void engine_dispatch(Engine *e);
static int zyg_start(Engine *e);
static uint64_t tree_rss(pid_t pid, int depth);

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
        return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* ---- zygote processes ---- */

/* Frees a zygote once it is reaped, its socket closed and no run uses it. */
static void zyg_free_if_done(Zyg *z)
{
        if (z->reaped && z->sock < 0 && z->nruns == 0) {
                TAILQ_REMOVE(&z->engine->zygs, z, link);
                free(z->info);
                free(z);
        }
}

static void zyg_unref(Zyg *z)
{
        if (--z->nruns > 0 || z->state == ZYG_READY || z->state == ZYG_STARTING)
                return;
        /* Retired and unused: closing the socket makes it exit. */
        if (z->ev_sock) {
                event_free(z->ev_sock);
                z->ev_sock = NULL;
        }
        z->sock = safe_close(z->sock);
        zyg_free_if_done(z);
}

static void run_fail_internal(Run *r, const char *msg)
{
        if (!r->message)
                r->message = strdup(msg);
        r->oc.setup_failed = true;
        run_kill(r);
        run_try_finish(r);
}

static void zyg_dead(Zyg *z, const char *why)
{
        Engine *e = z->engine;
        bool was_current = z == e->current;

        if (z->state == ZYG_DEAD)
                return;
        z->state = ZYG_DEAD;
        e->stats.zygote_deaths++;
        if (z->ev_sock) {
                event_free(z->ev_sock);
                z->ev_sock = NULL;
        }
        z->sock = safe_close(z->sock);
        if (was_current)
                e->current = NULL;

        Run *r, *tmp;
        TAILQ_FOREACH_SAFE(r, &e->runs, link, tmp) {
                if (r->zyg != z)
                        continue;
                r->pid_exited = true; /* no EXITED will come */
                if (r->state == RS_DONE)
                        run_try_finish(r);
                else
                        run_fail_internal(r, why);
        }
        if (!e->ready_reported && !e->freeing) {
                e->ready_reported = true;
                if (e->opts.on_ready)
                        e->opts.on_ready(e, -EIO, why, e->opts.userdata);
                return;
        }
        if (was_current && !e->freeing) {
                /* Restart with a little back-off when it keeps dying. */
                struct timeval tv = { 0, e->restart_failures < 5 ? 10000 : 500000 };
                e->restart_failures++;
                event_add(e->ev_restart, &tv);
        }
        zyg_free_if_done(z);
}

static void zyg_on_pid(evutil_socket_t fd, short what, void *arg)
{
        Zyg *z = arg;
        siginfo_t si = { 0 };
        (void)waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
        event_free(z->ev_pid);
        z->ev_pid = NULL;
        z->pidfd = safe_close(z->pidfd);
        z->reaped = true;
        if (z->state != ZYG_DEAD)
                zyg_dead(z, "zygote exited");
        else
                zyg_free_if_done(z);
}

static Run *run_by_id(Engine *e, uint64_t id)
{
        Run *r;
        TAILQ_FOREACH(r, &e->runs, link)
                if (r->id == id)
                        return r;
        return NULL;
}

static void pool_fill(Engine *e);

static void zyg_on_ready(Zyg *z, const char *info)
{
        Engine *e = z->engine;
        Zyg *old = e->current;

        z->state = ZYG_READY;
        free(z->info);
        z->info = strdup(info);
        snprintf(e->info, sizeof(e->info), "%s", info);
        e->restart_failures = 0;
        if (old && old != z) {
                old->state = ZYG_RETIRING;
                /* Idle sandboxes of the old layout are dropped. */
                Run *r, *tmp;
                TAILQ_FOREACH_SAFE(r, &e->idle, qlink, tmp)
                        if (r->zyg == old) {
                                TAILQ_REMOVE(&e->idle, r, qlink);
                                r->in_queue = false;
                                e->n_idle--;
                                r->state = RS_DONE;
                                run_kill(r);
                        }
                old->nruns++;
                zyg_unref(old);
        }
        e->current = z;
        if (!e->ready_reported) {
                e->ready_reported = true;
                if (e->opts.on_ready)
                        e->opts.on_ready(e, 0, NULL, e->opts.userdata);
        }
        engine_dispatch(e);
}

static void run_on_spawned(Run *r, const ZygSpawned *m, int pidfd);

static void zyg_on_sock(evutil_socket_t fd, short what, void *arg)
{
        Zyg *z = arg;
        static char buf[ZYG_MSG_MAX];

        for (;;) {
                int fds[4];
                size_t nfds = 0;
                ssize_t n = fd_recv_with_fds(fd, buf, sizeof(buf) - 1, fds, 4, &nfds);
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        zyg_dead(z, "zygote exited");
                        return;
                }
                buf[n] = '\0';
                uint32_t type = n >= (ssize_t)sizeof(ZygHeader) ? ((ZygHeader *)buf)->type : 0;
                if (type == ZYG_MSG_READY && z->state == ZYG_STARTING) {
                        zyg_on_ready(z, buf + sizeof(ZygHeader));
                } else if (type == ZYG_MSG_ERROR) {
                        char why[300];
                        snprintf(why, sizeof(why), "zygote: %s", buf + sizeof(ZygHeader));
                        zyg_dead(z, why);
                        for (size_t i = 0; i < nfds; i++)
                                close(fds[i]);
                        return;
                } else if (type == ZYG_MSG_SPAWNED && n == sizeof(ZygSpawned)) {
                        const ZygSpawned *m = (const ZygSpawned *)buf;
                        Run *r = run_by_id(z->engine, m->id);
                        if (r && r->state == RS_SPAWNING) {
                                run_on_spawned(r, m, nfds > 0 ? fds[0] : -1);
                                nfds = 0;
                        }
                } else if (type == ZYG_MSG_EXITED && n == sizeof(ZygExited)) {
                        const ZygExited *m = (const ZygExited *)buf;
                        Run *r = run_by_id(z->engine, m->id);
                        if (r && r->pid == m->pid) {
                                r->pid_exited = true;
                                r->oc.have_wait_status = true;
                                r->oc.wait_status = m->status;
                                if (!r->has_cg)
                                        r->runner_cpu = (double)(m->utime_us + m->stime_us) / 1e6;
                                /* pid 2 is gone: end the rest of the sandbox. */
                                run_kill(r);
                                run_try_finish(r);
                        }
                }
                for (size_t i = 0; i < nfds; i++)
                        close(fds[i]);
                if (z->state == ZYG_DEAD)
                        return;
        }
}

static int zyg_start(Engine *e)
{
        int sp[2];
        posix_spawn_file_actions_t fa;
        pid_t pid;
        char fdarg[16], uidarg[24];
        int r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        Zyg *z = calloc(1, sizeof(*z));
        if (!z) {
                close(sp[0]);
                close(sp[1]);
                return -ENOMEM;
        }
        snprintf(fdarg, sizeof(fdarg), "%d", ZYG_CTL_FD);
        snprintf(uidarg, sizeof(uidarg), "%lld", (long long)e->cfg.sandbox_uid);
        char *argv[] = { "pyrunner-zygote", fdarg, e->cfg.preload, uidarg, NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, sp[1], ZYG_CTL_FD);
        /* A clean environment: /proc/self/environ of every sandbox shows
         * the zygote's initial one, whatever Python does later. */
        char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL };
        r = posix_spawn(&pid, e->zygote_path, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(sp[1]);
        if (r != 0) {
                close(sp[0]);
                free(z);
                return -r;
        }
        z->engine = e;
        z->pid = pid;
        z->sock = sp[0];
        z->state = ZYG_STARTING;
        z->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        (void)fd_nonblock(z->sock, 1);
        z->ev_sock = event_new(e->base, z->sock, EV_READ | EV_PERSIST, zyg_on_sock, z);
        event_add(z->ev_sock, NULL);
        if (z->pidfd >= 0) {
                z->ev_pid = event_new(e->base, z->pidfd, EV_READ, zyg_on_pid, z);
                event_add(z->ev_pid, NULL);
        }
        TAILQ_INSERT_TAIL(&e->zygs, z, link);
        e->stats.zygote_starts++;
        if (!e->current)
                e->current = z;
        return 0;
}

static void engine_on_restart(evutil_socket_t fd, short what, void *arg)
{
        Engine *e = arg;
        if (e->current || e->freeing)
                return;
        int r = zyg_start(e);
        if (r < 0) {
                struct timeval tv = { 1, 0 };
                event_add(e->ev_restart, &tv);
        }
}

/* ---- runs ---- */

static void run_free(Run *r)
{
        Engine *e = r->e;
        TAILQ_REMOVE(&e->runs, r, link);
        if (r->in_queue) {
                if (r->state == RS_IDLE) {
                        TAILQ_REMOVE(&e->idle, r, qlink);
                        e->n_idle--;
                } else {
                        TAILQ_REMOVE(&e->queued, r, qlink);
                }
        }
        if (r->ctl)
                bufferevent_free(r->ctl);
        if (r->in)
                bufferevent_free(r->in);
        if (r->ev_out)
                event_free(r->ev_out);
        if (r->ev_err)
                event_free(r->ev_err);
        if (r->ev_init)
                event_free(r->ev_init);
        if (r->timer)
                event_free(r->timer);
        if (r->ev_watch)
                event_free(r->ev_watch);
        if (r->ev_retry)
                event_free(r->ev_retry);
        safe_close(r->out_fd);
        safe_close(r->err_fd);
        safe_close(r->init_pidfd);
        if (r->has_cg)
                (void)cg_destroy(&r->cg);
        if (r->zyg)
                zyg_unref(r->zyg);
        free(r->code);
        free(r->stdin_data);
        free(r->out);
        free(r->err);
        free(r->message);
        free(r->result_repr);
        json_decref(r->result);
        json_decref(r->error_info);
        free(r);
}

static void run_kill(Run *r)
{
        if (r->init_pidfd >= 0 && !r->init_exited) {
                /* Tearing down is background work too. */
                if (r->pid > 0 && !r->pid_exited)
                        (void)setpriority(PRIO_PROCESS, (id_t)r->pid, 19);
                (void)syscall(SYS_pidfd_send_signal, r->init_pidfd, SIGKILL, NULL, 0);
                r->killed = true;
        }
        if (r->has_cg)
                (void)cg_kill(&r->cg);
}

static void append_out(Run *r, bool is_err, const char *buf, size_t n)
{
        char **dst = is_err ? &r->err : &r->out;
        size_t *len = is_err ? &r->err_len : &r->out_len;
        bool *trunc = is_err ? &r->err_trunc : &r->out_trunc;
        size_t limit = (size_t)r->e->cfg.output_limit;

        if (*len + n > limit) {
                n = limit - *len;
                *trunc = true;
        }
        if (n > 0) {
                char *p = realloc(*dst, *len + n + 1);
                if (!p) {
                        *trunc = true;
                        return;
                }
                memcpy(p + *len, buf, n);
                *dst = p;
                *len += n;
        }
        if (*trunc && r->state == RS_RUNNING && !r->oc.output_exceeded) {
                r->oc.output_exceeded = true;
                run_kill(r);
        }
}

/* Reads what is there; returns false once the pipe is at EOF. */
static bool drain_pipe(Run *r, bool is_err)
{
        int *fd = is_err ? &r->err_fd : &r->out_fd;
        char buf[65536];

        while (*fd >= 0) {
                ssize_t n = read(*fd, buf, sizeof(buf));
                if (n > 0) {
                        if (r->state == RS_RUNNING || r->state == RS_IDLE)
                                append_out(r, is_err, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return true;
                struct event **ev = is_err ? &r->ev_err : &r->ev_out;
                if (*ev) {
                        event_free(*ev);
                        *ev = NULL;
                }
                *fd = safe_close(*fd);
                return false;
        }
        return false;
}

static void run_on_out(evutil_socket_t fd, short what, void *arg)
{
        Run *r = arg;
        (void)drain_pipe(r, fd == r->err_fd);
}

static void run_deliver(Run *r)
{
        Engine *e = r->e;
        RunResult res = { 0 };
        CgroupStats st = { 0 };

        if (r->state == RS_DONE)
                return;
        /* Output written before the result frame is in the pipes now. */
        (void)drain_pipe(r, false);
        (void)drain_pipe(r, true);
        bool had_request = r->has_request;
        if (r->state == RS_RUNNING)
                e->n_active--;
        r->state = RS_DONE;
        clock_gettime(CLOCK_MONOTONIC, &r->t_end);
        if (r->timer)
                event_del(r->timer);
        if (r->ev_watch)
                event_del(r->ev_watch);
        if (!had_request)
                return; /* a pool sandbox that died idle */

        if (r->has_cg && cg_read_stats(&r->cg, &st) == 0) {
                r->oc.oom_kills = st.oom_kills - r->base.oom_kills;
                res.cpu_time = (double)(st.cpu_usage_ns - MIN(st.cpu_usage_ns, r->base.cpu_usage_ns)) / 1e9;
                res.memory_used = (double)st.memory_peak / (1024.0 * 1024.0);
        } else {
                res.cpu_time = r->runner_cpu;
                if (r->pid > 0 && !r->pid_exited)
                        r->watch_peak = MAX(r->watch_peak, tree_rss(r->pid, 0));
                res.memory_used = (double)r->watch_peak / (1024.0 * 1024.0);
        }
        if (!r->ready && !r->oc.setup_failed && !r->oc.cancelled) {
                /* It died before it could run anything: our failure. */
                r->oc.setup_failed = true;
                if (!r->message)
                        r->message = strdup("the sandbox died during set-up");
        }
        res.status = run_classify(&r->oc, &res.exit_code, &res.signal);
        res.execution_time = r->t_start.tv_sec ? ts_diff(&r->t_start, &r->t_end) : 0.0;
        res.out = utf8_sanitize(r->out ? r->out : "", r->out_len, &res.out_len);
        res.err = utf8_sanitize(r->err ? r->err : "", r->err_len, &res.err_len);
        res.out_truncated = r->out_trunc;
        res.err_truncated = r->err_trunc;
        res.error = r->error_info ? json_incref(r->error_info) : NULL;
        res.message = r->message ? strdup(r->message) : NULL;
        res.result_repr = r->result_repr ? strdup(r->result_repr) : NULL;
        res.result = r->result ? json_incref(r->result) : NULL;
        res.timeout_ms = r->timeout_ms;
        res.memory_mb = r->memory_mb;
        e->stats.runs_finished++;
        if (r->done)
                r->done(&res, r->userdata);
        run_result_clear(&res);
}

static void run_on_retry(evutil_socket_t fd, short what, void *arg);

/* Finishes the result when enough is known, then frees once the sandbox
 * is completely gone. */
static void run_try_finish(Run *r)
{
        bool gone = r->init_exited && r->pid_exited;
        bool dead_zyg = r->zyg && r->zyg->state == ZYG_DEAD;

        if (r->state != RS_DONE) {
                if (r->oc.have_result || r->oc.setup_failed || gone || (r->init_exited && dead_zyg) ||
                    (r->pid_exited && r->init_pidfd < 0))
                        run_deliver(r);
        }
        if (r->state != RS_DONE)
                return;
        if (!r->killed && r->init_pidfd >= 0 && !r->init_exited)
                run_kill(r);
        if (r->init_pidfd >= 0 && !r->init_exited)
                return;
        if (!r->pid_exited && !dead_zyg && r->pid > 0)
                return;
        if (r->has_cg && cg_destroy(&r->cg) == -EBUSY && r->rmdir_tries++ < 200) {
                /* Tasks are still leaving the cgroup: retry shortly. */
                if (!r->ev_retry)
                        r->ev_retry = evtimer_new(r->e->base, run_on_retry, r);
                struct timeval tv = { 0, 5000 };
                evtimer_add(r->ev_retry, &tv);
                return;
        }
        Engine *e = r->e;
        run_free(r);
        if (!e->freeing)
                engine_dispatch(e);
}

static void run_on_retry(evutil_socket_t fd, short what, void *arg)
{
        run_try_finish(arg);
}

static void run_on_init_exit(evutil_socket_t fd, short what, void *arg)
{
        Run *r = arg;
        r->init_exited = true;
        run_try_finish(r);
}

/* Private memory of pid and its descendants, from /proc: the pages they
 * share with the zygote are not theirs. */
static uint64_t tree_rss(pid_t pid, int depth)
{
        char path[96], buf[4096];
        uint64_t total = 0;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
        if (file_read_str(AT_FDCWD, path, buf, sizeof(buf)) > 0)
                for (char *p = buf; (p = strstr(p, "Private_")); p++) {
                        uint64_t kb = 0;
                        if (sscanf(p, "Private_%*[a-zA-Z]: %" SCNu64, &kb) == 1)
                                total += kb << 10;
                }
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
        if (depth < 16 && file_read_str(AT_FDCWD, path, buf, sizeof(buf)) > 0)
                for (char *p = buf, *end; *p; p = end) {
                        long child = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        total += tree_rss((pid_t)child, depth + 1);
                }
        return total;
}

/* Without a memory cgroup: poll the sandbox's resident size. Coarser than
 * the cgroup (a fast allocation can overshoot by one interval). */
static void run_on_watch(evutil_socket_t fd, short what, void *arg)
{
        Run *r = arg;
        if (r->state != RS_RUNNING || r->pid <= 0)
                return;
        uint64_t rss = tree_rss(r->pid, 0);
        r->watch_peak = MAX(r->watch_peak, rss);
        if (rss > (uint64_t)r->memory_mb << 20) {
                r->oc.oom_kills = 1;
                run_kill(r);
        }
}

static void run_on_timeout(evutil_socket_t fd, short what, void *arg)
{
        Run *r = arg;
        if (r->state != RS_RUNNING)
                return;
        r->oc.timed_out = true;
        run_kill(r);
}

static int run_send_frame(Run *r, json_t *obj)
{
        char *s = json_dumps(obj, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        uint8_t hdr[FRAME_HEADER_SIZE];
        size_t len = strlen(s);
        frame_put_header(hdr, (uint32_t)len);
        struct evbuffer *out = bufferevent_get_output(r->ctl);
        int ok = evbuffer_add(out, hdr, sizeof(hdr)) == 0 && evbuffer_add(out, s, len) == 0;
        free(s);
        return ok ? 0 : -ENOMEM;
}

static void run_start(Run *r)
{
        Engine *e = r->e;

        if (r->has_cg) {
                if (r->memory_mb != r->cur_memory_mb &&
                    cg_set_memory(&r->cg, (uint64_t)r->memory_mb << 20) < 0) {
                        run_fail_internal(r, "cannot set the memory limit");
                        return;
                }
                (void)cg_reset_peak(&r->cg);
                (void)cg_read_stats(&r->cg, &r->base);
        }
        if (r->stdin_len > 0)
                bufferevent_write(r->in, r->stdin_data, r->stdin_len);
        if (evbuffer_get_length(bufferevent_get_output(r->in)) == 0) {
                bufferevent_free(r->in);
                r->in = NULL;
        }
        json_t *msg = json_pack("{s:s, s:s%}", "type", "run", "code", r->code, r->code_len);
        int rr = msg ? run_send_frame(r, msg) : -ENOMEM;
        json_decref(msg);
        if (rr < 0) {
                run_fail_internal(r, "cannot send the program");
                return;
        }
        (void)setpriority(PRIO_PROCESS, (id_t)r->pid, 0);
        r->state = RS_RUNNING;
        e->n_active++;
        e->stats.runs_started++;
        clock_gettime(CLOCK_MONOTONIC, &r->t_start);
        struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
        r->timer = evtimer_new(e->base, run_on_timeout, r);
        evtimer_add(r->timer, &tv);
        if (!r->has_cg) {
                struct timeval every = { 0, 10000 };
                r->ev_watch = event_new(e->base, -1, EV_PERSIST, run_on_watch, r);
                event_add(r->ev_watch, &every);
        }
}

static void run_on_stdin_written(struct bufferevent *bev, void *arg)
{
        Run *r = arg;
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && r->in) {
                bufferevent_free(r->in);
                r->in = NULL;
        }
}

static void run_on_stdin_event(struct bufferevent *bev, short what, void *arg)
{
        Run *r = arg;
        /* The program closed stdin early: fine. */
        bufferevent_free(r->in);
        r->in = NULL;
}

static void run_handle_frame(Run *r, const char *data, size_t len)
{
        json_error_t jerr;
        json_t *m = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        const char *type = json_string_value(json_object_get(m, "type"));

        if (!type) {
                r->oc.protocol_error = true;
                goto bad;
        }
        if (!strcmp(type, "ready") && !r->ready) {
                r->ready = true;
                if (r->pooled && !r->has_request) {
                        r->e->n_spawning_pool--;
                        r->state = RS_IDLE;
                        TAILQ_INSERT_TAIL(&r->e->idle, r, qlink);
                        r->in_queue = true;
                        r->e->n_idle++;
                        engine_dispatch(r->e);
                } else {
                        r->state = RS_IDLE;
                        run_start(r);
                }
        } else if (!strcmp(type, "setup_error") && !r->ready) {
                const char *stage = json_string_value(json_object_get(m, "stage"));
                const char *msg = json_string_value(json_object_get(m, "message"));
                char buf[256];
                snprintf(buf, sizeof(buf), "sandbox set-up failed at %s: %s", stage ? stage : "?",
                         msg ? msg : "?");
                if (r->pooled && !r->has_request)
                        r->e->n_spawning_pool--;
                run_fail_internal(r, buf);
        } else if (!strcmp(type, "result") && r->state == RS_RUNNING && !r->oc.have_result) {
                const char *status = json_string_value(json_object_get(m, "status"));
                json_t *code = json_object_get(m, "exit_code");
                json_t *error = json_object_get(m, "error");
                json_t *cpu = json_object_get(m, "cpu_time");
                if (!status || (strcmp(status, "success") && strcmp(status, "error")) ||
                    !json_is_integer(code) || !(json_is_null(error) || json_is_object(error))) {
                        r->oc.protocol_error = true;
                        goto bad;
                }
                r->oc.have_result = true;
                r->oc.result_is_error = strcmp(status, "error") == 0;
                r->oc.result_exit_code = (int)(json_integer_value(code) & 0xff);
                if (json_is_object(error)) {
                        /* Keep only the documented fields, as strings or ints. */
                        json_t *clean = json_object();
                        static const char *const keys[] = { "type", "module", "message", "traceback" };
                        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                                json_t *v = json_object_get(error, keys[i]);
                                json_object_set_new(clean, keys[i], json_is_string(v) ? json_incref(v) : json_null());
                        }
                        json_t *line = json_object_get(error, "line");
                        json_object_set_new(clean, "line", json_is_integer(line) ? json_incref(line) : json_null());
                        const char *t = json_string_value(json_object_get(clean, "type"));
                        r->oc.result_memory_error = t && !strcmp(t, "MemoryError");
                        r->error_info = clean;
                }
                if (json_is_number(cpu))
                        r->runner_cpu = json_number_value(cpu);
                /* The typed value: untrusted JSON, passed on as it is (clients
                 * decode it strictly); its size is bounded by the frame cap. */
                json_t *value = json_object_get(m, "result");
                if (value && !json_is_null(value))
                        r->result = json_incref(value);
                json_t *rr = json_object_get(m, "result_repr");
                if (json_is_string(rr) && json_string_length(rr) <= 65536 * 4)
                        r->result_repr = strndup(json_string_value(rr), json_string_length(rr));
                run_try_finish(r);
        } else {
                r->oc.protocol_error = true;
                goto bad;
        }
        json_decref(m);
        return;
bad:
        json_decref(m);
        if (r->state == RS_RUNNING && !r->message)
                r->message = strdup("the sandbox broke the control protocol");
        run_kill(r);
}

static void run_on_ctl_read(struct bufferevent *bev, void *arg)
{
        Run *r = arg;
        struct evbuffer *in = bufferevent_get_input(bev);

        while (r->ctl == bev) {
                size_t avail = evbuffer_get_length(in), plen;
                uint8_t *p = evbuffer_pullup(in, MIN(avail, FRAME_HEADER_SIZE));
                int k = p ? frame_peek(p, avail, (size_t)r->e->cfg.max_result_bytes, &plen) : 0;
                if (k < 0) {
                        r->oc.protocol_error = true;
                        if (!r->message)
                                r->message = strdup("the sandbox sent an oversized message");
                        evbuffer_drain(in, avail);
                        bufferevent_disable(bev, EV_READ);
                        run_kill(r);
                        return;
                }
                if (k == 0)
                        return;
                p = evbuffer_pullup(in, (ssize_t)(FRAME_HEADER_SIZE + plen));
                RunState before = r->state;
                char *copy = malloc(plen + 1);
                if (!copy)
                        return;
                memcpy(copy, p + FRAME_HEADER_SIZE, plen);
                evbuffer_drain(in, FRAME_HEADER_SIZE + plen);
                run_handle_frame(r, copy, plen);
                free(copy);
                if (before == RS_RUNNING && r->state == RS_DONE)
                        return; /* r may be freed */
                if (r->oc.protocol_error)
                        return;
        }
}

static void run_on_ctl_event(struct bufferevent *bev, short what, void *arg)
{
        /* EOF or error: the process is going away; its exit status and
         * pid 1's exit finish the run. */
        bufferevent_disable(bev, EV_READ);
}

static int run_spawn(Run *r)
{
        Engine *e = r->e;
        Zyg *z = e->current;
        _cleanup_close_pair_ int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 },
                                 ctl[2] = { -1, -1 };
        int cgfds[CG_N];
        int n_cg = 0;
        int r2;

        if (!z || z->state != ZYG_READY)
                return -EAGAIN;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
                return -errno;
        if (e->cgroot.mode != CGROUP_MODE_NONE) {
                char name[32];
                CgroupLimits lim = {
                        .memory_bytes = (uint64_t)r->memory_mb << 20,
                        .pids_max = (uint64_t)e->cfg.pids_max,
                        .cpu_percent = (uint32_t)e->cfg.cpu_percent,
                };
                snprintf(name, sizeof(name), "run-%llu", (unsigned long long)r->id);
                r2 = cg_create(&e->cgroot, name, &lim, &r->cg);
                if (r2 < 0)
                        return r2;
                r->has_cg = true;
                r->cur_memory_mb = r->memory_mb;
                n_cg = cg_open_procs(&r->cg, cgfds, CG_N);
                if (n_cg < 0)
                        return n_cg;
        }

        ZygSpawn m = {
                .type = ZYG_MSG_SPAWN,
                .n_cgroup_fds = (uint32_t)n_cg,
                .id = r->id,
                .layers = e->opts.layers,
                .limits = {
                        .tmpfs_bytes = (uint64_t)e->cfg.tmpfs_mb << 20,
                        .tmpfs_inodes = (uint64_t)e->cfg.tmpfs_inodes,
                        .fsize_bytes = (uint64_t)e->cfg.tmpfs_mb << 20,
                        .stack_bytes = (uint64_t)e->cfg.stack_mb << 20,
                        .nofile = (uint32_t)e->cfg.nofile,
                        .cpu_seconds = (uint32_t)(e->cfg.max_timeout_ms / 1000 + 2),
                        /* No pids cgroup: RLIMIT_NPROC, shared by all sandboxes of
                         * the same host uid, is the only brake on fork bombs. */
                        .nproc = e->cgroot.mode == CGROUP_MODE_NONE ? (uint32_t)e->cfg.pids_max : 0,
                },
        };
        int fds[4 + CG_N] = { in[0], out[1], err[1], ctl[1] };
        for (int i = 0; i < n_cg; i++)
                fds[4 + i] = cgfds[i];
        ssize_t n = fd_send_with_fds(z->sock, &m, sizeof(m), fds, 4 + (size_t)n_cg);
        for (int i = 0; i < n_cg; i++)
                close(cgfds[i]);
        if (n < 0)
                return (int)n;

        r->zyg = z;
        z->nruns++;
        z->forks++;
        r->state = RS_SPAWNING;
        r->out_fd = TAKE_FD(out[0]);
        r->err_fd = TAKE_FD(err[0]);
        (void)fd_nonblock(r->out_fd, 1);
        (void)fd_nonblock(r->err_fd, 1);
        (void)fd_nonblock(in[1], 1);
        (void)fd_nonblock(ctl[0], 1);
        r->ev_out = event_new(e->base, r->out_fd, EV_READ | EV_PERSIST, run_on_out, r);
        r->ev_err = event_new(e->base, r->err_fd, EV_READ | EV_PERSIST, run_on_out, r);
        event_add(r->ev_out, NULL);
        event_add(r->ev_err, NULL);
        r->in = bufferevent_socket_new(e->base, TAKE_FD(in[1]), BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(r->in, NULL, run_on_stdin_written, run_on_stdin_event, r);
        r->ctl = bufferevent_socket_new(e->base, TAKE_FD(ctl[0]), BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(r->ctl, run_on_ctl_read, NULL, run_on_ctl_event, r);
        bufferevent_enable(r->ctl, EV_READ | EV_WRITE);

        /* Past max forks, start a fresh zygote in the background. */
        if (z->forks >= (uint64_t)e->cfg.zygote_max_forks) {
                Zyg *y;
                bool starting = false;
                TAILQ_FOREACH(y, &e->zygs, link)
                        starting |= y->state == ZYG_STARTING;
                if (!starting)
                        (void)zyg_start(e);
        }
        return 0;
}

static void run_on_spawned(Run *r, const ZygSpawned *m, int pidfd)
{
        if (m->error < 0 || pidfd < 0) {
                char buf[200];
                safe_close(pidfd);
                snprintf(buf, sizeof(buf), "spawning the sandbox failed: %s", m->message);
                if (r->pooled && !r->has_request)
                        r->e->n_spawning_pool--;
                run_fail_internal(r, buf);
                return;
        }
        r->pid = m->pid;
        r->init_pidfd = pidfd;
        r->ev_init = event_new(r->e->base, pidfd, EV_READ, run_on_init_exit, r);
        event_add(r->ev_init, NULL);
}

static Run *run_new(Engine *e)
{
        Run *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->e = e;
        r->id = ++e->next_id;
        r->ticket = r->id;
        r->out_fd = r->err_fd = r->init_pidfd = -1;
        cg_init(&r->cg);
        r->memory_mb = e->cfg.memory_mb;
        r->timeout_ms = e->cfg.timeout_ms;
        TAILQ_INSERT_TAIL(&e->runs, r, link);
        return r;
}

static void pool_fill(Engine *e)
{
        while (e->current && e->current->state == ZYG_READY &&
               e->n_idle + e->n_spawning_pool < (unsigned)e->cfg.pool_size) {
                Run *r = run_new(e);
                if (!r)
                        return;
                r->pooled = true;
                e->n_spawning_pool++;
                if (run_spawn(r) < 0) {
                        e->n_spawning_pool--;
                        r->state = RS_DONE;
                        run_free(r);
                        return;
                }
        }
}

/* Gives queued requests a sandbox: an idle one, or a new one. */
static void engine_dispatch(Engine *e)
{
        Run *q;

        while ((q = TAILQ_FIRST(&e->queued))) {
                if (!e->current || e->current->state != ZYG_READY)
                        break;
                TAILQ_REMOVE(&e->queued, q, qlink);
                q->in_queue = false;
                Run *idle = TAILQ_FIRST(&e->idle);
                if (idle) {
                        /* Hand the request over to the warm sandbox. */
                        TAILQ_REMOVE(&e->idle, idle, qlink);
                        idle->in_queue = false;
                        e->n_idle--;
                        idle->has_request = true;
                        idle->code = TAKE_PTR(q->code);
                        idle->code_len = q->code_len;
                        idle->stdin_data = TAKE_PTR(q->stdin_data);
                        idle->stdin_len = q->stdin_len;
                        idle->timeout_ms = q->timeout_ms;
                        idle->memory_mb = q->memory_mb;
                        idle->done = q->done;
                        idle->userdata = q->userdata;
                        idle->ticket = q->ticket;
                        q->done = NULL;
                        q->state = RS_DONE;
                        run_free(q);
                        run_start(idle);
                } else if (run_spawn(q) < 0) {
                        run_fail_internal(q, "cannot create a sandbox");
                }
        }
        pool_fill(e);
}

int engine_submit(Engine *e, const RunRequest *req, run_done_fn done, void *userdata, uint64_t *ret)
{
        const PyrConfig *c = &e->cfg;
        int64_t t = req->timeout_ms ? req->timeout_ms : c->timeout_ms;
        int64_t m = req->memory_mb ? req->memory_mb : c->memory_mb;

        if (!req->code || req->code_len == 0)
                return -EINVAL;
        if (req->code_len > (size_t)c->max_code_bytes || req->stdin_len > (size_t)c->max_stdin_bytes)
                return -E2BIG;
        if (!utf8_valid(req->code, req->code_len))
                return -EILSEQ;
        if (t < 100 || t > c->max_timeout_ms || m < c->min_memory_mb || m > c->max_memory_mb)
                return -ERANGE;

        Run *r = run_new(e);
        if (!r)
                return -ENOMEM;
        r->has_request = true;
        r->code = malloc(req->code_len + 1);
        r->stdin_data = req->stdin_len ? malloc(req->stdin_len) : NULL;
        if (!r->code || (req->stdin_len && !r->stdin_data)) {
                r->state = RS_DONE;
                run_free(r);
                return -ENOMEM;
        }
        memcpy(r->code, req->code, req->code_len);
        r->code[req->code_len] = '\0';
        r->code_len = req->code_len;
        if (req->stdin_len)
                memcpy(r->stdin_data, req->stdin_data, req->stdin_len);
        r->stdin_len = req->stdin_len;
        r->timeout_ms = t;
        r->memory_mb = m;
        r->done = done;
        r->userdata = userdata;
        r->state = RS_QUEUED;
        TAILQ_INSERT_TAIL(&e->queued, r, qlink);
        r->in_queue = true;
        if (ret)
                *ret = r->ticket;
        engine_dispatch(e);
        return 0;
}

void engine_cancel(Engine *e, uint64_t ticket)
{
        Run *r;
        TAILQ_FOREACH(r, &e->runs, link)
                if (r->ticket == ticket && r->has_request)
                        break;
        if (!r || r->state == RS_DONE)
                return;
        r->oc.cancelled = true;
        if (r->state == RS_QUEUED) {
                r->oc.setup_failed = false;
                run_deliver(r);
                run_free(r);
                return;
        }
        run_kill(r);
        run_try_finish(r);
}

int engine_new(struct event_base *base, const PyrConfig *cfg, const EngineOptions *opts, Engine **ret)
{
        Engine *e = calloc(1, sizeof(*e));
        char name[64];
        int r;

        if (!e)
                return -ENOMEM;
        e->base = base;
        e->cfg = *cfg;
        e->opts = *opts;
        TAILQ_INIT(&e->zygs);
        TAILQ_INIT(&e->runs);
        TAILQ_INIT(&e->queued);
        TAILQ_INIT(&e->idle);
        signal(SIGPIPE, SIG_IGN);

        const char *path = opts->zygote_path ? opts->zygote_path : getenv("PYRUNNER_ZYGOTE");
        if (path) {
                snprintf(e->zygote_path, sizeof(e->zygote_path), "%s", path);
        } else {
                /* Next to us in the build tree, else the install location. */
                static const char *const rel[] = { "../sandbox", "../src/sandbox", "." };
                char self[PATH_MAX];
                ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n < 0) {
                        free(e);
                        return -errno;
                }
                self[n] = '\0';
                *strrchr(self, '/') = '\0';
                snprintf(e->zygote_path, sizeof(e->zygote_path), "%s/pyrunner-zygote", PYRUNNER_LIBEXECDIR);
                for (size_t i = 0; i < ELEMENTSOF(rel); i++) {
                        char cand[PATH_MAX + 64];
                        snprintf(cand, sizeof(cand), "%s/%s/pyrunner-zygote", self, rel[i]);
                        if (access(cand, X_OK) == 0) {
                                snprintf(e->zygote_path, sizeof(e->zygote_path), "%s", cand);
                                break;
                        }
                }
        }
        if (access(e->zygote_path, X_OK) < 0) {
                r = -errno;
                free(e);
                return r;
        }
        if (opts->no_cgroups) {
                memset(&e->cgroot, 0, sizeof(e->cgroot));
                for (int i = 0; i < CG_N; i++)
                        e->cgroot.dirfd[i] = -1;
                snprintf(e->cgroot.why, sizeof(e->cgroot.why), "disabled");
        } else {
                snprintf(name, sizeof(name), "pyrunner-%d", getpid());
                (void)cg_root_open(&e->cgroot, "/sys/fs/cgroup", "/proc/self/cgroup", name);
        }
        e->ev_restart = evtimer_new(base, engine_on_restart, e);
        r = zyg_start(e);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void engine_free(Engine *e)
{
        if (!e)
                return;
        e->freeing = true;
        Run *r;
        TAILQ_FOREACH(r, &e->runs, link)
                run_kill(r);
        /* Shutting down may wait a little: give each killed sandbox up to a
         * second to go, so that its cgroup can be removed. */
        TAILQ_FOREACH(r, &e->runs, link) {
                if (r->init_pidfd >= 0 && !r->init_exited) {
                        struct pollfd p = { .fd = r->init_pidfd, .events = POLLIN };
                        (void)poll(&p, 1, 1000);
                }
                for (int i = 0; r->has_cg && i < 200 && cg_destroy(&r->cg) == -EBUSY; i++)
                        usleep(5000);
        }
        while ((r = TAILQ_FIRST(&e->runs))) {
                r->state = RS_DONE;
                run_free(r);
        }
        Zyg *z;
        while ((z = TAILQ_FIRST(&e->zygs))) {
                TAILQ_REMOVE(&e->zygs, z, link);
                if (z->ev_sock)
                        event_free(z->ev_sock);
                if (z->ev_pid)
                        event_free(z->ev_pid);
                safe_close(z->sock);
                if (z->pidfd >= 0) {
                        (void)syscall(SYS_pidfd_send_signal, z->pidfd, SIGKILL, NULL, 0);
                        siginfo_t si;
                        (void)waitid(P_PIDFD, (id_t)z->pidfd, &si, WEXITED);
                        close(z->pidfd);
                }
                free(z->info);
                free(z);
        }
        if (e->ev_restart)
                event_free(e->ev_restart);
        cg_root_close(&e->cgroot);
        free(e);
}

const char *engine_info(const Engine *e)
{
        return e->info[0] ? e->info : NULL;
}

const CgroupRoot *engine_cgroup(const Engine *e)
{
        return &e->cgroot;
}

uint32_t engine_layers(const Engine *e)
{
        return e->opts.layers;
}

void engine_get_stats(const Engine *e, EngineStats *ret)
{
        *ret = e->stats;
        ret->active = e->n_active;
        ret->idle = e->n_idle;
        unsigned q = 0;
        Run *r;
        TAILQ_FOREACH(r, &e->queued, qlink)
                q++;
        ret->queued = q;
}

bool engine_idle(const Engine *e)
{
        Run *r;
        TAILQ_FOREACH(r, &e->runs, link)
                if (!(r->state == RS_IDLE || (r->pooled && !r->has_request)))
                        return false;
        return true;
}

json_t *engine_layers_json(const Engine *e)
{
        static const struct { uint32_t bit; const char *name; } names[] = {
                { ZYG_LAYER_USERNS, "user" }, { ZYG_LAYER_PIDNS, "pid" }, { ZYG_LAYER_MNTNS, "mount" },
                { ZYG_LAYER_IPCNS, "ipc" }, { ZYG_LAYER_UTSNS, "uts" }, { ZYG_LAYER_NETNS, "network" },
        };
        uint32_t l = e->opts.layers;
        const CgroupRoot *cg = &e->cgroot;
        json_t *ns = json_array();
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (l & names[i].bit)
                        json_array_append_new(ns, json_string(names[i].name));
        json_t *o = json_pack("{s:o, s:b, s:b, s:b, s:s}", "namespaces", ns, "seccomp", !!(l & ZYG_LAYER_SECCOMP),
                              "capabilities_dropped", !!(l & ZYG_LAYER_CAPS), "rlimits", !!(l & ZYG_LAYER_RLIMITS),
                              "cgroup", cg_mode_name(cg->mode));
        if (cg->mode == CGROUP_MODE_NONE) {
                json_object_set_new(o, "cgroup_reason", json_string(cg->why));
                json_object_set_new(o, "memory_limit", json_string("memory watch"));
        } else {
                json_object_set_new(o, "memory_limit", json_string("cgroup"));
        }
        json_object_set_new(o, "uid", json_integer(ZYG_SANDBOX_UID));
        json_object_set_new(o, "privileged", json_boolean(geteuid() == 0));
        return o;
}
