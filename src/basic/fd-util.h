/* SPDX-License-Identifier: MIT */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ __attribute__((cleanup(closedirp)))

int fd_nonblock(int fd, int nonblock);
int fd_cloexec(int fd, int cloexec);
/* Writes all of buf, retrying on EINTR; -errno on failure. */
int fd_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; -EPIPE on early EOF. */
int fd_read_exact(int fd, void *buf, size_t len);
/* Writes a short string to a file such as a cgroup or /proc knob. */
int file_write_str(int dirfd, const char *path, const char *s);
/* Reads a small file (< size) into buf, NUL-terminated; returns length. */
ssize_t file_read_str(int dirfd, const char *path, char *buf, size_t size);
/* Sends iov data plus up to 16 fds over a unix socket. */
ssize_t fd_send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
/* Receives one message and up to max_fds fds (set O_CLOEXEC); *n_fds is set. */
ssize_t fd_recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max_fds, size_t *n_fds);
/* 1 when both fds are the same file (device and inode), 0 when not or when
 * either is -1, -errno when fstat fails. */
int fd_same_inode(int a, int b);
