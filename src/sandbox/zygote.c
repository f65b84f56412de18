/* SPDX-License-Identifier: MIT */
/* pyrunner-zygote: an embedded CPython with the libraries imported once.
 * It never runs user code itself: on each SPAWN request it forks a child,
 * which becomes pid 2 of a fresh sandbox and runs the code there.
 * Usage: pyrunner-zygote FD PRELOAD SANDBOX_UID  (started by the engine) */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "proc-util.h"
#include "preload_py.h"
#include "runner_py.h"
#include "values_py.h"
#include "sandbox.h"
#include "seccomp-policy.h"
#include "zygote-proto.h"

#define MAX_CHILDREN 4096

typedef struct Zygote {
        int sock;                    /* to the engine */
        int factory;                 /* to the factory */
        int sigfd;
        int self_pidns;
        pid_t pid, factory_pid;
        const char *test_spawned;    /* test-only: "drop", "forge" or "delay:MS" */
        bool privileged;
        uint32_t host_uid, uid_count;  /* the sandbox users' host uids (= gids) */
        SeccompProgram user_filter, init_filter;
        PyObject *runner_main;
        struct { pid_t pid; uint64_t id; } kids[MAX_CHILDREN];
} Zygote;

static Zygote Z;

/* Tells the engine why we cannot start ("what: detail", detail may be a
 * Python traceback), then exits. Too long, its middle goes: the end holds
 * the exception. */
static _noreturn_ void die_text(const char *what, const char *detail)
{
        static char buf[ZYG_ERROR_MAX];
        ZygHeader *h = (ZygHeader *)buf;
        char *text = buf + sizeof(*h);
        size_t room = sizeof(buf) - sizeof(*h) - 1, len = strlen(detail), head = strlen(what) + 2;
        static const char cut[] = "\n[...]\n";

        h->type = ZYG_MSG_ERROR;
        if (head + len <= room) {
                snprintf(text, room + 1, "%s: %s", what, detail);
        } else {
                size_t keep = room - head - (sizeof(cut) - 1), front = keep / 4, back = keep - front;
                /* Cut between UTF-8 characters, never inside one. */
                while (front > 0 && (detail[front] & 0xc0) == 0x80)
                        front--;
                const char *tail = detail + len - back;
                while (*tail && (*tail & 0xc0) == 0x80)
                        tail++;
                snprintf(text, room + 1, "%s: %.*s%s%s", what, (int)front, detail, cut, tail);
        }
        if (Z.sock >= 0)
                (void)send(Z.sock, buf, sizeof(*h) + strlen(text) + 1, MSG_NOSIGNAL);
        _exit(1);
}

static _noreturn_ void die_msg(const char *what, int err)
{
        die_text(what, strerror(err));
}

/* Unprivileged: enter our own user namespace so we may setns() into the
 * sandboxes' pid namespaces, which we then own. */
static int become_ns_root(void)
{
        uid_t uid = getuid();
        gid_t gid = getgid();
        char line[64];
        int r;

        if (unshare(CLONE_NEWUSER) < 0)
                return -errno;
        r = file_write_str(AT_FDCWD, "/proc/self/setgroups", "deny");
        if (r < 0)
                return r;
        snprintf(line, sizeof(line), "0 %u 1\n", uid);
        r = file_write_str(AT_FDCWD, "/proc/self/uid_map", line);
        if (r < 0)
                return r;
        snprintf(line, sizeof(line), "0 %u 1\n", gid);
        return file_write_str(AT_FDCWD, "/proc/self/gid_map", line);
}

static void collapse_huge_pages(void)
{
        /* Fork cost is page-table copying: back the big anonymous mappings
         * with huge pages so there are far fewer entries to copy. */
        FILE *f = fopen("/proc/self/maps", "re");
        char line[512];
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                char perms[8];
                int path_off = 0;
                if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_off) < 3)
                        continue;
                const char *path = line + path_off;
                bool anon = *path == '\n' || *path == '\0' || strncmp(path, "[heap]", 6) == 0;
                if (!anon || perms[0] != 'r' || perms[1] != 'w' || hi - lo < (2ul << 20))
                        continue;
                (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
                (void)madvise((void *)lo, hi - lo, MADV_COLLAPSE);
        }
        fclose(f);
}

