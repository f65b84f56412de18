/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "json-util.h"
#include "macro.h"
#include "result.h"

static const char *const status_names[_RUN_STATUS_MAX] = {
        [RUN_SUCCESS] = "success",
        [RUN_ERROR] = "error",
        [RUN_TIMEOUT] = "timeout",
        [RUN_MEMORY_EXCEEDED] = "memory_exceeded",
        [RUN_OUTPUT_LIMIT] = "output_limit",
        [RUN_KILLED] = "killed",
        [RUN_INTERNAL_ERROR] = "internal_error",
};

const char *run_status_name(RunStatus s)
{
        return s >= 0 && s < _RUN_STATUS_MAX ? status_names[s] : NULL;
}

RunStatus run_status_from_name(const char *s)
{
        for (int i = 0; i < _RUN_STATUS_MAX; i++)
                if (s && strcmp(status_names[i], s) == 0)
                        return (RunStatus)i;
        return _RUN_STATUS_INVALID;
}

RunStatus run_classify(const RunOutcome *o, int *ret_exit_code, int *ret_signal)
{
        int code = -1, sig = 0;

        if (o->have_wait_status) {
                if (WIFEXITED(o->wait_status))
                        code = WEXITSTATUS(o->wait_status);
                else if (WIFSIGNALED(o->wait_status))
                        sig = WTERMSIG(o->wait_status);
        }
        if (o->have_result && !o->have_wait_status)
                code = o->result_exit_code;
        *ret_exit_code = code;
        *ret_signal = sig;

        if (o->setup_failed)
                return RUN_INTERNAL_ERROR;
        if (o->timed_out)
                return RUN_TIMEOUT;
        if (o->output_exceeded)
                return RUN_OUTPUT_LIMIT;
        if (o->oom_kills > 0 || (o->have_result && o->result_memory_error))
                return RUN_MEMORY_EXCEEDED;
        if (o->cancelled)
                return RUN_KILLED;
        if (o->have_result)
                return o->result_is_error ? RUN_ERROR : RUN_SUCCESS;
        if (o->protocol_error)
                return RUN_ERROR;
        if (sig == SIGXCPU)
                return RUN_TIMEOUT;
        if (sig != 0)
                return RUN_KILLED;
        if (code == 0)
                return RUN_SUCCESS;
        if (code > 0)
                return RUN_ERROR;
        return RUN_INTERNAL_ERROR;
}

void run_result_clear(RunResult *r)
{
        free(r->out);
        free(r->err);
        json_decref(r->error);
        free(r->message);
        free(r->result_repr);
        free(r->result);
        free(r->outputs);
        free(r->files);
        free(r->files_skipped);
        memset(r, 0, sizeof(*r));
}

static int copy_bytes(const char *s, size_t len, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = malloc(len + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, s, len);
        (*ret)[len] = '\0';
        return 0;
}

static int copy_str(const char *s, char **ret)
{
        return copy_bytes(s, s ? strlen(s) : 0, ret);
}

int run_result_copy(const RunResult *src, RunResult *ret)
{
        *ret = *src;
        ret->error = json_incref(src->error);
        int r = copy_bytes(src->out, src->out_len, &ret->out);
        int r2 = copy_bytes(src->err, src->err_len, &ret->err);
        int r3 = copy_str(src->message, &ret->message);
        int r4 = copy_str(src->result_repr, &ret->result_repr);
        int r5 = copy_bytes(src->result, src->result_len, &ret->result);
        int r6 = copy_bytes(src->outputs, src->outputs_len, &ret->outputs);
        int r7 = copy_bytes(src->files, src->files_len, &ret->files);
        int r8 = copy_bytes(src->files_skipped, src->files_skipped_len, &ret->files_skipped);
        if (r < 0 || r2 < 0 || r3 < 0 || r4 < 0 || r5 < 0 || r6 < 0 || r7 < 0 || r8 < 0) {
                run_result_clear(ret);
                return -ENOMEM;
        }
        return 0;
}

