/* SPDX-License-Identifier: MIT */
/* Unit tests for src/sandbox/seccomp-policy.c, for real: each probe runs in a
 * fork()ed child that installs the filter, makes one system call and reports
 * {return value, errno} to the parent through a pipe.
 *
 * Once the filter is in, the child keeps to raw syscall()s and leaves with
 * exit_group, so that no sanitizer machinery (ASan/UBSan builds run these
 * tests too) runs under the filter. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "seccomp-policy.h"


static SeccompProgram user_prog, init_prog;
static char lease_file[64]; /* a regular file we own, for F_SETLEASE */

typedef struct Report {
        int stage; /* 1: install failed, 2: probe ran */
        int err;
        long ret;
} Report;

typedef long (*Probe)(void);

/* ---- running a probe under a policy ---- */

static void child_report(int fd, const Report *rep)
{
        (void)syscall(SYS_write, fd, rep, sizeof(*rep));
        (void)syscall(SYS_exit_group, 0);
        __builtin_unreachable();
}

/* Forks; the child installs prog and runs probe. Returns the wait status;
 * *rep is filled when the child got to report (returns true then). */
static bool run_under(const SeccompProgram *prog, Probe probe, Report *rep, int *status, pid_t *ret_pid)
{
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Report r = { .stage = 1, .ret = -1 };
                struct rlimit no_core = { 0, 0 };
                (void)setrlimit(RLIMIT_CORE, &no_core);
                (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core dumps from SIGSYS */
                /* cmocka's handler would turn a probe's SIGSEGV into exit(1). */
                (void)signal(SIGSEGV, SIG_DFL);
                int k = seccomp_policy_install(prog);
                if (k < 0) {
                        r.err = -k;
                        child_report(p[1], &r);
                }
                errno = 0;
                r.ret = probe();
                r.err = errno;
                r.stage = 2;
                child_report(p[1], &r);
        }
        close(p[1]);
        memset(rep, 0, sizeof(*rep));
        ssize_t n;
        do
                n = read(p[0], rep, sizeof(*rep));
        while (n < 0 && errno == EINTR);
        close(p[0]);
        assert_int_equal(waitpid(pid, status, 0), pid);
        if (ret_pid)
                *ret_pid = pid;
        if (n == (ssize_t)sizeof(*rep) && rep->stage == 1)
                fail_msg("seccomp_policy_install failed: %s", strerror(rep->err));
        return n == (ssize_t)sizeof(*rep) && rep->stage == 2;
}

static Report run_user(Probe probe)
{
        Report rep;
        int status;
        if (!run_under(&user_prog, probe, &rep, &status, NULL)) {
                if (WIFSIGNALED(status))
                        fail_msg("child killed by signal %d before reporting", WTERMSIG(status));
                fail_msg("child exited (status 0x%x) without a report", status);
        }
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return rep;
}

static void expect_errno(Probe probe, int err)
{
        Report rep = run_user(probe);
        if (rep.ret != -1 || rep.err != err)
                fail_msg("returned %ld errno %d (%s), expected -1 errno %d (%s)", rep.ret, rep.err,
                         strerror(rep.err), err, strerror(err));
}

/* For the known-bug checks: no assertion, just whether it was so. */
static bool probe_gives(Probe probe, int err)
{
        Report rep = run_user(probe);
        return rep.ret == -1 && rep.err == err;
}

static long expect_success(Probe probe)
{
        Report rep = run_user(probe);
        if (rep.ret < 0)
                fail_msg("returned %ld errno %d (%s), expected success", rep.ret, rep.err, strerror(rep.err));
        return rep.ret;
}

