/* SPDX-License-Identifier: MIT */
/* Set-up of a sandbox's pid 2, a fork of the zygote, in the order of
 * docs/ARCHITECTURE.md: cgroup, user ns, other namespaces, the new root,
 * session, rlimits, fds, credentials and capabilities, seccomp last. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <grp.h>
#include <unistd.h>

#include "fd-util.h"
#include "frame.h"
#include "macro.h"
#include "sandbox.h"
#include "seccomp-policy.h"

#define FAIL(st) do { err->stage = (st); err->error = errno ? errno : EIO; return -err->error; } while (0)
#define CHECK(expr, st) do { if ((expr) < 0) FAIL(st); } while (0)

int sandbox_child_attach(const ChildArgs *a, SandboxError *err)
{
        /* Before Python's fork hooks touch memory, so the copies are ours. */
        for (size_t i = 0; i < a->n_cgroup_fds; i++) {
                errno = 0;
                CHECK(write(a->cgroup_fds[i], "0", 1), "cgroup attach");
        }
        return 0;
}

static unsigned long locked_flags(const char *path)
{
        struct statvfs sv;
        unsigned long f = 0;
        if (statvfs(path, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_NOSUID)
                f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
                f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                f |= MS_RELATIME;
        return f;
}

static int bind_ro(const char *src, const char *dst, bool is_dir)
{
        if (is_dir) {
                if (mkdir(dst, 0755) < 0 && errno != EEXIST)
                        return -errno;
        } else {
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        /* Read-only down the whole tree, submounts included. */
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
        if (mount_setattr(AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        unsigned long f = locked_flags(src) | MS_NOSUID | MS_NODEV | MS_RDONLY;
        if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | f, NULL) < 0)
                return -errno;
        return 0;
}

static int write_file(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = fd_write_all(fd, s, strlen(s));
        close(fd);
        return r;
}

static int setup_root(const ZygLimits *l, SandboxError *err)
{
        static const char *const devs[] = { "null", "zero", "full", "random", "urandom" };
        char opts[128];

        errno = 0;
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "mount private");
        /* The staging root: host /tmp is just a mount point in our private ns. */
        CHECK(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=512,mode=0755"),
              "mount root tmpfs");
        CHECK(chdir("/tmp"), "chdir root");
        CHECK(mkdir("usr", 0755), "mkdir usr");
        CHECK(bind_ro("/usr", "usr", true), "bind /usr");
        CHECK(symlink("usr/bin", "bin"), "symlink bin");
        CHECK(symlink("usr/sbin", "sbin"), "symlink sbin");
        CHECK(symlink("usr/lib", "lib"), "symlink lib");
        if (access("/lib64", F_OK) == 0)
                CHECK(symlink("usr/lib64", "lib64"), "symlink lib64");

        CHECK(mkdir("etc", 0755), "mkdir etc");
        CHECK(write_file("etc/passwd", "root:x:0:0::/:/usr/sbin/nologin\n"
                                       "sandbox:x:1000:1000::/tmp:/usr/sbin/nologin\n"
                                       "nobody:x:65534:65534::/:/usr/sbin/nologin\n"), "etc/passwd");
        CHECK(write_file("etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"), "etc/group");
        CHECK(write_file("etc/hostname", "pyrunner\n"), "etc/hostname");
        CHECK(write_file("etc/hosts", "127.0.0.1 localhost pyrunner\n::1 localhost\n"), "etc/hosts");
        if (access("/etc/ld.so.cache", F_OK) == 0)
                CHECK(bind_ro("/etc/ld.so.cache", "etc/ld.so.cache", false), "bind ld.so.cache");
        if (access("/etc/alternatives", F_OK) == 0)
                CHECK(bind_ro("/etc/alternatives", "etc/alternatives", true), "bind alternatives");
        /* Debian's matplotlib reads its defaults only from there: without
         * it, an import that the zygote did not preload fails. */
        if (access("/etc/matplotlibrc", F_OK) == 0)
                CHECK(bind_ro("/etc/matplotlibrc", "etc/matplotlibrc", false), "bind matplotlibrc");
        char tz[256];
        ssize_t n = readlink("/etc/localtime", tz, sizeof(tz) - 1);
        if (n > 0) {
                tz[n] = '\0';
                CHECK(symlink(tz, "etc/localtime"), "symlink localtime");
        }

        CHECK(mkdir("dev", 0755), "mkdir dev");
        CHECK(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755"),
              "mount dev");
        for (size_t i = 0; i < ELEMENTSOF(devs); i++) {
                char src[32], dst[32];
                snprintf(src, sizeof(src), "/dev/%s", devs[i]);
                snprintf(dst, sizeof(dst), "dev/%s", devs[i]);
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
                if (fd < 0)
                        FAIL("create dev node");
                close(fd);
                CHECK(mount(src, dst, NULL, MS_BIND, NULL), "bind dev node");
        }
        CHECK(symlink("/proc/self/fd", "dev/fd"), "symlink dev/fd");
        CHECK(symlink("/proc/self/fd/0", "dev/stdin"), "symlink dev/stdin");
        CHECK(symlink("/proc/self/fd/1", "dev/stdout"), "symlink dev/stdout");
        CHECK(symlink("/proc/self/fd/2", "dev/stderr"), "symlink dev/stderr");
        /* POSIX semaphores (multiprocessing) live in the run's own /tmp. */
        CHECK(symlink("/tmp", "dev/shm"), "symlink dev/shm");
        CHECK(mount(NULL, "dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL),
              "remount dev");

        CHECK(mkdir("proc", 0555), "mkdir proc");
        CHECK(mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "subset=pid,hidepid=invisible"),
              "mount proc");

        CHECK(mkdir("tmp", 01777), "mkdir tmp");
        snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=%llu,mode=1777",
                 (unsigned long long)l->tmpfs_bytes, (unsigned long long)l->tmpfs_inodes);
        CHECK(mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts), "mount tmp");

        CHECK(syscall(SYS_pivot_root, ".", "."), "pivot_root");
        CHECK(umount2(".", MNT_DETACH), "detach old root");
        CHECK(chdir("/"), "chdir /");
        CHECK(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL),
              "remount root read-only");
        CHECK(chdir("/tmp"), "chdir /tmp");
        return 0;
}

