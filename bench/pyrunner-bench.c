/* SPDX-License-Identifier: MIT */
/* Engine-level benchmark: N runs of one program at a given concurrency,
 * through the same engine the CLI and daemon use. Prints one JSON line. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "zygote-proto.h"

typedef struct Bench {
        struct event_base *base;
        Engine *engine;
        RunRequest req;
        int n, concurrency, warmup, submitted, finished, failed;
        double *lat, *mem;
        struct timespec *t0;
        int *slot_of;
        char first_bad[512];
        int statuses[_RUN_STATUS_MAX];
        struct timespec start, end;
        struct event *ev_idle, *ev_pace;
        bool paced;
        int pool_size;
} Bench;

typedef struct Slot {
        Bench *b;
        int index;
        struct timespec t0;
} Slot;

static double now_diff(const struct timespec *a, const struct timespec *b)
{
        return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void submit_one(Bench *b);

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
        Bench *b = arg;
        if (engine_idle(b->engine))
                event_base_loopbreak(b->base);
}

static void on_done(const RunResult *res, void *userdata)
{
        Slot *s = userdata;
        Bench *b = s->b;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int i = s->index - b->warmup;
        if (i >= 0) {
                b->lat[i] = now_diff(&s->t0, &t);
                b->mem[i] = res->memory_used;
                b->statuses[res->status]++;
                if (res->status != RUN_SUCCESS && !b->first_bad[0])
                        snprintf(b->first_bad, sizeof(b->first_bad), "%s: %.200s %.200s",
                                 run_status_name(res->status), res->err, res->message ? res->message : "");
        }
        if (s->index == b->warmup - 1 || (b->warmup == 0 && s->index == 0 && 0))
                clock_gettime(CLOCK_MONOTONIC, &b->start);
        free(s);
        b->finished++;
        if (b->finished == b->n + b->warmup) {
                clock_gettime(CLOCK_MONOTONIC, &b->end);
                struct timeval tv = { 0, 1000 };
                event_add(b->ev_idle, &tv);
                return;
        }
        /* Warm-up runs one at a time; then keep `concurrency` in flight. */
        if (b->finished == b->warmup) {
                clock_gettime(CLOCK_MONOTONIC, &b->start);
                for (int k = 0; k < b->concurrency && b->submitted < b->n + b->warmup; k++)
                        submit_one(b);
        } else if (b->submitted < b->n + b->warmup) {
                if (b->paced) {
                        struct timeval tv = { 0, 500 };
                        event_add(b->ev_pace, &tv);
                } else {
                        submit_one(b);
                }
        }
}

static void submit_one(Bench *b)
{
        Slot *s = calloc(1, sizeof(*s));
        s->b = b;
        s->index = b->submitted++;
        clock_gettime(CLOCK_MONOTONIC, &s->t0);
        int r = engine_submit(b->engine, &b->req, on_done, s, NULL);
        if (r < 0) {
                fprintf(stderr, "submit: %s\n", strerror(-r));
                exit(1);
        }
}

/* Paced mode: the next run starts once the pool is full again, so each
 * figure is the latency of one run on an otherwise idle engine. */
static void on_pace(evutil_socket_t fd, short what, void *arg)
{
        Bench *b = arg;
        EngineStats st;
        engine_get_stats(b->engine, &st);
        if (st.idle >= (unsigned)b->pool_size && engine_idle(b->engine)) {
                event_del(b->ev_pace);
                submit_one(b);
        }
}

