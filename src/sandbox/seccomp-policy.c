/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "seccomp-policy.h"

/* What ordinary Python, numpy/pandas/scipy, threads and multiprocessing
 * need. Anything not named falls to ENOSYS, so that newer syscalls let
 * libc fall back; the deliberate denials below answer EPERM. */
static const char *const user_allow[] = {
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
        "preadv2", "pwritev2", "open", "openat", "openat2", "close", "close_range",
        "creat", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
        "lseek", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
        "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat",
        "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link",
        "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown",
        "fchown", "fchownat", "lchown", "umask", "truncate", "ftruncate", "fallocate",
        "fsync", "fdatasync", "sync_file_range", "utime", "utimes", "utimensat",
        "futimesat", "mknod", "mknodat", "dup", "dup2", "dup3", "pipe", "pipe2",
        "fcntl", "sendfile", "copy_file_range", "splice", "tee", "fadvise64",
        "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "msync", "mincore",
        "mlock", "munlock", "mlock2", "membarrier", "memfd_create",
        "get_mempolicy", "set_mempolicy", "mbind",
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
        "signalfd", "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "sigaltstack", "kill", "tkill", "tgkill", "pause", "alarm",
        "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday",
        "time", "getitimer", "setitimer", "timer_create", "timer_settime",
        "timer_gettime", "timer_getoverrun", "timer_delete", "times",
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
        "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv",
        "rseq", "arch_prctl", "sched_yield", "sched_getaffinity", "sched_setaffinity",
        "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
        "sched_get_priority_min", "sched_rr_get_interval", "getpriority", "setpriority",
        "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
        "getresuid", "getresgid", "getgroups", "getpgid", "getpgrp", "getsid",
        "setpgid", "setsid", "getrlimit", "setrlimit", "prlimit64", "getrusage",
        "sysinfo", "uname", "getrandom", "capget", "prctl", "ioctl",
        "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect",
        "getsockname", "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg",
        "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
        "mq_getsetattr", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop",
        "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl",
        "pidfd_open", "pidfd_send_signal", "process_mrelease", "ioprio_get",
};
/* Not listed, so ENOSYS: io_setup and the rest of native AIO, whose
 * aio-max-nr is one pool for the whole host (glibc's aio uses threads). */

/* Explicitly refused with EPERM: privilege, kernel attack surface, and
 * channels that namespaces do not separate. */
static const char *const user_deny[] = {
        "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2",
        "pivot_root", "chroot", "setns", "unshare", "bpf", "perf_event_open", "keyctl",
        "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "kexec_load", "kexec_file_load", "init_module",
        "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at",
        "reboot", "swapon", "swapoff", "acct", "quotactl", "settimeofday",
        "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm", "syslog",
        "fanotify_init", "inotify_init", "inotify_init1", "inotify_add_watch", "vhangup", "lookup_dcookie", "move_mount", "open_tree",
        "fsopen", "fsmount", "fspick", "mount_setattr", "pidfd_getfd", "kcmp",
        "sethostname", "setdomainname", "personality", "flock", "setuid", "setgid",
        "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
        "setfsgid", "capset", "uselib", "nfsservctl", "vm86", "vm86old",
        "modify_ldt", "landlock_create_ruleset", "seccomp",
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
                    unsigned n, const struct scmp_arg_cmp *args)
{
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return 0; /* not on this architecture */
        return seccomp_rule_add_array(ctx, action, nr, n, args);
}

static int build_user(scmp_filter_ctx ctx)
{
        /* CLONE_PARENT would make a sandbox process a child of the zygote. */
        const uint64_t bad_clone = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                   CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_PARENT;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(user_allow); i++) {
                const char *n = user_allow[i];
                /* These get argument rules below. */
                if (!strcmp(n, "socket") || !strcmp(n, "socketpair") || !strcmp(n, "ioctl") ||
                    !strcmp(n, "fcntl") || !strcmp(n, "prctl"))
                        continue;
                r = add_rule(ctx, SCMP_ACT_ALLOW, n, 0, NULL);
                if (r < 0)
                        return r;
        }
        /* clone3 is not listed: it hides its flags behind a pointer, and the
         * default ENOSYS makes glibc fall back to clone, which we inspect. */
        for (size_t i = 0; i < ELEMENTSOF(user_deny); i++) {
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), user_deny[i], 0, NULL);
                if (r < 0)
                        return r;
        }

        /* clone: threads and fork, never new namespaces or a new parent. */
        struct scmp_arg_cmp clone_ok = SCMP_A0(SCMP_CMP_MASKED_EQ, bad_clone, 0);
        r = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &clone_ok);
        if (r < 0)
                return r;
        for (unsigned b = 0; b < 64; b++) {
                uint64_t bit = 1ull << b;
                if (!(bad_clone & bit))
                        continue;
                struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit);
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &a);
                if (r < 0)
                        return r;
        }

        /* socket: unix and IP only (the network namespace is empty anyway). */
        static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (uint64_t)families[i]);
                r = add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &a);
                if (r < 0)
                        return r;
        }
        for (int fam = 0; fam < AF_MAX; fam++) {
                if (fam == AF_UNIX || fam == AF_INET || fam == AF_INET6)
                        continue;
                struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (uint64_t)fam);
                r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &a);
                if (r < 0)
                        return r;
        }
        /* socketpair creates sockets of its family too (and may load its
         * module): unix only, the one family that implements it here. */
        struct scmp_arg_cmp pair_unix = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
        struct scmp_arg_cmp pair_other = SCMP_A0(SCMP_CMP_NE, AF_UNIX);
        r = add_rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, &pair_unix);
        if (r < 0)
                return r;
        r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socketpair", 1, &pair_other);
        if (r < 0)
                return r;

        /* ioctl, fcntl and prctl are allowed whole here; build_args narrows
         * ioctl and fcntl in a second filter. */
        r = add_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 0, NULL);
        if (r < 0)
                return r;
        r = add_rule(ctx, SCMP_ACT_ALLOW, "fcntl", 0, NULL);
        if (r < 0)
                return r;
        return add_rule(ctx, SCMP_ACT_ALLOW, "prctl", 0, NULL);
}

