/* SPDX-License-Identifier: MIT */
/* The engine's public API: creating and freeing it, submitting and
 * cancelling jobs, and delivering their results from the loop. */
#include <errno.h>
#include <event2/buffer.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine-internal.h"
#include "macro.h"
#include "pyrunner-config.h"
#include "zygote-proto.h"

#define JANITOR_EVERY_MS 1000

usec_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * 1000000 + (usec_t)ts.tv_nsec / 1000;
}

void engine_notice(Engine *e, const char *event, const char *fmt, ...)
{
        char detail[512];
        va_list ap;

        if (!e->opts.on_notice || e->freeing)
                return;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        e->opts.on_notice(e, event, detail, e->opts.userdata);
}

/* Finished jobs' callbacks, from the loop: never inside an API call. */
static void engine_on_complete(evutil_socket_t fd, short what, void *arg)
{
        Engine *e = arg;
        Job *j;

        while ((j = TAILQ_FIRST(&e->completed))) {
                TAILQ_REMOVE(&e->completed, j, qlink);
                job_flush_stream(j);
                if (j->done)
                        j->done(&j->res, j->userdata);
                job_free(j);
        }
}

void engine_on_reap(evutil_socket_t fd, short what, void *arg)
{
        Engine *e = arg;
        Sandbox *sb;
        while ((sb = TAILQ_FIRST(&e->dead))) {
                TAILQ_REMOVE(&e->dead, sb, link);
                free(sb);
        }
}

static Sandbox *session_find(const Engine *e, uint64_t id)
{
        Sandbox *sb = sandbox_by_id((Engine *)e, id);
        return sb && sb->session && sb->state != SB_DYING && !sb->freed ? sb : NULL;
}

int run_files_check(json_t *files, int64_t max_files, int64_t max_bytes, const char **field, const char **why)
{
        size_t i, total = 0;
        json_t *f;

        *field = "files";
        if (!json_is_array(files))
                return *why = "files must be a list", -EINVAL;
        if (json_array_size(files) > (size_t)max_files)
                return *why = "too many files (max-files)", -E2BIG;
        json_array_foreach(files, i, f) {
                json_t *path = json_object_get(f, "path"), *content = json_object_get(f, "content");
                json_t *enc = json_object_get(f, "encoding");
                if (!json_is_object(f) || json_object_size(f) != 2u + (enc != NULL))
                        return *why = "each file is {\"path\", \"content\", \"encoding\"?}", -EINVAL;
                *field = "path";
                if (!json_is_string(path) || !rel_path_ok(json_string_value(path), json_string_length(path)))
                        return *why = "a file's path must be relative, without '..', '.', empty parts or NUL",
                               -EINVAL;
                *field = "content";
                if (!json_is_string(content))
                        return *why = "a file's content must be a string", -EINVAL;
                const char *e = enc ? json_string_value(enc) : "utf-8";
                size_t n = json_string_length(content);
                if (e && !strcmp(e, "base64")) {
                        long long d = base64_decoded_size(json_string_value(content), n);
                        if (d < 0)
                                return *why = "a file's content is not base64", -EINVAL;
                        n = (size_t)d;
                } else if (!e || strcmp(e, "utf-8")) {
                        *field = "encoding";
                        return *why = "a file's encoding must be \"utf-8\" or \"base64\"", -EINVAL;
                }
                total += n;
                *field = "files";
                if (total > (size_t)max_bytes)
                        return *why = "the files are too large together (max-files-bytes)", -E2BIG;
        }
        return 0;
}

int run_return_files_check(json_t *rf, const char **why)
{
        size_t i;
        json_t *g;

        if (json_is_boolean(rf))
                return 0;
        if (!json_is_array(rf) || json_array_size(rf) > 64)
                return *why = "return_files must be true, false or a list of up to 64 glob patterns", -EINVAL;
        json_array_foreach(rf, i, g)
                if (!json_is_string(g) || json_string_length(g) == 0 || json_string_length(g) > 4095 ||
                    strlen(json_string_value(g)) != json_string_length(g))
                        return *why = "each return_files pattern must be a non-empty string without NUL", -EINVAL;
        return 0;
}