static int set_rlimit(int res, uint64_t v)
{
        struct rlimit rl = { .rlim_cur = v, .rlim_max = v };
        return setrlimit(res, &rl);
}

static int place_fds(const int fds[4])
{
        int high[4];
        for (int i = 0; i < 4; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
                if (high[i] < 0)
                        return -errno;
        }
        for (int i = 0; i < 4; i++)
                if (dup2(high[i], i) < 0)
                        return -errno;
        if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
                return -errno;
        return 0;
}

static int drop_privileges(SandboxError *err, const ChildArgs *a)
{
        errno = 0;
        if (a->layers & ZYG_LAYER_CAPS) {
                /* The bounding set first: it needs CAP_SETPCAP. */
                for (int cap = 0; cap <= 63; cap++)
                        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                                FAIL("drop bounding set");
        }
        /* Denied below an unprivileged zygote (see factory.c). */
        if (setgroups(0, NULL) < 0 && !(errno == EPERM && a->unprivileged))
                FAIL("setgroups");
        CHECK(setresgid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID), "setresgid");
        CHECK(setresuid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID), "setresuid");
        if (a->layers & ZYG_LAYER_CAPS) {
                struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
                struct __user_cap_data_struct d[2] = { 0 };
                CHECK(syscall(SYS_capset, &h, d), "capset");
                CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps");
                CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
        }
        return 0;
}

