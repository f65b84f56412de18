/* SPDX-License-Identifier: MIT */
/* One sandbox: spawning it, its ctl channel and pipes, killing it and
 * waiting until every part of it is gone. */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fd-util.h"
#include "frame.h"
#include "json-util.h"
#include "macro.h"
#include "zygote-proto.h"

#define DYING_AT_MOST_MS 2000        /* then the janitor takes what is left */

static void sandbox_on_timer(evutil_socket_t fd, short what, void *arg);

static bool sandbox_can_become(SandboxState from, SandboxState to)
{
        switch (to) {
        case SB_IDLE:
        case SB_HELD:
                return from == SB_SPAWNING || (to == SB_HELD && from == SB_BUSY);
        case SB_BUSY:
                return from == SB_SPAWNING || from == SB_IDLE || from == SB_HELD;
        case SB_DYING:
                return from != SB_DYING;
        case SB_SPAWNING:
        default:
                return false;
        }
}

static void sandbox_set_state(Sandbox *sb, SandboxState s)
{
        assert_se(sandbox_can_become(sb->state, s));
        sb->state = s;
}

Sandbox *sandbox_by_id(Engine *e, uint64_t id)
{
        Sandbox *sb;
        TAILQ_FOREACH(sb, &e->sandboxes, link)
                if (sb->id == id)
                        return sb;
        return NULL;
}

void sandbox_set_timer(Sandbox *sb, int64_t ms)
{
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
        evtimer_add(sb->ev_timer, &tv);
}

void sandbox_kill(Sandbox *sb)
{
        if (sb->freed)
                return;
        if (sb->init_pidfd >= 0 && !sb->init_exited) {
                if (syscall(SYS_pidfd_send_signal, sb->init_pidfd, SIGKILL, NULL, 0) == 0)
                        sb->kill_delivered = true;
        }
        /* Also through the cgroup: it reaches a sandbox whose pid 1 we
         * never learnt (a SPAWNED that was late or lost). */
        if (sb->has_cg && cg_kill(&sb->cg) == 0)
                sb->kill_delivered = true;
        sb->killed = true;
}

/* The sandbox will run nothing more: kill it and wait for it to go. */
void sandbox_let_go(Sandbox *sb)
{
        if (sb->state == SB_DYING || sb->freed)
                return;
        assert_se(!sb->job);
        bool was_spawning = sb->state == SB_SPAWNING;
        if (sb->state == SB_IDLE)
                pool_remove_idle(sb);
        sandbox_set_state(sb, SB_DYING);
        if (was_spawning && sb->zyg)
                zyg_update_priority(sb->zyg);
        sb->dying_since = now_usec();
        sandbox_kill(sb);
        sandbox_set_timer(sb, DYING_AT_MOST_MS);
}

static bool sandbox_gone(const Sandbox *sb);

/* A free host uid slot, taken in turn (not the lowest), so that one just
 * given back is the last to be used again. -1 if none. */
static int32_t uid_slot_take(Engine *e)
{
        uint32_t n = (uint32_t)e->cfg.sandbox_uids;
        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = (e->uid_next + k) % n;
                if (!e->uid_used[i]) {
                        e->uid_used[i] = 1;
                        e->uid_next = (i + 1) % n;
                        return (int32_t)i;
                }
        }
        return -1;
}

static void uid_slot_give_back(Engine *e, int32_t slot)
{
        if (slot >= 0 && e->uid_used)
                e->uid_used[slot] = 0;
}

/* Releases everything a sandbox holds. The struct itself waits on e->dead
 * for ev_reap, so that no caller up the stack is left with a freed pointer
 * (sandbox_check may get here from deep inside a job's ending). */
