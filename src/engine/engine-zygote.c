/* SPDX-License-Identifier: MIT */
/* Zygote supervision: start, the READY/SPAWNED/EXITED messages, the
 * watchdog, death and restart. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fd-util.h"
#include "macro.h"
#include "zygote-proto.h"

#define WATCH_EVERY_MS 250
#define PONG_WITHIN_US 5000000       /* stuck past this: replaced */
#define EXIT_WITHIN_US 2000000

static void zyg_kill(Zyg *z);
static void zyg_on_sock(evutil_socket_t fd, short what, void *arg);

void zyg_free(Zyg *z)
{
        TAILQ_REMOVE(&z->e->zygs, z, link);
        if (z->ev_sock)
                event_free(z->ev_sock);
        if (z->ev_pid)
                event_free(z->ev_pid);
        if (z->ev_watch)
                event_free(z->ev_watch);
        safe_close(z->sock);
        if (z->pidfd >= 0) {
                /* Only when the engine itself goes. Its socket's EOF lets the
                 * zygote reap its pid 2s and its factory first (1 s, and the
                 * factory's 0.5 s); then a last, bounded reap. */
                struct pollfd p = { .fd = z->pidfd, .events = POLLIN };
                if (z->state != ZYG_DEAD)
                        (void)poll(&p, 1, 1500);
                (void)syscall(SYS_pidfd_send_signal, z->pidfd, SIGKILL, NULL, 0);
                siginfo_t si;
                (void)waitid(P_PIDFD, (id_t)z->pidfd, &si, WEXITED);
                close(z->pidfd);
        }
        free(z);
}

/* Frees a zygote once it is reaped, its socket closed and no sandbox names it. */
static void zyg_free_if_done(Zyg *z)
{
        if (z->reaped && z->sock < 0 && z->nsandboxes == 0)
                zyg_free(z);
}

static void zyg_close_sock(Zyg *z)
{
        if (z->ev_sock) {
                event_free(z->ev_sock);
                z->ev_sock = NULL;
        }
        if (z->sock >= 0)
                z->closed = now_usec();
        z->sock = safe_close(z->sock);
}

void zyg_unref(Zyg *z)
{
        assert_se(z->nsandboxes > 0);
        if (--z->nsandboxes > 0)
                return;
        if (z->state == ZYG_RETIRING)
                zyg_close_sock(z); /* closing the socket makes it exit */
        zyg_free_if_done(z);
}

/* Preparing sandboxes is background work (nice 10) only while nobody waits
 * for one: a run waiting behind a starved zygote would miss its start
 * deadline on a busy machine. Best effort: without CAP_SYS_NICE it stays. */
void zyg_update_priority(Zyg *z)
{
        bool waited_for = false;
        const Sandbox *sb;
        TAILQ_FOREACH(sb, &z->e->sandboxes, link)
                waited_for |= sb->zyg == z && sb->state == SB_SPAWNING && sb->job;
        if (waited_for == z->boosted || z->state == ZYG_DEAD)
                return;
        z->boosted = waited_for;
        int nice = waited_for ? 0 : ZYG_PREPARE_NICE;
        (void)setpriority(PRIO_PROCESS, (id_t)z->pid, nice);
        if (z->factory_pid > 0)
                (void)setpriority(PRIO_PROCESS, (id_t)z->factory_pid, nice);
}

void zyg_retire(Zyg *z)
{
        Engine *e = z->e;
        if (z->state != ZYG_READY && z->state != ZYG_STARTING)
                return;
        z->state = ZYG_RETIRING;
        if (e->current == z)
                e->current = NULL;
        if (e->spare == z)
                e->spare = NULL;
        /* Idle sandboxes of the old zygote are dropped. */
        Sandbox *sb, *tmp;
        TAILQ_FOREACH_SAFE(sb, &e->idle, ilink, tmp)
                if (sb->zyg == z) {
                        pool_remove_idle(sb);
                        sandbox_kill(sb);
                }
        if (z->nsandboxes == 0)
                zyg_close_sock(z);
}

static void zyg_kill(Zyg *z)
{
        if (z->pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, z->pidfd, SIGKILL, NULL, 0);
}

