/* SPDX-License-Identifier: MIT */
/* One job: starting it on a ready sandbox, its phase deadlines, what it
 * sees while it runs, and its result. */
#include <errno.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>

#include "engine-internal.h"
#include "json-util.h"
#include "macro.h"
#include "text-util.h"
#include "zygote-proto.h"

static void job_on_deadline(evutil_socket_t fd, short what, void *arg);
static void job_on_watch(evutil_socket_t fd, short what, void *arg);

void job_set_deadline(Job *j, int64_t ms)
{
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
        evtimer_add(j->deadline, &tv);
}

void job_free(Job *j)
{
        assert_se(!j->sb);
        TAILQ_REMOVE(&j->e->jobs, j, link);
        if (j->deadline)
                event_free(j->deadline);
        if (j->ev_stream)
                event_free(j->ev_stream);
        if (j->stream)
                evbuffer_free(j->stream);
        if (j->ev_watch)
                event_free(j->ev_watch);
        free(j->code);
        free(j->stdin_data);
        free(j->out);
        free(j->err);
        free(j->message);
        free(j->result_repr);
        free(j->value);
        json_decref(j->error_info);
        json_decref(j->files_in);
        json_decref(j->return_files);
        if (j->outputs)
                evbuffer_free(j->outputs);
        if (j->files)
                evbuffer_free(j->files);
        if (j->files_skipped)
                evbuffer_free(j->files_skipped);
        run_result_clear(&j->res);
        free(j);
}

typedef struct StreamHead {
        uint32_t kind, len;
} StreamHead;

/* Queued, not called: this may run inside an engine call (a cancel
 * drains the pipes). Out of memory it is dropped; the result has it. */
static void job_stream(Job *j, RunStreamKind kind, const char *data, size_t n)
{
        StreamHead h = { kind, (uint32_t)n };
        if (!j->stream || n == 0 || n > UINT32_MAX)
                return;
        if (evbuffer_expand(j->stream, sizeof(h) + n) < 0)
                return;
        evbuffer_add(j->stream, &h, sizeof(h));
        evbuffer_add(j->stream, data, n);
        event_active(j->ev_stream, EV_TIMEOUT, 0);
}

void job_flush_stream(Job *j)
{
        StreamHead h;
        while (j->stream && evbuffer_copyout(j->stream, &h, sizeof(h)) == (ev_ssize_t)sizeof(h)) {
                evbuffer_drain(j->stream, sizeof(h));
                const char *p = (const char *)evbuffer_pullup(j->stream, h.len);
                if (p)
                        j->on_stream((RunStreamKind)h.kind, p, h.len, j->userdata);
                evbuffer_drain(j->stream, h.len);
        }
}

void job_on_stream(evutil_socket_t fd, short what, void *arg)
{
        job_flush_stream(arg);
}

void job_append_output(Job *j, bool is_err, const char *buf, size_t n)
{
        char **dst = is_err ? &j->err : &j->out;
        size_t *len = is_err ? &j->err_len : &j->out_len;
        bool *trunc = is_err ? &j->err_trunc : &j->out_trunc;
        size_t limit = (size_t)j->e->cfg.output_limit;

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
                job_stream(j, is_err ? RUN_STREAM_STDERR : RUN_STREAM_STDOUT, buf, n);
        }
        if (*trunc && !j->oc.output_exceeded) {
                j->oc.output_exceeded = true;
                sandbox_kill(j->sb);
        }
}

/* The result frame of docs/ARCHITECTURE.md; have_result stays false when
 * it is malformed. */
void job_handle_result(Job *j, json_t *m)
{
        const char *status = json_string_value(json_object_get(m, "status"));
        json_t *code = json_object_get(m, "exit_code");
        json_t *error = json_object_get(m, "error");
        json_t *cpu = json_object_get(m, "cpu_time");

        if (!status || (strcmp(status, "success") && strcmp(status, "error")) || !json_is_integer(code) ||
            !(json_is_null(error) || json_is_object(error)))
                return;
        j->oc.have_result = true;
        j->oc.result_is_error = strcmp(status, "error") == 0;
        j->oc.result_exit_code = (int)(json_integer_value(code) & 0xff);
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
                j->oc.result_memory_error = t && !strcmp(t, "MemoryError");
                json_decref(j->error_info);
                j->error_info = clean;
        }
        if (json_is_number(cpu))
                j->runner_cpu = json_number_value(cpu);
        json_t *rr = json_object_get(m, "result_repr");
        if (json_is_string(rr) && json_string_length(rr) <= 65536 * 4)
                j->result_repr = strndup(json_string_value(rr), json_string_length(rr));
}

