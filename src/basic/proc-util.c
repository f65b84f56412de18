/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <poll.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc-util.h"

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_all_children(int sigfd, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                pid_t pid;
                while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
                        ;
                if (pid < 0 && errno == ECHILD)
                        return 0;
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = sigfd, .events = POLLIN };
                (void)poll(&p, 1, (int)left);
                struct signalfd_siginfo si;
                while (read(sigfd, &si, sizeof(si)) > 0)
                        ;
        }
}

const char *pid_list_next(const char *p, pid_t *ret)
{
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
                return NULL;
        *ret = (pid_t)pid;
        return end;
}
