/* SPDX-License-Identifier: MIT */
/* Unit tests for src/sandbox/cgroup.c.
 *
 * Most tests run the v1 and v2 back ends against FAKE trees: plain
 * directories under a temporary directory on a non-tmpfs file system.
 * cg_root_open tells the modes apart with statfs(): a cgroup2 file system,
 * or any non-tmpfs one holding "cgroup.controllers", is v2; everything else
 * is v1. Knob files are created by the code under test (write_knob uses
 * O_CREAT for this purpose) or pre-written here for the readers.
 *
 * In a fake tree cg_destroy cannot remove a run directory (it holds knob
 * files, so rmdir fails with ENOTEMPTY); the tests close the descriptors and
 * remove the files themselves.
 *
 * The last tests use the machine's real cgroup tree below the test's own
 * cgroup, and require that tree to be writable or cg_root_open to say why
 * not (mode NONE with a reason). Needs root. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"


#define ROOT_NAME "pyrunner-test"
#define MiB (UINT64_C(1) << 20)

typedef struct Fake {
        char dir[PATH_MAX];    /* mkdtemp'd, removed in teardown */
        char fsroot[PATH_MAX]; /* dir/fs: what cg_root_open gets as fsroot */
        char self[PATH_MAX];   /* dir/self-cgroup: the fake /proc/self/cgroup */
        bool mounted;          /* a tmpfs is mounted on fsroot */
} Fake;

/* ---- file helpers ---- */

static const char *pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *pathf(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < size);
        return buf;
}

#define P(...) pathf((char[PATH_MAX]){ 0 }, PATH_MAX, __VA_ARGS__)

static void mkdir_p(const char *path)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                                fail_msg("mkdir %s: %s", buf, strerror(errno));
                        *p = '/';
                }
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", buf, strerror(errno));
}