void zyg_dead(Zyg *z, const char *why)
{
        Engine *e = z->e;
        bool was_current = z == e->current, was_spare = z == e->spare;

        if (z->state == ZYG_DEAD)
                return;
        z->state = ZYG_DEAD;
        e->stats.zygote_deaths++;
        zyg_kill(z); /* it may only be stuck */
        zyg_close_sock(z);
        if (was_current)
                e->current = NULL;
        if (was_spare)
                e->spare = NULL;

        z->nsandboxes++; /* keep z while its sandboxes let go of it */
        Sandbox *sb, *tmp;
        TAILQ_FOREACH_SAFE(sb, &e->sandboxes, link, tmp)
                if (sb->zyg == z)
                        sandbox_zygote_died(sb);
        if (!e->freeing) {
                if (!e->ready_reported) {
                        /* It never came up: tell the caller, do not loop. */
                        e->ready_reported = true;
                        if (e->opts.on_ready)
                                e->opts.on_ready(e, -EIO, why, e->opts.userdata);
                } else if (was_current && e->spare) {
                        engine_notice(e, "zygote_died", "%s; the spare takes over", why);
                        zyg_promote_spare(e);
                } else if (was_current || was_spare) { /* a retired one's exit is expected */
                        engine_notice(e, "zygote_died", "%s; starting a new one", why);
                        struct timeval tv = { 0, e->restart_failures < 5 ? 10000 : 500000 };
                        e->restart_failures++;
                        event_add(e->ev_restart, &tv);
                }
        }
        zyg_unref(z);
}

/* The spare, ready (or still starting), becomes the current zygote at
 * once: a dead or replaced zygote costs no Python start-up. */
bool zyg_promote_spare(Engine *e)
{
        Zyg *s = e->spare;
        if (!s)
                return false;
        e->spare = NULL;
        if (e->current)
                zyg_retire(e->current);
        e->current = s;
        if (s->state == ZYG_READY) {
                zyg_want_spare(e);
                engine_dispatch(e);
        }
        return true;
}

/* Starts a spare once the current zygote is ready, where one is wanted. */
void zyg_want_spare(Engine *e)
{
        if (!e->cfg.spare_zygote || e->spare || e->freeing || !e->current || e->current->state != ZYG_READY)
                return;
        (void)zyg_start(e);
}

static void zyg_on_pid(evutil_socket_t fd, short what, void *arg)
{
        Zyg *z = arg;
        siginfo_t si = { 0 };
        char why[96];
        (void)waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
        event_free(z->ev_pid);
        z->ev_pid = NULL;
        z->pidfd = safe_close(z->pidfd);
        z->reaped = true;
        if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
                snprintf(why, sizeof(why), "the zygote was killed by signal %d (%s)", si.si_status,
                         strsignal(si.si_status));
        else
                snprintf(why, sizeof(why), "the zygote exited with status %d", si.si_status);
        if (z->state != ZYG_DEAD)
                zyg_dead(z, why);
        else
                zyg_free_if_done(z);
}

