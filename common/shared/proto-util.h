/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Helpers around protobuf-c messages that the generated code does not give. */

#include <protobuf-c/protobuf-c.h>

#include "basic/macro.h"

/* A deep copy of any message (pack, then unpack): free it with
 * protobuf_c_message_free_unpacked(copy, NULL). NULL on OOM. */
void *proto_copy(const ProtobufCMessage *m);
#define PROTO_COPY(m) proto_copy(&(m)->base)

static inline void proto_freep(void *p)
{
        ProtobufCMessage **m = p;
        if (*m)
                protobuf_c_message_free_unpacked(*m, NULL);
}
