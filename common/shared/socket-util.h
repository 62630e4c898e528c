/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Socket addresses as the project writes them, and the few socket set-ups every daemon
 * needs.
 *
 * Address forms:
 *   "host:port"       IPv4 literal or a host name (resolved with getaddrinfo)
 *   "[v6]:port"       IPv6 literal, optionally with a "%scope" (interface name or number)
 *   "*:port", ":port" any address: IPv6 "::" (dual-stack where the host has IPv6)
 *   "unix:/path"      Unix socket; "unix:@name" is an abstract one
 *   "/path"           the same as "unix:/path"
 * port is decimal 0..65535 (0: let the kernel pick, for listening). Anything else is
 * -EINVAL. All functions return >= 0 or -errno. */

#include <sys/socket.h>
#include <sys/types.h>

#include "basic/macro.h"

/* Fits every string socket_address_to_string() makes ("unix:" + a 108-byte path). */
#define SOCKET_ADDRESS_STRING_MAX 128

/* Parses address into ret_sa and ret_len. Host names are resolved (blocking; the first
 * result is used): -EADDRNOTAVAIL if the name does not resolve, -EAGAIN if the resolver
 * failed temporarily. */
int socket_address_parse(const char *address, struct sockaddr_storage *ret_sa, socklen_t *ret_len);
/* The same without name resolution: a syntactically valid host name gives
 * -EADDRNOTAVAIL. Never touches the network (the fuzz target uses this). */
int socket_address_parse_numeric(const char *address, struct sockaddr_storage *ret_sa,
                                 socklen_t *ret_len);

/* A listening stream socket, O_CLOEXEC|O_NONBLOCK, SO_REUSEADDR. For a Unix path, a
 * stale socket file nobody listens on is replaced (-EADDRINUSE if somebody does, -EEXIST
 * if the path is not a socket) and the new one gets unix_mode. */
int socket_listen(const char *address, int backlog, mode_t unix_mode, int *ret_fd);
/* Starts a non-blocking connect (O_CLOEXEC|O_NONBLOCK; TCP_NODELAY for TCP): returns 0
 * if connected already, 1 if in progress (finish it with stream_new_connecting()). */
int socket_connect_start(const char *address, int *ret_fd);

/* "127.0.0.1:8786", "[::1]:8786" (IPv4-mapped IPv6 is shown as IPv4), "unix:/path",
 * "unix:@name", "unix" for an unnamed Unix socket. -ENOSPC if size is too small,
 * -EAFNOSUPPORT for other families, -EINVAL for a truncated sockaddr. */
int socket_address_to_string(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* SO_PEERCRED of a connected Unix socket; -EAFNOSUPPORT for other sockets. */
int socket_peer_cred(int fd, struct ucred *ret);
