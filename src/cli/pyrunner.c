/* SPDX-License-Identifier: MIT */
/* pyrunner: run one Python program in a fresh sandbox, no daemon needed. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "fd-util.h"
#include "json-util.h"
#include "macro.h"
#include "proc-util.h"
#include "pyrunner-config.h"
#include "text-util.h"
#include "zygote-proto.h"

enum { EXIT_USAGE = 2, EXIT_TIMEOUT = 124, EXIT_MEMORY = 125, EXIT_OUTPUT = 126, EXIT_INTERNAL = 70 };

typedef struct Cli {
        struct event_base *base;
        Engine *engine;
        RunRequest req;
        bool json, info_only, have_result, copy_failed, failed_start;
        int exit_code;
        RunResult result;
        char start_error[512];       /* its gist */
        char *start_detail;          /* in full: a traceback, if any */
        struct event *ev_idle;
        int interrupted;
        const char *out_dir;         /* --out-dir: returned files and images go there */
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
                "  --file PATH[=NAME]    put PATH in the working directory as NAME\n"
                "                        (default: its base name); repeatable\n"
                "  --return-files GLOB   return the files matching GLOB (repeatable)\n"
                "  --out-dir DIR         write the returned files, and each image output\n"
                "                        as output-N.png, into DIR\n"
                "  --json                print the result as one JSON object\n"
                "  --preload LIST        modules to import in the zygote first\n"
                "                        (e.g. numpy,pandas; 'all' for the six defaults)\n"
                "  --no-cgroups          use rlimits only, even where cgroups are writable\n"
                "  -h, --help            this help\n"
                "Settings (also as PYRUNNER_<NAME> variables; the CLI itself\n"
                "defaults to pool-size 0, spare-zygote 0 and no preload, a daemon to the table):\n");
        config_print_help(f, false);
        fprintf(f,
                "\nExit status: the program's own on success or error; 124 timeout,\n"
                "125 memory_exceeded, 126 output_limit, 128+N killed by signal N,\n"
                "70 internal_error, 2 bad usage or input.\n");
}

/* Every message of the CLI itself: one line, "pyrunner: ..." on stderr. */
static void vsay(const char *fmt, va_list ap)
{
        fputs("pyrunner: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

static __attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsay(fmt, ap);
        va_end(ap);
}

static _noreturn_ __attribute__((format(printf, 2, 3))) void fail(int status, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsay(fmt, ap);
        va_end(ap);
        exit(status);
}

static char *read_input(const char *path, size_t max, size_t *ret_len, const char *what)
{
        int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                fail(EXIT_USAGE, "cannot read %s '%s': %s", what, path, strerror(errno));
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                }
                if (!buf)
                        fail(EXIT_INTERNAL, "out of memory");
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        fail(EXIT_USAGE, "cannot read %s '%s': %s", what, path, strerror(errno));
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        fail(EXIT_USAGE, "%s '%s' is larger than %zu bytes", what, path, max);
        }
        close(fd);
        buf[len] = '\0';
        *ret_len = len;
        return buf;
}

