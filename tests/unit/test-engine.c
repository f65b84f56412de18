/* SPDX-License-Identifier: MIT */
/* Unit tests of the engine against a fake zygote. The test holds the
 * zygote's end of the socket and plays its part of zygote-proto.h on the
 * engine's own loop; small processes (this binary, re-executed) stand for
 * the zygote, pid 1 and pid 2. No sandbox, no cgroup, no Python. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine-internal.h" /* to point a zygote restart at the next fake */
#include "fd-util.h"
#include "frame.h"
#include "macro.h"
#include "zygote-proto.h"

#define START_MS 300
#define QUEUE_MS 1000
#define GRACE_MS 400
#define SLACK_MS 1000 /* how late a deadline may be on a loaded machine */
#define EARLY_MS 10   /* how early by our clock: libevent's is coarse and cached */

typedef struct Harness Harness;
typedef struct FakeZyg FakeZyg;
typedef struct FakeSb FakeSb;

/* A process standing for the zygote, pid 1 or pid 2: it waits for a byte
 * on its command pipe and exits with it as its code. */
typedef struct Proc {
        Harness *h;
        pid_t pid;
        int pidfd, cmd;
        /* The zygote's stand-in is a grandchild, so that the engine (which
         * reaps its zygotes) cannot reap it before the test saw how it
         * died: its parent, the reaper, sends us its wait status. */
        pid_t reaper;
        int reaper_pidfd, status_fd;
        struct event *ev;
        bool exited;
        int status;                  /* wait status, once exited */
        void (*on_exit)(struct Proc *p);
        void *owner;
} Proc;

struct FakeSb {
        FakeZyg *z;
        uint64_t id;
        int in, out, err, ctl;       /* what the zygote would give pid 2 */
        Proc init, pid2;
        bool no_exited;              /* never send EXITED for pid 2 */
        usec_t go;                   /* before SPAWNED and "ready" were sent */
        char *wbuf;                  /* a frame being written to ctl */
        size_t wlen, woff;
        struct event *ev_write;
        char rbuf[65536];            /* frames from the engine */
        size_t rlen;
        json_t *last;                /* the last whole one */
};

struct FakeZyg {
        Harness *h;
        Proc proc;
        int sock, engine_end;        /* ours, and the one the engine dups */
        struct event *ev;
        bool answer_pings;
        unsigned pings, bad;
        FakeSb *sbs[8];
        unsigned nsbs, taken;
};

typedef struct Done {
        uint64_t ticket;
        unsigned calls;
        bool in_api;                 /* it ran inside an engine call */
        RunStatus status;
        int exit_code, sig;
        char *message, *out, *result;
        size_t result_len;
        double cpu_time;
        usec_t submitted, at;
} Done;

struct Harness {
        struct event_base *base;
        PyrConfig cfg;
        Engine *e;
        FakeZyg zygs[3];
        unsigned nzygs;
        FakeZyg *pending;            /* handed to the engine, not yet dup'ed */
        uint64_t starts_seen;
        FakeSb sbs[12];
        unsigned nsbs;
        Proc *procs[48];
        unsigned nprocs;
        Done dones[8];
        unsigned ndones;
        unsigned ready_calls;
        bool ready_in_api;
        int ready_error;
        char ready_msg[256];
        char notices[16][32];
        unsigned nnotices;
        unsigned notice_ms;          /* a slow logger: on_notice takes this long */
        struct event *ev_bound;
};

static bool in_api;

/* --- processes ------------------------------------------------------- */

static int fake_main(void)
{
        unsigned char b = 0;
        ssize_t n;
        do
                n = read(3, &b, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? b : 0);
}

static int reaper_main(void)
{
        pid_t pid = fork();
        int st = 0;
        if (pid < 0)
                _exit(1);
        if (pid == 0) {
                close(4);
                fake_main();
        }
        close(3);
        (void)fd_write_all(4, &pid, sizeof(pid));
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        (void)fd_write_all(4, &st, sizeof(st));
        _exit(0);
}

static int status_from_siginfo(const siginfo_t *si)
{
        if (si->si_code == CLD_EXITED)
                return (si->si_status & 0xff) << 8;
        return si->si_status | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Waits for p to end (it has ended or was killed) and takes its status. */
static void proc_collect(Proc *p)
{
        if (p->exited || p->pidfd < 0)
                return;
        if (p->reaper > 0) {
                siginfo_t si;
                if (fd_read_exact(p->status_fd, &p->status, sizeof(p->status)) < 0)
                        p->status = -1;
                (void)waitid(P_PIDFD, (id_t)p->reaper_pidfd, &si, WEXITED);
        } else {
                siginfo_t si = { 0 };
                p->status = waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED) == 0 ? status_from_siginfo(&si) : -1;
        }
        p->exited = true;
}

static void proc_on_pidfd(evutil_socket_t fd, short what, void *arg)
{
        Proc *p = arg;
        proc_collect(p);
        if (p->on_exit)
                p->on_exit(p);
}

/* Not started: nothing to signal, write to or close. */
static void proc_init(Proc *p)
{
        p->pidfd = p->cmd = p->reaper_pidfd = p->status_fd = -1;
}

