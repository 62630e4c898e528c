/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Frames on the wire: a 4-byte big-endian length, then that many bytes of a serialized
 * Cluster__Envelope. The decoder is a pure function of the bytes fed to it (no I/O):
 * the fuzz target drives it directly. */

#include "basic/buf.h"
#include "basic/macro.h"
#include "cluster.pb-c.h"

typedef struct FrameDecoder {
        Buf buf;
        size_t max_frame;
} FrameDecoder;

void frame_decoder_init(FrameDecoder *d, size_t max_frame);
void frame_decoder_done(FrameDecoder *d);
int frame_decoder_feed(FrameDecoder *d, const void *data, size_t size);
/* 1 and an unpacked envelope (free with cluster__envelope__free_unpacked(m, NULL)),
 * 0 when more bytes are needed, -EMSGSIZE when the next frame is above max_frame,
 * -EBADMSG when it does not unpack or has no message set. After an error the decoder
 * is unusable (the stream is out of sync). */
int frame_decoder_next(FrameDecoder *d, Cluster__Envelope **ret);

/* Appends one frame holding msg to out. */
int frame_encode(Buf *out, const Cluster__Envelope *msg);

/* "hello", "task_output", ... for logs and errors. */
const char *envelope_type_name(const Cluster__Envelope *msg);