void sandbox_free(Sandbox *sb)
{
        Engine *e = sb->e;
        assert_se(!sb->job && !sb->freed);
        bool gone = sandbox_gone(sb);
        if (sb->state == SB_IDLE)
                pool_remove_idle(sb);
        sb->freed = true;
        sb->state = SB_DYING;
        TAILQ_REMOVE(&e->sandboxes, sb, link);
        TAILQ_INSERT_TAIL(&e->dead, sb, link);
        event_active(e->ev_reap, EV_TIMEOUT, 0);
        if (sb->ctl)
                bufferevent_free(sb->ctl);
        if (sb->in)
                bufferevent_free(sb->in);
        if (sb->ev_out)
                event_free(sb->ev_out);
        if (sb->ev_err)
                event_free(sb->ev_err);
        if (sb->ev_init)
                event_free(sb->ev_init);
        if (sb->ev_timer)
                event_free(sb->ev_timer);
        sb->ctl = sb->in = NULL;
        sb->ev_out = sb->ev_err = sb->ev_init = sb->ev_timer = NULL;
        sb->out_fd = safe_close(sb->out_fd);
        sb->err_fd = safe_close(sb->err_fd);
        sb->init_pidfd = safe_close(sb->init_pidfd);
        if (sb->has_cg && cg_destroy(&sb->cg) < 0) {
                /* Still busy: the janitor removes it once it empties. */
                for (int i = 0; i < CG_N; i++)
                        sb->cg.dirfd[i] = safe_close(sb->cg.dirfd[i]);
        }
        sb->has_cg = false;
        /* Its uid is free again only once none of its processes can hold a
         * per-user count: else it stays taken (the janitor kills those). */
        if (gone)
                uid_slot_give_back(e, sb->uid_slot);
        sb->uid_slot = -1;
        if (sb->zyg)
                zyg_unref(TAKE_PTR(sb->zyg));
        if (!e->freeing)
                engine_dispatch(e);
}

static bool zyg_gone(const Sandbox *sb)
{
        return !sb->zyg || sb->zyg->state == ZYG_DEAD;
}

/* Both processes are known to be gone, or can no longer be waited for. */
static bool sandbox_gone(const Sandbox *sb)
{
        bool init_done = sb->init_exited || sb->init_pidfd < 0;
        bool pid_done = sb->pid_exited || sb->pid <= 0 || zyg_gone(sb);
        return init_done && pid_done;
}

/* pid 2 is gone. pid 1's exit says so only when pid 2 is in its pid
 * namespace (the sabotage tests turn that off). */
static bool sandbox_dead(const Sandbox *sb)
{
        return sb->pid_exited || (sb->init_exited && (sb->e->opts.layers & ZYG_LAYER_PIDNS));
}

void sandbox_check(Sandbox *sb)
{
        Job *j = sb->job;

        if (sb->freed)
                return;
        if (j) {
                if (sb->state == SB_BUSY && sb->init_exited && (sb->pid_exited || zyg_gone(sb))) {
                        /* Whatever it wrote before it went is in the buffers now. */
                        sandbox_drain(sb);
                        job_finish(j);
                } else if (sb->state == SB_SPAWNING && sandbox_dead(sb)) {
                        sandbox_drain(sb);
                        job_fail(j, "the sandbox died during set-up");
                }
                return; /* job_finish let go of sb, which now goes on alone */
        }
        if (sb->state != SB_DYING) {
                if (sandbox_dead(sb))
                        sandbox_let_go(sb);
                else
                        return;
        }
        usec_t age = now_usec() - sb->dying_since;
        if (age < DYING_AT_MOST_MS * 1000ULL) {
                /* Without a cgroup, only a SPAWNED still in flight brings
                 * a handle to kill the sandbox by. */
                bool wait = (!sb->spawned && !zyg_gone(sb) && !sb->has_cg) || !sandbox_gone(sb);
                /* The timer counts from the loop's cached time, so
                 * it may fire a little before this clock says: again. */
                if (wait) {
                        if (!evtimer_pending(sb->ev_timer, NULL))
                                sandbox_set_timer(sb, (int64_t)((DYING_AT_MOST_MS * 1000ULL - age) / 1000) + 1);
                        return;
                }
        }
        if (sb->has_cg) {
                int r = cg_destroy(&sb->cg);
                if (r == -EBUSY && sb->rmdir_tries++ < 200) {
                        /* Tasks are still leaving (or forking): kill again, retry shortly. */
                        (void)cg_kill(&sb->cg);
                        sandbox_set_timer(sb, 5);
                        return;
                }
                if (r == 0)
                        sb->has_cg = false;
        }
        sandbox_free(sb);
}

static void sandbox_on_timer(evutil_socket_t fd, short what, void *arg)
{
        Sandbox *sb = arg;

        if (sb->state == SB_SPAWNING)
                sandbox_start_missed(sb);
        sandbox_check(sb);
}