static void proc_start(Harness *h, Proc *p, bool with_reaper)
{
        int cmd[2], st[2] = { -1, -1 };

        p->h = h;
        proc_init(p);
        assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
        if (with_reaper)
                assert_int_equal(pipe2(st, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Only the command pipe (3) and the status pipe (4) survive exec. */
                int a = fcntl(cmd[0], F_DUPFD, 10), b = with_reaper ? fcntl(st[1], F_DUPFD, 10) : -1;
                if (dup2(a, 3) < 0 || (with_reaper && dup2(b, 4) < 0))
                        _exit(127);
                (void)syscall(SYS_close_range, with_reaper ? 5 : 4, ~0U, 0);
                char *argv[] = { "test-engine", with_reaper ? "--reaper" : "--fake", NULL };
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        assert_true(h->nprocs < ELEMENTSOF(h->procs));
        h->procs[h->nprocs++] = p;
        close(cmd[0]);
        p->cmd = cmd[1];
        if (with_reaper) {
                close(st[1]);
                p->reaper = pid;
                p->reaper_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                p->status_fd = st[0];
                assert_int_equal(fd_read_exact(st[0], &p->pid, sizeof(p->pid)), 0);
        } else {
                p->pid = pid;
        }
        p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
        assert_true(p->pidfd >= 0);
        p->ev = event_new(h->base, p->pidfd, EV_READ, proc_on_pidfd, p);
        assert_non_null(p->ev);
        event_add(p->ev, NULL);
}

static void proc_exit(Proc *p, unsigned char code)
{
        if (p->cmd >= 0)
                (void)fd_write_all(p->cmd, &code, 1);
}

static void proc_kill(Proc *p, int sig)
{
        if (p->pidfd >= 0 && !p->exited)
                (void)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
}

static void proc_cleanup(Proc *p)
{
        proc_kill(p, SIGKILL);
        proc_collect(p);
        if (p->ev)
                event_free(p->ev);
        p->ev = NULL;
        p->pidfd = safe_close(p->pidfd);
        p->cmd = safe_close(p->cmd);
        p->reaper_pidfd = safe_close(p->reaper_pidfd);
        p->status_fd = safe_close(p->status_fd);
}

static bool proc_killed_by(const Proc *p, int sig)
{
        return p->exited && WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig;
}

/* --- the loop --------------------------------------------------------- */

static void on_bound(evutil_socket_t fd, short what, void *arg)
{
}

static EngineStats h_stats(Harness *h)
{
        EngineStats st;
        engine_get_stats(h->e, &st);
        return st;
}

/* The engine dups its zygote socket in zyg_start: then ours goes, so
 * that the engine's close is an EOF here, as for a real zygote. */
static void h_note_starts(Harness *h)
{
        EngineStats st = h_stats(h);
        if (st.zygote_starts > h->starts_seen && h->pending) {
                h->pending->engine_end = safe_close(h->pending->engine_end);
                h->pending = NULL;
                h->e->opts.test_zygote_fd = -1; /* a start not expected fails cleanly */
        }
        h->starts_seen = st.zygote_starts;
}

static void h_loop_once(Harness *h, usec_t until)
{
        usec_t now = now_usec(), left = until > now ? until - now : 0;
        struct timeval tv = { (time_t)(left / 1000000), (suseconds_t)(left % 1000000) };
        evtimer_add(h->ev_bound, &tv);
        event_base_loop(h->base, EVLOOP_ONCE);
        evtimer_del(h->ev_bound);
        h_note_starts(h);
}

/* Runs the loop until cond holds or ms pass; the value of cond. */
#define RUN_UNTIL(h, cond, ms) \
        __extension__({ \
                usec_t _until = now_usec() + (usec_t)(ms) * 1000; \
                bool _ok; \
                while (!(_ok = (cond)) && now_usec() < _until) \
                        h_loop_once((h), _until); \
                _ok; \
        })
#define RUN_FOR(h, ms) (void)RUN_UNTIL(h, false, ms)

static bool h_noticed(const Harness *h, const char *name)
{
        for (unsigned i = 0; i < h->nnotices; i++)
                if (!strcmp(h->notices[i], name))
                        return true;
        return false;
}

/* --- the fake zygote ----------------------------------------------------- */

static void fz_close(FakeZyg *z)
{
        if (z->ev)
                event_free(z->ev);
        z->ev = NULL;
        z->sock = safe_close(z->sock);
}

static void sb_send_exited(FakeSb *sb, int status)
{
        ZygExited m = { .type = ZYG_MSG_EXITED, .status = status, .id = sb->id, .pid = sb->pid2.pid,
                        .utime_us = 150000, .stime_us = 100000 };
        if (sb->z->sock >= 0)
                assert_int_equal(fd_send_with_fds(sb->z->sock, &m, sizeof(m), NULL, 0), (ssize_t)sizeof(m));
}

/* As a zygote: pid 2 reaped, EXITED sent; then pid 1 has no reason to stay. */
static void sb_on_pid2_exit(Proc *p)
{
        FakeSb *sb = p->owner;
        if (!sb->no_exited)
                sb_send_exited(sb, p->status);
        proc_exit(&sb->init, 0);
}

/* As the kernel: pid 1 gone, its pid namespace goes. */
static void sb_on_init_exit(Proc *p)
{
        FakeSb *sb = p->owner;
        proc_kill(&sb->pid2, SIGKILL);
}

static void fz_on_sock(evutil_socket_t fd, short what, void *arg)
{
        FakeZyg *z = arg;
        Harness *h = z->h;
        static char buf[ZYG_MSG_MAX];

        for (;;) {
                int fds[8];
                size_t nfds = 0;
                ssize_t n = fd_recv_with_fds(z->sock, buf, sizeof(buf), fds, ELEMENTSOF(fds), &nfds);
                if (n == -EAGAIN || n == -EINTR)
                        return;
                if (n <= 0) {
                        /* The engine let go of us: a zygote exits. */
                        fz_close(z);
                        proc_exit(&z->proc, 0);
                        return;
                }
                uint32_t type = n >= (ssize_t)sizeof(ZygHeader) ? ((ZygHeader *)buf)->type : 0;
                if (type == ZYG_MSG_PING && n == sizeof(ZygPing)) {
                        z->pings++;
                        if (z->answer_pings) {
                                ((ZygPing *)buf)->type = ZYG_MSG_PONG;
                                (void)send(z->sock, buf, sizeof(ZygPing), MSG_DONTWAIT | MSG_NOSIGNAL);
                        }
                } else if (type == ZYG_MSG_SPAWN && n == sizeof(ZygSpawn) && nfds == 4 &&
                           ((ZygSpawn *)buf)->n_cgroup_fds == 0 && h->nsbs < ELEMENTSOF(h->sbs) &&
                           z->nsbs < ELEMENTSOF(z->sbs)) {
                        FakeSb *sb = &h->sbs[h->nsbs++];
                        sb->z = z;
                        sb->id = ((ZygSpawn *)buf)->id;
                        sb->in = fds[0];
                        sb->out = fds[1];
                        sb->err = fds[2];
                        sb->ctl = fds[3];
                        (void)fd_nonblock(sb->in, 1);
                        (void)fd_nonblock(sb->ctl, 1);
                        proc_init(&sb->init);
                        proc_init(&sb->pid2);
                        z->sbs[z->nsbs++] = sb;
                        continue;
                } else {
                        z->bad++;
                }
                for (size_t i = 0; i < nfds; i++)
                        close(fds[i]);
        }
}

static FakeZyg *fz_new(Harness *h)
{
        int sp[2];
        assert_true(h->nzygs < ELEMENTSOF(h->zygs));
        FakeZyg *z = &h->zygs[h->nzygs++];
        z->h = h;
        z->answer_pings = true;
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        z->sock = sp[0];
        z->engine_end = sp[1];
        (void)fd_nonblock(z->sock, 1);
        proc_start(h, &z->proc, true);
        z->ev = event_new(h->base, z->sock, EV_READ | EV_PERSIST, fz_on_sock, z);
        assert_non_null(z->ev);
        event_add(z->ev, NULL);
        return z;
}

/* The next zygote the engine starts is this new fake. */
static FakeZyg *h_expect_restart(Harness *h)
{
        FakeZyg *z = fz_new(h);
        h->pending = z;
        h->e->opts.test_zygote_fd = z->engine_end;
        h->e->opts.test_zygote_pid = z->proc.pid;
        return z;
}

static void fz_send_ready(FakeZyg *z, uint32_t version)
{
        struct {
                ZygReady r;
                char info[3];
        } m = { { .type = ZYG_MSG_READY, .version = version, .factory_pid = 0 }, "{}" };
        assert_int_equal(fd_send_with_fds(z->sock, &m, sizeof(m), NULL, 0), (ssize_t)sizeof(m));
}

/* The zygote dies: its process, its socket, and its pid 2s (PDEATHSIG). */
static void fz_die(FakeZyg *z)
{
        proc_kill(&z->proc, SIGKILL);
        fz_close(z);
        for (unsigned i = 0; i < z->nsbs; i++)
                proc_kill(&z->sbs[i]->pid2, SIGKILL);
}

static FakeSb *fz_wait_spawn(FakeZyg *z)
{
        assert_true(RUN_UNTIL(z->h, z->nsbs > z->taken, 2000));
        return z->sbs[z->taken++];
}

static void fz_send_spawned(FakeZyg *z, uint64_t id, int error, const char *message, pid_t pid, pid_t init_pid,
                            int pidfd)
{
        ZygSpawned m = { .type = ZYG_MSG_SPAWNED, .error = error, .id = id, .pid = pid, .init_pid = init_pid };
        if (message)
                snprintf(m.message, sizeof(m.message), "%s", message);
        ssize_t n = fd_send_with_fds(z->sock, &m, sizeof(m), pidfd >= 0 ? &pidfd : NULL, pidfd >= 0 ? 1 : 0);
        assert_int_equal(n, (ssize_t)sizeof(m));
}

static void sb_start_procs(FakeSb *sb)
{
        Harness *h = sb->z->h;
        proc_start(h, &sb->init, false);
        proc_start(h, &sb->pid2, false);
        sb->init.owner = sb->pid2.owner = sb;
        sb->init.on_exit = sb_on_init_exit;
        sb->pid2.on_exit = sb_on_pid2_exit;
}

static void sb_spawned(FakeSb *sb)
{
        sb_start_procs(sb);
        fz_send_spawned(sb->z, sb->id, 0, NULL, sb->pid2.pid, sb->init.pid, sb->init.pidfd);
}

static void sb_frame(FakeSb *sb, const char *json)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        frame_put_header(hdr, (uint32_t)strlen(json));
        assert_int_equal(fd_write_all(sb->ctl, hdr, sizeof(hdr)), 0);
        assert_int_equal(fd_write_all(sb->ctl, json, strlen(json)), 0);
}

static void sb_ready(FakeSb *sb)
{
        sb_frame(sb, "{\"type\":\"ready\"}");
}

static void sb_result(FakeSb *sb, const char *status, int exit_code)
{
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"result\",\"status\":\"%s\",\"exit_code\":%d,\"error\":null,\"cpu_time\":0.01}", status,
                 exit_code);
        sb_frame(sb, buf);
}

