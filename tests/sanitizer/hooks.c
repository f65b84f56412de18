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
 * MemoryError, as from glibc's malloc. */
#define ROLE_OPTIONS ":detect_leaks=0:allocator_may_return_null=1:handle_segv=0:handle_sigbus=0" \
                     ":max_malloc_fill_size=0:quarantine_size_mb=16:malloc_context_size=16" \
                     ":handle_abort=0:handle_sigfpe=0:handle_sigill=0"
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
