/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

/* Reaps children until none is left (0) or timeout_ms has passed
 * (-ETIMEDOUT). sigfd is a non-blocking signalfd for SIGCHLD (which the
 * caller has blocked), so a child that exits meanwhile wakes the wait. */
int wait_all_children(int sigfd, int timeout_ms);
/* Walks a list of pids (cgroup.procs, /proc/PID/task/TID/children):
 * stores the next one in *ret and returns where the rest starts, or NULL
 * at the end. for (const char *p = buf; (p = pid_list_next(p, &pid));) */
const char *pid_list_next(const char *p, pid_t *ret);
