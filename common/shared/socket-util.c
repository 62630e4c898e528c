/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/fd-util.h"
#include "shared/socket-util.h"

static int parse_port(const char *s, uint16_t *ret)
{
        unsigned v = 0;
        size_t n = 0;

        /* Digits only: no sign, no blanks, no "0x", at most five of them. */
        for (; s[n]; n++) {
                if (s[n] < '0' || s[n] > '9' || n >= 5)
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[n] - '0');
        }
        if (n == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

static bool hostname_valid(const char *h)
{
        size_t n = strlen(h);

        if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = h[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_'))
                        return false;
        }
        return true;
}

static int parse_unix(const char *path, struct sockaddr_storage *ret_sa, socklen_t *ret_len)
{
        struct sockaddr_un *un = (struct sockaddr_un *)ret_sa;
        size_t n = strlen(path);

        if (path[0] == '@') {
                /* Abstract: a leading NUL instead of '@', not NUL-terminated. */
                if (n < 2 || n > sizeof(un->sun_path))
                        return -EINVAL;
                memset(ret_sa, 0, sizeof(*ret_sa));
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path + 1, path + 1, n - 1);
                *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
                return 0;
        }
        if (path[0] != '/' || n >= sizeof(un->sun_path))
                return -EINVAL;
        memset(ret_sa, 0, sizeof(*ret_sa));
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, n + 1);
        *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ret_sa,
                   socklen_t *ret_len)
{
        /* No AI_ADDRCONFIG: it hides "localhost" on hosts that only have loopback. */
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        int r;

        r = getaddrinfo(host, NULL, &hints, &ai);
        switch (r) {
        case 0:
                break;
        case EAI_NONAME:
#ifdef EAI_NODATA
        case EAI_NODATA:
#endif
        case EAI_FAMILY:
                return -EADDRNOTAVAIL;
        case EAI_AGAIN:
                return -EAGAIN;
        case EAI_MEMORY:
                return -ENOMEM;
        case EAI_SYSTEM:
                return negative_errno();
        default:
                return -EIO;
        }
        for (struct addrinfo *i = ai; i; i = i->ai_next) {
                if ((i->ai_family != AF_INET && i->ai_family != AF_INET6) ||
                    i->ai_addrlen > sizeof(*ret_sa))
                        continue;
                memset(ret_sa, 0, sizeof(*ret_sa));
                memcpy(ret_sa, i->ai_addr, i->ai_addrlen);
                if (i->ai_family == AF_INET)
                        ((struct sockaddr_in *)ret_sa)->sin_port = htons(port);
                else
                        ((struct sockaddr_in6 *)ret_sa)->sin6_port = htons(port);
                *ret_len = i->ai_addrlen;
                freeaddrinfo(ai);
                return 0;
        }
        freeaddrinfo(ai);
        return -EADDRNOTAVAIL;
}