static int expect_killed(const SeccompProgram *prog, Probe probe)
{
        Report rep;
        int status;
        if (run_under(prog, probe, &rep, &status, NULL))
                fail_msg("probe returned %ld errno %d instead of killing the process", rep.ret, rep.err);
        if (!WIFSIGNALED(status))
                fail_msg("child not killed: status 0x%x", status);
        return WTERMSIG(status);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
        if (seccomp_policy_build(SECCOMP_POLICY_USER, &user_prog) < 0)
                return -1;
        if (seccomp_policy_build(SECCOMP_POLICY_INIT, &init_prog) < 0)
                return -1;
        snprintf(lease_file, sizeof(lease_file), "/var/tmp/pyrunner-seccomp-XXXXXX");
        int fd = mkstemp(lease_file);
        if (fd < 0) {
                snprintf(lease_file, sizeof(lease_file), "./pyrunner-seccomp-XXXXXX");
                fd = mkstemp(lease_file);
        }
        if (fd < 0)
                return -1;
        if (write(fd, "x", 1) != 1) {
                close(fd);
                return -1;
        }
        close(fd);
        return 0;
}

static int group_teardown(void **state)
{
        seccomp_program_free(&user_prog);
        seccomp_program_free(&init_prog);
        unlink(lease_file);
        return 0;
}

/* ---- building ---- */

static void test_build(void **state)
{
        /* The user policy is an allowlist plus an argument filter. */
        assert_int_equal(user_prog.n, 2);
        assert_int_equal(init_prog.n, 1);
        const struct sock_fprog *u = &user_prog.filter[0], *a = &user_prog.filter[1], *i = &init_prog.filter[0];
        assert_non_null(u->filter);
        assert_true(u->len > 0);
        assert_non_null(a->filter);
        assert_true(a->len > 0);
        assert_non_null(i->filter);
        assert_true(i->len > 0);
        /* The user policy has far more rules than pid 1's. */
        assert_true(u->len > i->len);
        /* BPF programs are limited to 4096 instructions. */
        assert_true(u->len <= 4096);
        /* Every program ends in a return. */
        assert_int_equal(BPF_CLASS(u->filter[u->len - 1].code), BPF_RET);
        assert_int_equal(BPF_CLASS(a->filter[a->len - 1].code), BPF_RET);
        assert_int_equal(BPF_CLASS(i->filter[i->len - 1].code), BPF_RET);

        /* Building is repeatable and gives the same programs. */
        SeccompProgram again;
        assert_int_equal(seccomp_policy_build(SECCOMP_POLICY_USER, &again), 0);
        assert_int_equal(again.n, user_prog.n);
        for (unsigned k = 0; k < again.n; k++) {
                assert_int_equal(again.filter[k].len, user_prog.filter[k].len);
                assert_memory_equal(again.filter[k].filter, user_prog.filter[k].filter,
                                    again.filter[k].len * sizeof(struct sock_filter));
        }
        seccomp_program_free(&again);
}

/* ---- the user policy: allowed ---- */

static long probe_getpid(void)
{
        return syscall(SYS_getpid);
}

static void test_user_getpid(void **state)
{
        Report rep;
        int status;
        pid_t pid;
        assert_true(run_under(&user_prog, probe_getpid, &rep, &status, &pid));
        assert_int_equal(rep.ret, pid);
}