char *run_result_summary(const RunResult *r)
{
        char *s = NULL;
        int n = -1;

        switch (r->status) {
        case RUN_SUCCESS:
                return NULL;
        case RUN_TIMEOUT:
                n = asprintf(&s, "Execution timed out after %g s", (double)r->timeout_ms / 1000.0);
                break;
        case RUN_MEMORY_EXCEEDED:
                n = asprintf(&s, "Memory limit of %lld MB exceeded", (long long)r->memory_mb);
                break;
        case RUN_OUTPUT_LIMIT:
                n = asprintf(&s, "Output limit exceeded");
                break;
        case RUN_KILLED:
                n = r->signal > 0 ? asprintf(&s, "Killed by signal %d (%s)", r->signal, strsignal(r->signal))
                                  : asprintf(&s, "Killed");
                break;
        case RUN_INTERNAL_ERROR:
                n = asprintf(&s, "Internal error: %s", r->message ? r->message : "unknown");
                break;
        case RUN_ERROR: {
                const char *type = json_string_value(json_object_get(r->error, "type"));
                json_t *line = json_object_get(r->error, "line");
                if (type && json_is_integer(line))
                        n = asprintf(&s, "%s on line %lld", type, (long long)json_integer_value(line));
                else if (type)
                        n = asprintf(&s, "%s", type);
                else if (r->message)
                        n = asprintf(&s, "%s", r->message);
                else
                        n = asprintf(&s, "Exited with code %d", r->exit_code);
                break;
        }
        case _RUN_STATUS_MAX:
        case _RUN_STATUS_INVALID:
        default:
                break;
        }
        return n < 0 ? NULL : s;
}

json_t *run_result_to_json(const RunResult *r)
{
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "status", json_string(run_status_name(r->status)));
        json_object_set_new(o, "stdout", json_stringn(r->out ? r->out : "", r->out_len));
        json_object_set_new(o, "stderr", json_stringn(r->err ? r->err : "", r->err_len));
        json_object_set_new(o, "stdout_truncated", json_boolean(r->out_truncated));
        json_object_set_new(o, "stderr_truncated", json_boolean(r->err_truncated));
        json_object_set_new(o, "exit_code", r->exit_code >= 0 ? json_integer(r->exit_code) : json_null());
        json_object_set_new(o, "signal", r->signal > 0 ? json_integer(r->signal) : json_null());
        json_object_set_new(o, "execution_time", json_real(r->execution_time));
        json_object_set_new(o, "cpu_time", json_real(r->cpu_time));
        json_object_set_new(o, "memory_used", json_real(r->memory_used));
        char *summary = run_result_summary(r);
        json_object_set_new(o, "error", summary ? json_string(summary) : json_null());
        free(summary);
        json_object_set_new(o, "error_info", r->error ? json_incref(r->error) : json_null());
        json_object_set_new(o, "outputs_truncated", json_boolean(r->outputs_truncated));
        if (r->in_session)
                json_object_set_new(o, "session_ended", json_boolean(r->session_ended));
        return o;
}

char *run_result_dumps(const RunResult *r, size_t flags, size_t *ret_len)
{
        const struct {
                const char *key, *text, *none;
                size_t len;
                bool skip;
        } splice[] = {
                { ",\"outputs\":", r->outputs, "[]", r->outputs_len, false },
                { ",\"files\":", r->files, "[]", r->files_len, !r->files_wanted },
                { ",\"files_skipped\":", r->files_skipped, "[]", r->files_skipped_len, !r->files_wanted },
                /* Last, where clients look for it (a value too deep for them). */
                { ",\"result\":", r->result, "null", r->result_len, false },
        };
        json_t *o = run_result_to_json(r);
        char *head = o ? json_dumps_shortest(o, flags) : NULL;
        json_decref(o);
        if (!head)
                return NULL;
        /* head ends with the object's '}'; the texts go before it. */
        size_t len = strlen(head) - 1;
        size_t total = len + 2;
        for (size_t i = 0; i < ELEMENTSOF(splice); i++)
                if (!splice[i].skip)
                        total += strlen(splice[i].key) + (splice[i].text ? splice[i].len : strlen(splice[i].none));
        char *s = realloc(head, total);
        if (!s) {
                free(head);
                return NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(splice); i++) {
                if (splice[i].skip)
                        continue;
                const char *t = splice[i].text ? splice[i].text : splice[i].none;
                size_t tl = splice[i].text ? splice[i].len : strlen(splice[i].none);
                memcpy(s + len, splice[i].key, strlen(splice[i].key));
                len += strlen(splice[i].key);
                memcpy(s + len, t, tl);
                len += tl;
        }
        memcpy(s + len, "}", 2);
        *ret_len = len + 1;
        return s;
}
