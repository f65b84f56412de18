/* SPDX-License-Identifier: MIT */
#pragma once

/* Messages between the engine and the zygote on a SOCK_SEQPACKET pair.
 * Both ends are our own trusted code; each message is one fixed struct,
 * fds travel as SCM_RIGHTS. Sandboxes never see this channel. */

#include <stdint.h>

#define ZYG_PROTO_VERSION 2          /* READY carries it; the engine refuses others */
#define ZYG_SANDBOX_UID 1000         /* uid and gid of user code inside */
#define ZYG_CTL_FD 3                 /* the framed channel inside a sandbox */
#define ZYG_PREPARE_NICE 10          /* zygote and idle sandboxes */
#define ZYG_RUN_NICE 5               /* user code: the daemon (0) comes first */

enum {
        ZYG_MSG_READY = 1,           /* zygote -> engine, once: ZygReady, then info JSON */
        ZYG_MSG_SPAWN,               /* engine -> zygote */
        ZYG_MSG_SPAWNED,             /* zygote -> engine, fds: init pidfd */
        ZYG_MSG_EXITED,              /* zygote -> engine: a sandbox's pid 2 was reaped */
        ZYG_MSG_ERROR,               /* zygote -> engine: fatal start-up error text */
        ZYG_MSG_PING,                /* engine -> zygote: ZygPing; the watchdog */
        ZYG_MSG_PONG,                /* zygote -> engine: the same ZygPing back */
};

/* Sandboxing switches; the test-only sabotage clears some of them. */
enum {
        ZYG_LAYER_USERNS = 1u << 0,
        ZYG_LAYER_PIDNS = 1u << 1,
        ZYG_LAYER_MNTNS = 1u << 2,
        ZYG_LAYER_NETNS = 1u << 3,
        ZYG_LAYER_IPCNS = 1u << 4,
        ZYG_LAYER_UTSNS = 1u << 5,
        ZYG_LAYER_SECCOMP = 1u << 6,
        ZYG_LAYER_CAPS = 1u << 7,
        ZYG_LAYER_RLIMITS = 1u << 8,
        ZYG_LAYER_CGROUPNS = 1u << 9,
        ZYG_LAYER_ALL = (1u << 10) - 1,
};

typedef struct ZygLimits {
        uint64_t tmpfs_bytes;
        uint64_t tmpfs_inodes;
        uint64_t fsize_bytes;
        uint64_t stack_bytes;
        uint32_t nofile;
        uint32_t cpu_seconds;        /* RLIMIT_CPU hard backstop */
        uint32_t nproc;              /* RLIMIT_NPROC, 0 = leave alone */
        uint32_t reserved;
} ZygLimits;

typedef struct ZygSpawn {
        uint32_t type;
        uint32_t n_cgroup_fds;       /* trailing fds after the 4 stdio/ctl ones */
        uint64_t id;
        uint32_t layers;
        uint32_t uid_slot;           /* host uid = sandbox-uid + uid_slot (as root) */
        ZygLimits limits;
} ZygSpawn;                          /* fds: stdin, stdout, stderr, ctl, cgroup.procs... */

typedef struct ZygSpawned {
        uint32_t type;
        int32_t error;               /* -errno, 0 on success */
        uint64_t id;
        int32_t pid;                 /* pid 2, host view */
        int32_t init_pid;            /* pid 1, host view (0 if unknown) */
        char message[128];
} ZygSpawned;                        /* fds: init pidfd (on success) */

typedef struct ZygExited {
        uint32_t type;
        int32_t status;              /* wait status of pid 2 */
        uint64_t id;
        int32_t pid;
        uint32_t reserved;
        uint64_t utime_us, stime_us;
} ZygExited;

typedef struct ZygHeader {
        uint32_t type;
} ZygHeader;

typedef struct ZygReady {
        uint32_t type;
        uint32_t version;            /* ZYG_PROTO_VERSION */
        int32_t factory_pid;         /* the janitor looks for stray pid 1s below it */
        uint32_t reserved;
} ZygReady;                          /* then the NUL-terminated info JSON */

typedef struct ZygPing {
        uint32_t type;
        uint32_t reserved;
        uint64_t seq;
} ZygPing;

#define ZYG_MSG_MAX 65536
#define ZYG_ERROR_MAX 16384         /* ERROR text, a traceback included */
