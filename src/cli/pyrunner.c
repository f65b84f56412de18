/* SPDX-License-Identifier: MIT */
/* pyrunner: run one Python program in a fresh sandbox, no daemon needed. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "json-util.h"
#include "macro.h"
#include "pyrunner-config.h"
#include "zygote-proto.h"

enum { EXIT_USAGE = 2, EXIT_TIMEOUT = 124, EXIT_MEMORY = 125, EXIT_OUTPUT = 126, EXIT_INTERNAL = 70 };

typedef struct Cli {
        struct event_base *base;
        Engine *engine;
        RunRequest req;
        bool json, info_only, have_result, failed_start;
        int exit_code;
        RunResult result;
        char start_error[512];
        struct event *ev_idle;
        int interrupted;
} Cli;

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: pyrunner run [OPTIONS] FILE|-\n"
                "       pyrunner info [OPTIONS]\n"
                "\n"
                "Runs one Python program in a fresh sandbox (user, pid, mount, ipc, uts and\n"
                "network namespaces, read-only root, seccomp, cgroup limits) and prints its\n"
                "output. No daemon is needed. By default nothing is preloaded: the program\n"
                "imports what it uses. --preload makes the zygote import modules first.\n"
                "\n"
                "Options:\n"
                "  --timeout S           wall timeout in seconds (default 30)\n"
                "  --memory MB           memory limit in MiB (default 512, 64..2048)\n"
                "  --stdin FILE          feed FILE to the program's stdin\n"
                "  --json                print the result as one JSON object\n"
                "  --preload LIST        modules to import in the zygote first\n"
                "                        (e.g. numpy,pandas; 'all' for the six defaults)\n"
                "  --no-cgroups          use rlimits only, even where cgroups are writable\n"
                "  -h, --help            this help\n"
                "Settings (also as PYRUNNER_<NAME> variables; the CLI itself\n"
                "defaults to pool-size 0 and no preload, a daemon to the table):\n");
        config_print_help(f, false);
        fprintf(f,
                "\nExit status: the program's own on success or error; 124 timeout,\n"
                "125 memory_exceeded, 126 output_limit, 128+N killed by signal N,\n"
                "70 internal_error, 2 bad usage or input.\n");
}

static _noreturn_ __attribute__((format(printf, 1, 2))) void fail_usage(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "pyrunner: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(EXIT_USAGE);
}

static char *read_input(const char *path, size_t max, size_t *ret_len, const char *what)
{
        int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "pyrunner: cannot read %s '%s': %s\n", what, path, strerror(errno));
                exit(EXIT_USAGE);
        }
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                }
                if (!buf) {
                        fprintf(stderr, "pyrunner: out of memory\n");
                        exit(EXIT_INTERNAL);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "pyrunner: cannot read %s '%s': %s\n", what, path, strerror(errno));
                        exit(EXIT_USAGE);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        fprintf(stderr, "pyrunner: %s '%s' is larger than %zu bytes\n", what, path, max);
                        exit(EXIT_USAGE);
                }
        }
        close(fd);
        buf[len] = '\0';
        *ret_len = len;
        return buf;
}

static int status_exit_code(const RunResult *r)
{
        switch (r->status) {
        case RUN_SUCCESS:
                return r->exit_code > 0 ? r->exit_code : 0;
        case RUN_ERROR:
                return r->exit_code > 0 ? r->exit_code : 1;
        case RUN_TIMEOUT:
                return EXIT_TIMEOUT;
        case RUN_MEMORY_EXCEEDED:
                return EXIT_MEMORY;
        case RUN_OUTPUT_LIMIT:
                return EXIT_OUTPUT;
        case RUN_KILLED:
                return 128 + (r->signal > 0 ? r->signal : SIGKILL);
        case RUN_INTERNAL_ERROR:
        case _RUN_STATUS_MAX:
        case _RUN_STATUS_INVALID:
        default:
                return EXIT_INTERNAL;
        }
}

static void on_idle_check(evutil_socket_t fd, short what, void *arg)
{
        Cli *c = arg;
        if (c->have_result && engine_idle(c->engine))
                event_base_loopbreak(c->base);
}

static void on_done(const RunResult *res, void *userdata)
{
        Cli *c = userdata;
        c->have_result = true;
        c->result = *res;
        /* Output may hold NUL bytes: copy by length. */
        c->result.out = malloc(res->out_len + 1);
        c->result.err = malloc(res->err_len + 1);
        if (c->result.out)
                memcpy(c->result.out, res->out, res->out_len + 1);
        if (c->result.err)
                memcpy(c->result.err, res->err, res->err_len + 1);
        c->result.error = res->error ? json_incref(res->error) : NULL;
        c->result.message = res->message ? strdup(res->message) : NULL;
        c->result.result_repr = NULL;
        c->result.result = res->result ? json_incref(res->result) : NULL;
        struct timeval tv = { 0, 1000 };
        event_add(c->ev_idle, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
        Cli *c = arg;
        /* Stop cleanly: the sandbox, its cgroups and the zygote go too. */
        fprintf(stderr, "pyrunner: interrupted by signal %d\n", (int)sig);
        c->interrupted = (int)sig;
        event_base_loopbreak(c->base);
}

