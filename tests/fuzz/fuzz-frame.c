/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The frame decoder against arbitrary bytes: the input is fed in irregular chunks whose
 * sizes come from the input itself, every envelope that comes out is validated, named,
 * encoded again and decoded again, and must come back identical. */
#include <string.h>

#include "fuzz-check.h"
#include "basic/buf.h"
#include "shared/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough to keep runs fast, large enough for every seed. */
#define FUZZ_MAX_FRAME (1024U * 1024)

static void roundtrip(const Cluster__Envelope *m)
{
        Buf out = {}, again = {};
        FrameDecoder dec;
        Cluster__Envelope *back = NULL;
        char *error = NULL;

        (void)envelope_type_name(m);
        if (envelope_check(m, &error) < 0)
                CHECK(!error || !strchr(error, '\n'));
        free(error);

        if (frame_encode(&out, m) < 0)
                goto finish;
        frame_decoder_init(&dec, 0);
        CHECK(frame_decoder_feed(&dec, buf_head(&out), buf_size(&out)) == 0);
        /* What we encoded we must decode. */
        CHECK(frame_decoder_next(&dec, &back) == 1);
        CHECK(back->msg_case == m->msg_case);
        CHECK(frame_encode(&again, back) == 0);
        CHECK(buf_size(&again) == buf_size(&out));
        CHECK(memcmp(buf_head(&again), buf_head(&out), buf_size(&out)) == 0);
        cluster__envelope__free_unpacked(back, NULL);
        frame_decoder_done(&dec);
finish:
        buf_done(&out);
        buf_done(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        FrameDecoder dec;
        size_t off = 0, i = 0;
        int r = 0;

        frame_decoder_init(&dec, FUZZ_MAX_FRAME);
        while (off < size && r >= 0) {
                /* 1..64 bytes, or everything left when the byte says so. */
                uint8_t b = data[i++ % size];
                size_t chunk = b == 0xff ? size - off : (size_t)(b % 64) + 1;
                chunk = chunk < size - off ? chunk : size - off;

                if (frame_decoder_feed(&dec, data + off, chunk) < 0)
                        break;
                off += chunk;
                for (;;) {
                        Cluster__Envelope *m = NULL;
                        r = frame_decoder_next(&dec, &m);
                        if (r <= 0)
                                break;
                        roundtrip(m);
                        cluster__envelope__free_unpacked(m, NULL);
                }
        }
        /* Errors are sticky. */
        if (r < 0) {
                Cluster__Envelope *m = NULL;
                CHECK(frame_decoder_next(&dec, &m) == r);
        }
        frame_decoder_done(&dec);
        return 0;
}