int engine_submit(Engine *e, const RunRequest *req, run_done_fn done, void *userdata, uint64_t *ret)
{
        const PyrConfig *c = &e->cfg;
        int64_t t = req->timeout_ms ? req->timeout_ms : c->timeout_ms;
        int64_t m = req->memory_mb ? req->memory_mb : c->memory_mb;
        Job *j;
        int r;

        if (!req->code || req->code_len == 0)
                return -EINVAL;
        if (req->code_len > (size_t)c->max_code_bytes || req->stdin_len > (size_t)c->max_stdin_bytes)
                return -E2BIG;
        if (!utf8_valid(req->code, req->code_len))
                return -EILSEQ;
        if (t < 100 || t > c->max_timeout_ms || m < c->min_memory_mb || m > c->max_memory_mb)
                return -ERANGE;
        Sandbox *sess = NULL;
        if (req->session) {
                sess = session_find(e, req->session);
                if (!sess)
                        return -ENOENT;
                if (sess->job)
                        return -EBUSY;
        }
        const char *field, *why;
        if (req->files && (r = run_files_check(req->files, c->max_files, c->max_files_bytes, &field, &why)) < 0)
                return r;
        if (req->return_files && run_return_files_check(req->return_files, &why) < 0)
                return -EINVAL;
        if (e->freeing)
                return -ESHUTDOWN;

        r = job_new(e, &j);
        if (r < 0)
                return r;
        j->code = malloc(req->code_len + 1);
        j->stdin_data = req->stdin_len ? malloc(req->stdin_len) : NULL;
        if (!j->code || (req->stdin_len && !j->stdin_data)) {
                job_free(j);
                return -ENOMEM;
        }
        memcpy(j->code, req->code, req->code_len);
        j->code[req->code_len] = '\0';
        j->code_len = req->code_len;
        if (req->stdin_len)
                memcpy(j->stdin_data, req->stdin_data, req->stdin_len);
        j->stdin_len = req->stdin_len;
        j->files_in = json_incref(req->files);
        if (req->return_files && !json_is_false(req->return_files))
                j->return_files = json_incref(req->return_files);
        j->timeout_ms = t;
        j->memory_mb = m;
        j->done = done;
        j->userdata = userdata;
        if (req->on_stream) {
                j->on_stream = req->on_stream;
                j->stream = evbuffer_new();
                j->ev_stream = event_new(e->base, -1, 0, job_on_stream, j);
                if (!j->stream || !j->ev_stream) {
                        job_free(j);
                        return -ENOMEM;
                }
        }
        if (ret)
                *ret = j->ticket;
        if (sess) {
                j->memory_mb = sess->cur_memory_mb;
                sandbox_attach(sess, j);
                return 0;
        }
        TAILQ_INSERT_TAIL(&e->queued, j, qlink);
        job_set_deadline(j, c->queue_timeout_ms);
        engine_dispatch(e);
        return 0;
}

int engine_session_new(Engine *e, int64_t memory_mb, uint64_t *ret_id)
{
        const PyrConfig *c = &e->cfg;
        int64_t m = memory_mb ? memory_mb : c->memory_mb;
        Sandbox *sb;

        if (m < c->min_memory_mb || m > c->max_memory_mb)
                return -ERANGE;
        if (e->freeing)
                return -ESHUTDOWN;
        /* Without one, memory is watched only while a job runs: a thread
         * between cells would be unbounded. */
        if (e->cgroot.mode == CGROUP_MODE_NONE)
                return -EOPNOTSUPP;
        int r = sandbox_spawn(e, m, true, &sb);
        if (r < 0)
                return r;
        sb->cur_memory_mb = m;
        sb->last_used = now_usec();
        *ret_id = sb->id;
        return 0;
}

void engine_session_free(Engine *e, uint64_t id)
{
        Sandbox *sb = session_find(e, id);
        if (!sb)
                return;
        if (sb->job) {
                /* Its cell ends as killed; the session with it. */
                sb->job->oc.cancelled = true;
                job_finish(sb->job);
                return;
        }
        sandbox_let_go(sb);
        sandbox_check(sb);
}

int engine_session_interrupt(Engine *e, uint64_t id)
{
        Sandbox *sb = session_find(e, id);
        if (!sb)
                return -ENOENT;
        if (!sb->job || sb->job->state != JOB_RUNNING || sb->job->interrupt_sent || sb->job->kill_sent ||
            sb->killed)
                return -EALREADY;
        job_interrupt(sb->job);
        return 0;
}

int engine_session_info(const Engine *e, uint64_t id, SessionInfo *ret)
{
        Sandbox *sb = session_find(e, id);
        CgroupStats st;
        if (!sb)
                return -ENOENT;
        *ret = (SessionInfo){ .running = sb->job != NULL, .runs = sb->runs };
        if (sb->has_cg && cg_read_stats(&sb->cg, &st) == 0)
                ret->memory_used = (double)st.memory_current / (1024.0 * 1024.0);
        return 0;
}

void engine_cancel(Engine *e, uint64_t ticket)
{
        Job *j;
        TAILQ_FOREACH(j, &e->jobs, link)
                if (j->ticket == ticket)
                        break;
        if (!j || j->state == JOB_DONE)
                return;
        j->oc.cancelled = true;
        job_finish(j);
}