void sandbox_start_missed(Sandbox *sb)
{
        Engine *e = sb->e;

        /* A SPAWNED that never came means the zygote is not doing its job:
         * replace it. */
        if (!sb->spawned && sb->zyg && sb->zyg->state == ZYG_READY) {
                engine_notice(e, "spawn_lost", "sandbox %llu: no SPAWNED from the zygote; replacing it",
                              (unsigned long long)sb->id);
                if (!zyg_promote_spare(e)) {
                        zyg_retire(sb->zyg);
                        /* From the loop, which retries a start that fails. */
                        event_active(e->ev_restart, EV_TIMEOUT, 0);
                }
        }
        e->stats.deadline_misses += sb->job != NULL;
        if (sb->job)
                job_fail(sb->job, "the sandbox did not start within %lld ms", (long long)e->cfg.start_timeout_ms);
        sandbox_let_go(sb);
}

static void sandbox_on_init_exit(evutil_socket_t fd, short what, void *arg)
{
        Sandbox *sb = arg;
        sb->init_exited = true;
        sandbox_check(sb);
}

void sandbox_on_exited(Sandbox *sb, int status, uint64_t cpu_us)
{
        sb->pid_exited = true;
        sb->have_wait_status = true;
        sb->wait_status = status;
        sb->exit_cpu_us = cpu_us;
        /* pid 2 is gone: end the rest of the sandbox. */
        sandbox_kill(sb);
        sandbox_check(sb);
}

void sandbox_zygote_died(Sandbox *sb)
{
        Job *j = sb->job;
        if (j && j->state == JOB_STARTING && !sb->session) {
                /* Nothing of it ran yet: the next zygote serves it (not a
                 * session's cell, whose state was in this sandbox). */
                sb->job = NULL;
                job_requeue(j);
        } else if (j) {
                job_fail(j, "the zygote died");
        }
        sandbox_let_go(sb);
        sandbox_check(sb);
}

static void sandbox_ready(Sandbox *sb)
{
        Engine *e = sb->e;

        evtimer_del(sb->ev_timer);
        if (sb->job) {
                sandbox_set_state(sb, SB_BUSY);
                zyg_update_priority(sb->zyg);
                job_start(sb->job);
                return;
        }
        if (sb->session) {
                sandbox_set_state(sb, SB_HELD);
                zyg_update_priority(sb->zyg);
                return;
        }
        sandbox_set_state(sb, SB_IDLE);
        TAILQ_INSERT_TAIL(&e->idle, sb, ilink);
        e->n_idle++;
        engine_dispatch(e);
}

void sandbox_on_spawned(Sandbox *sb, int error, const char *message, pid_t pid, pid_t init_pid, int pidfd)
{
        sb->spawned = true;
        if (error < 0 || pidfd < 0) {
                safe_close(pidfd);
                if (sb->job && sb->state == SB_SPAWNING)
                        job_fail(sb->job, "spawning the sandbox failed: %.*s", 127, message);
                else
                        sandbox_let_go(sb);
                sandbox_check(sb);
                return;
        }
        sb->pid = pid;
        sb->init_pid = init_pid;
        sb->init_pidfd = pidfd;
        sb->ev_init = event_new(sb->e->base, pidfd, EV_READ, sandbox_on_init_exit, sb);
        if (sb->ev_init)
                event_add(sb->ev_init, NULL);
        if (sb->killed || !sb->ev_init) {
                /* Late: its deadline passed already. */
                sandbox_kill(sb);
                sandbox_check(sb);
                return;
        }
        if (sb->ready_frame && sb->state == SB_SPAWNING)
                sandbox_ready(sb);
}

void sandbox_hold(Sandbox *sb)
{
        assert_se(sb->session && !sb->job);
        sandbox_set_state(sb, SB_HELD);
        sb->last_used = now_usec();
}

void sandbox_attach(Sandbox *sb, Job *j)
{
        assert_se(!sb->job && !j->sb && (sb->state == SB_IDLE || sb->state == SB_HELD || sb->state == SB_SPAWNING));
        sb->job = j;
        j->sb = sb;
        if (sb->state == SB_IDLE || sb->state == SB_HELD) {
                if (sb->state == SB_IDLE)
                        pool_remove_idle(sb);
                sandbox_set_state(sb, SB_BUSY);
                job_start(j);
                return;
        }
        j->state = JOB_STARTING;
        job_set_deadline(j, sb->e->cfg.start_timeout_ms);
        zyg_update_priority(sb->zyg);
}