static void on_ready(Engine *e, int error, const char *message, void *userdata)
{
        Bench *b = userdata;
        if (error < 0) {
                fprintf(stderr, "engine: %s\n", message);
                exit(1);
        }
        if (b->warmup > 0) {
                submit_one(b);
        } else {
                clock_gettime(CLOCK_MONOTONIC, &b->start);
                for (int k = 0; k < b->concurrency && b->submitted < b->n; k++)
                        submit_one(b);
        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
        int i = (int)(p * (n - 1) + 0.5);
        return v[i];
}

int main(int argc, char **argv)
{
        Bench b = { .n = 200, .concurrency = 1, .warmup = 20 };
        PyrConfig cfg;
        const char *code = "print('hi')";
        int opt;

        config_init_defaults(&cfg);
        /* Runs, not fault tolerance: a spare zygote still importing would
         * share the CPU with the first measurements (idle, it costs none). */
        cfg.spare_zygote = 0;
        if (config_from_env(&cfg, NULL) < 0)
                return 2;
        static const struct option longopts[] = {
                { "n", required_argument, NULL, 'n' },
                { "concurrency", required_argument, NULL, 'c' },
                { "warmup", required_argument, NULL, 'w' },
                { "code", required_argument, NULL, 'e' },
                { "preload", required_argument, NULL, 'p' },
                { "pool", required_argument, NULL, 'P' },
                { "no-cgroups", no_argument, NULL, 'G' },
                { "layers-off", required_argument, NULL, 'L' },
                { "paced", no_argument, NULL, 'Q' },
                {},
        };
        EngineOptions opts = { .layers = ZYG_LAYER_ALL, .on_ready = on_ready, .userdata = &b };
        while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (opt) {
                case 'n':
                        b.n = atoi(optarg);
                        break;
                case 'c':
                        b.concurrency = atoi(optarg);
                        break;
                case 'w':
                        b.warmup = atoi(optarg);
                        break;
                case 'e':
                        code = optarg;
                        break;
                case 'p':
                        snprintf(cfg.preload, sizeof(cfg.preload), "%s", optarg);
                        break;
                case 'P':
                        cfg.pool_size = atoi(optarg);
                        break;
                case 'G':
                        opts.no_cgroups = true;
                        break;
                case 'Q':
                        b.paced = true;
                        break;
                case 'L': /* a bit mask of ZYG_LAYER_*, for cost studies */
                        opts.layers &= ~(uint32_t)strtoul(optarg, NULL, 0);
                        break;
                default:
                        return 2;
                }
        }
        b.req.code = code;
        b.req.code_len = strlen(code);
        b.lat = calloc((size_t)b.n, sizeof(double));
        b.mem = calloc((size_t)b.n, sizeof(double));
        b.base = event_base_new();
        b.ev_idle = event_new(b.base, -1, EV_PERSIST, on_idle, &b);
        b.ev_pace = event_new(b.base, -1, EV_PERSIST, on_pace, &b);
        b.pool_size = (int)cfg.pool_size;
        int r = engine_new(b.base, &cfg, &opts, &b.engine);
        if (r < 0) {
                fprintf(stderr, "engine: %s\n", strerror(-r));
                return 1;
        }
        event_base_dispatch(b.base);

        double secs = now_diff(&b.start, &b.end) / 1e3;
        qsort(b.lat, (size_t)b.n, sizeof(double), cmp_double);
        qsort(b.mem, (size_t)b.n, sizeof(double), cmp_double);
        json_t *o = json_pack("{s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "n", b.n, "concurrency", b.concurrency,
                              "p50_ms", pct(b.lat, b.n, 0.5), "p99_ms", pct(b.lat, b.n, 0.99),
                              "min_ms", b.lat[0], "per_sec", b.n / secs, "mem_p50_mb", pct(b.mem, b.n, 0.5),
                              "mem_max_mb", b.mem[b.n - 1]);
        json_object_set_new(o, "p90_ms", json_real(pct(b.lat, b.n, 0.9)));
        json_object_set_new(o, "p95_ms", json_real(pct(b.lat, b.n, 0.95)));
        json_object_set_new(o, "max_ms", json_real(b.lat[b.n - 1]));
        json_t *st = json_object();
        for (int i = 0; i < _RUN_STATUS_MAX; i++)
                if (b.statuses[i])
                        json_object_set_new(st, run_status_name(i), json_integer(b.statuses[i]));
        json_object_set_new(o, "statuses", st);
        if (b.first_bad[0])
                json_object_set_new(o, "first_failure", json_string(b.first_bad));
        json_dumpf(o, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(o);
        event_free(b.ev_idle);
        event_free(b.ev_pace);
        engine_free(b.engine);
        event_base_free(b.base);
        return 0;
}