static void on_ready(Engine *e, int error, const char *message, void *userdata)
{
        Cli *c = userdata;
        if (error < 0) {
                snprintf(c->start_error, sizeof(c->start_error), "%s", message ? message : strerror(-error));
                c->failed_start = true;
                event_base_loopbreak(c->base);
                return;
        }
        if (c->info_only) {
                json_error_t jerr;
                json_t *info = json_loads(engine_info(e), 0, &jerr);
                if (!info)
                        info = json_object();
                json_object_set_new(info, "version", json_string(PYRUNNER_VERSION));
                json_object_set_new(info, "layers", engine_layers_json(e));
                json_dumpf_shortest(info, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(info);
                c->have_result = true;
                c->exit_code = 0;
                event_base_loopbreak(c->base);
                return;
        }
        uint64_t ticket;
        int r = engine_submit(e, &c->req, on_done, c, &ticket);
        if (r < 0) {
                snprintf(c->start_error, sizeof(c->start_error), "cannot run: %s", strerror(-r));
                c->failed_start = true;
                event_base_loopbreak(c->base);
        }
}

static uint32_t parse_sabotage(const char *list)
{
        static const struct { const char *name; uint32_t bit; } names[] = {
                { "userns", ZYG_LAYER_USERNS }, { "pidns", ZYG_LAYER_PIDNS }, { "mntns", ZYG_LAYER_MNTNS },
                { "netns", ZYG_LAYER_NETNS }, { "ipcns", ZYG_LAYER_IPCNS }, { "utsns", ZYG_LAYER_UTSNS },
                { "seccomp", ZYG_LAYER_SECCOMP }, { "caps", ZYG_LAYER_CAPS }, { "rlimits", ZYG_LAYER_RLIMITS },
                { "all", ZYG_LAYER_ALL },
        };
        uint32_t off = 0;
        char *copy = strdup(list), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (!strcmp(t, names[i].name)) {
                                off |= names[i].bit;
                                found = true;
                        }
                if (!found)
                        fail_usage("unknown layer '%s'", t);
        }
        free(copy);
        return off;
}