/* The pending Python exception as its traceback text (cleared). */
static char *py_error_text(void)
{
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        char *out = NULL;
        PyObject *mod = PyImport_ImportModule("traceback");
        PyObject *lines = mod && type ? PyObject_CallMethod(mod, "format_exception", "OOO", type,
                                                               value ? value : Py_None, tb ? tb : Py_None)
                                      : NULL;
        PyObject *empty = lines ? PyUnicode_FromString("") : NULL;
        PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
        const char *utf8 = text ? PyUnicode_AsUTF8(text) : NULL;
        if (utf8)
                out = strdup(utf8);
        PyErr_Clear();
        Py_XDECREF(text);
        Py_XDECREF(empty);
        Py_XDECREF(lines);
        Py_XDECREF(mod);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return out ? out : strdup("a Python error (no traceback)");
}

/* Threads other than ours, their names in `names`. */
static int threads_besides_main(char *names, size_t size)
{
        _cleanup_closedir_ DIR *tasks = opendir("/proc/self/task");
        int n = 0;
        size_t len = 0;
        names[0] = '\0';
        if (!tasks)
                return 0;
        for (struct dirent *de; (de = readdir(tasks));) {
                if (de->d_name[0] == '.' || atoi(de->d_name) == gettid())
                        continue;
                char path[64], comm[32] = "?";
                snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
                (void)file_read_str(AT_FDCWD, path, comm, sizeof(comm));
                comm[strcspn(comm, "\n")] = '\0';
                if (len < size)
                        len += (size_t)MAX(snprintf(names + len, size - len, "%s%s", n ? ", " : "", comm), 0);
                n++;
        }
        return n;
}

/* The first Python failure of the start-up, for die_text. */
static char *start_error;

static void keep_py_error(void)
{
        char *text = py_error_text();
        if (start_error)
                free(text);
        else
                start_error = text;
}

/* Runs embedded source as module `name` and registers it in sys.modules;
 * *ret_dict (optional) is the module's dict, borrowed. */
static int embed_module(const char *name, const char *source, const char *filename, PyObject **ret_dict)
{
        PyObject *mod = PyModule_New(name);
        if (!mod)
                return -ENOMEM;
        PyObject *d = PyModule_GetDict(mod);
        PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins());
        PyObject *code = Py_CompileString(source, filename, Py_file_input);
        PyObject *res = code ? PyEval_EvalCode(code, d, d) : NULL;
        Py_XDECREF(code);
        if (!res) {
                keep_py_error();
                Py_DECREF(mod);
                return -EINVAL;
        }
        Py_DECREF(res);
        PyDict_SetItemString(PyImport_GetModuleDict(), name, mod);
        Py_DECREF(mod);
        if (ret_dict)
                *ret_dict = d;
        return 0;
}

static int python_start(const char *preload, char **ret_info)
{
        int r;
        PyConfig config;
        PyPreConfig pre;
        PyStatus st;

        /* glibc malloc keeps Python's heap in few, large, huge-page-backed
         * mappings; pymalloc's 1 MiB arenas would be hundreds of VMAs that
         * every fork must copy. */
        PyPreConfig_InitIsolatedConfig(&pre);
        pre.allocator = getenv("PYRUNNER_PYMALLOC") ? PYMEM_ALLOCATOR_PYMALLOC : PYMEM_ALLOCATOR_MALLOC;
        st = Py_PreInitialize(&pre);
        if (PyStatus_Exception(st))
                return -EIO;
        PyConfig_InitIsolatedConfig(&config);
        config.use_environment = 0;
        config.write_bytecode = 0;
        config.buffered_stdio = 1;
        config.install_signal_handlers = 1;
        st = PyConfig_SetString(&config, &config.stdio_encoding, L"utf-8");
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.stdio_errors, L"backslashreplace");
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.program_name, L"python3");
        /* sys.executable must exist inside the sandbox (subprocess, multiprocessing). */
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.executable, L"/usr/bin/python3.11");
        if (!PyStatus_Exception(st))
                st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st))
                return -EIO;

        /* The typed value encoder shared with the Python client, then the
         * runner, which uses it. */
        PyObject *d;
        r = embed_module("_pyrunner_values", values_py_source, "<pyrunner-values>", NULL);
        if (r >= 0)
                r = embed_module("_pyrunner", runner_py_source, "<pyrunner>", &d);
        if (r < 0)
                return r;
        Z.runner_main = PyDict_GetItemString(d, "main");
        Py_XINCREF(Z.runner_main);

        /* Preload (nothing unless asked), report versions. */
        PyObject *pd;
        r = embed_module("_pyrunner_preload", preload_py_source, "<pyrunner-preload>", &pd);
        if (r < 0)
                return r;
        PyObject *fn = PyDict_GetItemString(pd, "preload");
        PyObject *info = fn ? PyObject_CallFunction(fn, "s", preload) : NULL;
        if (!info || !PyUnicode_Check(info)) {
                keep_py_error();
                Py_XDECREF(info);
                return -EINVAL;
        }
        PyObject *prep = PyDict_GetItemString(d, "prepare_zygote");
        PyObject *pr = prep ? PyObject_CallNoArgs(prep) : NULL;
        if (!pr) {
                keep_py_error();
                Py_DECREF(info);
                return -EINVAL;
        }
        Py_DECREF(pr);
        const char *text = PyUnicode_AsUTF8(info);
        *ret_info = text ? strdup(text) : NULL;
        Py_DECREF(info);
        return *ret_info ? 0 : -ENOMEM;
}