/* Takes the next whole frame the engine sent on ctl into sb->last. */
static bool sb_take_frame(FakeSb *sb)
{
        for (;;) {
                size_t plen;
                int k = frame_peek((uint8_t *)sb->rbuf, sb->rlen, sizeof(sb->rbuf) - FRAME_HEADER_SIZE, &plen);
                assert_true(k >= 0);
                if (k == 1) {
                        json_decref(sb->last);
                        sb->last = json_loadb(sb->rbuf + FRAME_HEADER_SIZE, plen, 0, NULL);
                        assert_non_null(sb->last);
                        sb->rlen -= FRAME_HEADER_SIZE + plen;
                        memmove(sb->rbuf, sb->rbuf + FRAME_HEADER_SIZE + plen, sb->rlen);
                        return true;
                }
                ssize_t n = read(sb->ctl, sb->rbuf + sb->rlen, sizeof(sb->rbuf) - sb->rlen);
                if (n <= 0)
                        return false;
                sb->rlen += (size_t)n;
        }
}

/* Waits for the engine's "run" frame; checks it carries code. */
static void sb_expect_run(FakeSb *sb, const char *code)
{
        assert_true(RUN_UNTIL(sb->z->h, sb_take_frame(sb), 2000));
        assert_string_equal(json_string_value(json_object_get(sb->last, "type")), "run");
        assert_string_equal(json_string_value(json_object_get(sb->last, "code")), code);
}

/* Bytes of ours the engine has not read yet. */
static int sb_unread(const FakeSb *sb)
{
        int n = -1;
        assert_int_equal(ioctl(sb->ctl, SIOCOUTQ, &n), 0);
        return n;
}

static void sb_on_writable(evutil_socket_t fd, short what, void *arg)
{
        FakeSb *sb = arg;
        while (sb->woff < sb->wlen) {
                ssize_t n = write(sb->ctl, sb->wbuf + sb->woff, sb->wlen - sb->woff);
                if (n <= 0)
                        return;
                sb->woff += (size_t)n;
        }
        event_del(sb->ev_write);
}

/* Writes len bytes to ctl as the engine makes room, from the loop. */
static void sb_write_async(FakeSb *sb, char *buf, size_t len)
{
        sb->wbuf = buf;
        sb->wlen = len;
        sb->woff = 0;
        sb->ev_write = event_new(sb->z->h->base, sb->ctl, EV_WRITE | EV_PERSIST, sb_on_writable, sb);
        assert_non_null(sb->ev_write);
        event_add(sb->ev_write, NULL);
}

