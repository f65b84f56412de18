/* SPDX-License-Identifier: MIT */
#pragma once

/* Code that runs inside the zygote's processes: the factory that makes a
 * sandbox's pid 1, that pid 1 itself, and the set-up of pid 2. None of it
 * logs: errors go back as -errno plus a stage name. */

#include <linux/filter.h>
#include <stdint.h>
#include <sys/types.h>

#include "seccomp-policy.h"
#include "zygote-proto.h"

typedef struct SandboxError {
        const char *stage;           /* static string */
        int error;                   /* positive errno */
        int ctl_fd;                  /* where the ctl channel is right now */
} SandboxError;

typedef struct FactoryReply {
        int32_t error;
        int32_t init_pid;
} FactoryReply;                      /* fds: init pidfd, go pipe write end */

typedef struct FactoryRequest {
        uint32_t host_uid, host_gid; /* what the sandbox user maps to */
        uint32_t unprivileged;       /* setgroups is denied then */
} FactoryRequest;

/* Runs the factory loop on sock until it closes, then reaps its pid 1s;
 * never returns. */
void factory_main(int sock, const SeccompProgram *init_filter) __attribute__((noreturn));

typedef struct ChildArgs {
        int fds[4];                  /* stdin, stdout, stderr, ctl */
        const int *cgroup_fds;
        size_t n_cgroup_fds;
        int init_pidfd;
        pid_t zygote_pid;
        uint32_t layers;
        bool unprivileged;
        ZygLimits limits;
        const SeccompProgram *filter;
} ChildArgs;

/* Steps of pid 2 before Python's fork hooks run. */
int sandbox_child_attach(const ChildArgs *a, SandboxError *err);
/* Everything else, seccomp last. On success fds 0-3 are in place. */
int sandbox_child_setup(const ChildArgs *a, SandboxError *err);
/* Best effort: tells the engine over ctl which step failed. */
void sandbox_child_report(int ctl_fd, const SandboxError *err);