static int kid_add(pid_t pid, uint64_t id)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (Z.kids[i].pid == 0) {
                        Z.kids[i].pid = pid;
                        Z.kids[i].id = id;
                        return 0;
                }
        return -ENOSPC;
}

static void reap_children(void)
{
        struct signalfd_siginfo si;
        while (read(Z.sigfd, &si, sizeof(si)) > 0)
                ;
        for (;;) {
                int status;
                struct rusage ru;
                pid_t pid = wait4(-1, &status, WNOHANG, &ru);
                if (pid <= 0)
                        break;
                ZygExited m = {
                        .type = ZYG_MSG_EXITED, .status = status, .pid = pid,
                        .utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec,
                        .stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec,
                };
                for (size_t i = 0; i < MAX_CHILDREN; i++)
                        if (Z.kids[i].pid == pid) {
                                m.id = Z.kids[i].id;
                                Z.kids[i].pid = 0;
                                break;
                        }
                (void)send(Z.sock, &m, sizeof(m), MSG_NOSIGNAL);
        }
}

static _noreturn_ void child_run(const ChildArgs *a)
{
        SandboxError err = { .ctl_fd = a->fds[3] };
        /* Other sandboxes' host pids and run ids are none of its business.
         * Only live entries are written: no copies of pages without one. */
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (Z.kids[i].pid)
                        Z.kids[i].pid = 0, Z.kids[i].id = 0;
        int r = sandbox_child_attach(a, &err);
        PyOS_AfterFork_Child();
        if (r >= 0)
                r = sandbox_child_setup(a, &err);
        if (r < 0) {
                sandbox_child_report(err.ctl_fd, &err);
                _exit(127);
        }
        static const char ready[] = "\0\0\0\x10{\"type\":\"ready\"}";
        if (fd_write_all(ZYG_CTL_FD, ready, sizeof(ready) - 1) < 0)
                _exit(127);
        int code = 1;
        PyObject *res = PyObject_CallNoArgs(Z.runner_main);
        if (res) {
                code = (int)PyLong_AsLong(res);
                Py_DECREF(res);
        } else {
                PyErr_Clear();
        }
        _exit(code & 0xff);
}

/* The engine's tests of a late, lost or forged SPAWNED (set only when the
 * engine runs with PYRUNNER_ALLOW_SABOTAGE=1). True: do not send it. */
static bool test_sabotage_spawned(ZygSpawned *rep)
{
        const char *t = Z.test_spawned;
        if (!t || rep->error < 0)
                return false;
        if (!strcmp(t, "drop"))
                return true;
        if (!strcmp(t, "forge"))
                rep->id ^= 1ULL << 62;
        else if (!strncmp(t, "delay:", 6))
                usleep((useconds_t)strtoul(t + 6, NULL, 10) * 1000);
        return false;
}