static void sb_cleanup(FakeSb *sb)
{
        if (sb->ev_write)
                event_free(sb->ev_write);
        free(sb->wbuf);
        json_decref(sb->last);
        safe_close(sb->in);
        safe_close(sb->out);
        safe_close(sb->err);
        safe_close(sb->ctl);
}

/* --- the engine ------------------------------------------------------------ */

static void on_ready(Engine *e, int error, const char *message, void *userdata)
{
        Harness *h = userdata;
        h->ready_calls++;
        h->ready_in_api |= in_api;
        h->ready_error = error;
        snprintf(h->ready_msg, sizeof(h->ready_msg), "%s", message ? message : "");
}

static void on_notice(Engine *e, const char *event, const char *detail, void *userdata)
{
        Harness *h = userdata;
        if (h->nnotices < ELEMENTSOF(h->notices))
                snprintf(h->notices[h->nnotices++], sizeof(h->notices[0]), "%s", event);
        if (h->notice_ms) {
                struct timespec ts = { 0, (long)h->notice_ms * 1000000 };
                nanosleep(&ts, NULL);
        }
}

static void on_done(const RunResult *r, void *userdata)
{
        Done *d = userdata;
        d->in_api |= in_api;
        if (d->calls++ > 0)
                return;
        d->at = now_usec();
        d->status = r->status;
        d->exit_code = r->exit_code;
        d->sig = r->signal;
        d->message = r->message ? strdup(r->message) : NULL;
        d->out = strdup(r->out);
        d->result = r->result ? strndup(r->result, r->result_len) : NULL;
        d->result_len = r->result_len;
        d->cpu_time = r->cpu_time;
}

static Done *h_submit_stdin(Harness *h, const char *code, int64_t timeout_ms, const char *input)
{
        assert_true(h->ndones < ELEMENTSOF(h->dones));
        Done *d = &h->dones[h->ndones++];
        RunRequest req = { .code = code, .code_len = strlen(code), .timeout_ms = timeout_ms,
                           .stdin_data = input, .stdin_len = input ? strlen(input) : 0 };
        d->submitted = now_usec();
        in_api = true;
        int r = engine_submit(h->e, &req, on_done, d, &d->ticket);
        in_api = false;
        assert_int_equal(r, 0);
        assert_int_equal(d->calls, 0);
        return d;
}

static Done *h_submit(Harness *h, const char *code, int64_t timeout_ms)
{
        return h_submit_stdin(h, code, timeout_ms, NULL);
}

static void h_cancel(Harness *h, Done *d)
{
        in_api = true;
        engine_cancel(h->e, d->ticket);
        in_api = false;
}

static double ms_between(usec_t a, usec_t b)
{
        return ((double)b - (double)a) / 1000.0;
}

/* Exactly one callback, from the loop, with this status. */
static void assert_done(Harness *h, Done *d, RunStatus status)
{
        assert_true(RUN_UNTIL(h, d->calls > 0, 5000));
        assert_false(d->in_api);
        assert_int_equal(d->calls, 1);
        assert_string_equal(run_status_name(d->status), run_status_name(status));
}

static void assert_message_has(const Done *d, const char *part)
{
        assert_non_null(d->message);
        if (!strstr(d->message, part))
                fail_msg("message \"%s\" lacks \"%s\"", d->message, part);
}

/* Afterwards: nothing left, and no second callback for anyone. */
static void assert_all_gone(Harness *h)
{
        assert_true(RUN_UNTIL(h, engine_idle(h->e), 4000));
        for (unsigned i = 0; i < h->ndones; i++)
                assert_true(h->dones[i].calls <= 1);
        EngineStats st = h_stats(h);
        assert_int_equal(st.active, 0);
        assert_int_equal(st.queued, 0);
}

static int h_setup_pool(void **state, int64_t pool_size)
{
        Harness *h = calloc(1, sizeof(*h));
        assert_non_null(h);
        *state = h;
        h->base = engine_base_new();
        assert_non_null(h->base);
        h->ev_bound = evtimer_new(h->base, on_bound, h);
        config_init_defaults(&h->cfg);
        h->cfg.pool_size = pool_size;
        h->cfg.spare_zygote = 0; /* one fake zygote at a time; h_expect_restart sets up the next */
        h->cfg.start_timeout_ms = START_MS;
        h->cfg.queue_timeout_ms = QUEUE_MS;
        h->cfg.kill_grace_ms = GRACE_MS;
        FakeZyg *z = fz_new(h);
        EngineOptions o = {
                .zygote_path = "/proc/self/exe", /* never started: test_zygote_pid is set */
                .layers = ZYG_LAYER_ALL,
                .no_cgroups = true,
                .on_ready = on_ready,
                .on_notice = on_notice,
                .userdata = h,
                .test_zygote_fd = z->engine_end,
                .test_zygote_pid = z->proc.pid,
        };
        h->pending = z;
        in_api = true;
        int r = engine_new(h->base, &h->cfg, &o, &h->e);
        in_api = false;
        assert_int_equal(r, 0);
        h_note_starts(h);
        assert_int_equal(h->starts_seen, 1);
        return 0;
}

static int setup(void **state)
{
        return h_setup_pool(state, 0);
}

static int setup_pool2(void **state)
{
        return h_setup_pool(state, 2);
}

static int teardown(void **state)
{
        Harness *h = *state;
        /* Dead first, so that engine_free has nothing to wait for. */
        for (unsigned i = 0; i < h->nprocs; i++)
                proc_kill(h->procs[i], SIGKILL);
        engine_free(h->e);
        for (unsigned i = 0; i < h->nprocs; i++)
                proc_cleanup(h->procs[i]);
        for (unsigned i = 0; i < h->nsbs; i++)
                sb_cleanup(&h->sbs[i]);
        for (unsigned i = 0; i < h->nzygs; i++) {
                fz_close(&h->zygs[i]);
                safe_close(h->zygs[i].engine_end);
        }
        for (unsigned i = 0; i < h->ndones; i++) {
                free(h->dones[i].message);
                free(h->dones[i].out);
                free(h->dones[i].result);
        }
        event_free(h->ev_bound);
        event_base_free(h->base);
        free(h);
        return 0;
}

