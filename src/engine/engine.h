/* SPDX-License-Identifier: MIT */
#pragma once

/* The engine runs code in sandboxes forked from a zygote. It lives on the
 * caller's libevent loop, never blocks, never runs Python and never logs:
 * results and errors come back through callbacks and return values. */

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "cgroup.h"
#include "result.h"

typedef struct Engine Engine;
typedef struct Run Run;

typedef struct RunRequest {
        const char *code;
        size_t code_len;
        const char *stdin_data;
        size_t stdin_len;
        int64_t timeout_ms;          /* 0: the configured default */
        int64_t memory_mb;           /* 0: the configured default */
} RunRequest;

typedef void (*run_done_fn)(const RunResult *result, void *userdata);
/* Called once the first zygote is ready (error 0) or could not start. */
typedef void (*engine_ready_fn)(Engine *e, int error, const char *message, void *userdata);

typedef struct EngineOptions {
        const char *zygote_path;     /* NULL: next to the running binary */
        uint32_t layers;             /* ZYG_LAYER_ALL; fewer only for tests */
        bool no_cgroups;
        engine_ready_fn on_ready;
        void *userdata;
} EngineOptions;

typedef struct EngineStats {
        uint64_t runs_started, runs_finished, zygote_starts, zygote_deaths;
        unsigned active, idle, queued;
} EngineStats;

int engine_new(struct event_base *base, const PyrConfig *cfg, const EngineOptions *opts, Engine **ret);
void engine_free(Engine *e);

/* Validates and queues a run: -EINVAL empty code, -EILSEQ code not UTF-8
 * text, -E2BIG code or stdin too large, -ERANGE a limit outside the
 * configured bounds. done is called exactly once, after which the run is
 * gone. */
int engine_submit(Engine *e, const RunRequest *req, run_done_fn done, void *userdata, uint64_t *ret_ticket);
/* Kills a run; its done callback still fires, with status killed. */
void engine_cancel(Engine *e, uint64_t ticket);

/* Zygote's READY info (Python and library versions), or NULL. */
const char *engine_info(const Engine *e);
const CgroupRoot *engine_cgroup(const Engine *e);
uint32_t engine_layers(const Engine *e);
/* The active isolation layers, as GET / and `pyrunner info` report them. */
json_t *engine_layers_json(const Engine *e);
void engine_get_stats(const Engine *e, EngineStats *ret);
/* True once nothing is running and every sandbox is cleaned up. */
bool engine_idle(const Engine *e);