static long probe_status(void)
{
        /* Seccomp mode 2 and no_new_privs, as the kernel sees it. */
        char buf[4096];
        long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
        syscall(SYS_close, fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        return (strstr(buf, "\nSeccomp:\t2\n") ? 1 : 0) | (strstr(buf, "\nNoNewPrivs:\t1\n") ? 2 : 0);
}

static void test_user_installed(void **state)
{
        assert_int_equal(expect_success(probe_status), 3);
}

static long probe_socket_unix(void)
{
        long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
                syscall(SYS_close, fd);
        return fd;
}

static long probe_socket_inet6(void)
{
        long fd = syscall(SYS_socket, AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
                syscall(SYS_close, fd);
        return fd;
}

static long probe_socketpair_unix(void)
{
        int sv[2];
        long r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        if (r == 0) {
                syscall(SYS_close, sv[0]);
                syscall(SYS_close, sv[1]);
        }
        return r;
}

static void test_user_socket_unix_inet(void **state)
{
        expect_success(probe_socket_unix);
        expect_success(probe_socket_inet6);
        expect_success(probe_socketpair_unix);
}

static long probe_fcntl_getfd(void)
{
        return syscall(SYS_fcntl, 1, F_GETFD);
}

static long probe_fcntl_setfl(void)
{
        long fl = syscall(SYS_fcntl, 1, F_GETFL);
        if (fl < 0)
                return fl;
        return syscall(SYS_fcntl, 1, F_SETFL, fl);
}

static void test_user_fcntl_allowed(void **state)
{
        expect_success(probe_fcntl_getfd);
        expect_success(probe_fcntl_setfl);
}

static long probe_ioctl_fionread(void)
{
        int p[2], n = -1;
        if (syscall(SYS_pipe2, p, O_CLOEXEC) < 0)
                return -1;
        long r = syscall(SYS_ioctl, p[0], FIONREAD, &n);
        syscall(SYS_close, p[0]);
        syscall(SYS_close, p[1]);
        return r < 0 ? r : n;
}

static void test_user_ioctl_allowed(void **state)
{
        assert_int_equal(expect_success(probe_ioctl_fionread), 0);
}

static long probe_fork(void)
{
        /* glibc's fork(): clone without namespace flags. */
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0)
                syscall(SYS_exit_group, 0);
        int status = -1;
        if (syscall(SYS_wait4, pid, &status, 0, NULL) != pid)
                return -1;
        errno = 0;
        return status; /* 0: exited 0 */
}

static void test_user_fork(void **state)
{
        assert_int_equal(expect_success(probe_fork), 0);
}

static void *thread_fn(void *arg)
{
        return arg;
}

static long probe_thread(void)
{
        /* glibc tries clone3 first, gets ENOSYS, and falls back to clone. */
        pthread_t t;
        void *ret = NULL;
        int r = pthread_create(&t, NULL, thread_fn, (void *)(intptr_t)42);
        if (r != 0) {
                errno = r;
                return -1;
        }
        r = pthread_join(t, &ret);
        if (r != 0) {
                errno = r;
                return -1;
        }
        errno = 0;
        return (long)(intptr_t)ret;
}

static void test_user_threads(void **state)
{
        assert_int_equal(expect_success(probe_thread), 42);
}

/* ---- the user policy: refused with EPERM ---- */

static long probe_ptrace(void)
{
        return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
}

static long probe_mount(void)
{
        /* A target that does not exist, should the filter ever let it through. */
        return syscall(SYS_mount, "none", "/nonexistent-pyrunner-test", "tmpfs", 0, NULL);
}

static long probe_unshare_user(void)
{
        return syscall(SYS_unshare, CLONE_NEWUSER);
}

static long probe_unshare_zero(void)
{
        return syscall(SYS_unshare, 0);
}

static long probe_bpf(void)
{
        return syscall(SYS_bpf, -1, NULL, 0);
}

static long probe_keyctl(void)
{
        return syscall(SYS_keyctl, 9999, 0, 0, 0, 0);
}

static long probe_seccomp(void)
{
        /* SECCOMP_GET_ACTION_AVAIL: harmless, still refused. */
        unsigned int action = 0;
        return syscall(SYS_seccomp, 2, 0, &action);
}

static long probe_perf_event_open(void)
{
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
}

static long probe_userfaultfd(void)
{
        return syscall(SYS_userfaultfd, O_CLOEXEC);
}

static long probe_io_uring_setup(void)
{
        return syscall(SYS_io_uring_setup, 1, NULL);
}

static long probe_setuid(void)
{
        return syscall(SYS_setuid, 0);
}

static long probe_personality(void)
{
        return syscall(SYS_personality, 0xffffffffUL);
}

static void test_user_eperm(void **state)
{
        static const struct {
                const char *name;
                Probe probe;
        } probes[] = {
                { "ptrace", probe_ptrace },         { "mount", probe_mount },
                { "unshare(CLONE_NEWUSER)", probe_unshare_user },
                { "unshare(0)", probe_unshare_zero }, { "bpf", probe_bpf },
                { "keyctl", probe_keyctl },         { "seccomp", probe_seccomp },
                { "perf_event_open", probe_perf_event_open },
                { "userfaultfd", probe_userfaultfd }, { "io_uring_setup", probe_io_uring_setup },
                { "setuid", probe_setuid },         { "personality", probe_personality },
        };
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                Report rep = run_user(probes[i].probe);
                if (rep.ret != -1 || rep.err != EPERM)
                        fail_msg("%s: returned %ld errno %d (%s), expected EPERM", probes[i].name, rep.ret,
                                 rep.err, strerror(rep.err));
        }
}