/* The first zygote says READY. */
static FakeZyg *h_up(Harness *h)
{
        FakeZyg *z = &h->zygs[0];
        fz_send_ready(z, ZYG_PROTO_VERSION);
        assert_true(RUN_UNTIL(h, h->ready_calls > 0, 2000));
        assert_int_equal(h->ready_calls, 1);
        assert_false(h->ready_in_api);
        assert_int_equal(h->ready_error, 0);
        assert_string_equal(engine_info(h->e), "{}");
        return z;
}

/* A run that gets as far as RUNNING, its "run" frame read. */
static FakeSb *h_running(Harness *h, FakeZyg *z, const char *code)
{
        FakeSb *sb = fz_wait_spawn(z);
        sb->go = now_usec();
        sb_spawned(sb);
        sb_ready(sb);
        sb_expect_run(sb, code);
        assert_int_equal(h_stats(h).active, 1);
        return sb;
}

/* The program reports success and pid 2 exits: done says success. */
static void sb_succeed(FakeSb *sb, Done *d)
{
        sb_result(sb, "success", 0);
        proc_exit(&sb->pid2, 0);
        assert_done(sb->z->h, d, RUN_SUCCESS);
}

/* A replacement zygote comes up and serves a run. */
static void fz_serves(FakeZyg *z)
{
        Harness *h = z->h;
        fz_send_ready(z, ZYG_PROTO_VERSION);
        Done *d = h_submit(h, "y = 2", 5000);
        sb_succeed(h_running(h, z, "y = 2"), d);
        assert_int_equal(h->ready_calls, 1); /* reported once, for the first */
}

/* --- the cases ----------------------------------------------------------- */

static void test_normal_run(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit_stdin(h, "print('hi')", 5000, "some input\n");
        EngineStats st = h_stats(h);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.active, 0);
        assert_false(engine_idle(h->e));

        FakeSb *sb = fz_wait_spawn(z);
        sb_spawned(sb);
        sb_ready(sb);
        sb_expect_run(sb, "print('hi')");
        assert_int_equal(h_stats(h).runs_started, 1);
        char in[64] = { 0 };
        assert_true(RUN_UNTIL(h, read(sb->in, in, sizeof(in) - 1) > 0, 2000));
        assert_string_equal(in, "some input\n");

        assert_int_equal(fd_write_all(sb->out, "hello\n", 6), 0);
        sb_succeed(sb, d);
        assert_int_equal(d->exit_code, 0);
        assert_string_equal(d->out, "hello\n");
        assert_null(d->message);
        assert_all_gone(h);
        st = h_stats(h);
        assert_int_equal(st.runs_started, 1);
        assert_int_equal(st.runs_finished, 1);
        assert_int_equal(st.deadline_misses, 0);
        assert_int_equal(st.zygote_deaths, 0);
        assert_int_equal(z->bad, 0);
}

/* Output written before the result frame is part of the result, even when
 * the engine happens to see the ctl socket before the pipe. */
static void test_output_before_result(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "print('hi')", 5000);
        FakeSb *sb = h_running(h, z, "print('hi')");

        /* Half a frame first, so that ctl is the socket the loop looks at
         * first; then stdout; then the rest of the frame. */
        const char *json = "{\"type\":\"result\",\"status\":\"success\",\"exit_code\":0,\"error\":null}";
        uint8_t hdr[FRAME_HEADER_SIZE];
        frame_put_header(hdr, (uint32_t)strlen(json));
        assert_int_equal(fd_write_all(sb->ctl, hdr, sizeof(hdr)), 0);
        assert_int_equal(fd_write_all(sb->ctl, json, 10), 0);
        assert_true(RUN_UNTIL(h, sb_unread(sb) == 0, 2000));
        assert_int_equal(fd_write_all(sb->out, "hello\n", 6), 0);
        assert_int_equal(fd_write_all(sb->ctl, json + 10, strlen(json) - 10), 0);
        assert_done(h, d, RUN_SUCCESS);
        assert_string_equal(d->out, "hello\n");
        assert_all_gone(h);
}

static void test_ready_before_spawned(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        FakeSb *sb = fz_wait_spawn(z);

        sb_ready(sb);
        assert_true(RUN_UNTIL(h, sb_unread(sb) == 0, 2000));
        /* The engine has read "ready": without SPAWNED nothing starts. */
        assert_int_equal(h_stats(h).runs_started, 0);
        assert_int_equal(d->calls, 0);

        sb_spawned(sb);
        sb_expect_run(sb, "x = 1");
        assert_int_equal(h_stats(h).runs_started, 1);
        sb_succeed(sb, d);
        assert_all_gone(h);
}

static void test_ready_before_spawned_timeout(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "while True: pass", 200);
        FakeSb *sb = fz_wait_spawn(z);

        sb_ready(sb);
        assert_true(RUN_UNTIL(h, sb_unread(sb) == 0, 2000));
        usec_t go = now_usec(); /* the run cannot start before */
        sb_spawned(sb);
        sb_expect_run(sb, "while True: pass");
        /* No result: the deadline kills pid 1, the namespace takes pid 2. */
        assert_true(RUN_UNTIL(h, sb->init.exited, 200 + SLACK_MS));
        assert_true(ms_between(go, now_usec()) >= 200 - EARLY_MS);
        assert_true(proc_killed_by(&sb->init, SIGKILL));
        assert_done(h, d, RUN_TIMEOUT);
        assert_true(proc_killed_by(&sb->pid2, SIGKILL));
        assert_int_equal(d->sig, SIGKILL);
        assert_all_gone(h);
        assert_int_equal(h_stats(h).deadline_misses, 0);
}

/* A zygote that sent no SPAWNED is replaced, and the new one serves. */
static void spawned_missing(Harness *h, FakeZyg *z, FakeSb *sb, Done *d)
{
        FakeZyg *z2 = h_expect_restart(h);
        assert_done(h, d, RUN_INTERNAL_ERROR);
        assert_message_has(d, "did not start within 300 ms");
        double late = ms_between(d->submitted, d->at);
        assert_true(late >= START_MS - EARLY_MS && late < START_MS + SLACK_MS);
        assert_true(h_noticed(h, "spawn_lost"));
        assert_int_equal(h_stats(h).deadline_misses, 1);
        assert_true(RUN_UNTIL(h, h_stats(h).zygote_starts == 2, 2000));

        fz_serves(z2);
        assert_int_equal(z->nsbs, 1); /* the old one got nothing more */
        /* The old zygote goes once its last sandbox is let go. */
        assert_true(RUN_UNTIL(h, z->proc.exited, 4000));
        assert_all_gone(h);
}