/* --file PATH[=NAME]: {"path": NAME, "content": base64, "encoding": "base64"}. */
static json_t *file_arg(const char *arg, size_t max)
{
        _cleanup_free_ char *copy = strdup(arg);
        if (!copy)
                fail(EXIT_INTERNAL, "out of memory");
        char *eq = strchr(copy, '=');
        if (eq)
                *eq = '\0';
        const char *name = eq ? eq + 1 : basename(copy);
        size_t len;
        _cleanup_free_ char *data = read_input(copy, max, &len, "file");
        size_t cap = (len + 2) / 3 * 4 + 1;
        _cleanup_free_ char *b64 = malloc(cap);
        if (!b64 || b64_ntop((const unsigned char *)data, len, b64, cap) < 0)
                fail(EXIT_INTERNAL, "out of memory");
        json_t *f = json_pack("{s:s, s:s, s:s}", "path", name, "content", b64, "encoding", "base64");
        if (!f)
                fail(EXIT_USAGE, "--file name '%s' is not UTF-8", name);
        return f;
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
        c->copy_failed = run_result_copy(res, &c->result) < 0;
        struct timeval tv = { 0, 1000 };
        event_add(c->ev_idle, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
        Cli *c = arg;
        /* Stop cleanly: the sandbox, its cgroups and the zygote go too. */
        say("interrupted by signal %d", (int)sig);
        c->interrupted = (int)sig;
        event_base_loopbreak(c->base);
}

static void on_ready(Engine *e, int error, const char *message, void *userdata)
{
        Cli *c = userdata;
        if (error < 0) {
                error_gist(message ? message : strerror(-error), c->start_error, sizeof(c->start_error));
                if (message && strchr(message, '\n'))
                        c->start_detail = strdup(message);
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

/* The layers as engine_layers_json() names them ("capabilities" for its
 * capabilities_dropped), so that `info --test-sabotage X` drops X. */
static uint32_t parse_sabotage(const char *list)
{
        static const struct { const char *name; uint32_t bit; } names[] = {
                { "user", ZYG_LAYER_USERNS }, { "pid", ZYG_LAYER_PIDNS }, { "mount", ZYG_LAYER_MNTNS },
                { "ipc", ZYG_LAYER_IPCNS }, { "uts", ZYG_LAYER_UTSNS }, { "network", ZYG_LAYER_NETNS },
                { "cgroup", ZYG_LAYER_CGROUPNS }, { "seccomp", ZYG_LAYER_SECCOMP }, { "capabilities", ZYG_LAYER_CAPS },
                { "rlimits", ZYG_LAYER_RLIMITS }, { "all", ZYG_LAYER_ALL },
        };
        uint32_t off = 0;
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;
        if (!copy)
                fail(EXIT_INTERNAL, "out of memory");
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t i = 0;
                while (i < ELEMENTSOF(names) && strcmp(t, names[i].name) != 0)
                        i++;
                if (i == ELEMENTSOF(names))
                        fail(EXIT_USAGE, "unknown layer '%s'", t);
                off |= names[i].bit;
        }
        return off;
}

/* Applies one setting of config_table, with the reason when it is refused. */
static void set_setting(PyrConfig *cfg, const char *name, const char *value)
{
        const ConfigEntry *e = config_find(name);
        int r = config_set(cfg, name, value);
        if (r == -ERANGE && e->type == CONFIG_INT)
                fail(EXIT_USAGE, "--%s must be between %" PRId64 " and %" PRId64 ", not '%s'", name, e->min,
                     e->max, value);
        if (r == -ERANGE)
                fail(EXIT_USAGE, "--%s is longer than %zu bytes", name, e->str_size - 1);
        if (r < 0)
                fail(EXIT_USAGE, "--%s must be a whole number, not '%s'", name, value);
}

enum {
        OPT_TIMEOUT = 256, OPT_MEMORY, OPT_STDIN, OPT_JSON, OPT_PRELOAD, OPT_NOCG, OPT_SABOTAGE, OPT_SET,
        OPT_FILE, OPT_RETURN_FILES, OPT_OUT_DIR,
};

static const struct option cli_options[] = {
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "stdin", required_argument, NULL, OPT_STDIN },
        { "file", required_argument, NULL, OPT_FILE },
        { "return-files", required_argument, NULL, OPT_RETURN_FILES },
        { "out-dir", required_argument, NULL, OPT_OUT_DIR },
        { "json", no_argument, NULL, OPT_JSON },
        { "preload", required_argument, NULL, OPT_PRELOAD },
        { "no-cgroups", no_argument, NULL, OPT_NOCG },
        { "test-sabotage", required_argument, NULL, OPT_SABOTAGE },
        { "help", no_argument, NULL, 'h' },
};

/* getopt's table: the CLI's own options, then each setting of config_table
 * that the CLI takes (preload is its own option, which also takes "all").
 * Sized from both tables, so no setting is ever left out. */
static struct option *build_longopts(void)
{
        struct option *o = calloc(ELEMENTSOF(cli_options) + config_table_size + 1, sizeof(*o));
        size_t n = 0;
        if (!o)
                fail(EXIT_INTERNAL, "out of memory");
        for (size_t i = 0; i < ELEMENTSOF(cli_options); i++)
                o[n++] = cli_options[i];
        for (size_t i = 0; i < config_table_size; i++)
                if (!config_table[i].daemon_only && strcmp(config_table[i].name, "preload") != 0)
                        o[n++] = (struct option){ config_table[i].name, required_argument, NULL, OPT_SET };
        return o;
}

/* Parses `pyrunner run|info [OPTIONS] [FILE|-]` into c, cfg and opts;
 * exits with EXIT_USAGE and one line on bad usage or input. */
static void parse_args(int argc, char **argv, Cli *c, PyrConfig *cfg, EngineOptions *opts)
{
        const char *bad = NULL, *stdin_path = NULL, *why = NULL;
        int64_t timeout_ms = 0, memory_mb = 0;
        int opt, idx, r;

        config_init_defaults(cfg);
        /* The preload default (the six libraries) is what --preload all means;
         * the CLI itself preloads nothing and keeps no pool. */
        const char *preload_all = config_find("preload")->def_str;
        cfg->pool_size = 0;
        cfg->spare_zygote = 0;
        cfg->preload[0] = '\0';
        r = config_from_env(cfg, &bad);
        if (r < 0)
                fail(EXIT_USAGE, "invalid value in environment for %s", bad);

        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(argc < 2 ? stderr : stdout);
                exit(argc < 2 ? EXIT_USAGE : 0);
        }
        if (!strcmp(argv[1], "info"))
                c->info_only = true;
        else if (strcmp(argv[1], "run") != 0)
                fail(EXIT_USAGE, "unknown command '%s' (try --help)", argv[1]);

        _cleanup_free_ struct option *longopts = build_longopts();
        optind = 2;
        opterr = 0; /* our own one-line messages */
        while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
                switch (opt) {
                case OPT_TIMEOUT:
                        if (parse_seconds_ms(optarg, 100, 300000, &timeout_ms) < 0)
                                fail(EXIT_USAGE, "--timeout must be seconds between 0.1 and 300, not '%s'", optarg);
                        break;
                case OPT_MEMORY:
                        if (parse_int64(optarg, 1, INT32_MAX, &memory_mb) < 0)
                                fail(EXIT_USAGE, "--memory must be a whole number of MiB, not '%s'", optarg);
                        break;
                case OPT_STDIN:
                        stdin_path = optarg;
                        break;
                case OPT_FILE:
                        if (!c->req.files && !(c->req.files = json_array()))
                                fail(EXIT_INTERNAL, "out of memory");
                        json_array_append_new(c->req.files, file_arg(optarg, (size_t)cfg->max_files_bytes));
                        break;
                case OPT_RETURN_FILES:
                        if (!c->req.return_files && !(c->req.return_files = json_array()))
                                fail(EXIT_INTERNAL, "out of memory");
                        json_array_append_new(c->req.return_files, json_string(optarg));
                        break;
                case OPT_OUT_DIR:
                        c->out_dir = optarg;
                        break;
                case OPT_JSON:
                        c->json = true;
                        break;
                case OPT_PRELOAD:
                        set_setting(cfg, "preload", strcmp(optarg, "all") ? optarg : preload_all);
                        break;
                case OPT_NOCG:
                        opts->no_cgroups = true;
                        break;
                case OPT_SABOTAGE:
                        if (!getenv("PYRUNNER_ALLOW_SABOTAGE"))
                                fail(EXIT_USAGE, "--test-sabotage is for the test suite only");
                        opts->layers &= ~parse_sabotage(optarg);
                        break;
                case OPT_SET:
                        set_setting(cfg, longopts[idx].name, optarg);
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case ':':
                        fail(EXIT_USAGE, "option '%s' needs a value (try --help)", argv[optind - 1]);
                default:
                        fail(EXIT_USAGE, "unknown option '%s' (try --help)", argv[optind - 1]);
                }
        }
        if (config_validate(cfg, &why) < 0)
                fail(EXIT_USAGE, "%s", why);
        if (memory_mb && (memory_mb < cfg->min_memory_mb || memory_mb > cfg->max_memory_mb))
                fail(EXIT_USAGE, "--memory must be between %" PRId64 " and %" PRId64 " MiB", cfg->min_memory_mb,
                     cfg->max_memory_mb);
        if (timeout_ms > cfg->max_timeout_ms)
                fail(EXIT_USAGE, "--timeout exceeds max-timeout-ms");

        const char *field;
        if (c->req.files && run_files_check(c->req.files, cfg->max_files, cfg->max_files_bytes, &field, &why) < 0)
                fail(EXIT_USAGE, "--file: %s", why);
        if (c->req.return_files && run_return_files_check(c->req.return_files, &why) < 0)
                fail(EXIT_USAGE, "--return-files: %s", why);
        if (c->info_only) {
                if (optind != argc)
                        fail(EXIT_USAGE, "info takes no arguments");
                return;
        }
        if (optind != argc - 1)
                fail(EXIT_USAGE, "expected one FILE or '-' (try --help)");
        const char *path = argv[optind];
        c->req.code = read_input(path, (size_t)cfg->max_code_bytes, &c->req.code_len, "program");
        if (c->req.code_len == 0)
                fail(EXIT_USAGE, "program '%s' is empty", path);
        if (!utf8_valid(c->req.code, c->req.code_len))
                fail(EXIT_USAGE, "program '%s' is not valid UTF-8 text", path);
        if (stdin_path)
                c->req.stdin_data = read_input(stdin_path, (size_t)cfg->max_stdin_bytes, &c->req.stdin_len, "stdin");
        c->req.timeout_ms = timeout_ms;
        c->req.memory_mb = memory_mb;
}

