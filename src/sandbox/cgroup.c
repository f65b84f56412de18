/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "fd-util.h"
#include "macro.h"
#include "proc-util.h"

static const char *const v1_names[CG_N] = { "memory", "pids", "cpu", "cpuacct" };

const char *cg_mode_name(CgroupMode m)
{
        switch (m) {
        case CGROUP_MODE_V1:
                return "v1";
        case CGROUP_MODE_V2:
                return "v2";
        case CGROUP_MODE_NONE:
        default:
                return "none";
        }
}

void cg_init(Cgroup *cg)
{
        memset(cg, 0, sizeof(*cg));
        for (int i = 0; i < CG_N; i++)
                cg->dirfd[i] = -1;
}

static int write_knob(int dirfd, const char *knob, const char *val)
{
        /* O_CREAT lets the unit tests use a plain directory as a fake tree. */
        _cleanup_close_ int fd = openat(dirfd, knob, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return fd_write_all(fd, val, strlen(val));
}

static int write_u64(int dirfd, const char *knob, uint64_t v)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return write_knob(dirfd, knob, buf);
}

static int read_u64(int dirfd, const char *knob, uint64_t *ret)
{
        char buf[64];
        ssize_t n = file_read_str(dirfd, knob, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Reads "key value" lines (memory.events, cpu.stat, memory.oom_control). */
static int read_keyed(int dirfd, const char *knob, const char *key, uint64_t *ret)
{
        char buf[2048];
        ssize_t n = file_read_str(dirfd, knob, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        size_t kl = strlen(key);
        for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
                        *ret = strtoull(line + kl + 1, NULL, 10);
                        return 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

/* Finds our own path for a v1 controller, or for v2 when ctrl is "". */
static int self_path(const char *self_cgroup, const char *ctrl, char *ret, size_t size)
{
        char buf[4096];
        ssize_t n = file_read_str(AT_FDCWD, self_cgroup, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c1 && c2) {
                        *c1 = '\0';
                        *c2 = '\0';
                        const char *list = c1 + 1;
                        bool match = false;
                        if (!*ctrl)
                                match = strcmp(line, "0") == 0 && !*list;
                        else
                                for (const char *p = list; *p;) {
                                        size_t l = strcspn(p, ",");
                                        if (l == strlen(ctrl) && !strncmp(p, ctrl, l))
                                                match = true;
                                        p += l + (p[l] == ',');
                                }
                        if (match) {
                                snprintf(ret, size, "%s", c2 + 1);
                                return 0;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

/* Removes pyrunner-<pid> trees left by processes that died without
 * cleaning up (killed with SIGKILL, say). Empty cgroups only: rmdir
 * refuses any that still hold tasks. */
static void remove_stale(int fd, const char *name)
{
        const char *dash = strrchr(name, '-');
        size_t plen = dash ? (size_t)(dash - name) + 1 : 0;
        DIR *d = plen ? fdopendir(dup(fd)) : NULL;
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                char *end;
                if (strncmp(de->d_name, name, plen) != 0 || !strcmp(de->d_name, name))
                        continue;
                long pid = strtol(de->d_name + plen, &end, 10);
                if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                int sub = openat(fd, de->d_name, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                DIR *sd = sub >= 0 ? fdopendir(sub) : NULL;
                for (struct dirent *se; sd && (se = readdir(sd));)
                        if (se->d_type == DT_DIR && se->d_name[0] != '.')
                                (void)unlinkat(dirfd(sd), se->d_name, AT_REMOVEDIR);
                if (sd)
                        closedir(sd);
                else
                        safe_close(sub);
                (void)unlinkat(fd, de->d_name, AT_REMOVEDIR);
        }
        closedir(d);
}

static int open_parent(const char *dir, const char *name, int *ret)
{
        _cleanup_close_ int fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        remove_stale(fd, name);
        if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        int sub = openat(fd, name, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (sub < 0)
                return -errno;
        *ret = sub;
        return 0;
}

static int root_open_v1(CgroupRoot *root, const char *fsroot, const char *self_cgroup)
{
        for (int i = 0; i < CG_N; i++) {
                char path[512], dir[1024];
                int r = self_path(self_cgroup, v1_names[i], path, sizeof(path));
                if (r < 0) {
                        if (i == CG_MEMORY || i == CG_PIDS) {
                                snprintf(root->why, sizeof(root->why), "no v1 %s controller", v1_names[i]);
                                return r;
                        }
                        continue;
                }
                snprintf(dir, sizeof(dir), "%s/%s%s", fsroot, v1_names[i], path);
                r = open_parent(dir, root->name, &root->dirfd[i]);
                if (r < 0) {
                        if (i == CG_MEMORY || i == CG_PIDS) {
                                snprintf(root->why, sizeof(root->why), "cannot create %s/%s: %s",
                                         dir, root->name, strerror(-r));
                                return r;
                        }
                        continue;
                }
                /* cpu and cpuacct are often one hierarchy. */
                for (int j = 0; j < i; j++)
                        if (fd_same_inode(root->dirfd[j], root->dirfd[i]) > 0) {
                                root->dirfd[i] = safe_close(root->dirfd[i]);
                                root->dirfd[i] = fcntl(root->dirfd[j], F_DUPFD_CLOEXEC, 3);
                        }
        }
        root->has_memsw = faccessat(root->dirfd[CG_MEMORY], "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
        return 0;
}

static int root_open_v2(CgroupRoot *root, const char *fsroot, const char *self_cgroup)
{
        char path[512], dir[1024];
        int r = self_path(self_cgroup, "", path, sizeof(path));
        if (r < 0) {
                snprintf(root->why, sizeof(root->why), "no v2 entry in %s", self_cgroup);
                return r;
        }
        snprintf(dir, sizeof(dir), "%s%s", fsroot, path);
        r = open_parent(dir, root->name, &root->dirfd[CG_MEMORY]);
        if (r < 0) {
                snprintf(root->why, sizeof(root->why), "cannot create %s/%s: %s", dir, root->name,
                         strerror(-r));
                return r;
        }
        /* Our own dir holds no processes, so it may hand controllers on,
         * provided the cgroup we run in hands them to it. */
        int own = root->dirfd[CG_MEMORY];
        r = write_knob(own, "cgroup.subtree_control", "+memory +pids +cpu");
        if (r < 0)
                r = write_knob(own, "cgroup.subtree_control", "+memory +pids");
        if (r < 0) {
                /* It does not yet, and cannot while it holds us (no internal
                 * processes in v2): move into a leaf below our dir first. */
                _cleanup_close_ int up = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                char pid[24];
                snprintf(pid, sizeof(pid), "%d", getpid());
                if (up >= 0 && (mkdirat(own, "supervisor", 0755) == 0 || errno == EEXIST)) {
                        _cleanup_close_ int sup = openat(own, "supervisor", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                        if (sup >= 0 && write_knob(sup, "cgroup.procs", pid) == 0 &&
                            write_knob(up, "cgroup.subtree_control", "+memory +pids") == 0)
                                r = write_knob(own, "cgroup.subtree_control", "+memory +pids");
                }
                /* cpu (for cpu-percent) where the parent can hand it on. */
                if (r >= 0 && up >= 0 && write_knob(up, "cgroup.subtree_control", "+cpu") == 0)
                        (void)write_knob(own, "cgroup.subtree_control", "+cpu");
        }
        if (r < 0) {
                snprintf(root->why, sizeof(root->why), "cannot enable memory/pids/cpu under %s: %s",
                         dir, strerror(-r));
                return r;
        }
        return 0;
}

int cg_root_open(CgroupRoot *root, const char *fsroot, const char *self_cgroup, const char *name)
{
        struct statfs sfs;
        int r;

        memset(root, 0, sizeof(*root));
        for (int i = 0; i < CG_N; i++)
                root->dirfd[i] = -1;
        snprintf(root->name, sizeof(root->name), "%s", name);

        if (statfs(fsroot, &sfs) < 0) {
                snprintf(root->why, sizeof(root->why), "%s: %s", fsroot, strerror(errno));
                return 0;
        }
        char probe[1024];
        snprintf(probe, sizeof(probe), "%s/cgroup.controllers", fsroot);
        bool v2 = sfs.f_type == CGROUP2_SUPER_MAGIC ||
                  (sfs.f_type != TMPFS_MAGIC && access(probe, F_OK) == 0);
        r = v2 ? root_open_v2(root, fsroot, self_cgroup) : root_open_v1(root, fsroot, self_cgroup);
        if (r < 0) {
                char why[sizeof(root->why)];
                memcpy(why, root->why, sizeof(why));
                cg_root_close(root);
                memcpy(root->why, why, sizeof(why));
                root->mode = CGROUP_MODE_NONE;
                return 0;
        }
        root->mode = v2 ? CGROUP_MODE_V2 : CGROUP_MODE_V1;
        return 0;
}

void cg_root_close(CgroupRoot *root)
{
        for (int i = 0; i < CG_N; i++) {
                if (root->dirfd[i] < 0)
                        continue;
                /* The fd is the parent dir; remove it through its parent. */
                char path[64];
                snprintf(path, sizeof(path), "/proc/self/fd/%d/..", root->dirfd[i]);
                int up = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                if (up >= 0) {
                        (void)unlinkat(up, root->name, AT_REMOVEDIR);
                        close(up);
                }
                root->dirfd[i] = safe_close(root->dirfd[i]);
        }
        root->mode = CGROUP_MODE_NONE;
}

static int set_memory_v1(const Cgroup *cg, uint64_t bytes)
{
        int fd = cg->dirfd[CG_MEMORY];
        int r;
        /* memsw must stay >= limit: open it up, set the limit, close it. */
        if (cg->root->has_memsw) {
                r = write_knob(fd, "memory.memsw.limit_in_bytes", "-1");
                if (r < 0)
                        return r;
        }
        r = write_u64(fd, "memory.limit_in_bytes", bytes);
        if (r < 0)
                return r;
        if (cg->root->has_memsw)
                return write_u64(fd, "memory.memsw.limit_in_bytes", bytes);
        return 0;
}

int cg_set_memory(const Cgroup *cg, uint64_t bytes)
{
        switch (cg->root->mode) {
        case CGROUP_MODE_V1:
                return set_memory_v1(cg, bytes);
        case CGROUP_MODE_V2:
                return write_u64(cg->dirfd[CG_MEMORY], "memory.max", bytes);
        case CGROUP_MODE_NONE:
        default:
                return -EOPNOTSUPP;
        }
}

int cg_create(CgroupRoot *root, const char *name, const CgroupLimits *limits, Cgroup *ret)
{
        Cgroup cg;
        int r;

        cg_init(&cg);
        cg.root = root;
        snprintf(cg.name, sizeof(cg.name), "%s", name);
        if (root->mode == CGROUP_MODE_NONE)
                return -EOPNOTSUPP;

        for (int i = 0; i < CG_N; i++) {
                /* Without a quota the cpu hierarchy is not needed (v1). */
                if (root->dirfd[i] < 0 || (i == CG_CPU && limits->cpu_percent == 0))
                        continue;
                bool dup_of = false;
                for (int j = 0; j < i; j++)
                        if (cg.dirfd[j] >= 0 && fd_same_inode(root->dirfd[i], root->dirfd[j]) > 0) {
                                cg.dirfd[i] = fcntl(cg.dirfd[j], F_DUPFD_CLOEXEC, 3);
                                dup_of = true;
                        }
                if (dup_of)
                        continue;
                if (mkdirat(root->dirfd[i], name, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        goto fail;
                }
                cg.dirfd[i] = openat(root->dirfd[i], name, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                if (cg.dirfd[i] < 0) {
                        r = -errno;
                        goto fail;
                }
        }

        r = cg_set_memory(&cg, limits->memory_bytes);
        if (r < 0)
                goto fail;
        char quota[64];
        if (root->mode == CGROUP_MODE_V2) {
                (void)write_knob(cg.dirfd[CG_MEMORY], "memory.swap.max", "0");
                (void)write_knob(cg.dirfd[CG_MEMORY], "memory.oom.group", "1");
                r = write_u64(cg.dirfd[CG_MEMORY], "pids.max", limits->pids_max);
                if (r < 0)
                        goto fail;
                if (limits->cpu_percent > 0) {
                        /* Asked for: fail rather than run without it. */
                        snprintf(quota, sizeof(quota), "%u 100000", limits->cpu_percent * 1000);
                        r = write_knob(cg.dirfd[CG_MEMORY], "cpu.max", quota);
                        if (r < 0)
                                goto fail;
                }
        } else {
                r = write_u64(cg.dirfd[CG_PIDS], "pids.max", limits->pids_max);
                if (r < 0)
                        goto fail;
                if (limits->cpu_percent > 0) {
                        r = cg.dirfd[CG_CPU] < 0 ? -EOPNOTSUPP
                                                 : write_knob(cg.dirfd[CG_CPU], "cpu.cfs_period_us", "100000");
                        if (r >= 0)
                                r = write_u64(cg.dirfd[CG_CPU], "cpu.cfs_quota_us", limits->cpu_percent * 1000ull);
                        if (r < 0)
                                goto fail;
                }
        }
        *ret = cg;
        return 0;
fail:
        (void)cg_destroy(&cg);
        return r;
}

int cg_open_procs(const Cgroup *cg, int *fds, size_t max)
{
        size_t n = 0;
        for (int i = 0; i < CG_N && cg->root->mode != CGROUP_MODE_NONE; i++) {
                if (cg->dirfd[i] < 0)
                        continue;
                bool seen = false;
                for (int j = 0; j < i; j++)
                        seen |= fd_same_inode(cg->dirfd[j], cg->dirfd[i]) > 0;
                if (seen)
                        continue;
                if (n >= max)
                        break;
                int fd = openat(cg->dirfd[i], "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (fd < 0) {
                        int r = -errno;
                        while (n > 0)
                                close(fds[--n]);
                        return r;
                }
                fds[n++] = fd;
        }
        return (int)n;
}

int cg_reset_peak(const Cgroup *cg)
{
        if (cg->root->mode == CGROUP_MODE_V1)
                return write_knob(cg->dirfd[CG_MEMORY], cg->root->has_memsw ? "memory.memsw.max_usage_in_bytes"
                                                                            : "memory.max_usage_in_bytes", "0");
        if (cg->root->mode == CGROUP_MODE_V2)
                return write_knob(cg->dirfd[CG_MEMORY], "memory.peak", "reset");
        return -EOPNOTSUPP;
}

int cg_read_stats(const Cgroup *cg, CgroupStats *ret)
{
        memset(ret, 0, sizeof(*ret));
        switch (cg->root->mode) {
        case CGROUP_MODE_V1: {
                int m = cg->dirfd[CG_MEMORY];
                if (read_u64(m, cg->root->has_memsw ? "memory.memsw.max_usage_in_bytes"
                                                    : "memory.max_usage_in_bytes", &ret->memory_peak) < 0)
                        (void)read_u64(m, "memory.max_usage_in_bytes", &ret->memory_peak);
                (void)read_u64(m, "memory.usage_in_bytes", &ret->memory_current);
                (void)read_keyed(m, "memory.oom_control", "oom_kill", &ret->oom_kills);
                if (cg->dirfd[CG_CPUACCT] >= 0)
                        (void)read_u64(cg->dirfd[CG_CPUACCT], "cpuacct.usage", &ret->cpu_usage_ns);
                return 0;
        }
        case CGROUP_MODE_V2: {
                int d = cg->dirfd[CG_MEMORY];
                uint64_t us = 0;
                (void)read_u64(d, "memory.peak", &ret->memory_peak);
                (void)read_u64(d, "memory.current", &ret->memory_current);
                (void)read_keyed(d, "memory.events", "oom_kill", &ret->oom_kills);
                if (read_keyed(d, "cpu.stat", "usage_usec", &us) == 0)
                        ret->cpu_usage_ns = us * 1000;
                return 0;
        }
        case CGROUP_MODE_NONE:
        default:
                return -EOPNOTSUPP;
        }
}

/* SIGKILL to every task one cgroup.procs lists: v1 has no cgroup.kill,
 * and v2 before 5.14 neither. A forking task needs another pass. */
static int kill_procs(int dirfd)
{
        char buf[16384];
        ssize_t n = file_read_str(dirfd, "cgroup.procs", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        pid_t pid;
        for (const char *p = buf; (p = pid_list_next(p, &pid));)
                if (pid > 1)
                        (void)kill(pid, SIGKILL);
        return 0;
}

int cg_kill(const Cgroup *cg)
{
        int r = -EOPNOTSUPP;
        if (!cg->root || cg->root->mode == CGROUP_MODE_NONE)
                return r;
        if (cg->root->mode == CGROUP_MODE_V2 && cg->dirfd[CG_MEMORY] >= 0 &&
            write_knob(cg->dirfd[CG_MEMORY], "cgroup.kill", "1") == 0)
                return 0;
        for (int i = 0; i < CG_N; i++)
                if (cg->dirfd[i] >= 0 && kill_procs(cg->dirfd[i]) == 0)
                        r = 0;
        return r;
}

int cg_root_list_runs(const CgroupRoot *root, uint64_t *ids, size_t max)
{
        size_t n = 0;
        for (int i = 0; i < CG_N && root->mode != CGROUP_MODE_NONE; i++) {
                if (root->dirfd[i] < 0)
                        continue;
                int fd = openat(root->dirfd[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
                if (!d) {
                        safe_close(fd);
                        return -errno;
                }
                for (struct dirent *de; (de = readdir(d));) {
                        unsigned long long id;
                        char tail;
                        if (sscanf(de->d_name, "run-%llu%c", &id, &tail) != 1)
                                continue;
                        bool seen = false;
                        for (size_t k = 0; k < n && !seen; k++)
                                seen = ids[k] == id;
                        if (!seen && n < max)
                                ids[n++] = id;
                }
                closedir(d);
        }
        return (int)n;
}

int cg_remove_stray(CgroupRoot *root, const char *name)
{
        Cgroup cg;
        cg_init(&cg);
        cg.root = root;
        snprintf(cg.name, sizeof(cg.name), "%s", name);
        for (int i = 0; i < CG_N; i++)
                if (root->dirfd[i] >= 0)
                        cg.dirfd[i] = openat(root->dirfd[i], name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        (void)cg_kill(&cg);
        int r = cg_destroy(&cg);
        for (int i = 0; i < CG_N; i++)
                cg.dirfd[i] = safe_close(cg.dirfd[i]);
        return r;
}

int cg_destroy(Cgroup *cg)
{
        int r = 0;
        for (int i = 0; i < CG_N; i++) {
                if (cg->dirfd[i] < 0)
                        continue;
                if (cg->root && cg->root->dirfd[i] >= 0 &&
                    unlinkat(cg->root->dirfd[i], cg->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                        r = -errno;
                        if (r == -EBUSY)
                                return r;
                }
                cg->dirfd[i] = safe_close(cg->dirfd[i]);
        }
        return r;
}
