/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "basic/macro.h"
#include "engine/unicode.h"

uint16_t unicode_cpt_flags(uint32_t cpt)
{
        size_t lo = 0, hi = unicode_ranges_n;

        if (cpt >= 0x110000)
                return UNICODE_UNDEFINED;
        /* Last range whose start <= cpt. */
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (unicode_ranges[mid].start <= cpt)
                        lo = mid;
                else
                        hi = mid;
        }
        return unicode_ranges[lo].flags;
}

static inline bool is_cont(const char *s, size_t i)
{
        return ((uint8_t)s[i] & 0xC0) == 0x80;
}

uint32_t unicode_cpt_from_utf8(const char *s, size_t len, size_t *offset)
{
        size_t o = *offset;
        uint8_t c = (uint8_t)s[o];

        assert(o < len);
        if (!(c & 0x80)) {
                *offset = o + 1;
                return c;
        }
        if (!(c & 0x40))
                goto invalid;
        if (!(c & 0x20)) {
                if (o + 1 >= len || !is_cont(s, o + 1))
                        goto invalid;
                *offset = o + 2;
                return ((uint32_t)(c & 0x1F) << 6) | ((uint8_t)s[o + 1] & 0x3F);
        }
        if (!(c & 0x10)) {
                if (o + 2 >= len || !is_cont(s, o + 1) || !is_cont(s, o + 2))
                        goto invalid;
                *offset = o + 3;
                return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)((uint8_t)s[o + 1] & 0x3F) << 6) |
                        ((uint8_t)s[o + 2] & 0x3F);
        }
        if (!(c & 0x08)) {
                if (o + 3 >= len || !is_cont(s, o + 1) || !is_cont(s, o + 2) || !is_cont(s, o + 3))
                        goto invalid;
                *offset = o + 4;
                return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)((uint8_t)s[o + 1] & 0x3F) << 12) |
                        ((uint32_t)((uint8_t)s[o + 2] & 0x3F) << 6) | ((uint8_t)s[o + 3] & 0x3F);
        }
invalid:
        *offset = o + 1;
        return 0xFFFD;
}

size_t unicode_cpt_to_utf8(uint32_t cpt, char out[static 4])
{
        if (cpt <= 0x7F) {
                out[0] = (char)cpt;
                return 1;
        }
        if (cpt <= 0x7FF) {
                out[0] = (char)(0xC0 | (cpt >> 6));
                out[1] = (char)(0x80 | (cpt & 0x3F));
                return 2;
        }
        if (cpt > 0x10FFFF)
                cpt = 0xFFFD;
        if (cpt <= 0xFFFF) {
                out[0] = (char)(0xE0 | (cpt >> 12));
                out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cpt & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | (cpt >> 18));
        out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cpt & 0x3F));
        return 4;
}

/* GPT-2 keeps the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) as
 * themselves and moves the other 68 bytes, in byte order, to U+0100 onwards. */
