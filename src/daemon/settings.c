/* SPDX-License-Identifier: MIT */
/* pyrunnerd's settings: defaults, --config FILE, PYRUNNER_* variables,
 * flags, API keys and the executor route's PYTHON_EXECUTOR_* limits. */
#include <errno.h>
#include <event2/util.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: pyrunnerd [--listen HOST:PORT] [--config FILE] [--SETTING VALUE ...]\n"
                   "\n"
                   "Serves the pyrunner HTTP/JSON API (GET /, POST /run, GET /metrics, GET /openapi.json,\n"
                   "POST /system/python_executor/execute_code/invoke). Settings come from the defaults,\n"
                   "then --config FILE ('name = value' lines), then PYRUNNER_<NAME> variables, then flags.\n"
                   "The PYTHON_EXECUTOR_* variables set the executor route's defaults and maxima.\n"
                   "\nSettings:\n");
        config_print_help(f, true);
}

void fail_config(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "pyrunnerd: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(2);
}

static void add_keys(const char *list, const char *seps)
{
        int r = keys_add(&D.keys, list, seps);
        if (r == -ENOMEM)
                fail_config("out of memory");
        if (r < 0)
                fail_config("API keys must be shorter than %d characters, at most %d of them", KEY_MAX_LEN,
                            MAX_KEYS);
}

static int64_t executor_env(const char *name, int64_t def, int64_t lo, int64_t hi)
{
        const char *v = getenv(name);
        int64_t x;
        if (!v)
                return def;
        if (parse_int64(v, lo, hi, &x) < 0)
                fail_config("invalid %s '%s' (%lld..%lld)", name, v, (long long)lo, (long long)hi);
        return x;
}

static void read_settings(int argc, char **argv)
{
        const char *bad = NULL, *why = NULL, *config_file = NULL;
        struct option longopts[64] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
        };
        size_t nopt = 2;
        for (size_t i = 0; i < config_table_size && nopt < ELEMENTSOF(longopts) - 1; i++)
                longopts[nopt++] = (struct option){ config_table[i].name, required_argument, NULL, 's' };

        config_init_defaults(&D.cfg);
        /* First pass: only --config and --help. */
        opterr = 0;
        int opt, idx;
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
                if (opt == 'c')
                        config_file = optarg;
                else if (opt == 'h') {
                        usage(stdout);
                        exit(0);
                } else if (opt == '?')
                        fail_config("unknown option '%s' (try --help)", argv[optind - 1]);
                else if (opt == ':')
                        fail_config("option '%s' needs a value", argv[optind - 1]);
        }
        if (optind < argc)
                fail_config("unexpected argument '%s'", argv[optind]);
        if (config_file) {
                unsigned line;
                if (config_from_file(&D.cfg, config_file, &line) < 0)
                        fail_config("%s:%u: invalid setting", config_file, line);
        }
        if (config_from_env(&D.cfg, &bad) < 0)
                fail_config("invalid value in PYRUNNER_ environment for %s", bad);
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1)
                if (opt == 's' && config_set(&D.cfg, longopts[idx].name, optarg) < 0)
                        fail_config("invalid value '%s' for --%s", optarg, longopts[idx].name);
        if (config_validate(&D.cfg, &why) < 0)
                fail_config("%s", why);
}

static void read_keys(void)
{
        add_keys(D.cfg.api_keys, ",");
        if (!D.cfg.api_keys_file[0])
                return;
        FILE *f = fopen(D.cfg.api_keys_file, "re");
        char line[512];
        if (!f)
                fail_config("cannot read %s: %s", D.cfg.api_keys_file, strerror(errno));
        while (fgets(line, sizeof(line), f))
                add_keys(line, "\n");
        fclose(f);
}

/* POST /run takes the settings; the executor route has its own defaults
 * and maxima, within the same bounds. */
static void set_limits(void)
{
        const PyrConfig *c = &D.cfg;
        RequestLimits *x = &D.limits_invoke;

        request_limits_from_config(c, &D.limits_run);
        *x = D.limits_run;
        x->timeout_default_s = executor_env("PYTHON_EXECUTOR_DEFAULT_TIMEOUT", 5, 1, 300);
        x->timeout_max_s = executor_env("PYTHON_EXECUTOR_MAX_TIMEOUT", 30, 1, c->max_timeout_ms / 1000);
        x->memory_default_mb = executor_env("PYTHON_EXECUTOR_DEFAULT_MAX_MEMORY", 100, c->min_memory_mb,
                                            c->max_memory_mb);
        x->memory_max_mb = executor_env("PYTHON_EXECUTOR_MAX_MEMORY", 500, c->min_memory_mb, c->max_memory_mb);
        x->timeout_default_s = MIN(x->timeout_default_s, x->timeout_max_s);
        x->memory_default_mb = MIN(x->memory_default_mb, x->memory_max_mb);
}

void settings_parse(int argc, char **argv, struct sockaddr_storage *ret_addr, int *ret_len)
{
        read_settings(argc, argv);
        read_keys();
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        D.max_concurrency = D.cfg.max_concurrency ? (unsigned)D.cfg.max_concurrency : (unsigned)MAX(2, 2 * cores);
        set_limits();
        D.rate_set = config_is_set(&D.cfg, "rate-limit");

        *ret_len = sizeof(*ret_addr);
        if (evutil_parse_sockaddr_port(D.cfg.listen, (struct sockaddr *)ret_addr, ret_len) < 0)
                fail_config("cannot parse listen address '%s' (HOST:PORT)", D.cfg.listen);
        if (!sockaddr_is_loopback((struct sockaddr *)ret_addr) && D.keys.n == 0 && !D.cfg.insecure_no_auth)
                fail_config("refusing to serve %s without API keys; set --api-keys or --insecure-no-auth 1",
                            D.cfg.listen);
}
