/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Unicode helpers for the tokenizers: code point categories (generated from the Unicode
 * Character Database into unicode-data.c), lenient UTF-8 decoding, the GPT-2 byte-level
 * alphabet, and the pre-tokenizer splitters that byte-level BPE vocabularies expect.
 *
 * The splitters are hand-written equivalents of the regular expressions the models were
 * trained with; they reproduce llama.cpp's behaviour, including its handling of invalid
 * UTF-8 (each bad byte decodes to U+FFFD). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"

/* Category flags (exactly one of the first eight is set), plus White_Space. */
enum {
        UNICODE_UNDEFINED = 0x0001, /* Cn, and anything above U+10FFFF */
        UNICODE_NUMBER = 0x0002, /* \p{N} */
        UNICODE_LETTER = 0x0004, /* \p{L} */
        UNICODE_SEPARATOR = 0x0008, /* \p{Z} */
        UNICODE_MARK = 0x0010, /* \p{M} */
        UNICODE_PUNCTUATION = 0x0020, /* \p{P} */
        UNICODE_SYMBOL = 0x0040, /* \p{S} */
        UNICODE_CONTROL = 0x0080, /* \p{C} except Cn */
        UNICODE_WHITESPACE = 0x0100, /* \s: the White_Space property */
};

typedef struct UnicodeRange {
        uint32_t start; /* first code point of a run of equal flags */
        uint16_t flags;
} UnicodeRange;

/* The generated table: sorted, starts at 0, covers up to U+10FFFF. */
extern const UnicodeRange unicode_ranges[];
extern const size_t unicode_ranges_n;

uint16_t unicode_cpt_flags(uint32_t cpt) _pure_;

/* Length of the UTF-8 sequence that lead byte c announces (1 for stray continuation
 * bytes), without looking at what follows. */
static inline size_t unicode_utf8_len(uint8_t c)
{
        static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
        return lookup[c >> 4];
}

/* Decodes one code point at s[*offset] (< len) and advances *offset. Invalid or truncated
 * sequences yield U+FFFD and advance by one byte. Overlong forms and surrogates are
 * decoded as written, values above U+10FFFF from F5..F7 lead bytes too. */
uint32_t unicode_cpt_from_utf8(const char *s, size_t len, size_t *offset);

/* Encodes cpt into out (1..4 bytes, returned); values above U+10FFFF encode U+FFFD. */
size_t unicode_cpt_to_utf8(uint32_t cpt, char out[static 4]);

/* GPT-2's reversible byte -> printable code point map (and back; -1 when cpt is not in
 * the alphabet). */
uint32_t unicode_byte_to_gpt2(uint8_t b) _const_;
int unicode_gpt2_to_byte(uint32_t cpt) _const_;

typedef enum UnicodePreTokenizer {
        /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
        UNICODE_PRE_GPT2,
        /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
         *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
        UNICODE_PRE_LLAMA3,
        /* as LLAMA3 with \p{N} instead of \p{N}{1,3} */
        UNICODE_PRE_QWEN2,
        /* \p{N} first, then GPT2 within the pieces between digits (StarCoder, SmolLM) */
        UNICODE_PRE_GPT2_DIGITS,
} UnicodePreTokenizer;

/* Splits cpts[0..n) into words; writes their lengths (in code points, all > 0, summing
 * to n) into lens, which must have room for n entries. Returns the number of words. */
size_t unicode_pretokenize(UnicodePreTokenizer kind, const uint32_t *cpts, size_t n, size_t *lens);