static void write_file(const char *path, const char *content)
{
        FILE *f = fopen(path, "we");
        if (!f)
                fail_msg("fopen %s: %s", path, strerror(errno));
        assert_int_equal(fputs(content, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* The whole (small) file, trailing newline removed; NULL if absent. */
static char *read_file(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n')
                buf[n - 1] = '\0';
        char *s = strdup(buf);
        assert_non_null(s);
        return s;
}

static void expect_file(const char *path, const char *want)
{
        char *got = read_file(path);
        if (!got)
                fail_msg("%s: missing, expected \"%s\"", path, want);
        if (strcmp(got, want) != 0)
                fail_msg("%s: \"%s\", expected \"%s\"", path, got, want);
        free(got);
}

static bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool same_file_fd_path(int fd, const char *path)
{
        struct stat a, b;
        return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static bool same_file_fds(int a, int b)
{
        struct stat sa, sb;
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 ? -1 : 0;
}

static void rm_rf(const char *path)
{
        if (exists(path) && nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                fail_msg("rm -rf %s: %s", path, strerror(errno));
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        int n = 0;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* Closes a Cgroup's descriptors without touching the (fake) tree. */
static void release(Cgroup *cg)
{
        for (int i = 0; i < CG_N; i++)
                if (cg->dirfd[i] >= 0) {
                        close(cg->dirfd[i]);
                        cg->dirfd[i] = -1;
                }
}

static void close_fds(int *fds, int n)
{
        for (int i = 0; i < n; i++)
                close(fds[i]);
}

/* ---- fixtures ---- */

static int fake_setup(void **state)
{
        static const char *const bases[] = { "/var/tmp", "/tmp", "." };
        Fake *f = calloc(1, sizeof(*f));
        assert_non_null(f);

        /* v2 detection needs a file system that is neither tmpfs nor cgroup2. */
        for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]) && !f->dir[0]; i++) {
                struct statfs sfs;
                if (statfs(bases[i], &sfs) < 0 || sfs.f_type == TMPFS_MAGIC)
                        continue;
                snprintf(f->dir, sizeof(f->dir), "%s/pyrunner-cgtest-XXXXXX", bases[i]);
                if (!mkdtemp(f->dir))
                        f->dir[0] = '\0';
        }
        if (!f->dir[0])
                fail_msg("no writable non-tmpfs directory for the fake cgroup trees");
        snprintf(f->fsroot, sizeof(f->fsroot), "%s/fs", f->dir);
        snprintf(f->self, sizeof(f->self), "%s/self-cgroup", f->dir);
        mkdir_p(f->fsroot);
        *state = f;
        return 0;
}

static int fake_teardown(void **state)
{
        Fake *f = *state;
        if (f->mounted)
                (void)umount2(f->fsroot, MNT_DETACH);
        rm_rf(f->dir);
        free(f);
        return 0;
}

/* A v1 tree: fs/{memory/a/b,pids,cpu,cpuacct}, memory at /a/b. */
static void make_v1(Fake *f)
{
        mkdir_p(P("%s/memory/a/b", f->fsroot));
        mkdir_p(P("%s/pids", f->fsroot));
        mkdir_p(P("%s/cpu", f->fsroot));
        mkdir_p(P("%s/cpuacct", f->fsroot));
        write_file(f->self, "9:name=systemd:/\n4:memory:/a/b\n8:pids:/\n1:cpu:/\n2:cpuacct:/\n0::/\n");
}

/* A v2 tree: fs/cgroup.controllers and fs/x/y, self at /x/y. */
static void make_v2(Fake *f)
{
        write_file(P("%s/cgroup.controllers", f->fsroot), "cpuset cpu io memory pids\n");
        mkdir_p(P("%s/x/y", f->fsroot));
        write_file(f->self, "0::/x/y\n");
}

static void open_root(Fake *f, CgroupRoot *root, CgroupMode want)
{
        assert_int_equal(cg_root_open(root, f->fsroot, f->self, ROOT_NAME), 0);
        if (root->mode != want)
                fail_msg("mode %s, expected %s (why: %s)", cg_mode_name(root->mode), cg_mode_name(want), root->why);
}

/* The state cg_root_open leaves for a v2 tree, built by hand: the v2 back
 * end is tested on its own, apart from detection (see test_v2_root_open). */
static void open_v2_root_by_hand(Fake *f, CgroupRoot *root)
{
        const char *parent = P("%s/x/y/" ROOT_NAME, f->fsroot);
        memset(root, 0, sizeof(*root));
        for (int i = 0; i < CG_N; i++)
                root->dirfd[i] = -1;
        snprintf(root->name, sizeof(root->name), "%s", ROOT_NAME);
        mkdir_p(parent);
        root->dirfd[CG_MEMORY] = open(parent, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        assert_true(root->dirfd[CG_MEMORY] >= 0);
        root->mode = CGROUP_MODE_V2;
}

static const CgroupLimits limits_64m = { .memory_bytes = 64 * MiB, .pids_max = 32, .cpu_percent = 50 };

/* ---- v1 ---- */

static void test_v1_root_open(void **state)
{
        Fake *f = *state;
        CgroupRoot root;

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_string_equal(root.name, ROOT_NAME);
        assert_false(root.has_memsw);

        const char *dirs[CG_N] = {
                [CG_MEMORY] = P("%s/memory/a/b/" ROOT_NAME, f->fsroot),
                [CG_PIDS] = P("%s/pids/" ROOT_NAME, f->fsroot),
                [CG_CPU] = P("%s/cpu/" ROOT_NAME, f->fsroot),
                [CG_CPUACCT] = P("%s/cpuacct/" ROOT_NAME, f->fsroot),
        };
        for (int i = 0; i < CG_N; i++) {
                assert_true(is_dir(dirs[i]));
                assert_true(root.dirfd[i] >= 0);
                assert_true(same_file_fd_path(root.dirfd[i], dirs[i]));
                for (int j = 0; j < i; j++)
                        assert_false(same_file_fds(root.dirfd[i], root.dirfd[j]));
        }
        /* v1 never looks for v2 knobs. */
        assert_false(exists(P("%s/memory/a/b/" ROOT_NAME "/cgroup.subtree_control", f->fsroot)));

        /* Closing removes the (empty) parent directories again. */
        cg_root_close(&root);
        assert_int_equal(root.mode, CGROUP_MODE_NONE);
        for (int i = 0; i < CG_N; i++) {
                assert_int_equal(root.dirfd[i], -1);
                assert_false(exists(dirs[i]));
        }
        assert_true(is_dir(P("%s/memory/a/b", f->fsroot)));
}

static void test_v1_root_open_existing_parent(void **state)
{
        /* A leftover parent directory (EEXIST) is reused. */
        Fake *f = *state;
        CgroupRoot root;

        make_v1(f);
        mkdir_p(P("%s/pids/" ROOT_NAME, f->fsroot));
        open_root(f, &root, CGROUP_MODE_V1);
        assert_true(same_file_fd_path(root.dirfd[CG_PIDS], P("%s/pids/" ROOT_NAME, f->fsroot)));
        cg_root_close(&root);
}

static void test_v1_create_limits(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        assert_ptr_equal(cg.root, &root);
        assert_string_equal(cg.name, "run1");

        const char *mem = P("%s/memory/a/b/" ROOT_NAME "/run1", f->fsroot);
        const char *pids = P("%s/pids/" ROOT_NAME "/run1", f->fsroot);
        const char *cpu = P("%s/cpu/" ROOT_NAME "/run1", f->fsroot);
        const char *cpuacct = P("%s/cpuacct/" ROOT_NAME "/run1", f->fsroot);
        assert_true(same_file_fd_path(cg.dirfd[CG_MEMORY], mem));
        assert_true(same_file_fd_path(cg.dirfd[CG_PIDS], pids));
        assert_true(same_file_fd_path(cg.dirfd[CG_CPU], cpu));
        assert_true(same_file_fd_path(cg.dirfd[CG_CPUACCT], cpuacct));

        expect_file(P("%s/memory.limit_in_bytes", mem), "67108864");
        assert_false(exists(P("%s/memory.memsw.limit_in_bytes", mem)));
        expect_file(P("%s/pids.max", pids), "32");
        expect_file(P("%s/cpu.cfs_period_us", cpu), "100000");
        expect_file(P("%s/cpu.cfs_quota_us", cpu), "50000");
        /* No v2 knobs anywhere. */
        assert_false(exists(P("%s/memory.max", mem)));
        assert_false(exists(P("%s/pids.max", mem)));
        assert_false(exists(P("%s/cpu.max", cpu)));

        /* Remove the fake run dirs ourselves, then the root can go. */
        release(&cg);
        rm_rf(mem);
        rm_rf(pids);
        rm_rf(cpu);
        rm_rf(cpuacct);
        cg_root_close(&root);
        assert_false(exists(P("%s/memory/a/b/" ROOT_NAME, f->fsroot)));
        assert_false(exists(P("%s/pids/" ROOT_NAME, f->fsroot)));
}

static void test_v1_cpu_quota_values(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        static const struct {
                uint32_t percent;
                const char *quota;
        } cases[] = { { 10, "10000" }, { 100, "100000" }, { 250, "250000" }, { 6400, "6400000" } };

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Cgroup cg;
                CgroupLimits l = { .memory_bytes = 16 * MiB, .pids_max = 2, .cpu_percent = cases[i].percent };
                char name[32];
                snprintf(name, sizeof(name), "q%zu", i);
                assert_int_equal(cg_create(&root, name, &l, &cg), 0);
                expect_file(P("%s/cpu/" ROOT_NAME "/%s/cpu.cfs_quota_us", f->fsroot, name), cases[i].quota);
                expect_file(P("%s/pids/" ROOT_NAME "/%s/pids.max", f->fsroot, name), "2");
                release(&cg);
        }
        cg_root_close(&root);
}

static void test_v1_no_cpu_quota(void **state)
{
        /* cpu_percent 0: no quota, and the cpu hierarchy is left alone. */
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        CgroupLimits l = { .memory_bytes = 64 * MiB, .pids_max = 32, .cpu_percent = 0 };
        int fds[8];

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &l, &cg), 0);
        assert_int_equal(cg.dirfd[CG_CPU], -1);
        assert_false(exists(P("%s/cpu/" ROOT_NAME "/run1", f->fsroot)));
        /* cpuacct still accounts CPU time. */
        assert_true(cg.dirfd[CG_CPUACCT] >= 0);
        assert_true(is_dir(P("%s/cpuacct/" ROOT_NAME "/run1", f->fsroot)));
        expect_file(P("%s/memory/a/b/" ROOT_NAME "/run1/memory.limit_in_bytes", f->fsroot), "67108864");
        expect_file(P("%s/pids/" ROOT_NAME "/run1/pids.max", f->fsroot), "32");

        write_file(P("%s/memory/a/b/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/cpuacct/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        assert_int_equal(cg_open_procs(&cg, fds, 8), 3);
        close_fds(fds, 3);

        write_file(P("%s/cpuacct/" ROOT_NAME "/run1/cpuacct.usage", f->fsroot), "777\n");
        CgroupStats st;
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.cpu_usage_ns, 777);
        release(&cg);
        cg_root_close(&root);
}

static void test_v1_no_cpu_quota_shared_hierarchy(void **state)
{
        /* cpu,cpuacct as one hierarchy and no quota: the run dir is still
         * made once, through cpuacct. */
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        CgroupLimits l = { .memory_bytes = 64 * MiB, .pids_max = 32, .cpu_percent = 0 };
        int fds[8];

        mkdir_p(P("%s/memory", f->fsroot));
        mkdir_p(P("%s/pids", f->fsroot));
        mkdir_p(P("%s/cpu,cpuacct", f->fsroot));
        assert_int_equal(symlink("cpu,cpuacct", P("%s/cpu", f->fsroot)), 0);
        assert_int_equal(symlink("cpu,cpuacct", P("%s/cpuacct", f->fsroot)), 0);
        write_file(f->self, "12:pids:/\n5:cpu,cpuacct:/\n3:memory:/\n");
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &l, &cg), 0);
        const char *cpu = P("%s/cpu,cpuacct/" ROOT_NAME "/run1", f->fsroot);
        assert_true(same_file_fd_path(cg.dirfd[CG_CPUACCT], cpu));
        assert_false(exists(P("%s/cpu.cfs_quota_us", cpu)));
        assert_false(exists(P("%s/cpu.cfs_period_us", cpu)));

        write_file(P("%s/memory/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/cgroup.procs", cpu), "");
        assert_int_equal(cg_open_procs(&cg, fds, 8), 3);
        close_fds(fds, 3);
        release(&cg);
        cg_root_close(&root);
}

