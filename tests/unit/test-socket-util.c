/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/fd-util.h"
#include "shared/socket-util.h"

/* Parses numerically and formats back. */
static void roundtrip(const char *in, const char *out)
{
        struct sockaddr_storage ss;
        socklen_t len;
        char buf[SOCKET_ADDRESS_STRING_MAX];

        ck_assert_msg(socket_address_parse_numeric(in, &ss, &len) == 0, "%s", in);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&ss, len, buf, sizeof(buf)),
                         0);
        ck_assert_str_eq(buf, out);
        /* The resolving parser agrees on numeric input. */
        struct sockaddr_storage ss2;
        socklen_t len2;
        ck_assert_int_eq(socket_address_parse(in, &ss2, &len2), 0);
        ck_assert_int_eq(len2, len);
        ck_assert(memcmp(&ss, &ss2, len) == 0);
}

START_TEST(test_parse_good)
{
        struct sockaddr_storage ss;
        socklen_t len;

        roundtrip("127.0.0.1:8786", "127.0.0.1:8786");
        roundtrip("10.1.2.3:0", "10.1.2.3:0");
        roundtrip("0.0.0.0:65535", "0.0.0.0:65535");
        roundtrip("[::1]:8786", "[::1]:8786");
        roundtrip("[fe80::1%1]:80", "[fe80::1%1]:80");
        roundtrip("[::ffff:10.0.0.1]:22", "10.0.0.1:22");
        roundtrip("*:8786", "[::]:8786");
        roundtrip(":8786", "[::]:8786");
        roundtrip("unix:/run/cluster-ai/sock", "unix:/run/cluster-ai/sock");
        roundtrip("/run/x.sock", "unix:/run/x.sock");
        roundtrip("unix:@abstract-name", "unix:@abstract-name");
        roundtrip("127.0.0.1:00080", "127.0.0.1:80");

        ck_assert_int_eq(socket_address_parse_numeric("127.0.0.1:1", &ss, &len), 0);
        ck_assert_int_eq(ss.ss_family, AF_INET);
        ck_assert_int_eq(len, sizeof(struct sockaddr_in));
        ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 1);

        /* Names: syntactically fine, but numeric parsing refuses to resolve. */
        ck_assert_int_eq(socket_address_parse_numeric("localhost:80", &ss, &len), -EADDRNOTAVAIL);
        ck_assert_int_eq(socket_address_parse_numeric("node-1.lan:80", &ss, &len), -EADDRNOTAVAIL);
        /* "localhost" resolves from /etc/hosts without any network. */
        ck_assert_int_eq(socket_address_parse("localhost:80", &ss, &len), 0);
        ck_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}
END_TEST

START_TEST(test_parse_bad)
{
        static const char *const bad[] = {
                "",
                "host",
                "host:",
                ":",
                ":99999",
                ":65536",
                "1.2.3.4:-1",
                "1.2.3.4:+80",
                "1.2.3.4: 80",
                "1.2.3.4:80 ",
                "1.2.3.4:0x50",
                "1.2.3.4:123456",
                "[::1",
                "[::1]",
                "[::1]80",
                "[::1]:",
                "[]:80",
                "[1.2.3.4]:80",
                "[::1%]:80",
                "[::1%0]:80",
                "[zz::1]:80",
                "::1:80",
                "1.2.3.999:80",
                "1.2.3:80x",
                "unix:",
                "unix:relative/path",
                "unix:@",
                "relative:80:",
                "bad_host!:80",
                "-host:80",
                "a b:80",
                "*",
                "**:80",
        };
        struct sockaddr_storage ss;
        socklen_t len;
        char longpath[200];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(socket_address_parse_numeric(bad[i], &ss, &len) == -EINVAL,
                              "numeric \"%s\"", bad[i]);
                ck_assert_msg(socket_address_parse(bad[i], &ss, &len) == -EINVAL, "\"%s\"", bad[i]);
        }
        memset(longpath, 'a', sizeof(longpath));
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        ck_assert_int_eq(socket_address_parse_numeric(longpath, &ss, &len), -EINVAL);
        ck_assert_int_eq(socket_address_parse_numeric(NULL, &ss, &len), -EINVAL);
}
END_TEST

START_TEST(test_to_string_edges)
{
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        struct sockaddr sa = {.sa_family = AF_APPLETALK};
        char buf[SOCKET_ADDRESS_STRING_MAX], tiny[8];

        ck_assert_int_eq(
                socket_address_to_string((struct sockaddr *)&sin, sizeof(sin), tiny, sizeof(tiny)),
                -ENOSPC);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&sin, 4, buf, sizeof(buf)),
                         -EINVAL);
        ck_assert_int_eq(socket_address_to_string(&sa, sizeof(sa), buf, sizeof(buf)),
                         -EAFNOSUPPORT);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&un, sizeof(sa_family_t), buf,
                                                  sizeof(buf)),
                         0);
        ck_assert_str_eq(buf, "unix");
}
END_TEST

START_TEST(test_listen_unix)
{
        char dir[] = "/tmp/test-socket-util-XXXXXX", path[128], addr[160];
        struct ucred cred;
        struct stat st;
        int lfd, lfd2, cfd, afd, r;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/s", dir);
        snprintf(addr, sizeof(addr), "unix:%s", path);

        ck_assert_int_eq(socket_listen(addr, 4, 0660, &lfd), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0660);

        /* Somebody listens: not replaced. */
        ck_assert_int_eq(socket_listen(addr, 4, 0600, &lfd2), -EADDRINUSE);

        r = socket_connect_start(path, &cfd);
        ck_assert_int_eq(r, 0);
        afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(afd, 0);
        ck_assert_int_eq(socket_peer_cred(afd, &cred), 0);
        ck_assert_int_eq(cred.pid, getpid());
        ck_assert_int_eq(cred.uid, getuid());
        safe_close(afd);
        safe_close(cfd);

        /* The listener died, its file stayed: stale, replaced with the new mode. */
        safe_close(lfd);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(socket_listen(addr, 4, 0600, &lfd), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        safe_close(lfd);

        /* Not a socket: left alone. */
        ck_assert_int_eq(unlink(path), 0);
        safe_close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        ck_assert_int_eq(socket_listen(addr, 4, 0600, &lfd), -EEXIST);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_listen_tcp)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char addr[SOCKET_ADDRESS_STRING_MAX];
        struct ucred cred;
        int lfd, cfd, r;

        ck_assert_int_eq(socket_listen("127.0.0.1:0", 4, 0, &lfd), 0);
        ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
        ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&ss, len, addr, sizeof(addr)),
                         0);
        ck_assert_int_eq(strncmp(addr, "127.0.0.1:", 10), 0);

        r = socket_connect_start(addr, &cfd);
        ck_assert(r == 0 || r == 1);
        ck_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
        ck_assert_int_eq(socket_peer_cred(cfd, &cred), -EAFNOSUPPORT);
        safe_close(cfd);
        safe_close(lfd);

        /* Any address, dual-stack where there is IPv6. */
        ck_assert_int_eq(socket_listen("*:0", 4, 0, &lfd), 0);
        safe_close(lfd);
        ck_assert_int_eq(socket_listen("host:", 4, 0, &lfd), -EINVAL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("socket-util");
        TCase *tc = tcase_create("socket-util");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse_good);
        tcase_add_test(tc, test_parse_bad);
        tcase_add_test(tc, test_to_string_edges);
        tcase_add_test(tc, test_listen_unix);
        tcase_add_test(tc, test_listen_tcp);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
