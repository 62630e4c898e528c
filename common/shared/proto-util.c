/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>

#include "shared/proto-util.h"

void *proto_copy(const ProtobufCMessage *m)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t stack[512], *buf = n <= sizeof stack ? stack : malloc(n);
        void *copy;

        if (!buf)
                return NULL;
        protobuf_c_message_pack(m, buf);
        copy = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
        if (buf != stack)
                free(buf);
        return copy;
}