static void test_spawned_lost(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        FakeSb *sb = fz_wait_spawn(z);
        sb_ready(sb);
        spawned_missing(h, z, sb, d);
}

static void test_spawned_forged(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        FakeSb *sb = fz_wait_spawn(z);
        sb_start_procs(sb);
        fz_send_spawned(z, sb->id + 1000, 0, NULL, sb->pid2.pid, sb->init.pid, sb->init.pidfd);
        sb_ready(sb);
        spawned_missing(h, z, sb, d);
        /* The forged pidfd was never taken for a sandbox: its pid 1 lives. */
        assert_false(sb->init.exited);
}

/* A SPAWNED that comes after the start deadline: its pid 1 is killed. */
static void test_spawned_late(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        FakeSb *sb = fz_wait_spawn(z);
        h_expect_restart(h);
        assert_done(h, d, RUN_INTERNAL_ERROR);
        sb_spawned(sb);
        assert_true(RUN_UNTIL(h, sb->init.exited, 1000));
        assert_true(proc_killed_by(&sb->init, SIGKILL));
        assert_true(RUN_UNTIL(h, engine_idle(h->e), 1000));
}

/* The start-deadline's zygote restart fails: it is tried again within
 * engine_on_restart's second, not only once the old zygote has gone (its
 * sandbox waits DYING_AT_MOST_MS for a late SPAWNED first). */
static void test_spawned_lost_restart_retried(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        (void)fz_wait_spawn(z);
        assert_null(h->pending); /* so the restart the deadline asks for fails */
        assert_done(h, d, RUN_INTERNAL_ERROR);
        assert_true(h_noticed(h, "spawn_lost"));
        assert_int_equal(h_stats(h).zygote_starts, 1);
        FakeZyg *z2 = h_expect_restart(h);
        assert_true(RUN_UNTIL(h, h_stats(h).zygote_starts == 2, 3000));
        assert_true(ms_between(d->at, now_usec()) < 1800);
        fz_serves(z2);
        assert_all_gone(h);
}

static void test_spawned_error(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        FakeSb *sb = fz_wait_spawn(z);
        fz_send_spawned(z, sb->id, -EAGAIN, "factory gone", 0, 0, -1);
        assert_done(h, d, RUN_INTERNAL_ERROR);
        assert_message_has(d, "spawning the sandbox failed: factory gone");
        assert_all_gone(h);
        assert_int_equal(h_stats(h).zygote_deaths, 0);
}

/* The result wins over a later exit code. */
static void test_result_before_exited(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "raise SystemExit(0)", 5000);
        FakeSb *sb = h_running(h, z, "raise SystemExit(0)");
        sb_result(sb, "error", 1);
        assert_done(h, d, RUN_ERROR);
        assert_int_equal(d->exit_code, 1);
        proc_exit(&sb->pid2, 3);
        assert_all_gone(h);
}

static void test_exited_before_result_code(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "import os; os._exit(3)", 5000);
        FakeSb *sb = h_running(h, z, "import os; os._exit(3)");
        assert_int_equal(fd_write_all(sb->out, "bye\n", 4), 0);
        proc_exit(&sb->pid2, 3);
        assert_done(h, d, RUN_ERROR);
        assert_int_equal(d->exit_code, 3);
        assert_int_equal(d->sig, 0);
        assert_string_equal(d->out, "bye\n");
        assert_true(d->cpu_time > 0.249 && d->cpu_time < 0.251); /* EXITED's rusage */
        assert_all_gone(h);
}

static void test_exited_before_result_killed(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "import os; os.kill(os.getpid(), 9)", 5000);
        FakeSb *sb = h_running(h, z, "import os; os.kill(os.getpid(), 9)");
        proc_kill(&sb->pid2, SIGKILL);
        assert_done(h, d, RUN_KILLED);
        assert_int_equal(d->sig, SIGKILL);
        assert_int_equal(d->exit_code, -1);
        assert_all_gone(h);
}

/* pid 1's exit seen before EXITED: the run waits for EXITED. */
static void test_init_exit_before_exited(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "import os; os._exit(4)", 5000);
        FakeSb *sb = h_running(h, z, "import os; os._exit(4)");
        sb->no_exited = true;
        proc_exit(&sb->pid2, 4);
        assert_true(RUN_UNTIL(h, sb->init.exited, 2000));
        RUN_FOR(h, 50);
        assert_int_equal(d->calls, 0);
        sb_send_exited(sb, sb->pid2.status);
        assert_done(h, d, RUN_ERROR);
        assert_int_equal(d->exit_code, 4);
        assert_all_gone(h);
}

/* S3 of the review: a result frame far larger than what a bufferevent
 * reads per pass, all written before pid 2's exit and pid 1's, is kept. */
static void test_large_result(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "'x' * 4000000", 5000);
        FakeSb *sb = h_running(h, z, "'x' * 4000000");

        const size_t vlen = 4000000;
        const char *head = "{\"type\":\"result\",\"status\":\"success\",\"exit_code\":0,\"error\":null}\n\"";
        size_t hlen = strlen(head), plen = hlen + vlen + 1;
        char *buf = malloc(FRAME_HEADER_SIZE + plen);
        assert_non_null(buf);
        frame_put_header((uint8_t *)buf, (uint32_t)plen);
        memcpy(buf + FRAME_HEADER_SIZE, head, hlen);
        memset(buf + FRAME_HEADER_SIZE + hlen, 'x', vlen);
        buf[FRAME_HEADER_SIZE + hlen + vlen] = '"';
        /* Room for all of it in the socket (root may exceed wmem_max). */
        int big = 16 << 20;
        (void)setsockopt(sb->ctl, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
        sb_write_async(sb, buf, FRAME_HEADER_SIZE + plen);
        assert_true(RUN_UNTIL(h, sb->woff == sb->wlen, 10000));
        int unread = sb_unread(sb);
        assert_true(unread > 65536); /* the case under test: most is still in the socket */
        assert_int_equal(d->calls, 0);

        proc_exit(&sb->pid2, 0);
        assert_done(h, d, RUN_SUCCESS);
        assert_non_null(d->result);
        assert_int_equal(d->result_len, vlen + 2);
        assert_true(d->result[0] == '"' && d->result[vlen + 1] == '"');
        assert_all_gone(h);
}