int sandbox_child_setup(const ChildArgs *a, SandboxError *err)
{
        const ZygLimits *l = &a->limits;
        int ns = 0;

        errno = 0;
        CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        /* Our parent is outside our pid namespace, so it reads as 0. */
        if (getppid() != ((a->layers & ZYG_LAYER_PIDNS) ? 0 : a->zygote_pid)) {
                errno = ESRCH;
                FAIL("zygote gone");
        }
        if (a->layers & ZYG_LAYER_USERNS) {
                CHECK(setns(a->init_pidfd, CLONE_NEWUSER), "join user namespace");
                /* Take the mapped ids now, or files on our tmpfs fail with EOVERFLOW. */
                CHECK(setresgid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID), "setresgid");
                CHECK(setresuid(ZYG_SANDBOX_UID, ZYG_SANDBOX_UID, ZYG_SANDBOX_UID), "setresuid");
        }
        if (a->layers & ZYG_LAYER_MNTNS)
                ns |= CLONE_NEWNS;
        if (a->layers & ZYG_LAYER_NETNS)
                ns |= CLONE_NEWNET;
        if (a->layers & ZYG_LAYER_IPCNS)
                ns |= CLONE_NEWIPC;
        if (a->layers & ZYG_LAYER_UTSNS)
                ns |= CLONE_NEWUTS;
        /* After the cgroup attach: /proc/self/cgroup then shows "/", not
         * the daemon's pid and the run counter of everyone's traffic. */
        if (a->layers & ZYG_LAYER_CGROUPNS)
                ns |= CLONE_NEWCGROUP;
        if (ns)
                CHECK(unshare(ns), "unshare namespaces");
        if (a->layers & ZYG_LAYER_MNTNS) {
                int r = setup_root(l, err);
                if (r < 0)
                        return r;
        }
        if (a->layers & ZYG_LAYER_UTSNS)
                CHECK(sethostname("pyrunner", 8), "sethostname");
        CHECK(setsid(), "setsid");
        int r = place_fds(a->fds);
        if (r < 0) {
                errno = -r;
                FAIL("place fds");
        }
        err->ctl_fd = ZYG_CTL_FD;
        /* After placing fds: a small NOFILE would refuse the high dups. */
        if (a->layers & ZYG_LAYER_RLIMITS) {
                CHECK(set_rlimit(RLIMIT_NOFILE, l->nofile), "rlimit nofile");
                CHECK(set_rlimit(RLIMIT_FSIZE, l->fsize_bytes), "rlimit fsize");
                CHECK(set_rlimit(RLIMIT_CORE, 0), "rlimit core");
                CHECK(set_rlimit(RLIMIT_STACK, l->stack_bytes), "rlimit stack");
                CHECK(set_rlimit(RLIMIT_CPU, l->cpu_seconds), "rlimit cpu");
                CHECK(set_rlimit(RLIMIT_MEMLOCK, 0), "rlimit memlock");
                if (l->nproc)
                        CHECK(set_rlimit(RLIMIT_NPROC, l->nproc), "rlimit nproc");
        }
        r = drop_privileges(err, a);
        if (r < 0)
                return r;
        /* The uid change cleared it; /proc/self must stay readable to us. */
        CHECK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable");
        /* Credential changes clear the parent-death signal too: set it again
         * and check that the zygote did not die in between. */
        CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        if (getppid() != ((a->layers & ZYG_LAYER_PIDNS) ? 0 : a->zygote_pid)) {
                errno = ESRCH;
                FAIL("zygote gone");
        }
        if (a->layers & ZYG_LAYER_SECCOMP) {
                r = seccomp_policy_install(a->filter);
                if (r < 0) {
                        errno = -r;
                        FAIL("seccomp");
                }
        }
        return 0;
}

void sandbox_child_report(int ctl_fd, const SandboxError *err)
{
        char json[256];
        uint8_t hdr[FRAME_HEADER_SIZE];
        int n = snprintf(json, sizeof(json), "{\"type\":\"setup_error\",\"stage\":\"%s\",\"errno\":%d,\"message\":\"%s\"}",
                         err->stage, err->error, strerror(err->error));
        if (n < 0 || (size_t)n >= sizeof(json))
                return;
        frame_put_header(hdr, (uint32_t)n);
        (void)fd_write_all(ctl_fd, hdr, sizeof(hdr));
        (void)fd_write_all(ctl_fd, json, (size_t)n);
}