static bool gpt2_printable(unsigned b)
{
        return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t unicode_byte_to_gpt2(uint8_t b)
{
        unsigned n = 0;

        if (gpt2_printable(b))
                return b;
        for (unsigned i = 0; i < b; i++)
                if (!gpt2_printable(i))
                        n++;
        return 0x100 + n;
}

int unicode_gpt2_to_byte(uint32_t cpt)
{
        unsigned n = 0;

        if (cpt < 0x100)
                return gpt2_printable(cpt) ? (int)cpt : -1;
        if (cpt >= 0x100 + 68)
                return -1;
        for (unsigned i = 0; i < 256; i++)
                if (!gpt2_printable(i) && n++ == cpt - 0x100)
                        return (int)i;
        return -1;
}

/* The splitters below walk the code points once, deciding at each position which
 * alternative of the expression matches first, as a backtracking regex engine would.
 * Flags of positions past the end are 0, which no class test accepts. */
typedef struct Splitter {
        const uint32_t *cpts;
        size_t n, prev_end, n_words;
        size_t *lens;
} Splitter;

static inline uint16_t sp_flags(const Splitter *s, size_t pos)
{
        return pos < s->n ? unicode_cpt_flags(s->cpts[pos]) : 0;
}

static inline uint32_t sp_cpt(const Splitter *s, size_t pos)
{
        return pos < s->n ? s->cpts[pos] : UINT32_MAX;
}

static inline size_t sp_add(Splitter *s, size_t end)
{
        size_t len = end - s->prev_end;

        assert(end >= s->prev_end && end <= s->n);
        if (len > 0)
                s->lens[s->n_words++] = len;
        s->prev_end = end;
        return len;
}

/* Neither whitespace, letter nor number, but a real position: [^\s\p{L}\p{N}] */
static inline bool is_other(uint16_t f)
{
        return f != 0 && !(f & (UNICODE_WHITESPACE | UNICODE_LETTER | UNICODE_NUMBER));
}

static inline uint32_t ascii_lower(uint32_t c)
{
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. */
static size_t contraction(const Splitter *s, size_t pos, bool fold)
{
        uint32_t a, b;

        if (s->cpts[pos] != '\'' || pos + 1 >= s->n)
                return 0;
        a = fold ? ascii_lower(s->cpts[pos + 1]) : s->cpts[pos + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
                return 2;
        if (pos + 2 >= s->n)
                return 0;
        b = fold ? ascii_lower(s->cpts[pos + 2]) : s->cpts[pos + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return 3;
        return 0;
}

static void split_gpt2(Splitter *s)
{
        for (size_t pos = 0; pos < s->n;) {
                uint32_t cpt = s->cpts[pos];
                uint16_t f2 = cpt == ' ' ? sp_flags(s, pos + 1) : sp_flags(s, pos);
                size_t k, nws;

                k = contraction(s, pos, false);
                if (k > 0) {
                        pos += sp_add(s, pos + k);
                        continue;
                }
                /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' */
                if (f2 & UNICODE_LETTER) {
                        pos += cpt == ' ';
                        while (sp_flags(s, pos) & UNICODE_LETTER)
                                pos++;
                        sp_add(s, pos);
                        continue;
                }
                if (f2 & UNICODE_NUMBER) {
                        pos += cpt == ' ';
                        while (sp_flags(s, pos) & UNICODE_NUMBER)
                                pos++;
                        sp_add(s, pos);
                        continue;
                }
                if (is_other(f2)) {
                        pos += cpt == ' ';
                        while (is_other(sp_flags(s, pos)))
                                pos++;
                        sp_add(s, pos);
                        continue;
                }
                nws = 0;
                while (sp_flags(s, pos + nws) & UNICODE_WHITESPACE)
                        nws++;
                /* '\s+(?!\S)': leave the last blank to the word that follows */
                if (nws > 1 && pos + nws < s->n) {
                        pos += nws - 1;
                        sp_add(s, pos);
                        continue;
                }
                if (nws > 0) {
                        pos += nws;
                        sp_add(s, pos);
                        continue;
                }
                sp_add(s, ++pos);
        }
}

static void split_llama3(Splitter *s, size_t max_digits)
{
        for (size_t pos = 0; pos < s->n;) {
                uint32_t cpt = s->cpts[pos];
                uint16_t f = sp_flags(s, pos), f2;
                size_t k, nws, last_rn;

                k = contraction(s, pos, true);
                if (k > 0) {
                        pos += sp_add(s, pos + k);
                        continue;
                }
                /* '[^\r\n\p{L}\p{N}]?\p{L}+' */
                if (!(cpt == '\r' || cpt == '\n' || (f & UNICODE_NUMBER)) &&
                    ((f & UNICODE_LETTER) || (sp_flags(s, pos + 1) & UNICODE_LETTER))) {
                        pos++;
                        while (sp_flags(s, pos) & UNICODE_LETTER)
                                pos++;
                        sp_add(s, pos);
                        continue;
                }
                /* '\p{N}{1,3}' (Qwen2: '\p{N}') */
                if (f & UNICODE_NUMBER) {
                        size_t ini = pos;
                        while (sp_flags(s, pos) & UNICODE_NUMBER) {
                                if (++pos - ini >= max_digits) {
                                        sp_add(s, pos);
                                        ini = pos;
                                }
                        }
                        sp_add(s, pos);
                        continue;
                }
                /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
                f2 = cpt == ' ' ? sp_flags(s, pos + 1) : f;
                if (is_other(f2)) {
                        pos += cpt == ' ';
                        while (is_other(sp_flags(s, pos)))
                                pos++;
                        while (sp_cpt(s, pos) == '\r' || sp_cpt(s, pos) == '\n')
                                pos++;
                        sp_add(s, pos);
                        continue;
                }
                nws = 0;
                last_rn = 0;
                while (sp_flags(s, pos + nws) & UNICODE_WHITESPACE) {
                        uint32_t c = s->cpts[pos + nws];
                        if (c == '\r' || c == '\n')
                                last_rn = pos + nws + 1;
                        nws++;
                }
                /* '\s*[\r\n]+' */
                if (last_rn > 0) {
                        pos = last_rn;
                        sp_add(s, pos);
                        continue;
                }
                /* '\s+(?!\S)' then '\s+' */
                if (nws > 1 && pos + nws < s->n) {
                        pos += nws - 1;
                        sp_add(s, pos);
                        continue;
                }
                if (nws > 0) {
                        pos += nws;
                        sp_add(s, pos);
                        continue;
                }
                sp_add(s, ++pos);
        }
}

size_t unicode_pretokenize(UnicodePreTokenizer kind, const uint32_t *cpts, size_t n, size_t *lens)
{
        Splitter s = {.cpts = cpts, .n = n, .lens = lens};

        switch (kind) {
        case UNICODE_PRE_LLAMA3:
                split_llama3(&s, 3);
                break;
        case UNICODE_PRE_QWEN2:
                split_llama3(&s, 1);
                break;
        case UNICODE_PRE_GPT2_DIGITS:
                /* Every number is a word of its own; GPT-2's expression splits the runs
                 * in between, each on its own (it cannot look past their ends). */
                for (size_t pos = 0; pos < n;) {
                        size_t end = pos;
                        if (unicode_cpt_flags(cpts[pos]) & UNICODE_NUMBER)
                                end = pos + 1;
                        else
                                while (end < n && !(unicode_cpt_flags(cpts[end]) & UNICODE_NUMBER))
                                        end++;
                        Splitter sub = {
                                .cpts = cpts + pos, .n = end - pos, .lens = lens + s.n_words};
                        split_gpt2(&sub);
                        s.n_words += sub.n_words;
                        pos = end;
                }
                break;
        case UNICODE_PRE_GPT2:
        default:
                split_gpt2(&s);
                break;
        }
        return s.n_words;
}