/* The second user filter: default allow, an errno for argument values.
 * The kernel reads ioctl's, fcntl's, fadvise's and madvise's as 32-bit,
 * so only their low 32 bits are compared. */
typedef struct ArgRule {
        const char *name;
        unsigned arg;
        uint64_t mask, value;
        int err;
} ArgRule;

#define LOW32 0xffffffffu
static const ArgRule arg_rules[] = {
        /* No terminal input injection or line-discipline games. */
        { "ioctl", 1, LOW32, TIOCSTI, EPERM },
        { "ioctl", 1, LOW32, TIOCLINUX, EPERM },
        { "ioctl", 1, LOW32, TIOCSETD, EPERM },
        /* Leases and dnotify reach other sandboxes through shared inodes. */
        { "fcntl", 1, LOW32, F_SETLEASE, EPERM },
        { "fcntl", 1, LOW32, F_NOTIFY, EPERM },
        /* The host's page cache is shared: evicting pages of files we may
         * only read, or asking whether they are cached, shows what other
         * runs read and passes bits between runs. */
        { "fadvise64", 3, LOW32, POSIX_FADV_DONTNEED, EPERM },
        { "madvise", 2, LOW32, MADV_COLD, EPERM },
        { "madvise", 2, LOW32, MADV_PAGEOUT, EPERM },
        /* EOPNOTSUPP is what a file without RWF_NOWAIT support answers,
         * so callers fall back to a plain read. */
        { "preadv2", 5, RWF_NOWAIT, RWF_NOWAIT, EOPNOTSUPP },
        { "pwritev2", 5, RWF_NOWAIT, RWF_NOWAIT, EOPNOTSUPP },
};

static int build_args(scmp_filter_ctx ctx)
{
        for (size_t i = 0; i < ELEMENTSOF(arg_rules); i++) {
                const ArgRule *ar = &arg_rules[i];
                struct scmp_arg_cmp a = { .arg = ar->arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = ar->mask,
                                          .datum_b = ar->value };
                int r = add_rule(ctx, SCMP_ACT_ERRNO((uint32_t)ar->err), ar->name, 1, &a);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int build_init(scmp_filter_ctx ctx)
{
        static const char *const allow[] = {
                "wait4", "waitid", "ppoll", "poll", "rt_sigreturn", "rt_sigprocmask",
                "rt_sigaction", "read", "close", "exit", "exit_group", "restart_syscall",
        };
        for (size_t i = 0; i < ELEMENTSOF(allow); i++) {
                int r = add_rule(ctx, SCMP_ACT_ALLOW, allow[i], 0, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int compile(uint32_t def, int (*build)(scmp_filter_ctx), struct sock_fprog *ret)
{
        scmp_filter_ctx ctx = seccomp_init(def);
        struct sock_filter *f = NULL;
        struct stat st;
        int mfd = -1, r;

        if (!ctx)
                return -ENOMEM;
        /* A binary tree over syscall numbers: a shorter path per syscall,
         * and a faster action-cache build when each child installs it. */
        (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        r = build(ctx);
        if (r < 0)
                goto out;
        mfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
        if (mfd < 0) {
                r = -errno;
                goto out;
        }
        r = seccomp_export_bpf(ctx, mfd);
        if (r < 0)
                goto out;
        if (fstat(mfd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter)) {
                r = -EIO;
                goto out;
        }
        f = malloc((size_t)st.st_size);
        if (!f) {
                r = -ENOMEM;
                goto out;
        }
        if (pread(mfd, f, (size_t)st.st_size, 0) != st.st_size) {
                r = -EIO;
                free(f);
                goto out;
        }
        ret->filter = f;
        ret->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
        r = 0;
out:
        safe_close(mfd);
        seccomp_release(ctx);
        return r;
}

void seccomp_program_free(SeccompProgram *p)
{
        for (unsigned i = 0; i < p->n; i++)
                free(p->filter[i].filter);
        p->n = 0;
}

int seccomp_policy_build(SeccompPolicyKind kind, SeccompProgram *ret)
{
        int r;

        memset(ret, 0, sizeof(*ret));
        if (kind == SECCOMP_POLICY_INIT)
                r = compile(SCMP_ACT_KILL_PROCESS, build_init, &ret->filter[0]);
        else
                r = compile(SCMP_ACT_ERRNO(ENOSYS), build_user, &ret->filter[0]);
        if (r < 0)
                return r;
        ret->n = 1;
        if (kind == SECCOMP_POLICY_USER) {
                r = compile(SCMP_ACT_ALLOW, build_args, &ret->filter[1]);
                if (r < 0) {
                        seccomp_program_free(ret);
                        return r;
                }
                ret->n = 2;
        }
        return 0;
}

int seccomp_policy_install(const SeccompProgram *p)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        for (unsigned i = 0; i < p->n; i++)
                if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->filter[i], 0, 0) < 0)
                        return -errno;
        return 0;
}