/* Nothing of the run ran: it waits for the next zygote, which serves it. */
static void test_zygote_dies_mid_spawn(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "x = 1", 5000);
        (void)fz_wait_spawn(z);
        FakeZyg *z2 = h_expect_restart(h);
        fz_die(z);
        assert_true(RUN_UNTIL(h, h_stats(h).zygote_starts == 2, 2000));
        assert_int_equal(h_stats(h).zygote_deaths, 1);
        assert_true(h_noticed(h, "zygote_died"));
        assert_int_equal(d->calls, 0);

        fz_send_ready(z2, ZYG_PROTO_VERSION);
        sb_succeed(h_running(h, z2, "x = 1"), d);
        assert_all_gone(h);
}

static void test_zygote_dies_running(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "while True: pass", 5000);
        FakeSb *sb = h_running(h, z, "while True: pass");
        h_expect_restart(h);
        fz_die(z);
        assert_done(h, d, RUN_INTERNAL_ERROR);
        assert_message_has(d, "the zygote died");
        assert_true(RUN_UNTIL(h, sb->init.exited, 1000));
        assert_true(proc_killed_by(&sb->init, SIGKILL));
        assert_all_gone(h);
}

/* A stopped zygote is replaced at the next 250 ms look. */
static void test_watchdog_kills_stopped_zygote(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        FakeZyg *z2 = h_expect_restart(h);
        assert_int_equal(kill(z->proc.pid, SIGSTOP), 0);
        usec_t stopped = now_usec();
        assert_true(RUN_UNTIL(h, h_stats(h).watchdog_kills == 1, 2000));
        assert_true(ms_between(stopped, now_usec()) < 600);
        assert_true(RUN_UNTIL(h, z->proc.exited, 1000));
        assert_true(proc_killed_by(&z->proc, SIGKILL));
        assert_true(h_noticed(h, "zygote_died"));

        /* Its replacement serves. */
        assert_true(RUN_UNTIL(h, h_stats(h).zygote_starts == 2, 2000));
        fz_serves(z2);
        assert_all_gone(h);
}

/* A running zygote that does not answer is stuck only after 5 s: a busy
 * one (nice 10 under load) answers late. */
static void test_watchdog_kills_silent_zygote(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        FakeZyg *z2 = h_expect_restart(h);
        z->answer_pings = false;
        usec_t silent = now_usec();
        assert_true(RUN_UNTIL(h, h_stats(h).watchdog_kills == 1, 7000));
        double took = ms_between(silent, now_usec());
        assert_true(took >= 5000 && took < 5800);
        assert_true(z->pings >= 1);
        assert_true(RUN_UNTIL(h, z->proc.exited, 1000));
        assert_true(proc_killed_by(&z->proc, SIGKILL));
        assert_int_equal(h_stats(h).zygote_deaths, 1);

        /* Its replacement serves. */
        assert_true(RUN_UNTIL(h, h_stats(h).zygote_starts == 2, 2000));
        fz_serves(z2);
        assert_all_gone(h);
}

static void test_watchdog_spares_answering_zygote(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        RUN_FOR(h, 1600);
        assert_true(z->pings >= 4);
        assert_int_equal(h_stats(h).watchdog_kills, 0);
        assert_int_equal(h_stats(h).zygote_deaths, 0);
        assert_false(z->proc.exited);
}

static void test_queue_timeout(void **state)
{
        Harness *h = *state;
        /* No READY: no sandbox can be had. */
        Done *d = h_submit(h, "x = 1", 5000);
        assert_done(h, d, RUN_INTERNAL_ERROR);
        assert_message_has(d, "no sandbox became free within 1000 ms");
        double late = ms_between(d->submitted, d->at);
        assert_true(late >= QUEUE_MS - EARLY_MS && late < QUEUE_MS + SLACK_MS);
        assert_int_equal(h_stats(h).deadline_misses, 1);
        assert_all_gone(h);
}

static void test_cancel_queued(void **state)
{
        Harness *h = *state;
        /* Before READY nothing can be dispatched: the run stays queued. */
        Done *d = h_submit(h, "x = 1", 5000);
        assert_int_equal(h_stats(h).queued, 1);
        h_cancel(h, d);
        assert_int_equal(d->calls, 0);
        assert_int_equal(h_stats(h).queued, 0);
        assert_done(h, d, RUN_KILLED);
        assert_null(d->message);
        h_cancel(h, d); /* gone: a no-op */
        (void)h_up(h);
        RUN_FOR(h, 20);
        assert_int_equal(h->zygs[0].nsbs, 0);
        assert_all_gone(h);
}

static void test_cancel_running(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "while True: pass", 5000);
        FakeSb *sb = h_running(h, z, "while True: pass");
        h_cancel(h, d);
        assert_int_equal(d->calls, 0);
        assert_done(h, d, RUN_KILLED);
        assert_true(RUN_UNTIL(h, sb->init.exited, 1000));
        assert_true(proc_killed_by(&sb->init, SIGKILL));
        assert_all_gone(h);
}

static void test_version_mismatch(void **state)
{
        Harness *h = *state;
        FakeZyg *z = &h->zygs[0];
        fz_send_ready(z, ZYG_PROTO_VERSION + 1);
        assert_true(RUN_UNTIL(h, h->ready_calls > 0, 2000));
        assert_false(h->ready_in_api);
        assert_int_equal(h->ready_error, -EIO);
        assert_non_null(strstr(h->ready_msg, "zygote protocol 3, expected 2"));
        assert_true(RUN_UNTIL(h, z->proc.exited, 1000));
        assert_true(proc_killed_by(&z->proc, SIGKILL));
        RUN_FOR(h, 50);
        assert_int_equal(h->ready_calls, 1);
        assert_int_equal(h_stats(h).zygote_starts, 1); /* not retried in a loop */
}