static void test_v1_memsw(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;

        make_v1(f);
        /* Real v1 memory cgroups with swap accounting carry this knob. */
        mkdir_p(P("%s/memory/a/b/" ROOT_NAME, f->fsroot));
        write_file(P("%s/memory/a/b/" ROOT_NAME "/memory.memsw.limit_in_bytes", f->fsroot), "9223372036854771712\n");
        open_root(f, &root, CGROUP_MODE_V1);
        assert_true(root.has_memsw);

        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *mem = P("%s/memory/a/b/" ROOT_NAME "/run1", f->fsroot);
        expect_file(P("%s/memory.limit_in_bytes", mem), "67108864");
        expect_file(P("%s/memory.memsw.limit_in_bytes", mem), "67108864");

        assert_int_equal(cg_set_memory(&cg, 128 * MiB), 0);
        expect_file(P("%s/memory.limit_in_bytes", mem), "134217728");
        expect_file(P("%s/memory.memsw.limit_in_bytes", mem), "134217728");

        /* Peak reset and stats use the memsw counter... */
        assert_int_equal(cg_reset_peak(&cg), 0);
        expect_file(P("%s/memory.memsw.max_usage_in_bytes", mem), "0");
        assert_false(exists(P("%s/memory.max_usage_in_bytes", mem)));

        CgroupStats st;
        write_file(P("%s/memory.memsw.max_usage_in_bytes", mem), "5000\n");
        write_file(P("%s/memory.max_usage_in_bytes", mem), "4000\n");
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 5000);
        /* ...and fall back to the memory-only one when it is unreadable. */
        assert_int_equal(unlink(P("%s/memory.memsw.max_usage_in_bytes", mem)), 0);
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 4000);

        release(&cg);
        cg_root_close(&root);
}

static void test_v1_set_memory(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *mem = P("%s/memory/a/b/" ROOT_NAME "/run1", f->fsroot);

        assert_int_equal(cg_set_memory(&cg, 1024 * MiB), 0);
        expect_file(P("%s/memory.limit_in_bytes", mem), "1073741824");
        assert_int_equal(cg_set_memory(&cg, 16 * MiB), 0);
        expect_file(P("%s/memory.limit_in_bytes", mem), "16777216");
        assert_false(exists(P("%s/memory.memsw.limit_in_bytes", mem)));

        assert_int_equal(cg_reset_peak(&cg), 0);
        expect_file(P("%s/memory.max_usage_in_bytes", mem), "0");
        release(&cg);
        cg_root_close(&root);
}