static int find_zygote(Engine *e, const char *path)
{
        if (path) {
                snprintf(e->zygote_path, sizeof(e->zygote_path), "%s", path);
        } else {
                /* Next to us in the build tree, else the install location. */
                static const char *const rel[] = { "../sandbox", "../src/sandbox", "." };
                char self[PATH_MAX];
                ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n < 0)
                        return -errno;
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
        return access(e->zygote_path, X_OK) < 0 ? -errno : 0;
}

/* Test-only faults, honoured only where the sabotage switch is on. */
static void read_test_faults(Engine *e)
{
        const char *allow = getenv("PYRUNNER_ALLOW_SABOTAGE");
        if (!allow || strcmp(allow, "1"))
                return;
        const char *cg = getenv("PYRUNNER_FAULT_CGROUP");
        const char *sp = getenv("PYRUNNER_TEST_SPAWNED");
        if (cg)
                snprintf(e->fault_cgroup, sizeof(e->fault_cgroup), "%s", cg);
        if (sp)
                snprintf(e->test_spawned, sizeof(e->test_spawned), "%s", sp);
        e->no_watchdog = getenv("PYRUNNER_TEST_NO_WATCHDOG") != NULL;
        e->no_janitor = getenv("PYRUNNER_TEST_NO_JANITOR") != NULL;
}

/* Whether no one but root and us could change what path names: each
 * component a real directory (no symlink), owned by root or us, writable
 * by no one else; an ancestor may be sticky instead (/tmp), where others
 * cannot rename what is ours. */
static bool path_is_private(const char *path)
{
        char p[PATH_MAX];
        struct stat st;

        if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p) || p[0] != '/')
                return false;
        for (bool self = true;; self = false) {
                const char *at = p[0] ? p : "/";
                if (lstat(at, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
                    ((st.st_mode & 022) && (self || !(st.st_mode & S_ISVTX))))
                        return false;
                if (!p[0])
                        return true;
                *strrchr(p, '/') = '\0';
        }
}

/* The zygotes' cache (matplotlib's font list, tens of seconds to build on a
 * slow machine): built once, kept across starts. Checked at every zygote
 * start: the zygote reads it as root before any sandbox, so only a
 * directory that no one else can change is used. */
void engine_open_cache(Engine *e)
{
        const char *dir = e->cfg.cache_dir, *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        char path[sizeof(e->cache)], parent[sizeof(e->cache)];
        int n;

        e->cache[0] = '\0';
        if (dir[0])
                n = snprintf(path, sizeof(path), "%s", dir);
        else if (geteuid() == 0)
                n = snprintf(path, sizeof(path), "/var/cache/pyrunner");
        else if (x && x[0] == '/')
                n = snprintf(path, sizeof(path), "%s/pyrunner", x);
        else if (home && home[0] == '/')
                n = snprintf(path, sizeof(path), "%s/.cache/pyrunner", home);
        else
                return;
        if (n < 0 || n >= (int)sizeof(path))
                return;
        snprintf(parent, sizeof(parent), "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
                *slash = '\0';
                (void)mkdir(parent, 0755); /* ~/.cache may not exist yet */
        }
        (void)mkdir(path, 0755);
        if (path_is_private(path))
                snprintf(e->cache, sizeof(e->cache), "%s", path);
}

struct event_base *engine_base_new(void)
{
        struct event_config *cfg = event_config_new();
        if (!cfg)
                return NULL;
        (void)event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        struct event_base *base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        return base;
}