/* Writes data as path (relative, checked by the engine) below dirfd,
 * making its directories; never through a symlink. */
static int write_below(int dirfd, const char *path, const void *data, size_t len)
{
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int cur = dup(dirfd);
        char *save = NULL, *part = copy ? strtok_r(copy, "/", &save) : NULL;
        if (!part || cur < 0)
                return -ENOMEM;
        for (char *next; (next = strtok_r(NULL, "/", &save)); part = next) {
                if (mkdirat(cur, part, 0755) < 0 && errno != EEXIST)
                        return -errno;
                int fd = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                close(cur);
                cur = fd;
        }
        _cleanup_close_ int fd = openat(cur, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return fd_write_all(fd, data, len) < 0 ? -EIO : 0;
}

static int write_b64(int dirfd, const char *path, const char *b64)
{
        size_t cap = strlen(b64) / 4 * 3 + 1;
        _cleanup_free_ unsigned char *data = malloc(cap);
        int n = data ? b64_pton(b64, data, cap) : -1;
        if (n < 0)
                return -EBADMSG;
        return write_below(dirfd, path, data, (size_t)n);
}

/* --out-dir: the returned files, then output-N.png for the N-th image. */
static bool write_out_dir(const Cli *c)
{
        const RunResult *res = &c->result;
        if (mkdir(c->out_dir, 0755) < 0 && errno != EEXIST) {
                say("cannot make --out-dir '%s': %s", c->out_dir, strerror(errno));
                return false;
        }
        _cleanup_close_ int dirfd = open(c->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                say("cannot open --out-dir '%s': %s", c->out_dir, strerror(errno));
                return false;
        }
        /* Text the engine checked, but whose tree may still be large: bounded. */
        static const JsonLimits lim = { .max_depth = 70, .max_containers = 1000000, .max_values = 4000000 };
        json_auto_t *files = res->files ? json_loadb(res->files, res->files_len, 0, NULL) : json_array();
        json_auto_t *outputs = res->outputs && json_check(res->outputs, res->outputs_len, &lim) == 0
                                       ? json_loadb(res->outputs, res->outputs_len, 0, NULL)
                                       : json_array();
        if (res->outputs && json_array_size(outputs) == 0)
                say("the outputs are too large to look for images in");
        size_t i, images = 0;
        json_t *v;
        bool ok = true;
        json_array_foreach(files, i, v) {
                const char *path = json_string_value(json_object_get(v, "path"));
                const char *b64 = json_string_value(json_object_get(v, "content"));
                int r = path && b64 ? write_b64(dirfd, path, b64) : -EBADMSG;
                if (r < 0) {
                        say("cannot write '%s' in --out-dir: %s", path ? path : "?", strerror(-r));
                        ok = false;
                }
        }
        json_auto_t *skipped = res->files_skipped ? json_loadb(res->files_skipped, res->files_skipped_len, 0, NULL)
                                                  : json_array();
        json_array_foreach(skipped, i, v)
                say("'%s' was not returned: %s", json_string_value(json_object_get(v, "path")),
                    json_string_value(json_object_get(v, "reason")));
        json_array_foreach(outputs, i, v) {
                const char *png = json_string_value(json_object_get(json_object_get(v, "data"), "image/png"));
                char name[32];
                if (!png)
                        continue;
                snprintf(name, sizeof(name), "output-%zu.png", ++images);
                int r = write_b64(dirfd, name, png);
                if (r < 0) {
                        say("cannot write '%s' in --out-dir: %s", name, strerror(-r));
                        ok = false;
                }
        }
        return ok;
}

/* Prints a run's result as text or JSON; returns the CLI's exit status. */
static int print_result(const Cli *c)
{
        const RunResult *res = &c->result;
        if (c->copy_failed) {
                say("out of memory");
                return EXIT_INTERNAL;
        }
        if (c->json) {
                size_t n = 0;
                _cleanup_free_ char *s = run_result_dumps(res, JSON_COMPACT | JSON_ENSURE_ASCII, &n);
                if (!s) {
                        say("out of memory");
                        return EXIT_INTERNAL;
                }
                fwrite(s, 1, n, stdout);
                fputc('\n', stdout);
        } else {
                fwrite(res->out, 1, res->out_len, stdout);
                fwrite(res->err, 1, res->err_len, stderr);
                if (res->status != RUN_SUCCESS && res->status != RUN_ERROR) {
                        _cleanup_free_ char *s = run_result_summary(res);
                        say("%s: %s", run_status_name(res->status), s ? s : "");
                }
        }
        return status_exit_code(res);
}

/* The CLI is a child subreaper (main): what its zygote leaves when the
 * engine kills it (the factory, a sandbox's pid 1) is reparented here, not
 * to init. Reaps it all before exiting, for at most a second. */
static void reap_orphans(void)
{
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        _cleanup_close_ int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        (void)wait_all_children(sfd, 1000);
}

int main(int argc, char **argv)
{
        Cli c = { .exit_code = EXIT_INTERNAL };
        PyrConfig cfg;
        EngineOptions opts = { .layers = ZYG_LAYER_ALL, .on_ready = on_ready, .userdata = &c };

        parse_args(argc, argv, &c, &cfg, &opts);

        c.base = engine_base_new();
        c.ev_idle = event_new(c.base, -1, EV_PERSIST, on_idle_check, &c);
        struct event *ev_term = evsignal_new(c.base, SIGTERM, on_signal, &c);
        struct event *ev_int = evsignal_new(c.base, SIGINT, on_signal, &c);
        struct event *ev_hup = evsignal_new(c.base, SIGHUP, on_signal, &c);
        event_add(ev_term, NULL);
        event_add(ev_int, NULL);
        event_add(ev_hup, NULL);
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        int r = engine_new(c.base, &cfg, &opts, &c.engine);
        if (r < 0) {
                reap_orphans();
                fail(EXIT_INTERNAL, "cannot start the engine: %s", strerror(-r));
        }
        event_base_dispatch(c.base);

        if (c.interrupted) {
                c.exit_code = 128 + c.interrupted;
        } else if (c.failed_start) {
                say("%s", c.start_error);
                if (c.start_detail)
                        fprintf(stderr, "%s\n", c.start_detail);
                c.exit_code = EXIT_INTERNAL;
        } else if (c.have_result && !c.info_only) {
                c.exit_code = print_result(&c);
                if (c.out_dir && !c.copy_failed && !write_out_dir(&c) && c.exit_code == 0)
                        c.exit_code = EXIT_INTERNAL;
        } else if (c.info_only && c.have_result) {
                c.exit_code = 0;
        }
        run_result_clear(&c.result);
        free(c.start_detail);
        fflush(stdout);
        event_free(ev_term);
        event_free(ev_int);
        event_free(ev_hup);
        event_free(c.ev_idle);
        engine_free(c.engine);
        reap_orphans();
        event_base_free(c.base);
        free((char *)c.req.code);
        free((char *)c.req.stdin_data);
        json_decref(c.req.files);
        json_decref(c.req.return_files);
        return c.exit_code;
}