/* A display bundle: MIME types to text, or to JSON for application/json. */
static const JsonLimits bundle_limits = { .max_depth = 64, .max_containers = 100000, .max_values = 1000000 };

static int buf_add_item(struct evbuffer **buf, size_t n_before, const char *s, size_t len)
{
        if (!*buf && !(*buf = evbuffer_new()))
                return -ENOMEM;
        if ((n_before > 0 && evbuffer_add(*buf, ",", 1) < 0) || evbuffer_add(*buf, s, len) < 0)
                return -ENOMEM;
        return 0;
}

int job_add_output(Job *j, const char *bundle, size_t len)
{
        const PyrConfig *c = &j->e->cfg;
        if (len == 0 || bundle[0] != '{' || json_check(bundle, len, &bundle_limits) < 0)
                return -EBADMSG;
        /* An empty one says the runner stopped at the cap. */
        if (j->n_outputs >= (size_t)c->max_outputs || (len == 2 && bundle[1] == '}') ||
            j->outputs_bytes + len > (size_t)c->max_outputs_bytes) {
                j->outputs_trunc = true;
                return 0;
        }
        if (buf_add_item(&j->outputs, j->n_outputs, "{\"data\":", 8) < 0 ||
            evbuffer_add(j->outputs, bundle, len) < 0 || evbuffer_add(j->outputs, "}", 1) < 0) {
                j->outputs_trunc = true;
                return 0;
        }
        j->n_outputs++;
        j->outputs_bytes += len;
        job_stream(j, RUN_STREAM_OUTPUT, bundle, len);
        return 0;
}

#define MAX_SKIPPED 1000             /* files_skipped entries kept */

/* What the runner may say it left out, and why (docs/API.md). */
static const char *const skip_reasons[] = {
        "not_regular", "unreadable", "file_too_large", "too_many_files", "files_too_large",
};

static int job_skip_file(Job *j, json_t *path, long long size, const char *reason)
{
        _cleanup_free_ char *item = NULL;
        /* A sandbox sending skip after skip must not grow the daemon. */
        if (j->n_skipped >= MAX_SKIPPED)
                return 0;
        json_t *o = json_pack("{s:O, s:I, s:s}", "path", path, "size", (json_int_t)size, "reason", reason);
        item = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!item || buf_add_item(&j->files_skipped, j->n_skipped, item, strlen(item)) < 0)
                return -ENOMEM;
        j->n_skipped++;
        return 0;
}

int job_add_file(Job *j, json_t *m, const char *b64, size_t len)
{
        const PyrConfig *c = &j->e->cfg;
        json_t *path = json_object_get(m, "path");
        json_t *size = json_object_get(m, "size");
        json_t *skipped = json_object_get(m, "skipped");
        const char *why = NULL;

        if (!json_is_string(path) || !rel_path_ok(json_string_value(path), json_string_length(path)) ||
            !json_is_integer(size) || json_integer_value(size) < 0)
                return -EBADMSG;
        long long n = json_integer_value(size);
        if (!j->return_files)
                return -EBADMSG;
        if (skipped) {
                for (size_t i = 0; i < ELEMENTSOF(skip_reasons) && !why; i++)
                        if (json_is_string(skipped) && !strcmp(json_string_value(skipped), skip_reasons[i]))
                                why = skip_reasons[i];
                if (!why || len > 0)
                        return -EBADMSG;
                return job_skip_file(j, path, n, why);
        }
        if (base64_decoded_size(b64, len) != n)
                return -EBADMSG;
        if (j->n_files >= (size_t)c->max_files)
                why = "too_many_files";
        else if (n > c->max_file_bytes)
                why = "file_too_large";
        else if (j->files_bytes + (size_t)n > (size_t)c->max_files_bytes)
                why = "files_too_large";
        if (why)
                return job_skip_file(j, path, n, why);
        json_t *o = json_pack("{s:O, s:I, s:s}", "path", path, "size", (json_int_t)n, "encoding", "base64");
        _cleanup_free_ char *head = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!head)
                return -ENOMEM;
        /* head ends with its '}': the content goes before it, as it is. */
        size_t hl = strlen(head) - 1;
        if (buf_add_item(&j->files, j->n_files, head, hl) < 0 ||
            evbuffer_add(j->files, ",\"content\":\"", 12) < 0 || evbuffer_add(j->files, b64, len) < 0 ||
            evbuffer_add(j->files, "\"}", 2) < 0)
                return -ENOMEM;
        j->n_files++;
        j->files_bytes += (size_t)n;
        return 0;
}