int engine_new(struct event_base *base, const PyrConfig *cfg, const EngineOptions *opts, Engine **ret)
{
        Engine *e = calloc(1, sizeof(*e));
        int r;

        if (!e)
                return -ENOMEM;
        e->base = base;
        e->cfg = *cfg;
        e->opts = *opts;
        TAILQ_INIT(&e->zygs);
        TAILQ_INIT(&e->sandboxes);
        TAILQ_INIT(&e->dead);
        TAILQ_INIT(&e->idle);
        TAILQ_INIT(&e->jobs);
        TAILQ_INIT(&e->queued);
        TAILQ_INIT(&e->completed);
        for (int i = 0; i < CG_N; i++)
                e->cgroot.dirfd[i] = -1;
        signal(SIGPIPE, SIG_IGN);
        read_test_faults(e);

        r = find_zygote(e, opts->zygote_path ? opts->zygote_path : getenv("PYRUNNER_ZYGOTE"));
        if (r < 0) {
                free(e);
                return r;
        }
        /* As root each live sandbox has a host uid of its own; unprivileged,
         * all are the caller. */
        if (geteuid() == 0) {
                e->uid_used = calloc((size_t)cfg->sandbox_uids, 1);
                if (!e->uid_used) {
                        free(e);
                        return -ENOMEM;
                }
        }
        if (opts->no_cgroups) {
                snprintf(e->cgroot.why, sizeof(e->cgroot.why), "disabled");
        } else {
                char name[64];
                snprintf(name, sizeof(name), "pyrunner-%d", getpid());
                (void)cg_root_open(&e->cgroot, "/sys/fs/cgroup", "/proc/self/cgroup", name);
        }
        /* Best effort: without it a zygote uses /tmp itself. */
        snprintf(e->scratch, sizeof(e->scratch), "/tmp/pyrunner-engine-XXXXXX");
        if (!mkdtemp(e->scratch))
                e->scratch[0] = '\0';
        e->ev_restart = evtimer_new(base, engine_on_restart, e);
        e->ev_complete = event_new(base, -1, 0, engine_on_complete, e);
        e->ev_janitor = event_new(base, -1, EV_PERSIST, engine_on_janitor, e);
        e->ev_pool_retry = evtimer_new(base, engine_on_pool_retry, e);
        e->ev_reap = event_new(base, -1, 0, engine_on_reap, e);
        if (!e->ev_restart || !e->ev_complete || !e->ev_janitor || !e->ev_pool_retry || !e->ev_reap) {
                engine_free(e);
                return -ENOMEM;
        }
        struct timeval every = { JANITOR_EVERY_MS / 1000, (JANITOR_EVERY_MS % 1000) * 1000 };
        if (!e->no_janitor)
                event_add(e->ev_janitor, &every);
        r = zyg_start(e);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

/* Shutting down may wait a little, at most a second in all: for the killed
 * sandboxes to go, so that their cgroups can be removed. */
static void wait_sandboxes_gone(Engine *e)
{
        usec_t until = now_usec() + 1000000;
        Sandbox *sb;

        TAILQ_FOREACH(sb, &e->sandboxes, link) {
                usec_t now = now_usec();
                if (sb->init_pidfd >= 0 && !sb->init_exited && now < until) {
                        struct pollfd p = { .fd = sb->init_pidfd, .events = POLLIN };
                        (void)poll(&p, 1, (int)((until - now) / 1000) + 1);
                }
                while (sb->has_cg && now_usec() < until && cg_destroy(&sb->cg) == -EBUSY) {
                        (void)cg_kill(&sb->cg);
                        struct timespec ts = { 0, 5000000 };
                        nanosleep(&ts, NULL);
                }
        }
}

void engine_free(Engine *e)
{
        if (!e)
                return;
        /* Pending jobs are dropped without their callbacks (engine.h). */
        e->freeing = true;
        Job *j;
        while ((j = TAILQ_FIRST(&e->jobs))) {
                if (j->state != JOB_DONE)
                        job_finish(j);
                TAILQ_REMOVE(&e->completed, j, qlink);
                job_free(j);
        }
        Sandbox *sb;
        TAILQ_FOREACH(sb, &e->sandboxes, link)
                sandbox_kill(sb);
        wait_sandboxes_gone(e);
        while ((sb = TAILQ_FIRST(&e->sandboxes))) {
                sb->job = NULL;
                sandbox_free(sb);
        }
        engine_on_reap(-1, 0, e);
        Zyg *z;
        while ((z = TAILQ_FIRST(&e->zygs)))
                zyg_free(z);
        free(e->uid_used);
        if (e->ev_restart)
                event_free(e->ev_restart);
        if (e->ev_complete)
                event_free(e->ev_complete);
        if (e->ev_janitor)
                event_free(e->ev_janitor);
        if (e->ev_pool_retry)
                event_free(e->ev_pool_retry);
        if (e->ev_reap)
                event_free(e->ev_reap);
        cg_root_close(&e->cgroot);
        if (e->scratch[0])
                (void)nftw(e->scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
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

void engine_get_stats(const Engine *e, EngineStats *ret)
{
        *ret = e->stats;
        ret->active = e->n_running;
        ret->idle = e->n_idle;
        unsigned q = 0;
        const Job *j;
        TAILQ_FOREACH(j, &e->queued, qlink)
                q++;
        ret->queued = q;
}

bool engine_idle(const Engine *e)
{
        if (!TAILQ_EMPTY(&e->jobs))
                return false;
        const Sandbox *sb;
        TAILQ_FOREACH(sb, &e->sandboxes, link)
                if (sb->state == SB_DYING)
                        return false;
        return true;
}

json_t *engine_layers_json(const Engine *e)
{
        static const struct { uint32_t bit; const char *name; } names[] = {
                { ZYG_LAYER_USERNS, "user" }, { ZYG_LAYER_PIDNS, "pid" }, { ZYG_LAYER_MNTNS, "mount" },
                { ZYG_LAYER_IPCNS, "ipc" }, { ZYG_LAYER_UTSNS, "uts" }, { ZYG_LAYER_NETNS, "network" },
                { ZYG_LAYER_CGROUPNS, "cgroup" },
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