int main(int argc, char **argv)
{
        Cli c = { .exit_code = EXIT_INTERNAL };
        PyrConfig cfg;
        EngineOptions opts = { .layers = ZYG_LAYER_ALL, .on_ready = on_ready, .userdata = &c };
        const char *bad = NULL, *stdin_path = NULL, *why = NULL;
        int r;

        config_init_defaults(&cfg);
        cfg.pool_size = 0;
        snprintf(cfg.preload, sizeof(cfg.preload), "%s", "");
        r = config_from_env(&cfg, &bad);
        if (r < 0)
                fail_usage("invalid value in environment for %s", bad);

        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : 0;
        }
        if (!strcmp(argv[1], "info"))
                c.info_only = true;
        else if (strcmp(argv[1], "run") != 0)
                fail_usage("unknown command '%s' (try --help)", argv[1]);

        enum { OPT_TIMEOUT = 256, OPT_MEMORY, OPT_STDIN, OPT_JSON, OPT_PRELOAD, OPT_NOCG, OPT_SABOTAGE, OPT_SET };
        struct option longopts[64] = {
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "memory", required_argument, NULL, OPT_MEMORY },
                { "stdin", required_argument, NULL, OPT_STDIN },
                { "json", no_argument, NULL, OPT_JSON },
                { "preload", required_argument, NULL, OPT_PRELOAD },
                { "no-cgroups", no_argument, NULL, OPT_NOCG },
                { "test-sabotage", required_argument, NULL, OPT_SABOTAGE },
                { "help", no_argument, NULL, 'h' },
        };
        size_t nopt = 8;
        for (size_t i = 0; i < config_table_size && nopt < ELEMENTSOF(longopts) - 1; i++)
                if (strcmp(config_table[i].name, "preload") != 0 && !config_table[i].daemon_only)
                        longopts[nopt++] = (struct option){ config_table[i].name, required_argument, NULL, OPT_SET };

        int64_t timeout_ms = 0, memory_mb = 0;
        int opt, idx;
        optind = 2;
        opterr = 0; /* our own one-line messages */
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
                switch (opt) {
                case OPT_TIMEOUT:
                        r = parse_seconds_ms(optarg, 100, 300000, &timeout_ms);
                        if (r < 0)
                                fail_usage("--timeout must be seconds between 0.1 and 300, not '%s'", optarg);
                        break;
                case OPT_MEMORY:
                        if (parse_int64(optarg, 1, INT32_MAX, &memory_mb) < 0)
                                fail_usage("--memory must be a whole number of MiB, not '%s'", optarg);
                        break;
                case OPT_STDIN:
                        stdin_path = optarg;
                        break;
                case OPT_JSON:
                        c.json = true;
                        break;
                case OPT_PRELOAD:
                        snprintf(cfg.preload, sizeof(cfg.preload), "%s",
                                 strcmp(optarg, "all") ? optarg : "numpy,pandas,scipy,sympy,matplotlib,sklearn");
                        break;
                case OPT_NOCG:
                        opts.no_cgroups = true;
                        break;
                case OPT_SABOTAGE:
                        if (!getenv("PYRUNNER_ALLOW_SABOTAGE"))
                                fail_usage("--test-sabotage is for the test suite only");
                        opts.layers &= ~parse_sabotage(optarg);
                        break;
                case OPT_SET:
                        r = config_set(&cfg, longopts[idx].name, optarg);
                        if (r < 0) {
                                fprintf(stderr, "pyrunner: invalid value '%s' for --%s\n", optarg, longopts[idx].name);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case ':':
                        fail_usage("option '%s' needs a value (try --help)", argv[optind - 1]);
                default:
                        fail_usage("unknown option '%s' (try --help)", argv[optind - 1]);
                }
        }
        if (config_validate(&cfg, &why) < 0)
                fail_usage("%s", why);
        if (memory_mb && (memory_mb < cfg.min_memory_mb || memory_mb > cfg.max_memory_mb)) {
                fprintf(stderr, "pyrunner: --memory must be between %lld and %lld MiB\n",
                        (long long)cfg.min_memory_mb, (long long)cfg.max_memory_mb);
                return EXIT_USAGE;
        }
        if (timeout_ms > cfg.max_timeout_ms)
                fail_usage("--timeout exceeds max-timeout-ms");

        if (!c.info_only) {
                if (optind != argc - 1)
                        fail_usage("expected one FILE or '-' (try --help)");
                const char *path = argv[optind];
                c.req.code = read_input(path, (size_t)cfg.max_code_bytes, &c.req.code_len, "program");
                if (c.req.code_len == 0)
                        fail_usage("program '%s' is empty", path);
                if (!utf8_valid(c.req.code, c.req.code_len))
                        fail_usage("program '%s' is not valid UTF-8 text", path);
                if (stdin_path)
                        c.req.stdin_data = read_input(stdin_path, (size_t)cfg.max_stdin_bytes, &c.req.stdin_len, "stdin");
                c.req.timeout_ms = timeout_ms;
                c.req.memory_mb = memory_mb;
        } else if (optind != argc) {
                fail_usage("info takes no arguments");
        }

        c.base = event_base_new();
        c.ev_idle = event_new(c.base, -1, EV_PERSIST, on_idle_check, &c);
        struct event *ev_term = evsignal_new(c.base, SIGTERM, on_signal, &c);
        struct event *ev_int = evsignal_new(c.base, SIGINT, on_signal, &c);
        struct event *ev_hup = evsignal_new(c.base, SIGHUP, on_signal, &c);
        event_add(ev_term, NULL);
        event_add(ev_int, NULL);
        event_add(ev_hup, NULL);
        r = engine_new(c.base, &cfg, &opts, &c.engine);
        if (r < 0) {
                fprintf(stderr, "pyrunner: cannot start the engine: %s\n", strerror(-r));
                return EXIT_INTERNAL;
        }
        event_base_dispatch(c.base);

        if (c.interrupted) {
                c.exit_code = 128 + c.interrupted;
        } else if (c.failed_start) {
                fprintf(stderr, "pyrunner: %s\n", c.start_error);
                c.exit_code = EXIT_INTERNAL;
        } else if (c.have_result && !c.info_only) {
                RunResult *res = &c.result;
                if (!res->out || !res->err) {
                        fprintf(stderr, "pyrunner: out of memory\n");
                        return EXIT_INTERNAL;
                }
                if (c.json) {
                        json_t *o = run_result_to_json(res);
                        json_dumpf_shortest(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
                        fputc('\n', stdout);
                        json_decref(o);
                } else {
                        fwrite(res->out, 1, res->out_len, stdout);
                        fwrite(res->err, 1, res->err_len, stderr);
                        if (res->status != RUN_SUCCESS && res->status != RUN_ERROR) {
                                char *s = run_result_summary(res);
                                fprintf(stderr, "pyrunner: %s: %s\n", run_status_name(res->status), s ? s : "");
                                free(s);
                        }
                }
                c.exit_code = status_exit_code(res);
                run_result_clear(res);
        } else if (c.info_only && c.have_result) {
                c.exit_code = 0;
        }
        fflush(stdout);
        event_free(ev_term);
        event_free(ev_int);
        event_free(ev_hup);
        event_free(c.ev_idle);
        engine_free(c.engine);
        event_base_free(c.base);
        free((char *)c.req.code);
        free((char *)c.req.stdin_data);
        return c.exit_code;
}
