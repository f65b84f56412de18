/* SPDX-License-Identifier: MIT */
#pragma once

/* Reaps children until none is left (0) or timeout_ms has passed
 * (-ETIMEDOUT). sigfd is a non-blocking signalfd for SIGCHLD (which the
 * caller has blocked), so a child that exits meanwhile wakes the wait. */
int wait_all_children(int sigfd, int timeout_ms);
