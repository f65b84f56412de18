/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "macro.h"

#define INT_ENTRY(n, field, lo, hi, d, u, h) \
        { n, CONFIG_INT, offsetof(PyrConfig, field), lo, hi, d, NULL, 0, u, h, false }
#define STR_ENTRY(n, field, d, h) \
        { n, CONFIG_STR, offsetof(PyrConfig, field), 0, 0, 0, d, sizeof(((PyrConfig *)0)->field), "", h, false }
#define DINT_ENTRY(n, field, lo, hi, d, u, h) \
        { n, CONFIG_INT, offsetof(PyrConfig, field), lo, hi, d, NULL, 0, u, h, true }
#define DSTR_ENTRY(n, field, d, h) \
        { n, CONFIG_STR, offsetof(PyrConfig, field), 0, 0, 0, d, sizeof(((PyrConfig *)0)->field), "", h, true }

const ConfigEntry config_table[] = {
        INT_ENTRY("timeout-ms", timeout_ms, 100, 300000, 30000, "ms", "default wall timeout of a run"),
        INT_ENTRY("max-timeout-ms", max_timeout_ms, 100, 300000, 300000, "ms", "largest timeout a run may ask for"),
        INT_ENTRY("memory-mb", memory_mb, 16, 65536, 512, "MiB", "default memory limit of a run"),
        INT_ENTRY("min-memory-mb", min_memory_mb, 16, 65536, 64, "MiB", "smallest memory limit a run may ask for"),
        INT_ENTRY("max-memory-mb", max_memory_mb, 16, 65536, 2048, "MiB", "largest memory limit a run may ask for"),
        INT_ENTRY("output-limit", output_limit, 1024, 64 << 20, 1 << 20, "bytes", "stdout and stderr kept, each; more kills the run (output_limit)"),
        INT_ENTRY("max-code-bytes", max_code_bytes, 1, 16 << 20, 1 << 20, "bytes", "largest program accepted"),
        INT_ENTRY("max-stdin-bytes", max_stdin_bytes, 0, 64 << 20, 1 << 20, "bytes", "largest stdin accepted"),
        INT_ENTRY("max-result-bytes", max_result_bytes, 4096, 64 << 20, 16 << 20, "bytes", "largest message a sandbox may send"),
        INT_ENTRY("tmpfs-mb", tmpfs_mb, 1, 4096, 64, "MiB", "size of the writable /tmp of a run"),
        INT_ENTRY("tmpfs-inodes", tmpfs_inodes, 16, 1 << 20, 4096, "inodes", "files the writable /tmp may hold"),
        INT_ENTRY("pids-max", pids_max, 2, 4096, 64, "tasks", "processes and threads of a run"),
        INT_ENTRY("nofile", nofile, 16, 65536, 256, "fds", "open files per process (RLIMIT_NOFILE)"),
        INT_ENTRY("stack-mb", stack_mb, 1, 1024, 8, "MiB", "stack size (RLIMIT_STACK)"),
        INT_ENTRY("cpu-percent", cpu_percent, 0, 6400, 0, "%", "CPU quota of a run, 100 = one core, 0 = none"),
        INT_ENTRY("pool-size", pool_size, 0, 64, 4, "sandboxes", "pre-forked idle sandboxes"),
        INT_ENTRY("zygote-max-forks", zygote_max_forks, 1, 100000000, 5000, "runs", "restart the zygote after this many runs"),
        INT_ENTRY("spare-zygote", spare_zygote, 0, 1, 1, "bool", "keep a second zygote ready to take over at once when one dies (about 150 MB)"),
        INT_ENTRY("queue-timeout-ms", queue_timeout_ms, 100, 600000, 10000, "ms", "a run that has no sandbox by then ends as internal_error"),
        INT_ENTRY("start-timeout-ms", start_timeout_ms, 100, 60000, 5000, "ms", "a sandbox not started by then is killed; its run ends as internal_error"),
        INT_ENTRY("kill-grace-ms", kill_grace_ms, 10, 10000, 500, "ms", "after a timeout's kill, a run not seen gone by then ends as internal_error"),
        INT_ENTRY("sandbox-uid", sandbox_uid, 1000, 2147483646, 101000, "uid", "first host uid/gid of the sandbox users when run as root"),
        INT_ENTRY("sandbox-uids", sandbox_uids, 1, 65536, 1024, "uids", "host uids from sandbox-uid on, one per live sandbox, so that per-user kernel counters are not shared (root only)"),
        INT_ENTRY("zygote-start-timeout-s", zygote_start_timeout_s, 10, 3600, 120, "s", "a zygote not ready by then (its preload imported) is killed"),
        INT_ENTRY("max-outputs", max_outputs, 0, 10000, 100, "items", "display items (plots, display()) a run keeps; later ones are dropped and outputs_truncated set"),
        INT_ENTRY("max-outputs-bytes", max_outputs_bytes, 1024, 64 << 20, 16 << 20, "bytes", "total size of a run's display items"),
        INT_ENTRY("max-files", max_files, 0, 10000, 100, "files", "files a request may give, and a run may return"),
        INT_ENTRY("max-file-bytes", max_file_bytes, 0, 64 << 20, 8 << 20, "bytes", "largest file a run returns; larger ones are listed as skipped"),
        INT_ENTRY("max-files-bytes", max_files_bytes, 0, 64 << 20, 16 << 20, "bytes", "total size of the files given, and of those returned"),
        INT_ENTRY("session-max-lifetime-s", session_max_lifetime_s, 1, 86400, 3600, "s", "a session is ended this long after it was made, whatever it does"),
        INT_ENTRY("interrupt-grace-ms", interrupt_grace_ms, 10, 60000, 1000, "ms", "a session cell past its timeout gets KeyboardInterrupt; not stopped by then, its session is killed"),
        STR_ENTRY("cache-dir", cache_dir, "", "caches built once, such as matplotlib's font list (empty: /var/cache/pyrunner as root, else ~/.cache/pyrunner)"),
        STR_ENTRY("preload", preload, "numpy,pandas,scipy,sympy,matplotlib,sklearn", "modules the zygote imports ('' for none)"),
        DSTR_ENTRY("listen", listen, "127.0.0.1:8000", "address to serve, HOST:PORT"),
        DSTR_ENTRY("api-keys", api_keys, "", "accepted API keys, comma-separated (empty: no auth)"),
        DSTR_ENTRY("api-keys-file", api_keys_file, "", "file with one API key per line"),
        DSTR_ENTRY("cors-origin", cors_origin, "", "Access-Control-Allow-Origin value (empty: CORS off)"),
        DINT_ENTRY("insecure-no-auth", insecure_no_auth, 0, 1, 0, "bool", "serve a non-loopback address without API keys"),
        DINT_ENTRY("max-concurrency", max_concurrency, 0, 1024, 0, "runs", "runs at once (0: twice the cores)"),
        DINT_ENTRY("max-queue", max_queue, 0, 100000, 64, "runs", "runs waiting beyond that; more get 429"),
        DINT_ENTRY("rate-limit", rate_limit, 0, 1000000, 100, "req/s", "requests per second per API key or client (0: off); unless set, only for non-loopback clients of a server with API keys"),
        DINT_ENTRY("rate-burst", rate_burst, 1, 1000000, 200, "requests", "token bucket size of the rate limit"),
        DINT_ENTRY("max-body-bytes", max_body_bytes, 1024, 64 << 20, 2 << 20, "bytes", "largest request body"),
        DINT_ENTRY("max-header-bytes", max_header_bytes, 1024, 1 << 20, 16 << 10, "bytes", "largest request header block"),
        DINT_ENTRY("idle-timeout-s", idle_timeout_s, 1, 3600, 30, "s", "close connections idle (or stalled) this long"),
        DINT_ENTRY("max-connections", max_connections, 1, 100000, 1024, "connections", "open client connections"),
        DINT_ENTRY("max-reply-bytes", max_reply_bytes, 1 << 20, 64LL << 30, 256 << 20, "bytes", "reply bytes held for clients that have not read them, all together; above it runs get 503"),
        DINT_ENTRY("send-stall-s", send_stall_s, 1, 3600, 10, "s", "a client that takes less than 64 KiB of its reply in this long is dropped"),
        DINT_ENTRY("drain-timeout-ms", drain_timeout_ms, 0, 600000, 10000, "ms", "on SIGTERM, how long runs in flight may finish"),
        DINT_ENTRY("debug-log", debug_log, 0, 1, 0, "bool", "log code and output (never in production)"),
        DINT_ENTRY("max-sessions", max_sessions, 0, 100000, 100, "sessions", "live sessions in all (0: sessions off); more get 429"),
        DINT_ENTRY("max-sessions-per-key", max_sessions_per_key, 1, 100000, 20, "sessions", "live sessions of one API key (or client without keys)"),
        DINT_ENTRY("session-idle-timeout-s", session_idle_timeout_s, 1, 86400, 600, "s", "a session unused this long is ended (a session may ask for less)"),
        DINT_ENTRY("self-test", self_test, 0, 1, 1, "bool", "try escapes through the sandbox at start; fail closed"),
};
const size_t config_table_size = ELEMENTSOF(config_table);
_Static_assert(ELEMENTSOF(config_table) <= 64, "PyrConfig.set_mask has a bit per setting");