/* 'T' (stopped) or 't' (traced) in /proc/PID/stat. */
static bool pid_stopped(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (file_read_str(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
                return false;
        const char *p = strrchr(buf, ')'); /* the name may hold anything */
        return p && (p[2] == 'T' || p[2] == 't');
}

/* The watchdog: a stopped or stuck zygote would keep every run behind it
 * waiting. Stopped is seen at once; stuck is a ping unanswered for 5 s
 * (not less: a nice 10 zygote on a saturated machine answers late). */
static void zyg_on_watch(evutil_socket_t fd, short what, void *arg)
{
        Zyg *z = arg;
        usec_t now = now_usec();

        if (z->sock < 0) {
                /* Told to go (its socket closed): it must, within 2 s. */
                if (!z->reaped && now - z->closed > EXIT_WITHIN_US)
                        zyg_kill(z);
                return;
        }
        if (z->e->no_watchdog)
                return;
        if (pid_stopped(z->pid)) {
                z->e->stats.watchdog_kills++;
                zyg_dead(z, "the zygote was stopped");
                return;
        }
        if (z->state == ZYG_STARTING) {
                if (now - z->started > (usec_t)z->e->cfg.zygote_start_timeout_s * 1000000)
                        zyg_dead(z, "the zygote did not start in time");
                return;
        }
        if (z->ping_sent && now - z->ping_sent > PONG_WITHIN_US) {
                /* The PONG may be waiting behind a busy loop pass: read first. */
                zyg_on_sock(z->sock, EV_READ, z);
                if (z->state == ZYG_DEAD)
                        return;
                if (z->ping_sent) {
                        z->e->stats.watchdog_kills++;
                        zyg_dead(z, "the zygote stopped answering");
                }
                return;
        }
        if (z->ping_sent)
                return;
        ZygPing p = { .type = ZYG_MSG_PING, .seq = now };
        z->ping_sent = now;
        (void)send(z->sock, &p, sizeof(p), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void zyg_on_ready(Zyg *z, const ZygReady *m, const char *info)
{
        Engine *e = z->e;
        Zyg *old = e->current;

        if (m->version != ZYG_PROTO_VERSION) {
                char why[128];
                snprintf(why, sizeof(why), "zygote protocol %u, expected %u (a stale install?)", m->version,
                         ZYG_PROTO_VERSION);
                zyg_dead(z, why);
                return;
        }
        z->state = ZYG_READY;
        z->factory_pid = m->factory_pid;
        snprintf(e->info, sizeof(e->info), "%s", info);
        e->restart_failures = 0;
        if (z == e->spare) {
                /* Waits, started, until the current one dies or is replaced. */
                if (e->swap_wanted || !old || old->state != ZYG_READY) {
                        e->swap_wanted = false;
                        zyg_promote_spare(e);
                }
                return;
        }
        if (old && old != z)
                zyg_retire(old);
        e->current = z;
        if (!e->ready_reported) {
                e->ready_reported = true;
                if (e->opts.on_ready)
                        e->opts.on_ready(e, 0, NULL, e->opts.userdata);
        }
        zyg_want_spare(e);
        engine_dispatch(e);
}

/* Past max forks, or after a lost SPAWNED: the spare takes over, or a
 * fresh zygote is started to. */
void zyg_replace_current(Engine *e)
{
        if (e->spare && e->spare->state == ZYG_READY) {
                zyg_promote_spare(e);
                return;
        }
        e->swap_wanted = true;
        if (!e->spare)
                (void)zyg_start(e);
}

static void zyg_handle(Zyg *z, const char *buf, size_t n, int *fds, size_t *nfds)
{
        uint32_t type = n >= sizeof(ZygHeader) ? ((const ZygHeader *)buf)->type : 0;

        if (type == ZYG_MSG_READY && z->state == ZYG_STARTING && n > sizeof(ZygReady)) {
                zyg_on_ready(z, (const ZygReady *)buf, buf + sizeof(ZygReady));
        } else if (type == ZYG_MSG_ERROR) {
                /* The text may hold a Python traceback: all of it. */
                _cleanup_free_ char *why = NULL;
                if (asprintf(&why, "zygote: %s", buf + sizeof(ZygHeader)) < 0)
                        why = NULL;
                zyg_dead(z, why ? why : "zygote: start-up error");
        } else if (type == ZYG_MSG_PONG && n == sizeof(ZygPing)) {
                z->ping_sent = 0;
        } else if (type == ZYG_MSG_SPAWNED && n == sizeof(ZygSpawned)) {
                const ZygSpawned *m = (const ZygSpawned *)buf;
                Sandbox *sb = sandbox_by_id(z->e, m->id);
                /* Only the first SPAWNED for a sandbox of this zygote counts. */
                if (sb && sb->zyg == z && !sb->spawned) {
                        sandbox_on_spawned(sb, m->error, m->message, m->pid, m->init_pid,
                                           *nfds > 0 ? fds[0] : -1);
                        if (*nfds > 0) {
                                memmove(fds, fds + 1, (*nfds - 1) * sizeof(int));
                                (*nfds)--;
                        }
                }
        } else if (type == ZYG_MSG_EXITED && n == sizeof(ZygExited)) {
                const ZygExited *m = (const ZygExited *)buf;
                Sandbox *sb = sandbox_by_id(z->e, m->id);
                if (sb && sb->zyg == z && sb->spawned && sb->pid == m->pid)
                        sandbox_on_exited(sb, m->status, m->utime_us + m->stime_us);
        }
}

static void zyg_on_sock(evutil_socket_t fd, short what, void *arg)
{
        Zyg *z = arg;
        static char buf[ZYG_MSG_MAX];

        /* A bounded batch per wake-up, so a flood cannot starve the loop. */
        for (int i = 0; i < 64 && z->sock >= 0; i++) {
                int fds[4];
                size_t nfds = 0;
                ssize_t n = fd_recv_with_fds(fd, buf, sizeof(buf) - 1, fds, ELEMENTSOF(fds), &nfds);
                if (n == -EAGAIN || n == -EINTR)
                        return;
                if (n == -EMSGSIZE) {
                        /* Cut (no fds left here for its SCM_RIGHTS): that one
                         * message is lost, and its run's deadline will say so. */
                        engine_notice(z->e, "zygote_message_lost", "a message from the zygote was cut");
                        continue;
                }
                if (n <= 0) {
                        /* Starting, it had no chance to say why: its exit
                         * status will (SIGILL, SIGSEGV...), within 2 s. */
                        if (z->state == ZYG_STARTING && z->ev_pid) {
                                zyg_close_sock(z);
                                return;
                        }
                        zyg_dead(z, "the zygote exited");
                        return;
                }
                buf[n] = '\0';
                zyg_handle(z, buf, (size_t)n, fds, &nfds);
                for (size_t k = 0; k < nfds; k++)
                        close(fds[k]);
        }
}

static int zyg_spawn(Engine *e, pid_t *ret_pid, int *ret_sock);

int zyg_start(Engine *e)
{
        pid_t pid;
        int sock, r;

        if (e->opts.test_zygote_pid > 0) {
                pid = e->opts.test_zygote_pid;
                sock = fcntl(e->opts.test_zygote_fd, F_DUPFD_CLOEXEC, 3);
                if (sock < 0)
                        return -errno;
        } else {
                r = zyg_spawn(e, &pid, &sock);
                if (r < 0)
                        return r;
        }
        Zyg *z = calloc(1, sizeof(*z));
        if (!z) {
                safe_close(sock);
                return -ENOMEM;
        }
        z->e = e;
        z->pid = pid;
        z->sock = sock;
        z->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (z->pidfd < 0) {
                /* Without a pidfd it could be neither watched nor reaped. */
                r = -errno;
                if (e->opts.test_zygote_pid <= 0) { /* ours: no pid reuse yet, it is unreaped */
                        (void)kill(pid, SIGKILL);
                        (void)waitpid(pid, NULL, 0);
                }
                safe_close(z->sock);
                free(z);
                return r;
        }
        z->state = ZYG_STARTING;
        z->started = now_usec();
        (void)fd_nonblock(z->sock, 1);
        z->ev_sock = event_new(e->base, z->sock, EV_READ | EV_PERSIST, zyg_on_sock, z);
        z->ev_pid = event_new(e->base, z->pidfd, EV_READ, zyg_on_pid, z);
        z->ev_watch = event_new(e->base, -1, EV_PERSIST, zyg_on_watch, z);
        TAILQ_INSERT_TAIL(&e->zygs, z, link);
        if (!z->ev_sock || !z->ev_pid || !z->ev_watch) {
                z->reaped = true;
                zyg_free(z);
                return -ENOMEM;
        }
        struct timeval every = { 0, WATCH_EVERY_MS * 1000 };
        event_add(z->ev_sock, NULL);
        event_add(z->ev_pid, NULL);
        event_add(z->ev_watch, &every);
        e->stats.zygote_starts++;
        if (!e->current)
                e->current = z;
        else
                e->spare = z;
        return 0;
}

static int zyg_spawn(Engine *e, pid_t *ret_pid, int *ret_sock)
{
        _cleanup_close_pair_ int sp[2] = { -1, -1 };
        posix_spawn_file_actions_t fa;
        pid_t pid;
        char fdarg[16], uidarg[24], uidsarg[24], spawned[96];
        int r;


        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        snprintf(fdarg, sizeof(fdarg), "%d", ZYG_CTL_FD);
        snprintf(uidarg, sizeof(uidarg), "%lld", (long long)e->cfg.sandbox_uid);
        snprintf(uidsarg, sizeof(uidsarg), "%lld", (long long)e->cfg.sandbox_uids);
        char *argv[] = { "pyrunner-zygote", fdarg, e->cfg.preload, uidarg, uidsarg, NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, sp[1], ZYG_CTL_FD);
        /* A clean environment: /proc/self/environ of every sandbox shows
         * the zygote's initial one, whatever Python does later. */
        engine_open_cache(e);
        char scratch[sizeof(e->scratch) + 32], cache[sizeof(e->cache) + 32];
        char *envp[6] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL, NULL, NULL, NULL };
        size_t n_env = 2;
        if (e->scratch[0]) {
                snprintf(scratch, sizeof(scratch), "PYRUNNER_SCRATCH=%s", e->scratch);
                envp[n_env++] = scratch;
        }
        if (e->cache[0]) {
                snprintf(cache, sizeof(cache), "PYRUNNER_CACHE=%s", e->cache);
                envp[n_env++] = cache;
        }
        if (e->test_spawned[0]) {
                snprintf(spawned, sizeof(spawned), "PYRUNNER_TEST_SPAWNED=%s", e->test_spawned);
                envp[n_env++] = spawned;
        }
        r = posix_spawn(&pid, e->zygote_path, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        *ret_sock = TAKE_FD(sp[0]);
        return 0;
}

void engine_on_restart(evutil_socket_t fd, short what, void *arg)
{
        Engine *e = arg;
        if (e->freeing)
                return;
        if (e->current) {
                zyg_want_spare(e);
                return;
        }
        if (zyg_start(e) < 0) {
                struct timeval tv = { 1, 0 };
                event_add(e->ev_restart, &tv);
        }
}