/* "[" what buf holds "]", NUL-terminated, or NULL when empty. */
static char *buf_to_array(struct evbuffer *buf, size_t *ret_len)
{
        size_t n = buf ? evbuffer_get_length(buf) : 0;
        char *s = n ? malloc(n + 3) : NULL;
        if (!s)
                return NULL;
        s[0] = '[';
        evbuffer_remove(buf, s + 1, n);
        memcpy(s + 1 + n, "]", 2);
        *ret_len = n + 2;
        return s;
}

void job_start(Job *j)
{
        Engine *e = j->e;
        Sandbox *sb = j->sb;

        assert_se(sb && sb->state == SB_BUSY && (j->state == JOB_QUEUED || j->state == JOB_STARTING));
        if (sb->has_cg) {
                if (j->memory_mb != sb->cur_memory_mb &&
                    cg_set_memory(&sb->cg, (uint64_t)j->memory_mb << 20) < 0) {
                        job_fail(j, "cannot set the memory limit");
                        return;
                }
                sb->cur_memory_mb = j->memory_mb;
                (void)cg_reset_peak(&sb->cg);
                (void)cg_read_stats(&sb->cg, &j->base);
        }
        if (j->stdin_len > 0)
                bufferevent_write(sb->in, j->stdin_data, j->stdin_len);
        if (sb->in && evbuffer_get_length(bufferevent_get_output(sb->in)) == 0) {
                bufferevent_free(sb->in);
                sb->in = NULL;
        }
        const PyrConfig *c = &e->cfg;
        json_t *msg = json_pack("{s:s, s:s%, s:{s:I, s:I, s:I, s:I, s:I}}", "type", "run", "code", j->code,
                                j->code_len, "limits", "max_outputs", (json_int_t)c->max_outputs,
                                "max_outputs_bytes", (json_int_t)c->max_outputs_bytes, "max_files",
                                (json_int_t)c->max_files, "max_file_bytes", (json_int_t)c->max_file_bytes,
                                "max_files_bytes", (json_int_t)c->max_files_bytes);
        if (msg && j->files_in)
                json_object_set(msg, "files", j->files_in);
        if (msg && j->return_files)
                json_object_set(msg, "return_files", j->return_files);
        if (msg && sb->session)
                json_object_set_new(msg, "session", json_true());
        int r = msg ? sandbox_send_frame(sb, msg) : -ENOMEM;
        json_decref(msg);
        if (r < 0) {
                job_fail(j, "cannot send the program");
                return;
        }
        /* Above idle sandboxes, below the daemon: a machine full of busy
         * runs must not delay the timers that end them. */
        (void)setpriority(PRIO_PROCESS, (id_t)sb->pid, ZYG_RUN_NICE);
        j->state = JOB_RUNNING;
        sb->runs++;
        e->n_running++;
        e->stats.runs_started++;
        j->t_start = now_usec();
        job_set_deadline(j, j->timeout_ms);
        if (!sb->has_cg) {
                struct timeval every = { 0, 10000 };
                j->ev_watch = event_new(e->base, -1, EV_PERSIST, job_on_watch, j);
                if (j->ev_watch)
                        event_add(j->ev_watch, &every);
        }
}

