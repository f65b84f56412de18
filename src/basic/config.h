/* SPDX-License-Identifier: MIT */
#pragma once

/* The one table of settings. Every resource a client can influence has a
 * bound here; flags, PYRUNNER_* variables and files all go through it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct PyrConfig {
        int64_t timeout_ms;          /* default wall timeout of a run */
        int64_t max_timeout_ms;      /* no request may ask for more */
        int64_t memory_mb;           /* default memory limit of a run */
        int64_t min_memory_mb;
        int64_t max_memory_mb;
        int64_t output_limit;        /* bytes kept of stdout and of stderr, each */
        int64_t max_code_bytes;
        int64_t max_stdin_bytes;
        int64_t max_result_bytes;    /* largest frame a sandbox may send */
        int64_t tmpfs_mb;            /* size of the writable /tmp */
        int64_t tmpfs_inodes;
        int64_t pids_max;
        int64_t nofile;
        int64_t stack_mb;
        int64_t cpu_percent;         /* CPU quota of one sandbox, 100 = one core */
        int64_t pool_size;           /* pre-forked sandboxes kept idle */
        int64_t zygote_max_forks;    /* restart the zygote after this many runs */
        int64_t spare_zygote;        /* keep a second zygote started, to take over */
        int64_t queue_timeout_ms;    /* deadline for a run to get a sandbox */
        int64_t start_timeout_ms;    /* deadline for its sandbox to start */
        int64_t kill_grace_ms;       /* after the timeout's kill, to be seen gone */
        int64_t sandbox_uid;         /* first host uid/gid a sandbox user maps to */
        int64_t sandbox_uids;        /* how many, from sandbox_uid on */
        int64_t zygote_start_timeout_s; /* a zygote not ready by then is killed */
        int64_t max_outputs;         /* display items (plots) a run keeps */
        int64_t max_outputs_bytes;   /* their total size */
        int64_t max_files;           /* files a run is given, or returns */
        int64_t max_file_bytes;      /* one file's size, returned */
        int64_t max_files_bytes;     /* their total size, each way */
        int64_t session_max_lifetime_s; /* a session is ended after this long */
        int64_t interrupt_grace_ms;  /* a cell's interrupt, then its session is killed */
        char preload[256];           /* comma-separated modules the zygote imports */
        char cache_dir[256];         /* built-once caches; empty: the default for our uid */
        /* pyrunnerd */
        char listen[128];            /* HOST:PORT */
        char api_keys[1024];         /* comma-separated; empty: no auth */
        char api_keys_file[256];     /* one key per line */
        char cors_origin[256];       /* Access-Control-Allow-Origin; empty: off */
        int64_t insecure_no_auth;    /* allow a non-loopback bind without keys */
        int64_t max_concurrency;     /* runs at once; 0: 2 x cores */
        int64_t max_queue;           /* waiting runs beyond that */
        int64_t rate_limit;          /* requests per second per key (or client) */
        int64_t rate_burst;
        int64_t max_body_bytes;
        int64_t max_header_bytes;
        int64_t idle_timeout_s;
        int64_t max_connections;
        int64_t max_reply_bytes;
        int64_t send_stall_s;
        int64_t drain_timeout_ms;
        int64_t debug_log;           /* log code and output too */
        int64_t self_test;
        int64_t max_sessions;        /* live sessions in all */
        int64_t max_sessions_per_key;
        int64_t session_idle_timeout_s; /* default; a session may ask for less */
        uint64_t set_mask;           /* bit i: config_table[i] was set, not defaulted */
} PyrConfig;

typedef enum ConfigType {
        CONFIG_INT,
        CONFIG_STR,
} ConfigType;

typedef struct ConfigEntry {
        const char *name;            /* flag: --name, env: PYRUNNER_NAME */
        ConfigType type;
        size_t offset;
        int64_t min, max, def;       /* CONFIG_INT bounds, inclusive */
        const char *def_str;         /* CONFIG_STR default */
        size_t str_size;
        const char *unit;
        const char *help;
        bool daemon_only;            /* a pyrunnerd setting, not the CLI's */
} ConfigEntry;

extern const ConfigEntry config_table[];
extern const size_t config_table_size;

void config_init_defaults(PyrConfig *c);
const ConfigEntry *config_find(const char *name);
/* Parses value for the named setting: -ENOENT unknown name, -EINVAL not a
 * number, -ERANGE out of bounds. */
int config_set(PyrConfig *c, const char *name, const char *value);
/* Applies every PYRUNNER_<NAME> variable; on error *bad names it. */
int config_from_env(PyrConfig *c, const char **bad);
/* Applies "name = value" lines of a file ('#' comments); on error *line
 * is the failing line number (0: the file could not be read). */
int config_from_file(PyrConfig *c, const char *path, unsigned *line);
/* Cross-field checks (defaults within maxima); -EINVAL with *why set. */
int config_validate(const PyrConfig *c, const char **why);
/* Whether the named setting came from a file, a variable or a flag. */
bool config_is_set(const PyrConfig *c, const char *name);
int config_get_int(const PyrConfig *c, const ConfigEntry *e, int64_t *ret);
void config_print_help(FILE *f, bool daemon);
/* Strict integer parse of the whole string, with bounds. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* Seconds with up to 3 decimals ("2", "0.5") to milliseconds. */
int parse_seconds_ms(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ret);
