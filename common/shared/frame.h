/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Frames on the wire: a 4-byte big-endian length, then that many bytes of a serialized
 * Cluster__Envelope. The decoder is a pure function of the bytes fed to it (no I/O):
 * the fuzz target drives it directly. */

#include "basic/buf.h"
#include "basic/macro.h"
#include "cluster.pb-c.h"

/* The default frame limit, shared with conn.h's CONN_MAX_FRAME_DEFAULT. */
#define FRAME_MAX_DEFAULT (16U * 1024 * 1024)
/* Bytes of the length prefix. */
#define FRAME_HEADER_SIZE 4U

typedef struct FrameDecoder {
        Buf buf;
        size_t max_frame;
} FrameDecoder;

void frame_decoder_init(FrameDecoder *d, size_t max_frame);
void frame_decoder_done(FrameDecoder *d);
int frame_decoder_feed(FrameDecoder *d, const void *data, size_t size);
/* Zero-copy feeding for producers that write into memory (TLS decryption): room for n
 * bytes, or NULL on OOM; then commit what was written there. Same checks as feed: bytes
 * behind a refused frame header are dropped at commit. */
uint8_t *frame_decoder_reserve(FrameDecoder *d, size_t n);
void frame_decoder_commit(FrameDecoder *d, size_t n);
/* 1 and an unpacked envelope (free with cluster__envelope__free_unpacked(m, NULL)),
 * 0 when more bytes are needed, -EMSGSIZE when the next frame is above max_frame,
 * -EBADMSG when it does not unpack or has no message set. After an error the decoder
 * is unusable (the stream is out of sync). Also -EBADMSG: an unknown field numbered 0,
 * which protobuf-c accepts but could not read back once packed again. */
int frame_decoder_next(FrameDecoder *d, Cluster__Envelope **ret);
/* The length the next frame announces (without its header), 0 while its header is
 * incomplete: lets an error say how big the refused frame was. */
size_t frame_decoder_next_size(const FrameDecoder *d);

/* Appends one frame holding msg to out. */
int frame_encode(Buf *out, const Cluster__Envelope *msg);

/* "hello", "task_output", ... for logs and errors; "none" when no message is set. */
const char *envelope_type_name(const Cluster__Envelope *msg);

/* Limits that envelope_check() enforces, beyond what protobuf-c checks when unpacking. */
#define ENVELOPE_NAME_MAX 255U /* any string not listed below */
#define ENVELOPE_TEXT_MAX 4096U /* error texts, reasons, cwd, descriptions */
#define ENVELOPE_ARGV_MAX 4096U /* entries */
#define ENVELOPE_ARGV_BYTES_MAX (128U * 1024) /* all entries together */
#define ENVELOPE_ENV_MAX 4096U /* entries */
#define ENVELOPE_ENV_BYTES_MAX (1024U * 1024)
#define ENVELOPE_REPEATED_MAX 4096U /* entries of other lists of strings */
#define ENVELOPE_LIST_MAX 65536U /* workers, tokens */
#define ENVELOPE_DATA_MAX FRAME_MAX_DEFAULT

/* Validates what protobuf-c does not: a message is set, every string is valid UTF-8 and
 * within its limit, lists are bounded, and the sub-messages a message type needs are
 * there (run_request.spec, task_start.spec with a non-empty argv, heartbeat.load).
 * Unknown enum values pass: newer peers may add some. Returns 0, or -EBADMSG with a
 * one-line reason naming the field ("run_request.spec.argv[2] is not valid UTF-8") in
 * *ret_error (malloc'ed, may be NULL on OOM; ret_error itself may be NULL). */
int envelope_check(const Cluster__Envelope *m, char **ret_error);

/* True if s[0..len) is well-formed UTF-8 (no overlongs, surrogates, or code points
 * above U+10FFFF). */
bool utf8_is_valid(const char *s, size_t len);