static void job_build_result(Job *j)
{
        Sandbox *sb = j->sb;
        RunResult *res = &j->res;
        CgroupStats st = { 0 };

        if (sb && sb->have_wait_status && !j->oc.have_wait_status) {
                j->oc.have_wait_status = true;
                j->oc.wait_status = sb->wait_status;
        }
        if (sb && sb->has_cg && j->state == JOB_RUNNING && cg_read_stats(&sb->cg, &st) == 0) {
                j->oc.oom_kills = st.oom_kills - j->base.oom_kills;
                res->cpu_time = (double)(st.cpu_usage_ns - MIN(st.cpu_usage_ns, j->base.cpu_usage_ns)) / 1e9;
                res->memory_used = (double)st.memory_peak / (1024.0 * 1024.0);
        } else {
                res->cpu_time = sb && sb->pid_exited && !sb->has_cg ? (double)sb->exit_cpu_us / 1e6 : j->runner_cpu;
                if (sb && sb->pid > 0 && !sb->pid_exited && j->state == JOB_RUNNING)
                        j->watch_peak = MAX(j->watch_peak, memwatch_tree_rss(sb->pid));
                res->memory_used = (double)j->watch_peak / (1024.0 * 1024.0);
        }
        if (j->state != JOB_RUNNING && !j->oc.setup_failed && !j->oc.cancelled) {
                /* It ended before it could run anything: our failure. */
                j->oc.setup_failed = true;
                if (!j->message)
                        j->message = strdup("the sandbox died during set-up");
        }
        res->status = run_classify(&j->oc, &res->exit_code, &res->signal);
        res->execution_time = j->t_start ? (double)(j->t_end - j->t_start) / 1e6 : 0.0;
        res->out = utf8_sanitize(j->out ? j->out : "", j->out_len, &res->out_len);
        res->err = utf8_sanitize(j->err ? j->err : "", j->err_len, &res->err_len);
        res->out_truncated = j->out_trunc;
        res->err_truncated = j->err_trunc;
        res->error = j->error_info ? json_incref(j->error_info) : NULL;
        res->message = j->message ? strdup(j->message) : NULL;
        res->result_repr = j->result_repr ? strdup(j->result_repr) : NULL;
        /* Moved, not copied: it may be max-result-bytes long. */
        res->result = TAKE_PTR(j->value);
        res->result_len = j->value_len;
        res->outputs = buf_to_array(j->outputs, &res->outputs_len);
        res->outputs_truncated = j->outputs_trunc;
        res->files_wanted = j->return_files != NULL;
        res->files = buf_to_array(j->files, &res->files_len);
        res->files_skipped = buf_to_array(j->files_skipped, &res->files_skipped_len);
        res->timeout_ms = j->timeout_ms;
        res->memory_mb = j->memory_mb;
        res->in_session = sb && sb->session;
}

/* A session's sandbox outlives its job only if the job ended as the
 * protocol says, with nothing killed or over a limit. */
static bool job_keeps_session(const Job *j, const Sandbox *sb)
{
        return sb->session && j->state == JOB_RUNNING && j->oc.have_result && !j->kill_sent && !sb->killed &&
               !j->oc.oom_kills && !j->oc.protocol_error && !j->oc.output_exceeded && !j->oc.cancelled &&
               !sb->pid_exited && !sb->init_exited;
}

#define INTERRUPT_AGAIN_MS 100

/* SIGINT to pid 2, again every INTERRUPT_AGAIN_MS within the grace: one
 * sent before the runner armed its handler for the cell (it ignores SIGINT
 * between cells) would be lost. */
static void job_send_interrupt(Job *j)
{
        Sandbox *sb = j->sb;
        usec_t now = now_usec();
        if (sb->pid > 0 && !sb->pid_exited)
                (void)kill(sb->pid, SIGINT);
        int64_t left_ms = (int64_t)((j->interrupt_until - MIN(now, j->interrupt_until)) / 1000);
        job_set_deadline(j, MIN(left_ms, INTERRUPT_AGAIN_MS));
}

void job_interrupt(Job *j)
{
        /* KeyboardInterrupt in the cell, as Jupyter does; past the grace
         * the session goes (job_on_deadline). */
        j->oc.timed_out = true;
        j->interrupt_sent = true;
        j->interrupt_until = now_usec() + (usec_t)j->e->cfg.interrupt_grace_ms * 1000;
        job_send_interrupt(j);
}