static void test_user_ptrace(void **state)
{
        expect_errno(probe_ptrace, EPERM);
}

static void test_user_mount(void **state)
{
        expect_errno(probe_mount, EPERM);
}

static void test_user_unshare_newuser(void **state)
{
        expect_errno(probe_unshare_user, EPERM);
}

static void test_user_bpf(void **state)
{
        expect_errno(probe_bpf, EPERM);
}

static void test_user_keyctl(void **state)
{
        expect_errno(probe_keyctl, EPERM);
}

static long probe_clone_newnet(void)
{
        long r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                syscall(SYS_exit_group, 0); /* only if the filter failed */
        return r;
}

static long probe_clone_newuser_thread_flags(void)
{
        /* Namespace bits mixed into otherwise harmless flags. */
        long r = syscall(SYS_clone, CLONE_NEWUSER | CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                syscall(SYS_exit_group, 0);
        return r;
}

static long probe_clone_plain(void)
{
        long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                syscall(SYS_exit_group, 3);
        if (r < 0)
                return r;
        int status = -1;
        if (syscall(SYS_wait4, r, &status, 0, NULL) != r)
                return -1;
        return status;
}

static void test_user_clone_namespaces(void **state)
{
        expect_errno(probe_clone_newnet, EPERM);
        expect_errno(probe_clone_newuser_thread_flags, EPERM);
        /* Plain clone (what fork is) works: the child exits 3. */
        assert_int_equal(expect_success(probe_clone_plain), 3 << 8);
}

static long probe_ioctl_tiocsti(void)
{
        /* On a pipe, so that the kernel itself would say ENOTTY. */
        int p[2];
        char c = 'x';
        if (syscall(SYS_pipe2, p, O_CLOEXEC) < 0)
                return -2;
        long r = syscall(SYS_ioctl, p[0], TIOCSTI, &c);
        int e = errno;
        syscall(SYS_close, p[0]);
        syscall(SYS_close, p[1]);
        errno = e;
        return r;
}

static long probe_ioctl_tiocsti_high_bits(void)
{
        /* The kernel ignores the upper 32 bits of the ioctl command. */
        int p[2];
        char c = 'x';
        if (syscall(SYS_pipe2, p, O_CLOEXEC) < 0)
                return -2;
        long r = syscall(SYS_ioctl, p[0], (unsigned long)TIOCSTI | (1UL << 32), &c);
        int e = errno;
        syscall(SYS_close, p[0]);
        syscall(SYS_close, p[1]);
        errno = e;
        return r;
}

static void test_ioctl_tiocsti(void **state)
{
        /* Terminal input injection is refused, also with junk in the high
         * 32 bits of the request, which the kernel ignores. */
        assert_true(probe_gives(probe_ioctl_tiocsti, EPERM));
        assert_true(probe_gives(probe_ioctl_tiocsti_high_bits, EPERM));
}

static long probe_fcntl_setlease(void)
{
        long fd = syscall(SYS_openat, AT_FDCWD, lease_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -2;
        long r = syscall(SYS_fcntl, fd, F_SETLEASE, F_RDLCK);
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
        return r;
}

static long probe_fcntl_notify(void)
{
        long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -2;
        long r = syscall(SYS_fcntl, fd, F_NOTIFY, DN_CREATE);
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
        return r;
}

static void test_fcntl_lease_notify(void **state)
{
        assert_true(probe_gives(probe_fcntl_setlease, EPERM));
        assert_true(probe_gives(probe_fcntl_notify, EPERM));
        expect_success(probe_fcntl_getfd);
}

static long probe_fcntl_setlease_high_bits(void)
{
        /* fcntl's cmd is an unsigned int to the kernel: bits 32..63 are
         * dropped, so F_SETLEASE | 1 << 32 is F_SETLEASE. */
        long fd = syscall(SYS_openat, AT_FDCWD, lease_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -2;
        long r = syscall(SYS_fcntl, fd, (unsigned long)F_SETLEASE | (1UL << 32), F_RDLCK);
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
        return r;
}

static long probe_fcntl_notify_high_bits(void)
{
        long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -2;
        long r = syscall(SYS_fcntl, fd, (unsigned long)F_NOTIFY | (1UL << 32), DN_CREATE);
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
        return r;
}

static void test_fcntl_high_bits(void **state)
{
        /* fcntl's cmd is an unsigned int to the kernel: the rules must
         * compare the low 32 bits only. */
        assert_true(probe_gives(probe_fcntl_setlease_high_bits, EPERM));
        assert_true(probe_gives(probe_fcntl_notify_high_bits, EPERM));
}

static long probe_flock(void)
{
        long fd = syscall(SYS_openat, AT_FDCWD, lease_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -2;
        long r = syscall(SYS_flock, fd, LOCK_EX | LOCK_NB);
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
        return r;
}

static void test_user_flock(void **state)
{
        expect_errno(probe_flock, EPERM);
}

/* ---- the user policy: other answers ---- */

static long probe_socket_netlink(void)
{
        return syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
}

static long probe_socket_packet(void)
{
        return syscall(SYS_socket, AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
}

static long probe_socket_vsock(void)
{
        return syscall(SYS_socket, AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static long probe_socket_netlink_high_bits(void)
{
        /* socket's family is an int to the kernel; whatever the filter makes
         * of the upper bits, this must not create a netlink socket. */
        long fd = syscall(SYS_socket, (unsigned long)AF_NETLINK | (1UL << 32), SOCK_RAW | SOCK_CLOEXEC, 0);
        if (fd >= 0)
                syscall(SYS_close, fd);
        return fd;
}

static void test_user_socket_families(void **state)
{
        expect_errno(probe_socket_netlink, EAFNOSUPPORT);
        expect_errno(probe_socket_packet, EAFNOSUPPORT);
        expect_errno(probe_socket_vsock, EAFNOSUPPORT);
        Report rep = run_user(probe_socket_netlink_high_bits);
        assert_int_equal(rep.ret, -1);
}

static long probe_clone3(void)
{
        /* If it were let through, the kernel would say EINVAL for size 0. */
        return syscall(SYS_clone3, NULL, 0);
}

static void test_user_clone3_enosys(void **state)
{
        expect_errno(probe_clone3, ENOSYS);
}

static long probe_nr_460(void)
{
        return syscall(460, 0, 0, 0, 0, 0);
}

static long probe_nr_462(void)
{
        return syscall(462, 0, 0, 0, 0, 0);
}

static long probe_nr_1000(void)
{
        return syscall(1000, 0, 0, 0, 0, 0);
}

static long probe_memfd_secret(void)
{
        return syscall(447, 0);
}

static void test_user_unknown_enosys(void **state)
{
        /* Not on the list (newer than libseccomp 2.5.4, or just unknown):
         * ENOSYS, so that libc falls back to older calls. */
        expect_errno(probe_nr_460, ENOSYS);
        expect_errno(probe_nr_462, ENOSYS);
        expect_errno(probe_nr_1000, ENOSYS);
        expect_errno(probe_memfd_secret, ENOSYS);
}

#ifdef __x86_64__
static long probe_x32_getpid(void)
{
        /* The x32 ABI shares the x86_64 audit arch; the filter must not
         * treat __X32_SYSCALL_BIT | nr as nr. */
        return syscall(0x40000000L | SYS_getpid);
}

static long probe_i386_getpid(void)
{
        long r;
        __asm__ volatile("int $0x80"
                         : "=a"(r)
                         : "a"(20L)
                         : "memory", "cc", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"); /* __NR_getpid on i386 */
        return r;
}

static void test_user_other_abis_killed(void **state)
{
        int sig = expect_killed(&user_prog, probe_x32_getpid);
        assert_int_equal(sig, SIGSYS);
        sig = expect_killed(&user_prog, probe_i386_getpid);
        /* SIGSEGV when the kernel has no IA-32 emulation at all. */
        assert_true(sig == SIGSYS || sig == SIGSEGV);
}
#endif

/* ---- the init policy ---- */

static void test_init_getpid_killed(void **state)
{
        assert_int_equal(expect_killed(&init_prog, probe_getpid), SIGSYS);
}

static long probe_write(void)
{
        return syscall(SYS_write, 2, "", 0);
}

static void test_init_write_killed(void **state)
{
        assert_int_equal(expect_killed(&init_prog, probe_write), SIGSYS);
}

static void test_init_wait_and_exit(void **state)
{
        /* The child forks a grandchild first, installs the init policy, reaps
         * the grandchild with wait4 and leaves with exit_group: its own exit
         * code tells the parent how that went. */
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pid_t gc = fork();
                if (gc < 0)
                        syscall(SYS_exit_group, 20);
                if (gc == 0)
                        syscall(SYS_exit_group, 7);
                (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
                if (seccomp_policy_install(&init_prog) < 0)
                        syscall(SYS_exit_group, 21);
                int st = -1;
                long r = syscall(SYS_wait4, gc, &st, 0, NULL);
                if (r != gc)
                        syscall(SYS_exit_group, 22);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
                        syscall(SYS_exit_group, 23);
                /* Nothing left to wait for: ECHILD, not death. */
                r = syscall(SYS_wait4, -1, &st, WNOHANG, NULL);
                if (r != -1 || errno != ECHILD)
                        syscall(SYS_exit_group, 24);
                syscall(SYS_exit_group, 0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status))
                fail_msg("init-policy child killed by signal %d", WTERMSIG(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build),
                cmocka_unit_test(test_user_getpid),
                cmocka_unit_test(test_user_installed),
                cmocka_unit_test(test_user_socket_unix_inet),
                cmocka_unit_test(test_user_fcntl_allowed),
                cmocka_unit_test(test_user_ioctl_allowed),
                cmocka_unit_test(test_user_fork),
                cmocka_unit_test(test_user_threads),
                cmocka_unit_test(test_user_ptrace),
                cmocka_unit_test(test_user_mount),
                cmocka_unit_test(test_user_unshare_newuser),
                cmocka_unit_test(test_user_bpf),
                cmocka_unit_test(test_user_keyctl),
                cmocka_unit_test(test_user_eperm),
                cmocka_unit_test(test_user_clone_namespaces),
                cmocka_unit_test(test_ioctl_tiocsti),
                cmocka_unit_test(test_fcntl_lease_notify),
                cmocka_unit_test(test_fcntl_high_bits),
                cmocka_unit_test(test_user_flock),
                cmocka_unit_test(test_user_socket_families),
                cmocka_unit_test(test_user_clone3_enosys),
                cmocka_unit_test(test_user_unknown_enosys),
#ifdef __x86_64__
                cmocka_unit_test(test_user_other_abis_killed),
#endif
                cmocka_unit_test(test_init_getpid_killed),
                cmocka_unit_test(test_init_write_killed),
                cmocka_unit_test(test_init_wait_and_exit),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
