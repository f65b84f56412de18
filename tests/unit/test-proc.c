/* SPDX-License-Identifier: MIT */
/* Unit tests for src/basic/proc-util.c: waiting for every child, bounded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc-util.h"

static int chld_fd(void)
{
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &chld, NULL), 0);
        int fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        assert_true(fd >= 0);
        return fd;
}

static pid_t child(bool stay)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                while (stay)
                        pause();
                _exit(0);
        }
        return pid;
}

static void test_no_children(void **state)
{
        int fd = chld_fd();
        assert_int_equal(wait_all_children(fd, 1000), 0);
        close(fd);
}

static void test_children_that_exit_are_reaped(void **state)
{
        int fd = chld_fd();
        child(false);
        child(false);
        assert_int_equal(wait_all_children(fd, 10000), 0);
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        close(fd);
}

static void test_child_that_stays_times_out(void **state)
{
        int fd = chld_fd();
        pid_t pid = child(true);
        assert_int_equal(wait_all_children(fd, 50), -ETIMEDOUT);
        /* Still there, not reaped; once killed it is. */
        assert_int_equal(kill(pid, 0), 0);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(wait_all_children(fd, 10000), 0);
        assert_int_equal(kill(pid, 0), -1);
        close(fd);
}

/* cgroup.procs lines, and the space-separated children file. */
static void test_pid_list(void **state)
{
        pid_t got[4], pid;
        size_t n = 0;
        for (const char *p = "12\n345\n"; (p = pid_list_next(p, &pid));)
                got[n++] = pid;
        assert_int_equal(n, 2);
        assert_int_equal(got[0], 12);
        assert_int_equal(got[1], 345);
        n = 0;
        for (const char *p = "7 8 9 "; (p = pid_list_next(p, &pid)) && n < 4;)
                got[n++] = pid;
        assert_int_equal(n, 3);
        assert_int_equal(got[2], 9);
        assert_null(pid_list_next("", &pid));
        assert_null(pid_list_next("\n", &pid));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_children),
                cmocka_unit_test(test_children_that_exit_are_reaped),
                cmocka_unit_test(test_child_that_stays_times_out),
                cmocka_unit_test(test_pid_list),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