static void test_v1_read_stats(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        CgroupStats st;

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *mem = P("%s/memory/a/b/" ROOT_NAME "/run1", f->fsroot);
        const char *acct = P("%s/cpuacct/" ROOT_NAME "/run1", f->fsroot);

        /* Nothing to read yet: zeros, not an error. */
        memset(&st, 0xff, sizeof(st));
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 0);
        assert_int_equal(st.cpu_usage_ns, 0);
        assert_int_equal(st.oom_kills, 0);

        write_file(P("%s/memory.max_usage_in_bytes", mem), "12345678\n");
        /* "oom_kill_disable" shares the prefix and comes first. */
        write_file(P("%s/memory.oom_control", mem), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        write_file(P("%s/cpuacct.usage", acct), "987654321\n");
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 12345678);
        assert_int_equal(st.oom_kills, 3);
        assert_int_equal(st.cpu_usage_ns, 987654321);

        /* Kernels before 4.13 have no oom_kill line. */
        write_file(P("%s/memory.oom_control", mem), "oom_kill_disable 1\nunder_oom 1\n");
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.oom_kills, 0);
        assert_int_equal(st.memory_peak, 12345678);

        /* Large counters survive. */
        write_file(P("%s/memory.max_usage_in_bytes", mem), "68719476736\n");
        write_file(P("%s/cpuacct.usage", acct), "18446744073709551615\n");
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 64ull << 30);
        assert_true(st.cpu_usage_ns == UINT64_MAX);

        release(&cg);
        cg_root_close(&root);
}

static void test_v1_open_procs(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        int fds[8];

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);

        /* Without cgroup.procs files: an error, and nothing left open. */
        int before = count_fds();
        assert_int_equal(cg_open_procs(&cg, fds, 8), -ENOENT);
        assert_int_equal(count_fds(), before);

        const char *procs[CG_N] = {
                P("%s/memory/a/b/" ROOT_NAME "/run1/cgroup.procs", f->fsroot),
                P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot),
                P("%s/cpu/" ROOT_NAME "/run1/cgroup.procs", f->fsroot),
                P("%s/cpuacct/" ROOT_NAME "/run1/cgroup.procs", f->fsroot),
        };
        for (int i = 0; i < CG_N; i++)
                write_file(procs[i], "");

        /* One per hierarchy, in controller order. */
        assert_int_equal(cg_open_procs(&cg, fds, 8), 4);
        for (int i = 0; i < 4; i++) {
                assert_true(same_file_fd_path(fds[i], procs[i]));
                assert_int_equal(fcntl(fds[i], F_GETFL) & O_ACCMODE, O_WRONLY);
                assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
        }
        close_fds(fds, 4);

        /* max is respected. */
        assert_int_equal(cg_open_procs(&cg, fds, 2), 2);
        close_fds(fds, 2);
        assert_int_equal(cg_open_procs(&cg, fds, 0), 0);
        assert_int_equal(count_fds(), before);

        release(&cg);
        cg_root_close(&root);
}

static void test_v1_shared_cpu_cpuacct(void **state)
{
        /* The common layout: cpu and cpuacct are one hierarchy mounted at
         * cpu,cpuacct, with cpu and cpuacct as symlinks to it. */
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        int fds[8];

        mkdir_p(P("%s/memory", f->fsroot));
        mkdir_p(P("%s/pids", f->fsroot));
        mkdir_p(P("%s/cpu,cpuacct", f->fsroot));
        assert_int_equal(symlink("cpu,cpuacct", P("%s/cpu", f->fsroot)), 0);
        assert_int_equal(symlink("cpu,cpuacct", P("%s/cpuacct", f->fsroot)), 0);
        write_file(f->self, "12:pids:/\n5:cpu,cpuacct:/\n3:memory:/\n1:name=systemd:/\n");

        open_root(f, &root, CGROUP_MODE_V1);
        assert_true(root.dirfd[CG_CPU] >= 0 && root.dirfd[CG_CPUACCT] >= 0);
        assert_true(root.dirfd[CG_CPU] != root.dirfd[CG_CPUACCT]);
        assert_true(same_file_fds(root.dirfd[CG_CPU], root.dirfd[CG_CPUACCT]));

        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *cpu = P("%s/cpu,cpuacct/" ROOT_NAME "/run1", f->fsroot);
        assert_true(same_file_fd_path(cg.dirfd[CG_CPU], cpu));
        assert_true(same_file_fd_path(cg.dirfd[CG_CPUACCT], cpu));
        assert_true(cg.dirfd[CG_CPU] != cg.dirfd[CG_CPUACCT]);
        expect_file(P("%s/cpu.cfs_quota_us", cpu), "50000");

        write_file(P("%s/memory/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/cgroup.procs", cpu), "");
        assert_int_equal(cg_open_procs(&cg, fds, 8), 3);
        close_fds(fds, 3);

        write_file(P("%s/cpuacct.usage", cpu), "42\n");
        CgroupStats st;
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.cpu_usage_ns, 42);

        release(&cg);
        rm_rf(P("%s/memory/" ROOT_NAME "/run1", f->fsroot));
        rm_rf(P("%s/pids/" ROOT_NAME "/run1", f->fsroot));
        rm_rf(cpu);
        cg_root_close(&root);
        assert_false(exists(P("%s/cpu,cpuacct/" ROOT_NAME, f->fsroot)));
        assert_false(exists(P("%s/memory/" ROOT_NAME, f->fsroot)));
}