static void test_zygote_error_at_start(void **state)
{
        Harness *h = *state;
        FakeZyg *z = &h->zygs[0];
        struct {
                ZygHeader hd;
                char text[32];
        } m = { { ZYG_MSG_ERROR }, "cannot import numpy" };
        assert_true(fd_send_with_fds(z->sock, &m, sizeof(m), NULL, 0) > 0);
        assert_true(RUN_UNTIL(h, h->ready_calls > 0, 2000));
        assert_int_equal(h->ready_error, -EIO);
        assert_string_equal(h->ready_msg, "zygote: cannot import numpy");
}

static void test_kill_grace(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "while True: pass", 200);
        FakeSb *sb = h_running(h, z, "while True: pass");
        sb->no_exited = true; /* pid 1 dies, pid 2 is never reported gone */
        /* The kernel took the SIGKILL: a timeout, answered at the grace. */
        assert_done(h, d, RUN_TIMEOUT);
        double took = ms_between(sb->go, d->at);
        assert_true(took >= 200 + GRACE_MS - EARLY_MS && took < 200 + GRACE_MS + SLACK_MS);
        assert_true(proc_killed_by(&sb->init, SIGKILL));
        assert_true(h_noticed(h, "kill_grace_missed"));
        assert_int_equal(h_stats(h).deadline_misses, 1);
        /* A late EXITED still ends the sandbox. */
        assert_false(engine_idle(h->e));
        sb_send_exited(sb, sb->pid2.status);
        assert_true(RUN_UNTIL(h, engine_idle(h->e), 1000));
        assert_int_equal(d->calls, 1);
}

/* A sandbox whose pid 2 is never reported gone is freed after 2 s
 * (DYING_AT_MOST_MS), even when the loop pass that let it go was slow. */
static void test_dying_bounded(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        Done *d = h_submit(h, "while True: pass", 200);
        FakeSb *sb = h_running(h, z, "while True: pass");
        sb->no_exited = true;
        h->notice_ms = 20; /* inside the pass that lets the sandbox go */
        assert_done(h, d, RUN_TIMEOUT);
        assert_true(h_noticed(h, "kill_grace_missed"));
        assert_false(engine_idle(h->e));
        assert_true(RUN_UNTIL(h, engine_idle(h->e), 2000 + SLACK_MS));
        assert_true(ms_between(d->at, now_usec()) >= 1900); /* about DYING_AT_MOST_MS */
}

static void test_pool(void **state)
{
        Harness *h = *state;
        FakeZyg *z = h_up(h);
        FakeSb *a = fz_wait_spawn(z), *b = fz_wait_spawn(z);
        sb_spawned(a);
        sb_ready(a);
        sb_ready(b);
        sb_spawned(b);
        assert_true(RUN_UNTIL(h, h_stats(h).idle == 2, 2000));
        assert_true(engine_idle(h->e));

        Done *d = h_submit(h, "x = 1", 5000);
        EngineStats st = h_stats(h);
        assert_int_equal(st.idle, 1);
        assert_int_equal(st.active, 1);
        assert_int_equal(d->calls, 0);
        FakeSb *used = NULL;
        for (int i = 0; i < 2 && !used; i++) {
                FakeSb *sb = i ? b : a;
                if (RUN_UNTIL(h, sb_take_frame(sb), 100))
                        used = sb;
        }
        assert_non_null(used);
        sb_succeed(used, d);

        /* The pool is filled again. */
        FakeSb *c = fz_wait_spawn(z);
        sb_spawned(c);
        sb_ready(c);
        assert_true(RUN_UNTIL(h, h_stats(h).idle == 2 && engine_idle(h->e), 2000));
        assert_int_equal(z->nsbs, 3);
        assert_int_equal(h_stats(h).runs_finished, 1);
}

static int64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static void on_timer_check(evutil_socket_t fd, short what, void *arg)
{
        int64_t *due = arg;
        *due = mono_ns() - *due;
}

/* A deadline never fires before its time by the clock the tests use (the
 * coarse clock fired start-timeout 2 ms early, test_deadlines.py). */
static void test_timers_not_early(void **state)
{
        struct event_base *base = engine_base_new();
        assert_non_null(base);
        int64_t late = 1;
        struct event *ev = evtimer_new(base, on_timer_check, &late);
        /* Other events wake the loop meanwhile, as in the daemon: each
         * wake-up compares the deadline with the loop's clock. */
        struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
        event_add(tick, &(struct timeval){ 0, 200 });
        for (int i = 0; i < 100; i++) {
                struct timeval tv = { 0, 1000 + i * 37 };
                late = mono_ns() + tv.tv_usec * 1000;
                (void)event_base_update_cache_time(base);
                evtimer_add(ev, &tv);
                while (evtimer_pending(ev, NULL))
                        event_base_loop(base, EVLOOP_ONCE);
                assert_true(late >= 0);
        }
        event_free(tick);
        event_free(ev);
        event_base_free(base);
}

int main(int argc, char **argv)
{
        if (argc == 2 && !strcmp(argv[1], "--fake"))
                return fake_main();
        if (argc == 2 && !strcmp(argv[1], "--reaper"))
                return reaper_main();

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_normal_run),
                T(test_output_before_result),
                T(test_ready_before_spawned),
                T(test_ready_before_spawned_timeout),
                T(test_spawned_lost),
                T(test_spawned_forged),
                T(test_spawned_late),
                T(test_spawned_lost_restart_retried),
                T(test_spawned_error),
                T(test_result_before_exited),
                T(test_exited_before_result_code),
                T(test_exited_before_result_killed),
                T(test_init_exit_before_exited),
                T(test_large_result),
                T(test_zygote_dies_mid_spawn),
                T(test_zygote_dies_running),
                T(test_watchdog_kills_stopped_zygote),
                T(test_watchdog_kills_silent_zygote),
                T(test_watchdog_spares_answering_zygote),
                T(test_queue_timeout),
                T(test_cancel_queued),
                T(test_cancel_running),
                T(test_version_mismatch),
                T(test_zygote_error_at_start),
                T(test_kill_grace),
                T(test_dying_bounded),
                cmocka_unit_test_setup_teardown(test_pool, setup_pool2, teardown),
                cmocka_unit_test(test_timers_not_early),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
