/* SPDX-License-Identifier: MIT */
#pragma once

/* Per-run cgroups on v1 (legacy/hybrid) and v2, behind one interface.
 * Runs get a cgroup below the caller's own cgroup, which is removed after. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum CgroupMode {
        CGROUP_MODE_NONE,            /* nothing writable: rlimits only */
        CGROUP_MODE_V1,
        CGROUP_MODE_V2,
} CgroupMode;

enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_N };

typedef struct CgroupLimits {
        uint64_t memory_bytes;
        uint64_t pids_max;
        uint32_t cpu_percent;
} CgroupLimits;

typedef struct CgroupStats {
        uint64_t memory_peak;        /* bytes */
        uint64_t memory_current;     /* bytes, now */
        uint64_t cpu_usage_ns;
        uint64_t oom_kills;
} CgroupStats;

typedef struct CgroupRoot {
        CgroupMode mode;
        int dirfd[CG_N];             /* our parent dir per controller, -1 if absent */
        char name[64];               /* pyrunner-<pid> */
        bool has_memsw;
        char why[160];               /* why a mode is NONE or degraded */
} CgroupRoot;

typedef struct Cgroup {
        CgroupRoot *root;            /* borrowed */
        int dirfd[CG_N];
        char name[32];
} Cgroup;

/* fsroot is normally /sys/fs/cgroup and self_cgroup /proc/self/cgroup;
 * tests pass a fake tree. Never fails hard: on problems mode is NONE. */
int cg_root_open(CgroupRoot *root, const char *fsroot, const char *self_cgroup, const char *name);
void cg_root_close(CgroupRoot *root);
const char *cg_mode_name(CgroupMode m);

int cg_create(CgroupRoot *root, const char *name, const CgroupLimits *limits, Cgroup *ret);
/* Opens the cgroup.procs file of each distinct hierarchy; returns count. */
int cg_open_procs(const Cgroup *cg, int *fds, size_t max);
int cg_set_memory(const Cgroup *cg, uint64_t bytes);
int cg_reset_peak(const Cgroup *cg);
int cg_read_stats(const Cgroup *cg, CgroupStats *ret);
/* Kills every task in the cgroup: cgroup.kill on v2, else each task that
 * cgroup.procs lists (call again while it still forks). */
int cg_kill(const Cgroup *cg);
/* Ids of the "run-<id>" cgroups below the root, in any hierarchy. */
int cg_root_list_runs(const CgroupRoot *root, uint64_t *ids, size_t max);
/* Kills what is left in a run cgroup the engine no longer owns and removes
 * it; -EBUSY while tasks remain. */
int cg_remove_stray(CgroupRoot *root, const char *name);
/* Removes the cgroup; -EBUSY while tasks remain. Closes the dirfds. */
int cg_destroy(Cgroup *cg);
void cg_init(Cgroup *cg);