static int parse_internal(const char *address, bool numeric, struct sockaddr_storage *ret_sa,
                          socklen_t *ret_len)
{
        char host[256];
        const char *colon, *port_str;
        uint16_t port;
        int r;

        if (!address)
                return -EINVAL;
        if (strncmp(address, "unix:", 5) == 0)
                return parse_unix(address + 5, ret_sa, ret_len);
        if (address[0] == '/')
                return parse_unix(address, ret_sa, ret_len);

        if (address[0] == '[') {
                const char *end = strchr(address, ']');
                struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
                const char *pct;
                size_t n;

                if (!end || end[1] != ':')
                        return -EINVAL;
                n = (size_t)(end - address - 1);
                if (n == 0 || n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, address + 1, n);
                host[n] = 0;
                r = parse_port(end + 2, &port);
                if (r < 0)
                        return r;
                pct = strchr(host, '%');
                if (pct) {
                        const char *scope = pct + 1;
                        char *e;
                        unsigned long idx;

                        host[pct - host] = 0;
                        if (!*scope || strlen(scope) >= IF_NAMESIZE)
                                return -EINVAL;
                        errno = 0;
                        idx = strtoul(scope, &e, 10);
                        if (*e == 0 && scope[0] >= '0' && scope[0] <= '9') {
                                if (errno != 0 || idx == 0 || idx > UINT32_MAX)
                                        return -EINVAL;
                        } else {
                                if (numeric)
                                        return -EADDRNOTAVAIL;
                                idx = if_nametoindex(scope);
                                if (idx == 0)
                                        return -ENODEV;
                        }
                        sin6.sin6_scope_id = (uint32_t)idx;
                }
                if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
                        return -EINVAL;
                sin6.sin6_port = htons(port);
                memset(ret_sa, 0, sizeof(*ret_sa));
                memcpy(ret_sa, &sin6, sizeof(sin6));
                *ret_len = sizeof(sin6);
                return 0;
        }

        colon = strrchr(address, ':');
        if (!colon)
                return -EINVAL;
        port_str = colon + 1;
        r = parse_port(port_str, &port);
        if (r < 0)
                return r;

        size_t n = (size_t)(colon - address);
        if (n >= sizeof(host))
                return -EINVAL;
        memcpy(host, address, n);
        host[n] = 0;

        if (n == 0 || strcmp(host, "*") == 0) {
                struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                            .sin6_addr = IN6ADDR_ANY_INIT,
                                            .sin6_port = htons(port)};
                memset(ret_sa, 0, sizeof(*ret_sa));
                memcpy(ret_sa, &sin6, sizeof(sin6));
                *ret_len = sizeof(sin6);
                return 0;
        }

        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
                memset(ret_sa, 0, sizeof(*ret_sa));
                memcpy(ret_sa, &sin, sizeof(sin));
                *ret_len = sizeof(sin);
                return 0;
        }
        /* A name: letters, digits, '-', '.', '_' only (no ':', so unbracketed IPv6 and
         * stray colons end here). All-digit-and-dot strings that inet_pton refused
         * (e.g. "1.2.3.999") are not names either. */
        if (!hostname_valid(host) || strspn(host, "0123456789.") == n)
                return -EINVAL;
        if (numeric)
                return -EADDRNOTAVAIL;
        return resolve(host, port, ret_sa, ret_len);
}

int socket_address_parse(const char *address, struct sockaddr_storage *ret_sa, socklen_t *ret_len)
{
        struct sockaddr_storage sa;
        socklen_t len;
        int r = parse_internal(address, false, &sa, &len);

        if (r < 0)
                return r;
        *ret_sa = sa;
        *ret_len = len;
        return 0;
}

int socket_address_parse_numeric(const char *address, struct sockaddr_storage *ret_sa,
                                 socklen_t *ret_len)
{
        struct sockaddr_storage sa;
        socklen_t len;
        int r = parse_internal(address, true, &sa, &len);

        if (r < 0)
                return r;
        *ret_sa = sa;
        *ret_len = len;
        return 0;
}