static void sandbox_protocol_error(Sandbox *sb, const char *why)
{
        Job *j = sb->job;
        if (j && j->state == JOB_RUNNING) {
                j->oc.protocol_error = true;
                if (!j->message)
                        j->message = strdup(why);
        }
        sandbox_kill(sb);
}

/* The runner waits for this after a display from its main thread, so
 * that the pipes, read before it was handled, hold nothing printed after
 * it. One that never reads its acks gets no more than ACK_BACKLOG. */
#define ACK_BACKLOG (64u << 10)
static void sandbox_ack(Sandbox *sb)
{
        static const char frame[] = "\0\0\0\x0e{\"type\":\"ack\"}";
        if (evbuffer_get_length(bufferevent_get_output(sb->ctl)) < ACK_BACKLOG)
                bufferevent_write(sb->ctl, frame, sizeof(frame) - 1);
}

/* A frame's header: a few fields, never deep, whatever its strings hold. */
static const JsonLimits header_limits = { .max_depth = 4, .max_containers = 8, .max_values = 64 };
/* A result's value: values.md's max_depth of 64 containers takes up to
 * three JSON levels each (a dict's tag, its items, a pair); its max_items
 * of 1 M takes up to two containers each (a tag and its items) and more
 * values (the tag's name, an array's dtype and shape). */
static const JsonLimits value_limits = {
        .max_depth = 3 * 64 + 8, .max_containers = 2 * 1000000 + 8, .max_values = 4 * 1000000,
};

/* One frame from the sandbox (*data owned, NUL-terminated, may be taken);
 * false when nothing more should be read. A result's header is a line of
 * JSON, its value the JSON text after that line: checked, not parsed. */