static void test_v1_optional_controllers_missing(void **state)
{
        /* cpu and cpuacct are optional: missing dirs or lines degrade quietly,
         * unless a CPU quota is asked for, which then cannot be had. */
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        int fds[8];
        CgroupLimits no_quota = limits_64m;
        no_quota.cpu_percent = 0;

        mkdir_p(P("%s/memory", f->fsroot));
        mkdir_p(P("%s/pids", f->fsroot));
        write_file(f->self, "4:memory:/\n8:pids:/\n1:cpu:/\n");

        open_root(f, &root, CGROUP_MODE_V1);
        assert_true(root.dirfd[CG_MEMORY] >= 0 && root.dirfd[CG_PIDS] >= 0);
        assert_int_equal(root.dirfd[CG_CPU], -1);
        assert_int_equal(root.dirfd[CG_CPUACCT], -1);

        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), -EOPNOTSUPP);
        assert_int_equal(cg_create(&root, "run1", &no_quota, &cg), 0);
        assert_int_equal(cg.dirfd[CG_CPU], -1);
        assert_int_equal(cg.dirfd[CG_CPUACCT], -1);
        assert_false(exists(P("%s/cpu", f->fsroot)));

        write_file(P("%s/memory/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        write_file(P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), "");
        assert_int_equal(cg_open_procs(&cg, fds, 8), 2);
        close_fds(fds, 2);

        CgroupStats st;
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.cpu_usage_ns, 0);
        release(&cg);
        cg_root_close(&root);
}

/* v1 has no cgroup.kill: each task cgroup.procs lists gets SIGKILL, and
 * none is created on the way. */
static void test_v1_kill_kills_each_listed_task(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        char pids[32];
        int status;

        make_v1(f);
        open_root(f, &root, CGROUP_MODE_V1);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        assert_int_equal(cg_kill(&cg), -EOPNOTSUPP); /* no cgroup.procs to read */
        pid_t child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        snprintf(pids, sizeof(pids), "%d\n", (int)child);
        write_file(P("%s/pids/" ROOT_NAME "/run1/cgroup.procs", f->fsroot), pids);
        assert_int_equal(cg_kill(&cg), 0);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_false(exists(P("%s/memory/a/b/" ROOT_NAME "/run1/cgroup.kill", f->fsroot)));
        release(&cg);
        cg_root_close(&root);
}

