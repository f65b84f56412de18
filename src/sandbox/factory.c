/* SPDX-License-Identifier: MIT */
/* The factory is forked from the zygote before Python starts, so it is
 * small and cheap to fork. It makes each sandbox's pid 1: a new user and
 * pid namespace, a tiny reaper, and the uid/gid maps. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "proc-util.h"
#include "sandbox.h"
#include "seccomp-policy.h"

static int drop_all_caps(void)
{
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = { 0 };
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        return 0;
}

/* pid 1 of a sandbox: waits for pid 2 to exist, then until pid 2 is gone.
 * Its exit makes the kernel kill everything left. SIGCHLD is ignored, so
 * the kernel reaps orphans, and pid 1 has no handler at all: signals
 * from inside its namespace are then dropped when sent, instead of
 * waking it (a SIGCHLD flood from pid 2 took a core, outside the run's
 * cgroup). */
static _noreturn_ void init_main(int go_fd, const SeccompProgram *filter, bool unprivileged)
{
        char c;
        int pidfd;

        if (dup2(go_fd, 3) < 0)
                _exit(0);
        syscall(SYS_close_range, 0, 2, 0);
        syscall(SYS_close_range, 4, ~0U, 0);
        if (read(3, &c, 1) != 1)
                _exit(0);
        close(3);
        pidfd = (int)syscall(SYS_pidfd_open, 2, 0);
        if (pidfd < 0)
                _exit(0);
        /* setgroups is denied below an unprivileged zygote: then the groups
         * are the caller's own, unmapped, and cannot be dropped. */
        if ((setgroups(0, NULL) < 0 && !(errno == EPERM && unprivileged)) ||
            setresgid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID) < 0 ||
            setresuid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID) < 0 ||
            drop_all_caps() < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                _exit(0);
        /* Explicitly not dumpable (whatever fs.suid_dumpable says): its
         * root and namespaces are the host's, and /proc/1 must not lead
         * there. */
        struct sigaction sa = { .sa_handler = SIG_IGN };
        if (sigaction(SIGCHLD, &sa, NULL) < 0 || seccomp_policy_install(filter) < 0)
                _exit(0);
        for (;;) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                int r = ppoll(&p, 1, NULL, NULL);
                if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
                        _exit(0);
        }
}

static int write_maps(pid_t pid, const FactoryRequest *req)
{
        char path[64], line[64];
        int r;

        snprintf(line, sizeof(line), "%u %u 1\n", ZYG_SANDBOX_UID, req->host_uid);
        snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
        r = file_write_str(AT_FDCWD, path, line);
        if (r < 0)
                return r;
        snprintf(line, sizeof(line), "%u %u 1\n", ZYG_SANDBOX_UID, req->host_gid);
        snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
        return file_write_str(AT_FDCWD, path, line);
}

static int make_init(const FactoryRequest *req, const SeccompProgram *filter, FactoryReply *rep,
                     int *ret_pidfd, int *ret_go)
{
        _cleanup_close_pair_ int go[2] = { -1, -1 };
        int pidfd = -1;

        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD, NULL,
                           &pidfd, NULL, NULL);
        if (pid < 0)
                return -errno;
        if (pid == 0)
                init_main(go[0], filter, req->unprivileged);

        int r = write_maps((pid_t)pid, req);
        if (r < 0) {
                syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                close(pidfd);
                return r;
        }
        rep->init_pid = (int32_t)pid;
        *ret_pidfd = pidfd;
        *ret_go = TAKE_FD(go[1]);
        return 0;
}

void factory_main(int sock, const SeccompProgram *init_filter)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        for (;;) {
                struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        _exit(1);
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) > 0)
                                ;
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                }
                if (!p[0].revents)
                        continue;
                FactoryRequest req;
                ssize_t n = recv(sock, &req, sizeof(req), 0);
                if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                        /* The zygote is going and has killed the pid 2s, so
                         * the pid 1s are exiting: reap them before it reaps
                         * us, not leave them to init. */
                        (void)wait_all_children(sfd, 500);
                        _exit(0);
                }
                if (n != sizeof(req))
                        continue;
                FactoryReply rep = { 0 };
                int fds[2] = { -1, -1 };
                int r = make_init(&req, init_filter, &rep, &fds[0], &fds[1]);
                rep.error = r;
                (void)fd_send_with_fds(sock, &rep, sizeof(rep), fds, r < 0 ? 0 : 2);
                safe_close(fds[0]);
                safe_close(fds[1]);
        }
}
