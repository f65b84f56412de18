/* SPDX-License-Identifier: MIT */
/* Linked into pyrunnerd, pyrunner and pyrunner-zygote of a sanitized build
 * only (see meson.build here): the sanitizers' defaults, which their
 * runtime reads before main(). The environment can still override them,
 * except in the zygote: the engine starts it with a clean one. */
#include <sanitizer/common_interface_defs.h>

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

#ifdef SAN_ZYGOTE
/* Python keeps its objects until exit, and the zygote's processes end by
 * _exit(): no leak check. A signal that user code raises (a ctypes
 * segfault, abort()) must end its sandbox as in production, not as a
 * report. An absurd allocation from user code gets NULL, that is Python's
 * MemoryError, as from glibc's malloc. No malloc fill and a small
 * quarantine: the pages they touch count in a sandbox's cgroup. */
#define ROLE_OPTIONS ":detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0" \
                     ":handle_sigill=0:allocator_may_return_null=1:max_malloc_fill_size=0" \
                     ":quarantine_size_mb=16:malloc_context_size=16"
#else
#define ROLE_OPTIONS ""
#endif

const char *__asan_default_options(void)
{
        return "log_path=" SAN_LOG_PATH ROLE_OPTIONS;
}

const char *__ubsan_default_options(void)
{
        return "print_stacktrace=1";
}

#ifdef SAN_ZYGOTE
#include <Python.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* zygote.c's collapse_huge_pages() would also turn ASan's 15 TB shadow into
 * huge pages: 0.3 s per zygote start, and every shadow page a sandbox then
 * touches is a 2 MB copy. No mapping of the zygote itself comes near 1 TB. */
int madvise(void *addr, size_t len, int advice)
{
        if ((advice == MADV_HUGEPAGE || advice == MADV_COLLAPSE) && len >= (1ull << 40))
                return 0;
        return (int)syscall(SYS_madvise, addr, len, advice);
}

/* A sandbox's pid 2 (forked once Python is up; the factory is forked
 * before) loses the log directory at its pivot_root and closes every other
 * fd, so its reports go to its stderr: the zygote's until its fds are
 * placed, the run's stderr after. */
static void child_reports_to_stderr(void)
{
        if (Py_IsInitialized())
                __sanitizer_set_report_path("stderr");
}

__attribute__((constructor)) static void register_fork_hook(void)
{
        (void)pthread_atfork(NULL, NULL, child_reports_to_stderr);
}
#endif
