/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

#include "basic/macro.h"

/* Closes fd if >= 0 and returns -EBADF; EBADF from close() is an internal bug. */
int safe_close(int fd);
static inline void closep(int *fd)
{
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)
static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

int fd_nonblock(int fd, bool nonblock);
int fd_cloexec(int fd, bool cloexec);
/* Full write / read with EINTR handling (blocking fds). */
int loop_write(int fd, const void *buf, size_t n);
ssize_t loop_read(int fd, void *buf, size_t n);
/* Read a whole small file (at most max bytes, NUL-terminated). */
int read_full_file(const char *path, char **ret, size_t *ret_size, size_t max);
/* Write a file atomically (temp file + fsync + rename) with the given mode. */
int write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf of a directory tree that we created; does not cross mount points. */
int rm_rf(const char *path);