static void handle_spawn(const ZygSpawn *req, int *fds, size_t n_fds)
{
        ZygSpawned rep = { .type = ZYG_MSG_SPAWNED, .id = req->id };
        int init_pidfd = -1, go = -1;
        int out_fds[1];

        if (n_fds != 4 + req->n_cgroup_fds) {
                rep.error = -EBADMSG;
                goto reply;
        }

        if (Z.privileged && req->uid_slot >= Z.uid_count) {
                rep.error = -EINVAL;
                goto reply;
        }
        uint32_t uid = Z.privileged ? Z.host_uid + req->uid_slot : 0;
        FactoryRequest freq = { .host_uid = uid, .host_gid = uid, .unprivileged = !Z.privileged };
        FactoryReply frep;
        int ffds[2];
        size_t nff = 0;
        if (send(Z.factory, &freq, sizeof(freq), MSG_NOSIGNAL) < 0 ||
            fd_recv_with_fds(Z.factory, &frep, sizeof(frep), ffds, 2, &nff) != sizeof(frep)) {
                /* Without its factory the zygote is useless: exit, and the
                 * engine starts a fresh one. */
                die_msg("factory gone", EPIPE);
        }
        if (frep.error < 0 || nff != 2) {
                rep.error = frep.error < 0 ? frep.error : -EBADMSG;
                snprintf(rep.message, sizeof(rep.message), "creating pid 1: %s", strerror(-rep.error));
                for (size_t i = 0; i < nff; i++)
                        close(ffds[i]);
                goto reply;
        }
        init_pidfd = ffds[0];
        go = ffds[1];

        if ((req->layers & ZYG_LAYER_PIDNS) && setns(init_pidfd, CLONE_NEWPID) < 0) {
                rep.error = -errno;
                snprintf(rep.message, sizeof(rep.message), "setns pid: %s", strerror(errno));
                goto reply;
        }

        ChildArgs a = {
                .fds = { fds[0], fds[1], fds[2], fds[3] },
                .cgroup_fds = fds + 4,
                .n_cgroup_fds = req->n_cgroup_fds,
                .init_pidfd = init_pidfd,
                .zygote_pid = Z.pid,
                .layers = req->layers,
                .unprivileged = !Z.privileged,
                .limits = req->limits,
                .filter = &Z.user_filter,
        };
        fflush(NULL);
        PyOS_BeforeFork();
        pid_t pid = fork();
        if (pid == 0)
                child_run(&a);
        int saved = errno;
        PyOS_AfterFork_Parent();
        if (req->layers & ZYG_LAYER_PIDNS)
                (void)setns(Z.self_pidns, CLONE_NEWPID);
        if (pid < 0) {
                rep.error = -saved;
                snprintf(rep.message, sizeof(rep.message), "fork: %s", strerror(saved));
                syscall(SYS_pidfd_send_signal, init_pidfd, SIGKILL, NULL, 0);
                goto reply;
        }
        (void)kid_add(pid, req->id);
        (void)write(go, "G", 1);
        rep.pid = pid;
        rep.init_pid = frep.init_pid;
reply:
        safe_close(go);
        out_fds[0] = init_pidfd;
        if (test_sabotage_spawned(&rep))
                goto done;
        (void)fd_send_with_fds(Z.sock, &rep, sizeof(rep), out_fds, rep.error < 0 || init_pidfd < 0 ? 0 : 1);
done:
        safe_close(init_pidfd);
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
}

/* The engine is gone: kill the sandboxes' pid 2s (their pid 1s then exit),
 * let the factory go (it exits on EOF, reaping the pid 1s) and reap them
 * all, so that whoever waits for the zygote has waited for everything it
 * started. At most a second; what is left then has PDEATHSIG. */
static _noreturn_ void zygote_exit(void)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (Z.kids[i].pid > 0)
                        (void)kill(Z.kids[i].pid, SIGKILL);
        Z.factory = safe_close(Z.factory);
        (void)wait_all_children(Z.sigfd, 1000);
        _exit(0);
}