void config_init_defaults(PyrConfig *c)
{
        memset(c, 0, sizeof(*c));
        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                char *p = (char *)c + e->offset;
                if (e->type == CONFIG_INT)
                        *(int64_t *)p = e->def;
                else
                        snprintf(p, e->str_size, "%s", e->def_str);
        }
}

const ConfigEntry *config_find(const char *name)
{
        for (size_t i = 0; i < config_table_size; i++)
                if (strcmp(config_table[i].name, name) == 0)
                        return &config_table[i];
        return NULL;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
        if (!s || !*s || isspace((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_seconds_ms(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret)
{
        int64_t ms = 0;
        const char *p = s;
        int digits = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++, digits++) {
                ms = ms * 10 + (*p - '0');
                if (ms > INT64_MAX / 1000)
                        return -ERANGE;
        }
        ms *= 1000;
        if (*p == '.') {
                int scale = 100;
                p++;
                for (; isdigit((unsigned char)*p); p++, digits++) {
                        if (scale == 0)
                                return -EINVAL;
                        if (ms > INT64_MAX - (*p - '0') * scale)
                                return -ERANGE;
                        ms += (*p - '0') * scale;
                        scale /= 10;
                }
        }
        if (*p != '\0' || digits == 0)
                return -EINVAL;
        if (ms < min_ms || ms > max_ms)
                return -ERANGE;
        *ret = ms;
        return 0;
}

int config_set(PyrConfig *c, const char *name, const char *value)
{
        const ConfigEntry *e = config_find(name);
        int r = 0;
        if (!e)
                return -ENOENT;
        char *p = (char *)c + e->offset;
        if (e->type == CONFIG_INT)
                r = parse_int64(value, e->min, e->max, (int64_t *)p);
        else if (strlen(value) >= e->str_size)
                r = -ERANGE;
        else
                snprintf(p, e->str_size, "%s", value);
        if (r == 0)
                c->set_mask |= UINT64_C(1) << (e - config_table);
        return r;
}

bool config_is_set(const PyrConfig *c, const char *name)
{
        const ConfigEntry *e = config_find(name);
        return e && (c->set_mask >> (e - config_table) & 1);
}

int config_from_env(PyrConfig *c, const char **bad)
{
        for (size_t i = 0; i < config_table_size; i++) {
                char var[64] = "PYRUNNER_";
                size_t k = strlen(var);
                for (const char *n = config_table[i].name; *n && k < sizeof(var) - 1; n++)
                        var[k++] = *n == '-' ? '_' : (char)toupper((unsigned char)*n);
                var[k] = '\0';
                const char *v = getenv(var);
                if (!v)
                        continue;
                int r = config_set(c, config_table[i].name, v);
                if (r < 0) {
                        if (bad)
                                *bad = config_table[i].name;
                        return r;
                }
        }
        return 0;
}

int config_validate(const PyrConfig *c, const char **why)
{
        if (c->min_memory_mb > c->max_memory_mb) {
                *why = "min-memory-mb exceeds max-memory-mb";
                return -EINVAL;
        }
        if (c->memory_mb < c->min_memory_mb || c->memory_mb > c->max_memory_mb) {
                *why = "memory-mb is outside min-memory-mb..max-memory-mb";
                return -EINVAL;
        }
        if (c->timeout_ms > c->max_timeout_ms) {
                *why = "timeout-ms exceeds max-timeout-ms";
                return -EINVAL;
        }
        return 0;
}

int config_get_int(const PyrConfig *c, const ConfigEntry *e, int64_t *ret)
{
        if (e->type != CONFIG_INT)
                return -EINVAL;
        *ret = *(const int64_t *)((const char *)c + e->offset);
        return 0;
}

int config_from_file(PyrConfig *c, const char *path, unsigned *line)
{
        FILE *f = fopen(path, "re");
        char buf[2048];
        int r = 0;

        *line = 0;
        if (!f)
                return -errno;
        while (fgets(buf, sizeof(buf), f)) {
                (*line)++;
                char *s = buf, *eq, *end;
                while (isspace((unsigned char)*s))
                        s++;
                if (*s == '#' || *s == '\0')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        r = -EINVAL;
                        break;
                }
                for (end = eq; end > s && isspace((unsigned char)end[-1]); end--)
                        ;
                *end = '\0';
                char *v = eq + 1;
                while (isspace((unsigned char)*v))
                        v++;
                for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]); end--)
                        ;
                *end = '\0';
                r = config_set(c, s, v);
                if (r < 0)
                        break;
        }
        fclose(f);
        return r;
}

void config_print_help(FILE *f, bool daemon)
{
        for (size_t i = 0; i < config_table_size; i++) {
                const ConfigEntry *e = &config_table[i];
                if (e->daemon_only && !daemon)
                        continue;
                if (e->type == CONFIG_INT)
                        fprintf(f, "  --%-18s %s [%s, %" PRId64 "..%" PRId64 ", default %" PRId64 "]\n",
                                e->name, e->help, e->unit, e->min, e->max, e->def);
                else
                        fprintf(f, "  --%-18s %s [default '%s']\n", e->name, e->help, e->def_str);
        }
}