/* A Unix socket file left by a dead process can be replaced; a live one cannot. */
static int unix_path_clear_stale(const struct sockaddr_un *un, socklen_t len)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (un->sun_path[0] == 0)
                return 0; /* abstract: vanishes with its owner */
        if (lstat(un->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *)un, len) == 0)
                return -EADDRINUSE;
        if (errno == EAGAIN || errno == EINPROGRESS)
                return -EADDRINUSE; /* listening, backlog full */
        if (errno != ECONNREFUSED && errno != ENOENT)
                return -errno;
        if (unlink(un->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int socket_listen(const char *address, int backlog, mode_t unix_mode, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage sa;
        socklen_t len;
        int r, one = 1;

        assert(ret_fd);
        r = socket_address_parse(address, &sa, &len);
        if (r < 0)
                return r;

        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 && errno == EAFNOSUPPORT && sa.ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr)) {
                /* "*:port" on a host without IPv6. */
                struct sockaddr_in sin = {.sin_family = AF_INET,
                                          .sin_port = ((struct sockaddr_in6 *)&sa)->sin6_port,
                                          .sin_addr.s_addr = htonl(INADDR_ANY)};
                memset(&sa, 0, sizeof(sa));
                memcpy(&sa, &sin, sizeof(sin));
                len = sizeof(sin);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        }
        if (fd < 0)
                return -errno;

        if (sa.ss_family == AF_UNIX) {
                const struct sockaddr_un *un = (const struct sockaddr_un *)&sa;

                r = unix_path_clear_stale(un, len);
                if (r < 0)
                        return r;
                /* bind() creates the file with the socket inode's mode minus the umask:
                 * narrow it first, so the path is never more open than asked. */
                if (fchmod(fd, unix_mode & 07777) < 0)
                        return -errno;
                if (bind(fd, (const struct sockaddr *)&sa, len) < 0)
                        return -errno;
                if (un->sun_path[0] != 0 && chmod(un->sun_path, unix_mode & 07777) < 0) {
                        r = -errno;
                        (void)unlink(un->sun_path);
                        return r;
                }
        } else {
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                        return -errno;
                if (sa.ss_family == AF_INET6 &&
                    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr)) {
                        int zero = 0;
                        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                }
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (bind(fd, (const struct sockaddr *)&sa, len) < 0)
                        return -errno;
        }
        if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
                return -errno;

        *ret_fd = TAKE_FD(fd);
        return 0;
}

int socket_connect_start(const char *address, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage sa;
        socklen_t len;
        int r, one = 1;

        assert(ret_fd);
        r = socket_address_parse(address, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (sa.ss_family != AF_UNIX)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        if (connect(fd, (const struct sockaddr *)&sa, len) == 0)
                r = 0;
        else if (errno == EINPROGRESS)
                r = 1;
        else
                return -errno; /* EAGAIN on a Unix socket: its backlog is full */

        *ret_fd = TAKE_FD(fd);
        return r;
}

int socket_address_to_string(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
        char a[INET6_ADDRSTRLEN];
        int n;

        if (!sa || len < (socklen_t)sizeof(sa_family_t))
                return -EINVAL;

        switch (sa->sa_family) {
        case AF_INET: {
                const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
                if (len < (socklen_t)sizeof(*sin))
                        return -EINVAL;
                inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
                n = snprintf(buf, size, "%s:%u", a, ntohs(sin->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
                if (len < (socklen_t)sizeof(*sin6))
                        return -EINVAL;
                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                        inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], a, sizeof(a));
                        n = snprintf(buf, size, "%s:%u", a, ntohs(sin6->sin6_port));
                } else {
                        inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
                        if (sin6->sin6_scope_id != 0)
                                n = snprintf(buf, size, "[%s%%%u]:%u", a, sin6->sin6_scope_id,
                                             ntohs(sin6->sin6_port));
                        else
                                n = snprintf(buf, size, "[%s]:%u", a, ntohs(sin6->sin6_port));
                }
                break;
        }
        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
                size_t off = offsetof(struct sockaddr_un, sun_path), plen;

                if (len > (socklen_t)sizeof(*un))
                        return -EINVAL;
                if ((size_t)len <= off) {
                        n = snprintf(buf, size, "unix");
                        break;
                }
                plen = (size_t)len - off;
                if (un->sun_path[0] == 0) {
                        /* Abstract: the name may hold anything; show it up to a NUL. */
                        n = snprintf(buf, size, "unix:@%.*s",
                                     (int)strnlen(un->sun_path + 1, plen - 1), un->sun_path + 1);
                } else
                        n = snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, plen),
                                     un->sun_path);
                break;
        }
        default:
                return -EAFNOSUPPORT;
        }
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= size)
                return -ENOSPC;
        return 0;
}

int socket_peer_cred(int fd, struct ucred *ret)
{
        struct ucred uc;
        socklen_t len = sizeof(int);
        int domain;

        assert(ret);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
                return -errno;
        if (domain != AF_UNIX)
                return -EAFNOSUPPORT;
        len = sizeof(uc);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (len != sizeof(uc))
                return -EIO;
        *ret = uc;
        return 0;
}