static bool sandbox_handle_frame(Sandbox *sb, char **data, size_t len, bool draining)
{
        char *nl = memchr(*data, '\n', len);
        size_t hlen = nl ? (size_t)(nl - *data) : len;
        json_error_t jerr;
        json_t *m = json_check(*data, hlen, &header_limits) == 0 ?
                json_loadb(*data, hlen, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        const char *type = json_string_value(json_object_get(m, "type"));
        Job *j = sb->job;
        bool more = true;

        if (type && !strcmp(type, "ready") && sb->state == SB_SPAWNING && !sb->ready_frame) {
                sb->ready_frame = true;
                if (sb->spawned && !draining)
                        sandbox_ready(sb);
        } else if (type && !strcmp(type, "setup_error") && sb->state == SB_SPAWNING) {
                const char *stage = json_string_value(json_object_get(m, "stage"));
                const char *msg = json_string_value(json_object_get(m, "message"));
                if (j)
                        job_fail(j, "sandbox set-up failed at %.64s: %.128s", stage ? stage : "?", msg ? msg : "?");
                else
                        sandbox_let_go(sb);
                more = false;
        } else if (type && !strcmp(type, "result") && j && j->state == JOB_RUNNING && !j->oc.have_result) {
                size_t vlen = nl ? len - hlen - 1 : 0;
                /* The frame cap may be larger, for outputs or files. */
                int k = len > (size_t)sb->e->cfg.max_result_bytes ? -E2BIG
                        : nl                                      ? json_check(nl + 1, vlen, &value_limits)
                                                                  : 0;
                if (nl && k == 0) {
                        memmove(*data, nl + 1, vlen + 1);
                        j->value = TAKE_PTR(*data);
                        j->value_len = vlen;
                }
                if (k == 0)
                        job_handle_result(j, m);
                if (k == -E2BIG || k == -ELOOP)
                        sandbox_protocol_error(sb, "the sandbox sent a result beyond the values limits");
                else if (!j->oc.have_result)
                        sandbox_protocol_error(sb, "the sandbox broke the control protocol");
                else if (!draining)
                        job_finish(j);
                more = false;
        } else if (type && (!strcmp(type, "output") || !strcmp(type, "file")) && !j && sb->session &&
                   sb->state == SB_HELD) {
                /* A session's thread displayed between cells: no one to show it to. */
        } else if (type && (!strcmp(type, "output") || !strcmp(type, "file")) && j && j->state == JOB_RUNNING &&
                   !j->oc.have_result) {
                const char *body = nl ? nl + 1 : "";
                size_t blen = nl ? len - hlen - 1 : 0;
                /* What was printed before it is in the pipes: read first. */
                sandbox_drain_output(sb);
                int k = type[0] == 'o' ? job_add_output(j, body, blen) : job_add_file(j, m, body, blen);
                if (k == -EBADMSG) {
                        sandbox_protocol_error(sb, "the sandbox sent a malformed output or file");
                        more = false;
                } else if (json_is_true(json_object_get(m, "ack"))) {
                        sandbox_ack(sb);
                }
        } else {
                sandbox_protocol_error(sb, "the sandbox broke the control protocol");
                more = false;
        }
        json_decref(m);
        return more;
}

/* The largest frame a sandbox may send: a result, a display item or a
 * returned file in base64. */
static size_t frame_cap(const Engine *e)
{
        const PyrConfig *c = &e->cfg;
        size_t file = (size_t)(c->max_file_bytes + 2) / 3 * 4 + 8192;
        return MAX(MAX((size_t)c->max_result_bytes, (size_t)c->max_outputs_bytes + 8192), file);
}

/* Parses the whole frames in ctl's input buffer. */
static void sandbox_parse_ctl(Sandbox *sb, bool draining)
{
        struct evbuffer *in = bufferevent_get_input(sb->ctl);
        Engine *e = sb->e;

        for (;;) {
                size_t avail = evbuffer_get_length(in), plen;
                uint8_t *p = evbuffer_pullup(in, (ssize_t)MIN(avail, FRAME_HEADER_SIZE));
                int k = p ? frame_peek(p, avail, frame_cap(e), &plen) : 0;
                if (k < 0) {
                        evbuffer_drain(in, avail);
                        bufferevent_disable(sb->ctl, EV_READ);
                        sandbox_protocol_error(sb, "the sandbox sent an oversized message");
                        return;
                }
                if (k == 0)
                        return;
                _cleanup_free_ char *copy = malloc(plen + 1);
                evbuffer_drain(in, FRAME_HEADER_SIZE);
                if (!copy || evbuffer_remove(in, copy, plen) != (int)plen) {
                        evbuffer_drain(in, evbuffer_get_length(in));
                        sandbox_protocol_error(sb, "out of memory reading the sandbox");
                        return;
                }
                copy[plen] = '\0';
                bool more = sandbox_handle_frame(sb, &copy, plen, draining);
                /* Handling may have finished the job and let go of sb (its
                 * memory stays until the next loop pass: sandbox_free). */
                if (!more || sb->state == SB_DYING)
                        return;
        }
}

static void sandbox_on_ctl_read(struct bufferevent *bev, void *arg)
{
        sandbox_parse_ctl(arg, false);
}

static void sandbox_on_ctl_event(struct bufferevent *bev, short what, void *arg)
{
        /* EOF or error: the process is going away; its exit status and
         * pid 1's exit finish the run. */
        bufferevent_disable(bev, EV_READ);
}

/* Reads what is there; false once the pipe is at EOF. */
static bool drain_pipe(Sandbox *sb, bool is_err)
{
        int *fd = is_err ? &sb->err_fd : &sb->out_fd;
        char buf[65536];

        while (*fd >= 0) {
                ssize_t n = read(*fd, buf, sizeof(buf));
                if (n > 0) {
                        if (sb->job && sb->job->state == JOB_RUNNING)
                                job_append_output(sb->job, is_err, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return true;
                struct event **ev = is_err ? &sb->ev_err : &sb->ev_out;
                if (*ev) {
                        event_free(*ev);
                        *ev = NULL;
                }
                *fd = safe_close(*fd);
                return false;
        }
        return false;
}

static void sandbox_on_out(evutil_socket_t fd, short what, void *arg)
{
        Sandbox *sb = arg;
        (void)drain_pipe(sb, fd == sb->err_fd);
}

void sandbox_drain_output(Sandbox *sb)
{
        (void)drain_pipe(sb, false);
        (void)drain_pipe(sb, true);
}

void sandbox_drain(Sandbox *sb)
{
        sandbox_drain_output(sb);
        if (!sb->ctl)
                return;
        /* A bufferevent reads 16 KiB per loop pass: take the rest of a
         * large result now, before the socket goes with the sandbox. The
         * bufferevent keeps its input's end frozen outside its own reads,
         * where evbuffer_read fails at once. */
        struct evbuffer *in = bufferevent_get_input(sb->ctl);
        int fd = bufferevent_getfd(sb->ctl);
        size_t cap = frame_cap(sb->e) + FRAME_HEADER_SIZE;
        /* bufferevent_socket keeps the end of its input frozen but for its
         * own reads: lift that for ours, as it does. */
        evbuffer_unfreeze(in, 0);
        while (fd >= 0 && evbuffer_get_length(in) <= cap && evbuffer_read(in, fd, 65536) > 0)
                ;
        evbuffer_freeze(in, 0);
        sandbox_parse_ctl(sb, true);
}

int sandbox_send_frame(Sandbox *sb, json_t *obj)
{
        char *s = json_dumps(obj, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        uint8_t hdr[FRAME_HEADER_SIZE];
        size_t len = strlen(s);
        frame_put_header(hdr, (uint32_t)len);
        struct evbuffer *out = bufferevent_get_output(sb->ctl);
        int ok = evbuffer_add(out, hdr, sizeof(hdr)) == 0 && evbuffer_add(out, s, len) == 0;
        free(s);
        return ok ? 0 : -ENOMEM;
}

static void sandbox_on_stdin_written(struct bufferevent *bev, void *arg)
{
        Sandbox *sb = arg;
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && sb->in) {
                bufferevent_free(sb->in);
                sb->in = NULL;
        }
}

static void sandbox_on_stdin_event(struct bufferevent *bev, short what, void *arg)
{
        Sandbox *sb = arg;
        /* The program closed stdin early: fine. */
        bufferevent_free(sb->in);
        sb->in = NULL;
}

static int sandbox_make_cgroup(Sandbox *sb, int64_t memory_mb, int *cgfds)
{
        Engine *e = sb->e;
        char name[32];
        CgroupLimits lim = {
                .memory_bytes = (uint64_t)memory_mb << 20,
                .pids_max = (uint64_t)e->cfg.pids_max,
                .cpu_percent = (uint32_t)e->cfg.cpu_percent,
        };

        if (e->fault_cgroup[0] && access(e->fault_cgroup, F_OK) == 0)
                return -EIO; /* test-only fault injection (make chaos) */
        snprintf(name, sizeof(name), "run-%llu", (unsigned long long)sb->id);
        int r = cg_create(&e->cgroot, name, &lim, &sb->cg);
        if (r < 0)
                return r;
        sb->has_cg = true;
        sb->cur_memory_mb = memory_mb;
        return cg_open_procs(&sb->cg, cgfds, CG_N);
}

static int sandbox_send_spawn(Sandbox *sb, int in, int out, int err, int ctl, const int *cgfds, int n_cg)
{
        Engine *e = sb->e;
        /* RLIMIT_CPU counts the whole process: a session's spans its life. */
        int64_t cpu_s = sb->session ? e->cfg.session_max_lifetime_s : e->cfg.max_timeout_ms / 1000;
        ZygSpawn m = {
                .type = ZYG_MSG_SPAWN,
                .n_cgroup_fds = (uint32_t)n_cg,
                .id = sb->id,
                .layers = e->opts.layers,
                .uid_slot = sb->uid_slot < 0 ? 0 : (uint32_t)sb->uid_slot,
                .limits = {
                        .tmpfs_bytes = (uint64_t)e->cfg.tmpfs_mb << 20,
                        .tmpfs_inodes = (uint64_t)e->cfg.tmpfs_inodes,
                        .fsize_bytes = (uint64_t)e->cfg.tmpfs_mb << 20,
                        .stack_bytes = (uint64_t)e->cfg.stack_mb << 20,
                        .nofile = (uint32_t)e->cfg.nofile,
                        .cpu_seconds = (uint32_t)(cpu_s + 2),
                        /* No pids cgroup: RLIMIT_NPROC, shared by all sandboxes of
                         * the same host uid, is the only brake on fork bombs. */
                        .nproc = e->cgroot.mode == CGROUP_MODE_NONE ? (uint32_t)e->cfg.pids_max : 0,
                },
        };
        int fds[4 + CG_N] = { in, out, err, ctl };
        for (int i = 0; i < n_cg; i++)
                fds[4 + i] = cgfds[i];
        ssize_t n = fd_send_with_fds(sb->zyg->sock, &m, sizeof(m), fds, 4 + (size_t)n_cg);
        return n < 0 ? (int)n : 0;
}

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83             /* Linux 6.16 */
#endif

int sandbox_spawn(Engine *e, int64_t memory_mb, bool session, Sandbox **ret)
{
        Zyg *z = e->current;
        _cleanup_close_pair_ int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 },
                                 ctl[2] = { -1, -1 };
        int cgfds[CG_N];
        int n_cg = 0, r;

        if (!z || z->state != ZYG_READY)
                return -EAGAIN;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
                return -errno;
        int32_t slot = -1;
        if (e->uid_used) {
                slot = uid_slot_take(e);
                if (slot < 0)
                        return -EAGAIN; /* every uid is live or still tearing down */
        }
        Sandbox *sb = calloc(1, sizeof(*sb));
        if (!sb) {
                uid_slot_give_back(e, slot);
                return -ENOMEM;
        }
        sb->e = e;
        sb->uid_slot = slot;
        sb->id = ++e->next_id;
        sb->state = SB_SPAWNING;
        sb->session = session;
        sb->out_fd = sb->err_fd = sb->init_pidfd = -1;
        cg_init(&sb->cg);
        TAILQ_INSERT_TAIL(&e->sandboxes, sb, link);

        if (e->cgroot.mode != CGROUP_MODE_NONE || e->fault_cgroup[0]) {
                n_cg = sandbox_make_cgroup(sb, memory_mb, cgfds);
                if (n_cg < 0) {
                        r = n_cg;
                        goto fail;
                }
        }
        sb->zyg = z;
        z->nsandboxes++;
        r = sandbox_send_spawn(sb, in[0], out[1], err[1], ctl[1], cgfds, n_cg);
        for (int i = 0; i < n_cg; i++)
                close(cgfds[i]);
        if (r < 0)
                goto fail;
        z->forks++;

        sb->out_fd = TAKE_FD(out[0]);
        sb->err_fd = TAKE_FD(err[0]);
        (void)fd_nonblock(sb->out_fd, 1);
        (void)fd_nonblock(sb->err_fd, 1);
        (void)fd_nonblock(in[1], 1);
        (void)fd_nonblock(ctl[0], 1);
        /* Fds the sandbox sent us on ctl would be closed by our read, on
         * the loop, with the cost of their last reference (truncating 1.8
         * GB of memfds took 166-238 ms). Linux 6.16+ refuses them to the
         * sender (EPERM); older kernels do not know the option. */
        (void)setsockopt(ctl[0], SOL_SOCKET, SO_PASSRIGHTS, &(int){ 0 }, sizeof(int));
        sb->ev_out = event_new(e->base, sb->out_fd, EV_READ | EV_PERSIST, sandbox_on_out, sb);
        sb->ev_err = event_new(e->base, sb->err_fd, EV_READ | EV_PERSIST, sandbox_on_out, sb);
        sb->ev_timer = evtimer_new(e->base, sandbox_on_timer, sb);
        sb->in = bufferevent_socket_new(e->base, TAKE_FD(in[1]), BEV_OPT_CLOSE_ON_FREE);
        sb->ctl = bufferevent_socket_new(e->base, TAKE_FD(ctl[0]), BEV_OPT_CLOSE_ON_FREE);
        if (!sb->ev_out || !sb->ev_err || !sb->ev_timer || !sb->in || !sb->ctl) {
                /* The zygote has it already: it has to die like any other. */
                if (!sb->ev_timer)
                        return -ENOMEM; /* cannot even be timed: leaked to the janitor */
                sb->state = SB_DYING;
                sb->dying_since = now_usec();
                sandbox_set_timer(sb, DYING_AT_MOST_MS);
                return -ENOMEM;
        }
        event_add(sb->ev_out, NULL);
        event_add(sb->ev_err, NULL);
        bufferevent_setcb(sb->in, NULL, sandbox_on_stdin_written, sandbox_on_stdin_event, sb);
        bufferevent_setcb(sb->ctl, sandbox_on_ctl_read, NULL, sandbox_on_ctl_event, sb);
        bufferevent_enable(sb->ctl, EV_READ | EV_WRITE);
        sandbox_set_timer(sb, e->cfg.start_timeout_ms);

        /* Past max forks, a fresh zygote takes over. */
        if (z->forks >= (uint64_t)e->cfg.zygote_max_forks && !e->swap_wanted)
                zyg_replace_current(e);
        *ret = sb;
        return 0;
fail:
        sb->state = SB_DYING;
        sandbox_free(sb);
        return r;
}