static void test_v1_on_tmpfs_ignores_cgroup_controllers(void **state)
{
        /* A hybrid /sys/fs/cgroup is a tmpfs; a stray cgroup.controllers in
         * it must not make it look like v2. */
        Fake *f = *state;
        CgroupRoot root;

        if (mount("pyrunner-test", f->fsroot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0755") < 0)
                fail_msg("mount tmpfs on %s: %s (the cgroup tests need root)", f->fsroot, strerror(errno));
        f->mounted = true;
        make_v1(f);
        write_file(P("%s/cgroup.controllers", f->fsroot), "cpu memory pids\n");
        open_root(f, &root, CGROUP_MODE_V1);
        cg_root_close(&root);
        assert_int_equal(umount2(f->fsroot, 0), 0);
        f->mounted = false;
}

/* ---- v2 ---- */

static bool v2_detected(Fake *f)
{
        CgroupRoot root;
        make_v2(f);
        assert_int_equal(cg_root_open(&root, f->fsroot, f->self, ROOT_NAME), 0);
        bool ok = root.mode == CGROUP_MODE_V2;
        cg_root_close(&root);
        return ok;
}

static void test_v2_self_path(void **state)
{
        /* The "0::/path" line of /proc/self/cgroup names the v2 cgroup. */
        assert_true(v2_detected(*state));
}

static void test_v2_root_open(void **state)
{
        Fake *f = *state;
        CgroupRoot root;

        make_v2(f);
        assert_int_equal(cg_root_open(&root, f->fsroot, f->self, ROOT_NAME), 0);
        if (root.mode != CGROUP_MODE_V2)
                fail_msg("mode %s, expected v2 (why: %s)", cg_mode_name(root.mode), root.why);
        const char *parent = P("%s/x/y/" ROOT_NAME, f->fsroot);
        assert_true(is_dir(parent));
        assert_true(same_file_fd_path(root.dirfd[CG_MEMORY], parent));
        for (int i = 0; i < CG_N; i++)
                if (i != CG_MEMORY)
                        assert_int_equal(root.dirfd[i], -1);
        /* The parent delegates the controllers to the run cgroups. */
        expect_file(P("%s/cgroup.subtree_control", parent), "+memory +pids +cpu");
        assert_false(root.has_memsw);
        cg_root_close(&root);
        assert_int_equal(root.mode, CGROUP_MODE_NONE);

        /* A v2 entry whose directory is missing: NONE, with the reason. */
        write_file(f->self, "0::/no/such/dir\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        assert_non_null(strstr(root.why, "cannot create"));
        cg_root_close(&root);
}

static void test_v2_create_limits(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        CgroupLimits l = { .memory_bytes = 64 * MiB, .pids_max = 32, .cpu_percent = 250 };

        make_v2(f);
        open_v2_root_by_hand(f, &root);
        assert_int_equal(cg_create(&root, "run1", &l, &cg), 0);
        const char *run = P("%s/x/y/" ROOT_NAME "/run1", f->fsroot);
        assert_true(same_file_fd_path(cg.dirfd[CG_MEMORY], run));
        for (int i = 0; i < CG_N; i++)
                if (i != CG_MEMORY)
                        assert_int_equal(cg.dirfd[i], -1);

        expect_file(P("%s/memory.max", run), "67108864");
        expect_file(P("%s/memory.swap.max", run), "0");
        expect_file(P("%s/memory.oom.group", run), "1");
        expect_file(P("%s/pids.max", run), "32");
        expect_file(P("%s/cpu.max", run), "250000 100000");
        /* No v1 knobs. */
        assert_false(exists(P("%s/memory.limit_in_bytes", run)));
        assert_false(exists(P("%s/cpu.cfs_quota_us", run)));

        assert_int_equal(cg_set_memory(&cg, 256 * MiB), 0);
        expect_file(P("%s/memory.max", run), "268435456");

        /* Without a CPU quota there is no cpu.max. */
        Cgroup cg2;
        CgroupLimits nq = { .memory_bytes = 64 * MiB, .pids_max = 8, .cpu_percent = 0 };
        assert_int_equal(cg_create(&root, "run2", &nq, &cg2), 0);
        const char *run2 = P("%s/x/y/" ROOT_NAME "/run2", f->fsroot);
        expect_file(P("%s/memory.max", run2), "67108864");
        expect_file(P("%s/pids.max", run2), "8");
        assert_false(exists(P("%s/cpu.max", run2)));
        release(&cg2);

        release(&cg);
        rm_rf(run);
        cg_root_close(&root);
}

static void test_v2_read_stats(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        CgroupStats st;

        make_v2(f);
        open_v2_root_by_hand(f, &root);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *run = P("%s/x/y/" ROOT_NAME "/run1", f->fsroot);

        memset(&st, 0xff, sizeof(st));
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 0);
        assert_int_equal(st.cpu_usage_ns, 0);
        assert_int_equal(st.oom_kills, 0);

        write_file(P("%s/memory.peak", run), "7340032\n");
        /* oom_group_kill shares the prefix and comes first here. */
        write_file(P("%s/memory.events", run), "low 0\nhigh 0\nmax 12\noom 2\noom_group_kill 9\noom_kill 2\n");
        write_file(P("%s/cpu.stat", run),
                   "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\n");
        assert_int_equal(cg_read_stats(&cg, &st), 0);
        assert_int_equal(st.memory_peak, 7340032);
        assert_int_equal(st.oom_kills, 2);
        assert_int_equal(st.cpu_usage_ns, 1500000);

        assert_int_equal(cg_reset_peak(&cg), 0);
        expect_file(P("%s/memory.peak", run), "reset");

        release(&cg);
        cg_root_close(&root);
}

static void test_v2_open_procs_and_kill(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        Cgroup cg;
        int fds[8];

        make_v2(f);
        open_v2_root_by_hand(f, &root);
        assert_int_equal(cg_create(&root, "run1", &limits_64m, &cg), 0);
        const char *run = P("%s/x/y/" ROOT_NAME "/run1", f->fsroot);

        write_file(P("%s/cgroup.procs", run), "");
        assert_int_equal(cg_open_procs(&cg, fds, 8), 1);
        assert_true(same_file_fd_path(fds[0], P("%s/cgroup.procs", run)));
        close_fds(fds, 1);

        assert_int_equal(cg_kill(&cg), 0);
        expect_file(P("%s/cgroup.kill", run), "1");

        release(&cg);
        cg_root_close(&root);
}

/* ---- mode NONE ---- */

static void expect_none(CgroupRoot *root)
{
        assert_int_equal(root->mode, CGROUP_MODE_NONE);
        assert_true(root->why[0] != '\0');
        for (int i = 0; i < CG_N; i++)
                assert_int_equal(root->dirfd[i], -1);

        /* Everything else refuses politely. */
        Cgroup cg;
        int fds[4];
        CgroupStats st;
        assert_int_equal(cg_create(root, "run1", &limits_64m, &cg), -EOPNOTSUPP);
        cg_init(&cg);
        cg.root = root;
        assert_int_equal(cg_set_memory(&cg, MiB), -EOPNOTSUPP);
        assert_int_equal(cg_read_stats(&cg, &st), -EOPNOTSUPP);
        assert_int_equal(cg_reset_peak(&cg), -EOPNOTSUPP);
        assert_int_equal(cg_kill(&cg), -EOPNOTSUPP);
        assert_int_equal(cg_open_procs(&cg, fds, 4), 0);
        assert_int_equal(cg_destroy(&cg), 0);
        cg_root_close(root);
}

static void test_none_missing_fsroot(void **state)
{
        Fake *f = *state;
        CgroupRoot root;
        const char *fsroot = P("%s/does-not-exist", f->dir);

        make_v1(f);
        assert_int_equal(cg_root_open(&root, fsroot, f->self, ROOT_NAME), 0);
        assert_non_null(strstr(root.why, "does-not-exist"));
        expect_none(&root);
}

static void test_none_empty_tree(void **state)
{
        /* fsroot exists but holds no controller hierarchies. */
        Fake *f = *state;
        CgroupRoot root;

        write_file(f->self, "4:memory:/a/b\n8:pids:/\n1:cpu:/\n2:cpuacct:/\n0::/\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        assert_non_null(strstr(root.why, "cannot create"));
        assert_non_null(strstr(root.why, "memory"));
        expect_none(&root);
        /* Nothing was created in passing. */
        DIR *d = opendir(f->fsroot);
        assert_non_null(d);
        int n = 0;
        for (struct dirent *de; (de = readdir(d));)
                n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
        closedir(d);
        assert_int_equal(n, 0);
}

static void test_none_pids_missing_cleans_up(void **state)
{
        /* memory succeeds, pids fails: the memory parent must not be left behind. */
        Fake *f = *state;
        CgroupRoot root;

        mkdir_p(P("%s/memory/a/b", f->fsroot));
        write_file(f->self, "4:memory:/a/b\n8:pids:/\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        assert_non_null(strstr(root.why, "pids"));
        assert_false(exists(P("%s/memory/a/b/" ROOT_NAME, f->fsroot)));
        expect_none(&root);
}

static void test_none_self_lacks_memory(void **state)
{
        Fake *f = *state;
        CgroupRoot root;

        make_v1(f);
        write_file(f->self, "8:pids:/\n1:cpu:/\n0::/\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        assert_string_equal(root.why, "no v1 memory controller");
        expect_none(&root);

        /* A controller name that merely contains "memory" does not count. */
        write_file(f->self, "4:memoryx,xmemory:/a/b\n8:pids:/\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        assert_string_equal(root.why, "no v1 memory controller");
        expect_none(&root);
}

static void test_none_self_file_missing(void **state)
{
        Fake *f = *state;
        CgroupRoot root;

        make_v1(f);
        assert_int_equal(unlink(f->self), 0);
        open_root(f, &root, CGROUP_MODE_NONE);
        expect_none(&root);
}

static void test_none_v2_without_entry(void **state)
{
        Fake *f = *state;
        CgroupRoot root;

        make_v2(f);
        write_file(f->self, "4:memory:/x/y\n8:pids:/x/y\n");
        open_root(f, &root, CGROUP_MODE_NONE);
        /* The reason shows the v2 back end was chosen (cgroup.controllers on
         * a non-tmpfs file system). */
        assert_non_null(strstr(root.why, "no v2 entry"));
        expect_none(&root);
}

static void test_mode_names(void **state)
{
        assert_string_equal(cg_mode_name(CGROUP_MODE_NONE), "none");
        assert_string_equal(cg_mode_name(CGROUP_MODE_V1), "v1");
        assert_string_equal(cg_mode_name(CGROUP_MODE_V2), "v2");
        assert_string_equal(cg_mode_name((CgroupMode)42), "none");

        Cgroup cg;
        memset(&cg, 0x5a, sizeof(cg));
        cg_init(&cg);
        assert_null(cg.root);
        for (int i = 0; i < CG_N; i++)
                assert_int_equal(cg.dirfd[i], -1);
        /* Destroying a never-created cgroup is a no-op. */
        assert_int_equal(cg_destroy(&cg), 0);
        assert_int_equal(cg_kill(&cg), -EOPNOTSUPP);
}

/* ---- the real tree ---- */

#define REAL_FSROOT "/sys/fs/cgroup"

typedef struct Real {
        char root_name[64];
        CgroupRoot root;
        bool root_open;
        Cgroup cg;
        bool cg_open;
        pid_t child;
        char parents[CG_N][PATH_MAX]; /* where our root dir lives, per controller */
} Real;

/* Our own cgroup path for a v1 controller ("" for the v2 line); false if none. */
static bool own_path(const char *ctrl, char *ret, size_t size)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        assert_non_null(f);
        char line[1024];
        bool found = false;
        while (!found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                if (!*ctrl) {
                        found = strcmp(line, "0") == 0 && c1[1] == '\0';
                } else {
                        for (char *tok = strtok(c1 + 1, ","); tok && !found; tok = strtok(NULL, ","))
                                found = strcmp(tok, ctrl) == 0;
                }
                if (found)
                        snprintf(ret, size, "%s", c2 + 1);
        }
        fclose(f);
        return found;
}

static int real_setup(void **state)
{
        static const char *const ctrls[CG_N] = { "memory", "pids", "cpu", "cpuacct" };
        Real *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        snprintf(r->root_name, sizeof(r->root_name), "pyrunner-unittest-%d", (int)getpid());
        cg_init(&r->cg);
        r->child = -1;
        for (int i = 0; i < CG_N; i++) {
                char p[PATH_MAX / 2];
                if (own_path(ctrls[i], p, sizeof(p)))
                        snprintf(r->parents[i], sizeof(r->parents[i]), REAL_FSROOT "/%s%s", ctrls[i],
                                 strcmp(p, "/") ? p : "");
        }
        *state = r;
        return 0;
}

/* Best effort, so that a failed assertion leaves no cgroups behind. */
static int real_teardown(void **state)
{
        Real *r = *state;
        if (r->child > 0) {
                kill(r->child, SIGKILL);
                (void)waitpid(r->child, NULL, 0);
        }
        if (r->cg_open) {
                for (int i = 0; i < 50 && cg_destroy(&r->cg) == -EBUSY; i++)
                        usleep(20000);
        }
        if (r->root_open)
                cg_root_close(&r->root);
        free(r);
        return 0;
}

static bool open_real_root(Real *r)
{
        assert_int_equal(cg_root_open(&r->root, REAL_FSROOT, "/proc/self/cgroup", r->root_name), 0);
        r->root_open = true;
        if (r->root.mode == CGROUP_MODE_NONE) {
                /* Not writable here: that is fine only with a reason. */
                print_message("# real cgroup tree unusable: %s\n", r->root.why);
                assert_true(r->root.why[0] != '\0');
                for (int i = 0; i < CG_N; i++)
                        assert_int_equal(r->root.dirfd[i], -1);
                return false;
        }
        return true;
}

static char *real_knob(const Real *r, int ctrl, const char *run, const char *knob)
{
        char *s;
        if (r->root.mode == CGROUP_MODE_V1) {
                assert_true(r->parents[ctrl][0] != '\0');
                assert_true(asprintf(&s, "%s/%s/%s/%s", r->parents[ctrl], r->root_name, run, knob) > 0);
        } else {
                char p[PATH_MAX];
                assert_true(own_path("", p, sizeof(p)));
                assert_true(asprintf(&s, REAL_FSROOT "%s/%s/%s/%s", strcmp(p, "/") ? p : "", r->root_name, run,
                                     knob) > 0);
        }
        return s;
}

static void test_real_create_destroy(void **state)
{
        Real *r = *state;
        CgroupLimits l = { .memory_bytes = 64 * MiB, .pids_max = 16, .cpu_percent = 100 };

        if (!open_real_root(r))
                return;
        assert_int_equal(cg_create(&r->root, "run1", &l, &r->cg), 0);
        r->cg_open = true;

        char *limit = real_knob(r, CG_MEMORY, "run1",
                                r->root.mode == CGROUP_MODE_V1 ? "memory.limit_in_bytes" : "memory.max");
        char *pids = real_knob(r, CG_PIDS, "run1", "pids.max");
        expect_file(limit, "67108864");
        expect_file(pids, "16");
        if (r->root.mode == CGROUP_MODE_V1 && r->root.has_memsw) {
                char *memsw = real_knob(r, CG_MEMORY, "run1", "memory.memsw.limit_in_bytes");
                expect_file(memsw, "67108864");
                free(memsw);
        }

        assert_int_equal(cg_set_memory(&r->cg, 128 * MiB), 0);
        expect_file(limit, "134217728");

        CgroupStats st;
        assert_int_equal(cg_read_stats(&r->cg, &st), 0);
        assert_int_equal(st.oom_kills, 0);

        assert_int_equal(cg_destroy(&r->cg), 0);
        r->cg_open = false;
        for (int i = 0; i < CG_N; i++)
                assert_int_equal(r->cg.dirfd[i], -1);
        /* The run dirs are gone... */
        char *rundir = real_knob(r, CG_MEMORY, "run1", "");
        assert_false(exists(rundir));
        free(rundir);

        /* ...and closing the root removes our parent dirs too. */
        cg_root_close(&r->root);
        r->root_open = false;
        assert_int_equal(r->root.mode, CGROUP_MODE_NONE);
        for (int i = 0; i < CG_N; i++)
                if (r->parents[i][0])
                        assert_false(exists(P("%s/%s", r->parents[i], r->root_name)));
        free(limit);
        free(pids);
}

static void test_real_procs_stats_busy(void **state)
{
        /* A child moved in through cg_open_procs is accounted there, keeps the
         * cgroup busy (-EBUSY), and once reaped the cgroup can go. */
        Real *r = *state;
        CgroupLimits l = { .memory_bytes = 256 * MiB, .pids_max = 16, .cpu_percent = 100 };
        int go[2], done[2], fds[CG_N];

        if (!open_real_root(r))
                return;
        assert_int_equal(cg_create(&r->root, "run2", &l, &r->cg), 0);
        r->cg_open = true;

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(done, O_CLOEXEC), 0);
        r->child = fork();
        assert_true(r->child >= 0);
        if (r->child == 0) {
                char c;
                if (read(go[0], &c, 1) != 1)
                        _exit(1);
                /* Charge memory and CPU to the new cgroup. */
                size_t len = 8 * MiB;
                char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        _exit(2);
                for (int k = 0; k < 4; k++)
                        memset(p, k + 1, len);
                if (write(done[1], "x", 1) != 1)
                        _exit(3);
                for (;;)
                        pause();
        }
        close(go[0]);
        close(done[1]);

        int n = cg_open_procs(&r->cg, fds, CG_N);
        assert_true(n >= 1);
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)r->child);
        for (int i = 0; i < n; i++) {
                assert_int_equal(write(fds[i], pid, strlen(pid)), (ssize_t)strlen(pid));
                close(fds[i]);
        }
        assert_int_equal(write(go[1], "x", 1), 1);
        char c;
        assert_int_equal(read(done[0], &c, 1), 1);
        close(go[1]);
        close(done[0]);

        /* The child's /proc/PID/cgroup names the run cgroup. */
        char *cgfile = read_file(P("/proc/%d/cgroup", (int)r->child));
        assert_non_null(cgfile);
        assert_non_null(strstr(cgfile, P("/%s/run2", r->root_name)));
        free(cgfile);

        CgroupStats st;
        assert_int_equal(cg_read_stats(&r->cg, &st), 0);
        if (st.memory_peak < 8 * MiB)
                fail_msg("memory_peak %llu < 8 MiB", (unsigned long long)st.memory_peak);
        assert_true(st.cpu_usage_ns > 0);
        assert_int_equal(st.oom_kills, 0);

        /* Busy while the child lives. */
        assert_int_equal(cg_destroy(&r->cg), -EBUSY);

        if (r->root.mode == CGROUP_MODE_V2)
                assert_int_equal(cg_kill(&r->cg), 0);
        else
                assert_int_equal(kill(r->child, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(r->child, &status, 0), r->child);
        r->child = -1;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        int ret = -1;
        for (int i = 0; i < 50 && (ret = cg_destroy(&r->cg)) == -EBUSY; i++)
                usleep(20000);
        assert_int_equal(ret, 0);
        r->cg_open = false;
        cg_root_close(&r->root);
        r->root_open = false;
        for (int i = 0; i < CG_N; i++)
                if (r->parents[i][0])
                        assert_false(exists(P("%s/%s", r->parents[i], r->root_name)));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_v1_root_open, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_root_open_existing_parent, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_create_limits, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_cpu_quota_values, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_no_cpu_quota, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_no_cpu_quota_shared_hierarchy, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_memsw, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_set_memory, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_read_stats, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_open_procs, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_shared_cpu_cpuacct, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_optional_controllers_missing, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_kill_kills_each_listed_task, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v1_on_tmpfs_ignores_cgroup_controllers, fake_setup,
                                                fake_teardown),
                cmocka_unit_test_setup_teardown(test_v2_self_path, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v2_root_open, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v2_create_limits, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v2_read_stats, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_v2_open_procs_and_kill, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_missing_fsroot, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_empty_tree, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_pids_missing_cleans_up, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_self_lacks_memory, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_self_file_missing, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_none_v2_without_entry, fake_setup, fake_teardown),
                cmocka_unit_test(test_mode_names),
                cmocka_unit_test_setup_teardown(test_real_create_destroy, real_setup, real_teardown),
                cmocka_unit_test_setup_teardown(test_real_procs_stats_busy, real_setup, real_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
