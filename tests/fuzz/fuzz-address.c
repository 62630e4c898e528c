/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The address parser on arbitrary bytes. Numeric only: a fuzzer must never make us
 * resolve names. Whatever parses must format back without error, and the formatted
 * string must parse again to the same address. */
#include <string.h>

#include "fuzz-check.h"
#include "basic/alloc-util.h"
#include "shared/socket-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sockaddr_storage ss, ss2;
        socklen_t len, len2;
        char buf[SOCKET_ADDRESS_STRING_MAX];
        char *s;
        int r;

        if (size > 1024)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        r = socket_address_parse_numeric(s, &ss, &len);
        if (r == 0) {
                CHECK(len <= sizeof(ss));
                r = socket_address_to_string((struct sockaddr *)&ss, len, buf, sizeof(buf));
                CHECK(r == 0);
                /* Abstract names may hold bytes that do not survive as a C string. */
                if (!(ss.ss_family == AF_UNIX && ((struct sockaddr *)&ss)->sa_data[0] == 0)) {
                        r = socket_address_parse_numeric(buf, &ss2, &len2);
                        CHECK(r == 0);
                        /* IPv4-mapped IPv6 is shown, and so parses back, as IPv4. */
                        CHECK(ss2.ss_family == ss.ss_family || ss.ss_family == AF_INET6);
                }
        } else
                CHECK(r == -EINVAL || r == -EADDRNOTAVAIL);
        free(s);
        return 0;
}
