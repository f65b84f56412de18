/* SPDX-License-Identifier: MIT */
/* Giving jobs sandboxes, keeping the pool of idle ones, and the janitor
 * that kills whatever the bookkeeping lost. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fd-util.h"
#include "macro.h"
#include "proc-util.h"

void pool_remove_idle(Sandbox *sb)
{
        Engine *e = sb->e;
        assert_se(sb->state == SB_IDLE && e->n_idle > 0);
        TAILQ_REMOVE(&e->idle, sb, ilink);
        e->n_idle--;
}

static unsigned pool_spawning(const Engine *e)
{
        unsigned n = 0;
        const Sandbox *sb;
        TAILQ_FOREACH(sb, &e->sandboxes, link)
                n += sb->state == SB_SPAWNING && !sb->job && !sb->session && sb->zyg == e->current;
        return n;
}

static void pool_fill(Engine *e)
{
        if (evtimer_pending(e->ev_pool_retry, NULL))
                return;
        while (e->current && e->current->state == ZYG_READY &&
               e->n_idle + pool_spawning(e) < (unsigned)e->cfg.pool_size) {
                Sandbox *sb;
                if (sandbox_spawn(e, e->cfg.memory_mb, false, &sb) < 0) {
                        /* Back off, so a persistent failure cannot spin. */
                        unsigned ms = MIN(10u << MIN(e->pool_failures, 7u), 1000u);
                        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
                        e->pool_failures++;
                        evtimer_add(e->ev_pool_retry, &tv);
                        return;
                }
                e->pool_failures = 0;
        }
}

void engine_on_pool_retry(evutil_socket_t fd, short what, void *arg)
{
        engine_dispatch(arg);
}

/* Never re-entered: a call from inside (a sandbox freed while spawning
 * another) just asks for one more pass. */
void engine_dispatch(Engine *e)
{
        if (e->dispatching) {
                e->redispatch = true;
                return;
        }
        e->dispatching = true;
        do {
                e->redispatch = false;
                Job *j;
                while ((j = TAILQ_FIRST(&e->queued)) && e->current && e->current->state == ZYG_READY) {
                        Sandbox *sb = TAILQ_FIRST(&e->idle);
                        if (!sb) {
                                int r = sandbox_spawn(e, j->memory_mb, false, &sb);
                                if (r == -EAGAIN)
                                        break; /* the zygote is behind: wait, within the deadline */
                                if (r < 0) {
                                        job_fail(j, "cannot create a sandbox: %s", strerror(-r));
                                        continue;
                                }
                        }
                        TAILQ_REMOVE(&e->queued, j, qlink);
                        sandbox_attach(sb, j);
                }
                pool_fill(e);
        } while (e->redispatch);
        e->dispatching = false;
}

static bool owns_init(const Engine *e, pid_t pid)
{
        const Sandbox *sb;
        TAILQ_FOREACH(sb, &e->sandboxes, link)
                if (sb->init_pid == pid)
                        return true;
        return false;
}

static void kill_pid(pid_t pid)
{
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return;
        (void)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
        close(fd);
}

/* pid 1s below a factory that no sandbox owns. One is unowned for a moment
 * before its SPAWNED arrives, so it is killed only once it has been
 * unowned for longer than a start may take. */
static void janitor_pid1s(Engine *e, const Zyg *z, usec_t now)
{
        char path[96], buf[8192];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", z->factory_pid, z->factory_pid);
        if (file_read_str(AT_FDCWD, path, buf, sizeof(buf)) <= 0)
                return;
        usec_t grace = (usec_t)e->cfg.start_timeout_ms * 1000 + 1000000;
        pid_t pid;
        for (const char *p = buf; (p = pid_list_next(p, &pid));) {
                if (owns_init(e, pid))
                        continue;
                Suspect *s = NULL, *free_slot = NULL;
                for (size_t i = 0; i < ELEMENTSOF(e->suspects); i++) {
                        if (e->suspects[i].pid == pid)
                                s = &e->suspects[i];
                        else if (!e->suspects[i].pid && !free_slot)
                                free_slot = &e->suspects[i];
                }
                if (!s) {
                        if (free_slot)
                                *free_slot = (Suspect){ pid, now };
                        continue;
                }
                if (now - s->first_seen > grace) {
                        kill_pid(pid);
                        e->stats.strays_killed++;
                        engine_notice(e, "stray_killed", "pid 1 %d had no sandbox", (int)pid);
                        s->pid = 0;
                }
        }
}

static void janitor_cgroups(Engine *e)
{
        uint64_t ids[1024];
        int n = cg_root_list_runs(&e->cgroot, ids, ELEMENTSOF(ids));
        for (int i = 0; i < n; i++) {
                Sandbox *sb = sandbox_by_id(e, ids[i]);
                if (sb && sb->has_cg)
                        continue;
                char name[32];
                snprintf(name, sizeof(name), "run-%llu", (unsigned long long)ids[i]);
                if (cg_remove_stray(&e->cgroot, name) == 0) {
                        e->stats.strays_killed++;
                        engine_notice(e, "stray_killed", "cgroup %s had no sandbox", name);
                }
        }
}

/* The last line of defence: whatever exists and is not owned goes. */
void engine_on_janitor(evutil_socket_t fd, short what, void *arg)
{
        Engine *e = arg;
        usec_t now = now_usec();

        janitor_cgroups(e);
        Zyg *z;
        TAILQ_FOREACH(z, &e->zygs, link)
                if (z->factory_pid > 0 && z->state != ZYG_DEAD)
                        janitor_pid1s(e, z, now);
        /* Forget suspects that went by themselves. */
        for (size_t i = 0; i < ELEMENTSOF(e->suspects); i++)
                if (e->suspects[i].pid && kill(e->suspects[i].pid, 0) < 0)
                        e->suspects[i].pid = 0;
}