void job_finish(Job *j)
{
        Engine *e = j->e;
        Sandbox *sb = j->sb;

        if (j->state == JOB_DONE)
                return;
        j->t_end = now_usec();
        if (j->state == JOB_QUEUED && !sb)
                TAILQ_REMOVE(&e->queued, j, qlink);
        /* Output written before the result frame is in the pipes now,
         * whichever of them the loop looked at first. */
        if (sb)
                sandbox_drain_output(sb);
        job_build_result(j);
        bool keep = sb && job_keeps_session(j, sb);
        j->res.session_ended = j->res.in_session && !keep;
        if (j->state == JOB_RUNNING)
                e->n_running--;
        j->state = JOB_DONE;
        evtimer_del(j->deadline);
        if (j->ev_watch)
                event_del(j->ev_watch);
        if (sb) {
                /* A sandbox runs one job, a session's many: else it goes now
                 * (killed first, so that a result frame ends it fast). */
                sb->job = NULL;
                j->sb = NULL;
                if (keep) {
                        sandbox_hold(sb);
                } else {
                        sandbox_let_go(sb);
                        sandbox_check(sb);
                }
        }
        e->stats.runs_finished++;
        TAILQ_INSERT_TAIL(&e->completed, j, qlink);
        event_active(e->ev_complete, EV_TIMEOUT, 0);
}

void job_requeue(Job *j)
{
        Engine *e = j->e;
        assert_se(j->state == JOB_STARTING);
        j->sb = NULL;
        j->state = JOB_QUEUED;
        TAILQ_INSERT_HEAD(&e->queued, j, qlink);
        /* The queue deadline counts from the submission, not from now:
         * a zygote that keeps dying cannot keep a run waiting forever. */
        int64_t waited_ms = (int64_t)((now_usec() - j->t_submit) / 1000);
        job_set_deadline(j, MAX(e->cfg.queue_timeout_ms - waited_ms, 0));
}

void job_fail(Job *j, const char *fmt, ...)
{
        if (j->state == JOB_DONE)
                return;
        if (!j->message) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&j->message, fmt, ap) < 0)
                        j->message = NULL;
                va_end(ap);
        }
        j->oc.setup_failed = true;
        job_finish(j);
}

static void job_on_deadline(evutil_socket_t fd, short what, void *arg)
{
        Job *j = arg;
        Engine *e = j->e;

        switch (j->state) {
        case JOB_QUEUED:
                e->stats.deadline_misses++;
                job_fail(j, "no sandbox became free within %lld ms", (long long)e->cfg.queue_timeout_ms);
                break;
        case JOB_STARTING:
                sandbox_start_missed(j->sb);
                break;
        case JOB_RUNNING:
                if (j->sb->session && !j->interrupt_sent && !j->kill_sent) {
                        job_interrupt(j);
                        break;
                }
                if (j->interrupt_sent && !j->kill_sent && now_usec() < j->interrupt_until) {
                        job_send_interrupt(j);
                        break;
                }
                if (!j->kill_sent) {
                        /* The user's timeout: kill, then allow a bounded grace
                         * for the sandbox to be seen going. */
                        j->oc.timed_out = true;
                        j->kill_sent = true;
                        sandbox_kill(j->sb);
                        job_set_deadline(j, e->cfg.kill_grace_ms);
                        break;
                }
                e->stats.deadline_misses++;
                engine_notice(e, "kill_grace_missed", "sandbox %llu was not seen to stop %lld ms after its timeout",
                              (unsigned long long)j->sb->id, (long long)e->cfg.kill_grace_ms);
                /* A SIGKILL the kernel took is certain death, only slow (a
                 * fork bomb's teardown on a busy machine): it timed out.
                 * With no kill delivered, it is our failure. */
                if (j->sb->kill_delivered)
                        job_finish(j);
                else
                        job_fail(j, "the sandbox did not stop within %lld ms of its timeout",
                                 (long long)e->cfg.kill_grace_ms);
                break;
        case JOB_DONE:
        default:
                break;
        }
}

/* Without a memory cgroup: poll the sandbox's resident size. Coarser than
 * the cgroup (a fast allocation can overshoot by one interval). */
static void job_on_watch(evutil_socket_t fd, short what, void *arg)
{
        Job *j = arg;
        if (j->state != JOB_RUNNING || !j->sb || j->sb->pid <= 0)
                return;
        uint64_t rss = memwatch_tree_rss(j->sb->pid);
        j->watch_peak = MAX(j->watch_peak, rss);
        if (rss > (uint64_t)j->memory_mb << 20) {
                j->oc.oom_kills = 1;
                sandbox_kill(j->sb);
        }
}

int job_new(Engine *e, Job **ret)
{
        Job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->e = e;
        j->ticket = ++e->next_id;
        j->t_submit = now_usec();
        j->state = JOB_QUEUED;
        TAILQ_INSERT_TAIL(&e->jobs, j, link);
        j->deadline = evtimer_new(e->base, job_on_deadline, j);
        if (!j->deadline) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}