static void serve(void)
{
        static char buf[ZYG_MSG_MAX];
        for (;;) {
                struct pollfd p[2] = { { .fd = Z.sock, .events = POLLIN }, { .fd = Z.sigfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        die_msg("poll", errno);
                }
                if (p[1].revents)
                        reap_children();
                if (!p[0].revents)
                        continue;
                int fds[16];
                size_t n_fds = 0;
                ssize_t n = fd_recv_with_fds(Z.sock, buf, sizeof(buf), fds, 16, &n_fds);
                if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
                        zygote_exit();
                if (n < (ssize_t)sizeof(ZygHeader))
                        goto drop;
                if (((ZygHeader *)buf)->type == ZYG_MSG_SPAWN && n == sizeof(ZygSpawn)) {
                        handle_spawn((ZygSpawn *)buf, fds, n_fds);
                        continue;
                }
                if (((ZygHeader *)buf)->type == ZYG_MSG_PING && n == sizeof(ZygPing)) {
                        ((ZygPing *)buf)->type = ZYG_MSG_PONG;
                        (void)send(Z.sock, buf, sizeof(ZygPing), MSG_NOSIGNAL);
                }
drop:
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
        }
}

int main(int argc, char **argv)
{
        int r;

        Z.sock = -1;
        if (argc != 5)
                return 2;
        Z.sock = atoi(argv[1]);
        Z.pid = getpid();
        Z.privileged = geteuid() == 0;
        Z.host_uid = Z.privileged ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
        Z.uid_count = (uint32_t)strtoul(argv[4], NULL, 10);
        if (fcntl(Z.sock, F_GETFD) < 0)
                return 2;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Preparing sandboxes is background work: it yields to running
         * code. The engine lifts a sandbox to nice 0 when its run starts. */
        (void)setpriority(PRIO_PROCESS, 0, ZYG_PREPARE_NICE);

        /* Threads must never start: set before any library is imported. */
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("MKL_NUM_THREADS", "1", 1);
        setenv("NUMEXPR_MAX_THREADS", "1", 1);
        setenv("NUMEXPR_NUM_THREADS", "1", 1);
        setenv("MPLBACKEND", "Agg", 1);

        if (!Z.privileged) {
                r = become_ns_root();
                if (r < 0)
                        die_msg("user namespaces unavailable without root", -r);
        }
        Z.self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (Z.self_pidns < 0)
                die_msg("/proc/self/ns/pid", errno); /* forks could not return to our pid ns */
        /* Built before the imports so the heap layout children inherit is quiet. */
        r = seccomp_policy_build(SECCOMP_POLICY_USER, &Z.user_filter);
        if (r < 0)
                die_msg("seccomp user policy", -r);
        r = seccomp_policy_build(SECCOMP_POLICY_INIT, &Z.init_filter);
        if (r < 0)
                die_msg("seccomp init policy", -r);

        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                die_msg("socketpair", errno);
        pid_t fpid = fork();
        if (fpid < 0)
                die_msg("fork factory", errno);
        if (fpid == 0) {
                close(sp[0]);
                close(Z.sock);
                factory_main(sp[1], &Z.init_filter);
        }
        close(sp[1]);
        Z.factory = sp[0];
        Z.factory_pid = fpid;
        Z.test_spawned = getenv("PYRUNNER_TEST_SPAWNED");

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        Z.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

        char *info = NULL;
        r = python_start(argv[2], &info);
        if (r < 0)
                die_text("python start-up", start_error ? start_error : strerror(-r));
        collapse_huge_pages();

        /* Children must see no threads: they would not survive fork(). The
         * preload joined the Python ones; give any other one a moment to end. */
        char names[512];
        for (int i = 0; threads_besides_main(names, sizeof(names)) > 0; i++) {
                if (i == 200)
                        die_text("a preloaded library left threads running (the zygote must be single-threaded "
                                 "to fork)", names);
                usleep(10 * 1000);
        }

        size_t len = strlen(info);
        _cleanup_free_ char *msg = malloc(sizeof(ZygReady) + len + 1);
        if (!msg)
                die_msg("ready", ENOMEM);
        ZygReady hello = { .type = ZYG_MSG_READY, .version = ZYG_PROTO_VERSION, .factory_pid = Z.factory_pid };
        memcpy(msg, &hello, sizeof(hello));
        memcpy(msg + sizeof(hello), info, len + 1);
        free(info);
        if (send(Z.sock, msg, sizeof(hello) + len + 1, MSG_NOSIGNAL) < 0)
                return 1;
        serve();
        return 0;
}
