/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"

#define SP "\xE2\x96\x81" /* U+2581 */

/* A vocabulary under construction. */
typedef struct TestVocab {
        char *tokens[1024];
        size_t lens[1024];
        float scores[1024];
        int32_t types[1024];
        size_t n;
        char *merges[64];
        size_t merge_lens[64];
        size_t n_merges;
} TestVocab;

static int32_t tv_add(TestVocab *tv, const char *s, size_t len, float score, int32_t type)
{
        ck_assert_uint_lt(tv->n, 1024);
        tv->tokens[tv->n] = memdup(s, len);
        tv->lens[tv->n] = len;
        tv->scores[tv->n] = score;
        tv->types[tv->n] = type;
        return (int32_t)tv->n++;
}

static int32_t tv_adds(TestVocab *tv, const char *s, float score, int32_t type)
{
        return tv_add(tv, s, strlen(s), score, type);
}

static void tv_merge(TestVocab *tv, const char *m)
{
        tv->merges[tv->n_merges] = strdup(m);
        tv->merge_lens[tv->n_merges] = strlen(m);
        tv->n_merges++;
}

static void tv_done(TestVocab *tv)
{
        for (size_t i = 0; i < tv->n; i++)
                free(tv->tokens[i]);
        for (size_t i = 0; i < tv->n_merges; i++)
                free(tv->merges[i]);
}

static TokenizerVocab tv_view(TestVocab *tv, TokenizerKind kind)
{
        return (TokenizerVocab){
                .kind = kind,
                .n_tokens = tv->n,
                .tokens = (const char *const *)tv->tokens,
                .token_lens = tv->lens,
                .scores = tv->scores,
                .types = tv->types,
                .n_merges = tv->n_merges,
                .merges = (const char *const *)tv->merges,
                .merge_lens = tv->merge_lens,
                .bos_id = -1,
                .eos_id = -1,
                .unk_id = -1,
                .pad_id = -1,
                .eot_id = -1,
        };
}

static int32_t tv_find(TestVocab *tv, const char *s)
{
        for (size_t i = 0; i < tv->n; i++)
                if (tv->lens[i] == strlen(s) && memcmp(tv->tokens[i], s, tv->lens[i]) == 0)
                        return (int32_t)i;
        ck_abort_msg("no token %s", s);
        return -1;
}

static void check_ids(const Tokenizer *t, const char *text, bool add_special, bool parse_special,
                      const int32_t *want, size_t n_want)
{
        _cleanup_free_ int32_t *ids = NULL;
        size_t n;

        ck_assert_int_eq(
                tokenizer_encode(t, text, strlen(text), add_special, parse_special, &ids, &n), 0);
        if (n != n_want)
                for (size_t i = 0; i < n; i++)
                        fprintf(stderr, "id[%zu]=%d\n", i, ids[i]);
        ck_assert_uint_eq(n, n_want);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(ids[i], want[i]);
}
#define CHECK_IDS(t, text, add, parse, ...)                                                        \
        do {                                                                                       \
                const int32_t _w[] = {__VA_ARGS__};                                                \
                check_ids(t, text, add, parse, _w, ELEMENTSOF(_w));                                \
        } while (0)

/* <unk> <s> </s>, the bytes, a few pieces: "▁hello" is built from "▁he" + "llo". */
static void build_spm(TestVocab *tv)
{
        char b[8];

        tv_adds(tv, "<unk>", 0, TOKENIZER_TYPE_UNKNOWN);
        tv_adds(tv, "<s>", 0, TOKENIZER_TYPE_CONTROL);
        tv_adds(tv, "</s>", 0, TOKENIZER_TYPE_CONTROL);
        for (int i = 0; i < 256; i++) {
                snprintf(b, sizeof(b), "<0x%02X>", i);
                tv_adds(tv, b, 0, TOKENIZER_TYPE_BYTE);
        }
        tv_adds(tv, SP, -100, 1);
        tv_adds(tv, "h", -100, 1);
        tv_adds(tv, "e", -100, 1);
        tv_adds(tv, "l", -100, 1);
        tv_adds(tv, "o", -100, 1);
        tv_adds(tv, "w", -100, 1);
        tv_adds(tv, "r", -100, 1);
        tv_adds(tv, "d", -100, 1);
        tv_adds(tv, SP "h", -5, 1);
        tv_adds(tv, SP "he", -4, 1);
        tv_adds(tv, "ll", -1, 1);
        tv_adds(tv, "llo", -2, 1);
        tv_adds(tv, SP "hello", -3, 1);
        tv_adds(tv, SP "w", -6, 1);
        tv_adds(tv, "or", -7, 1);
        tv_adds(tv, SP SP, -8, 1);
        tv_adds(tv, "<mask>", 0, TOKENIZER_TYPE_USER_DEFINED);
}

START_TEST(test_spm_encode)
{
        TestVocab tv = {};
        Tokenizer *t = NULL;
        TokenizerVocab v;
        int32_t bos, eos, hello, sp, w, orr, l, d, mask, spsp;

        build_spm(&tv);
        v = tv_view(&tv, TOKENIZER_SPM);
        v.bos_id = 1;
        v.eos_id = 2;
        v.unk_id = 0;
        v.add_bos = true;
        v.add_space_prefix = true;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        bos = 1;
        eos = 2;
        hello = tv_find(&tv, SP "hello");
        sp = tv_find(&tv, SP);
        w = tv_find(&tv, SP "w");
        orr = tv_find(&tv, "or");
        l = tv_find(&tv, "l");
        d = tv_find(&tv, "d");
        mask = tv_find(&tv, "<mask>");
        spsp = tv_find(&tv, SP SP);

        CHECK_IDS(t, "hello", true, false, bos, hello);
        CHECK_IDS(t, "hello", false, false, hello);
        CHECK_IDS(t, "", true, false, bos);
        {
                _cleanup_free_ int32_t *ids = NULL;
                size_t n = 99;
                ck_assert_int_eq(tokenizer_encode(t, "", 0, false, false, &ids, &n), 0);
                ck_assert_ptr_nonnull(ids);
                ck_assert_uint_eq(n, 0);
        }
        CHECK_IDS(t, "hello world", false, false, hello, w, orr, l, d);
        /* two spaces: "▁w" (score -6) wins over "▁▁" (-8) */
        CHECK_IDS(t, "hello  world", false, false, hello, sp, w, orr, l, d);
        CHECK_IDS(t, "  ", false, false, spsp, sp);
        /* unknown characters fall back to bytes: é = C3 A9, tab = 09 */
        CHECK_IDS(t, "\xC3\xA9\t", false, false, sp, 3 + 0xC3, 3 + 0xA9, 3 + 0x09);
        /* control tokens only with parse_special; a space is prefixed after them */
        CHECK_IDS(t, "<s>hello", false, true, bos, hello);
        CHECK_IDS(t, "hello</s>hello", false, true, hello, eos, hello);
        {
                _cleanup_free_ int32_t *ids = NULL;
                size_t n;
                ck_assert_int_eq(tokenizer_encode(t, "<s>", 3, false, false, &ids, &n), 0);
                ck_assert_uint_eq(n, 4); /* ▁ < s > as bytes/pieces, never the BOS id */
                for (size_t i = 0; i < n; i++)
                        ck_assert_int_ne(ids[i], bos);
        }
        /* user-defined tokens are cut out even without parse_special */
        CHECK_IDS(t, "<mask>hello", false, false, mask, hello);
        /* invalid UTF-8 and a truncated sequence: bytes */
        CHECK_IDS(t, "\xFF\xE2\x96", false, false, sp, 3 + 0xFF, 3 + 0xE2, 3 + 0x96);

        t = tokenizer_free(t);
        v.add_space_prefix = false;
        v.add_eos = true;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        CHECK_IDS(t, "hello", true, false, bos, tv_find(&tv, "h"), tv_find(&tv, "e"),
                  tv_find(&tv, "llo"), eos);
        CHECK_IDS(t, " hello", true, false, bos, hello, eos);
        tokenizer_free(t);
        tv_done(&tv);
}
END_TEST

START_TEST(test_spm_pieces)
{
        TestVocab tv = {};
        Tokenizer *t = NULL;
        TokenizerVocab v;
        char buf[16];

        build_spm(&tv);
        v = tv_view(&tv, TOKENIZER_SPM);
        v.bos_id = 1;
        v.eos_id = 2;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);

        ck_assert_int_eq(tokenizer_token_to_piece(t, tv_find(&tv, SP "hello"), buf, sizeof(buf)),
                         6);
        ck_assert(memcmp(buf, " hello", 6) == 0);
        ck_assert_int_eq(tokenizer_token_to_piece(t, 3 + 0x41, buf, sizeof(buf)), 1);
        ck_assert_int_eq(buf[0], 'A');
        ck_assert_int_eq(tokenizer_token_to_piece(t, 3 + 0xFF, buf, sizeof(buf)), 1);
        ck_assert_int_eq((uint8_t)buf[0], 0xFF);
        ck_assert_int_eq(tokenizer_token_to_piece(t, 2, buf, sizeof(buf)), 4);
        ck_assert(memcmp(buf, "</s>", 4) == 0);
        /* too small: the needed length, a truncated copy */
        memset(buf, 'x', sizeof(buf));
        ck_assert_int_eq(tokenizer_token_to_piece(t, tv_find(&tv, SP "hello"), buf, 3), 6);
        ck_assert(memcmp(buf, " hex", 4) == 0);
        ck_assert_int_eq(tokenizer_token_to_piece(t, tv_find(&tv, SP "hello"), NULL, 0), 6);
        ck_assert_int_eq(tokenizer_token_to_piece(t, -1, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(tokenizer_token_to_piece(t, (int32_t)tv.n, buf, sizeof(buf)), -EINVAL);

        ck_assert(tokenizer_is_eog(t, 2));
        ck_assert(!tokenizer_is_eog(t, 1));
        ck_assert(!tokenizer_is_eog(t, 999999));
        ck_assert_int_eq(tokenizer_bos(t), 1);
        ck_assert_int_eq(tokenizer_eos(t), 2);
        ck_assert_uint_eq(tokenizer_n_tokens(t), tv.n);
        ck_assert_int_eq(tokenizer_find(t, SP "he", strlen(SP "he")), tv_find(&tv, SP "he"));
        ck_assert_int_eq(tokenizer_find(t, "nope", 4), -1);
        tokenizer_free(t);
        tv_done(&tv);
}
END_TEST

/* Byte-level alphabet, merges building "hello", "Ġhello", "12", "123"; "Ġzebra" exists
 * as a token without merges. */
static void build_bpe(TestVocab *tv)
{
        for (int b = 0; b < 256; b++) {
                char u[4];
                size_t k = unicode_cpt_to_utf8(unicode_byte_to_gpt2((uint8_t)b), u);
                tv_add(tv, u, k, 0, 1);
        }
        tv_merge(tv, "l l");
        tv_adds(tv, "ll", 0, 1);
        tv_merge(tv, "h e");
        tv_adds(tv, "he", 0, 1);
        tv_merge(tv, "ll o");
        tv_adds(tv, "llo", 0, 1);
        tv_merge(tv, "he llo");
        tv_adds(tv, "hello", 0, 1);
        tv_merge(tv, "\xC4\xA0 hello"); /* Ġ = U+0120 is the space */
        tv_adds(tv, "\xC4\xA0hello", 0, 1);
        tv_merge(tv, "1 2");
        tv_adds(tv, "12", 0, 1);
        tv_merge(tv, "12 3");
        tv_adds(tv, "123", 0, 1);
        tv_merge(tv, "' s");
        tv_adds(tv, "'s", 0, 1);
        tv_adds(tv, "\xC4\xA0zebra", 0, 1);
        tv_adds(tv, "<|begin_of_text|>", 0, TOKENIZER_TYPE_CONTROL);
        tv_adds(tv, "<|eot_id|>", 0, TOKENIZER_TYPE_NORMAL); /* promoted to control */
        tv_adds(tv, "<|im_start|>", 0, TOKENIZER_TYPE_CONTROL);
}

START_TEST(test_bpe_encode)
{
        TestVocab tv = {};
        Tokenizer *t = NULL;
        TokenizerVocab v;
        int32_t hello, shello, n12, n123, bot, eot, zebra, sp;

        build_bpe(&tv);
        hello = tv_find(&tv, "hello");
        shello = tv_find(&tv, "\xC4\xA0hello");
        n12 = tv_find(&tv, "12");
        n123 = tv_find(&tv, "123");
        bot = tv_find(&tv, "<|begin_of_text|>");
        eot = tv_find(&tv, "<|eot_id|>");
        zebra = tv_find(&tv, "\xC4\xA0zebra");
        sp = tv_find(&tv, "\xC4\xA0");

        v = tv_view(&tv, TOKENIZER_BPE);
        v.pre = "llama-bpe";
        v.bos_id = bot;
        v.add_bos = true;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        CHECK_IDS(t, "hello hello", true, false, bot, hello, shello);
        /* Llama 3 groups digits by three */
        CHECK_IDS(t, "1231234", false, false, n123, n123, '4');
        /* a whole word that is a token is taken even without merges */
        CHECK_IDS(t, " zebra", false, false, zebra);
        /* special tokens; the EOT text is control even though stored as normal */
        CHECK_IDS(t, "<|begin_of_text|>hello<|eot_id|>", false, true, bot, hello, eot);
        ck_assert_int_eq(tokenizer_token_type(t, eot), TOKENIZER_TYPE_CONTROL);
        ck_assert(tokenizer_is_eog(t, eot));
        ck_assert_int_eq(tokenizer_eot(t), eot);
        /* two spaces before a word: one alone, one glued to the word */
        CHECK_IDS(t, "hello  hello", false, false, hello, sp, shello);
        /* contractions, case-insensitive for Llama 3 */
        {
                _cleanup_free_ int32_t *ids = NULL;
                size_t n;
                ck_assert_int_eq(tokenizer_encode(t, "it's", 4, false, false, &ids, &n), 0);
                ck_assert_uint_eq(n, 3);
                ck_assert_int_eq(ids[2], tv_find(&tv, "'s"));
        }
        t = tokenizer_free(t);

        /* Qwen2: one digit per word, and no shortcut for whole-word tokens */
        v.pre = "qwen2";
        v.add_bos = false;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        CHECK_IDS(t, "123", false, false, '1', '2', '3');
        {
                _cleanup_free_ int32_t *ids = NULL;
                size_t n;
                ck_assert_int_eq(tokenizer_encode(t, " zebra", 6, true, false, &ids, &n), 0);
                ck_assert_uint_eq(n, 6);
        }
        t = tokenizer_free(t);

        /* GPT-2: digits in one run, merged as far as the merges go */
        v.pre = NULL;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        CHECK_IDS(t, "1234", false, false, n123, '4');
        CHECK_IDS(t, "12", false, false, n12);
        t = tokenizer_free(t);
        tv_done(&tv);
}
END_TEST

START_TEST(test_bpe_pieces)
{
        TestVocab tv = {};
        Tokenizer *t = NULL;
        TokenizerVocab v;
        char buf[32];
        const char *text = "h\xC3\xA9llo\n\t 123 \xF0\x9F\x98\x80";
        _cleanup_free_ int32_t *ids = NULL;
        size_t n, pos = 0;

        build_bpe(&tv);
        v = tv_view(&tv, TOKENIZER_BPE);
        v.pre = "llama3";
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        ck_assert_int_eq(
                tokenizer_token_to_piece(t, tv_find(&tv, "\xC4\xA0hello"), buf, sizeof(buf)), 6);
        ck_assert(memcmp(buf, " hello", 6) == 0);
        /* decoding the ids gives back the bytes */
        ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), false, false, &ids, &n), 0);
        for (size_t i = 0; i < n; i++) {
                ssize_t k = tokenizer_token_to_piece(t, ids[i], buf, sizeof(buf));
                ck_assert_int_gt(k, 0);
                ck_assert(memcmp(buf, text + pos, (size_t)k) == 0);
                pos += (size_t)k;
        }
        ck_assert_uint_eq(pos, strlen(text));
        tokenizer_free(t);
        tv_done(&tv);
}
END_TEST

START_TEST(test_validation)
{
        TestVocab tv = {};
        Tokenizer *t = NULL;
        TokenizerVocab v;

        build_bpe(&tv);
        v = tv_view(&tv, TOKENIZER_BPE);
        ck_assert_int_eq(tokenizer_new(NULL, &t), -EINVAL);
        ck_assert_int_eq(tokenizer_new(&v, NULL), -EINVAL);

        v.n_tokens = 0;
        ck_assert_int_eq(tokenizer_new(&v, &t), -EINVAL);
        v.n_tokens = (size_t)TOKENIZER_MAX_TOKENS + 1;
        ck_assert_int_eq(tokenizer_new(&v, &t), -EINVAL);
        v.n_tokens = tv.n;
        v.kind = (TokenizerKind)7;
        ck_assert_int_eq(tokenizer_new(&v, &t), -EINVAL);
        v.kind = TOKENIZER_BPE;
        v.n_merges = (size_t)TOKENIZER_MAX_MERGES + 1;
        ck_assert_int_eq(tokenizer_new(&v, &t), -EINVAL);
        v.n_merges = tv.n_merges;

        /* a token longer than the limit */
        {
                size_t saved = tv.lens[0];
                tv.lens[0] = TOKENIZER_MAX_TOKEN_LEN + 1;
                ck_assert_int_eq(tokenizer_new(&v, &t), -EINVAL);
                tv.lens[0] = saved;
        }
        /* malformed merges: no separator, separator first, empty right side */
        {
                const char *bad[] = {"hello", " hello", "hello ", ""};
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        char *saved = tv.merges[0];
                        size_t saved_len = tv.merge_lens[0];
                        tv.merges[0] = (char *)bad[i];
                        tv.merge_lens[0] = strlen(bad[i]);
                        ck_assert_int_eq(tokenizer_new(&v, &t), -EBADMSG);
                        tv.merges[0] = saved;
                        tv.merge_lens[0] = saved_len;
                }
        }
        /* NaN score */
        tv.scores[5] = NAN;
        ck_assert_int_eq(tokenizer_new(&v, &t), -EBADMSG);
        tv.scores[5] = 0;

        /* special ids outside the vocabulary are ignored */
        v.bos_id = 100000;
        v.eos_id = -7;
        v.add_bos = true;
        ck_assert_int_eq(tokenizer_new(&v, &t), 0);
        ck_assert_int_eq(tokenizer_bos(t), -1);
        ck_assert_int_eq(tokenizer_eos(t), -1);
        CHECK_IDS(t, "hello", true, false, tv_find(&tv, "hello"));
        ck_assert_int_eq(
                tokenizer_encode(t, NULL, 3, false, false, &(int32_t *){NULL}, &(size_t){0}),
                -EINVAL);
        tokenizer_free(t);
        ck_assert_ptr_null(tokenizer_free(NULL));
        tv_done(&tv);
}
END_TEST

START_TEST(test_unicode)
{
        size_t off;
        char u[4];
        size_t lens[64];
        uint32_t cpts[64];
        const char *s;
        size_t n, k;

        ck_assert_uint_eq(unicode_cpt_flags('a') & 0xFF, UNICODE_LETTER);
        ck_assert_uint_eq(unicode_cpt_flags('7') & 0xFF, UNICODE_NUMBER);
        ck_assert_uint_eq(unicode_cpt_flags(' '), UNICODE_SEPARATOR | UNICODE_WHITESPACE);
        ck_assert(unicode_cpt_flags('\n') & UNICODE_WHITESPACE);
        ck_assert(unicode_cpt_flags(0xA0) & UNICODE_WHITESPACE);
        ck_assert(unicode_cpt_flags(0x3000) & UNICODE_WHITESPACE);
        ck_assert(!(unicode_cpt_flags(0x200B) & UNICODE_WHITESPACE));
        ck_assert_uint_eq(unicode_cpt_flags(0x4E2D), UNICODE_LETTER); /* 中 */
        ck_assert_uint_eq(unicode_cpt_flags(0x0301), UNICODE_MARK); /* combining acute */
        ck_assert_uint_eq(unicode_cpt_flags(0x1F600), UNICODE_SYMBOL); /* 😀 */
        ck_assert_uint_eq(unicode_cpt_flags(0x0660), UNICODE_NUMBER); /* Arabic-Indic 0 */
        ck_assert_uint_eq(unicode_cpt_flags('!'), UNICODE_PUNCTUATION);
        ck_assert_uint_eq(unicode_cpt_flags(0x0378), UNICODE_UNDEFINED); /* unassigned */
        ck_assert_uint_eq(unicode_cpt_flags(0xE000), UNICODE_CONTROL); /* private use */
        ck_assert_uint_eq(unicode_cpt_flags(0x20000), UNICODE_LETTER); /* CJK ext. B range */
        ck_assert_uint_eq(unicode_cpt_flags(0x110000), UNICODE_UNDEFINED);

        s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x80\xE2\x82";
        off = 0;
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 'a');
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 0xE9);
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 0x20AC);
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 0x1F600);
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 0xFFFD); /* stray continuation */
        ck_assert_uint_eq(off, 11);
        ck_assert_uint_eq(unicode_cpt_from_utf8(s, 13, &off), 0xFFFD); /* truncated */
        ck_assert_uint_eq(off, 12);
        ck_assert_uint_eq(unicode_cpt_to_utf8(0x1F600, u), 4);
        ck_assert(memcmp(u, "\xF0\x9F\x98\x80", 4) == 0);
        ck_assert_uint_eq(unicode_cpt_to_utf8(0x200000, u), 3); /* U+FFFD */

        for (int b = 0; b < 256; b++)
                ck_assert_int_eq(unicode_gpt2_to_byte(unicode_byte_to_gpt2((uint8_t)b)), b);
        ck_assert_uint_eq(unicode_byte_to_gpt2(' '), 0x120);
        ck_assert_uint_eq(unicode_byte_to_gpt2('\n'), 0x10A);
        ck_assert_int_eq(unicode_gpt2_to_byte(0x20), -1);
        ck_assert_int_eq(unicode_gpt2_to_byte(0x144), -1);

        /* "Hi  there's 12345\n\n x" with the Llama 3 splitter */
        s = "Hi  there's 12345\n\n x";
        n = strlen(s);
        for (size_t i = 0; i < n; i++)
                cpts[i] = (uint8_t)s[i];
        k = unicode_pretokenize(UNICODE_PRE_LLAMA3, cpts, n, lens);
        {
                const size_t want[] = {2, 1, 6, 2, 1, 3, 2, 2, 2};
                ck_assert_uint_eq(k, ELEMENTSOF(want));
                for (size_t i = 0; i < k; i++)
                        ck_assert_uint_eq(lens[i], want[i]);
        }
        k = unicode_pretokenize(UNICODE_PRE_GPT2, cpts, n, lens);
        {
                /* "Hi" " " " there" "'s" " 12345" "\n\n" " x" */
                const size_t want[] = {2, 1, 6, 2, 6, 2, 2};
                ck_assert_uint_eq(k, ELEMENTSOF(want));
                for (size_t i = 0; i < k; i++)
                        ck_assert_uint_eq(lens[i], want[i]);
        }
        /* SmolLM: digits alone first, GPT-2 within the stretches between them */
        s = "a 12b c";
        n = strlen(s);
        for (size_t i = 0; i < n; i++)
                cpts[i] = (uint8_t)s[i];
        k = unicode_pretokenize(UNICODE_PRE_GPT2_DIGITS, cpts, n, lens);
        {
                const size_t want[] = {1, 1, 1, 1, 1, 2}; /* a, " ", 1, 2, b, " c" */
                ck_assert_uint_eq(k, ELEMENTSOF(want));
                for (size_t i = 0; i < k; i++)
                        ck_assert_uint_eq(lens[i], want[i]);
        }
}
END_TEST

static Suite *tokenizer_suite(void)
{
        Suite *s = suite_create("tokenizer");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_spm_encode);
        tcase_add_test(tc, test_spm_pieces);
        tcase_add_test(tc, test_bpe_encode);
        tcase_add_test(tc, test_bpe_pieces);
        tcase_add_test(tc, test_validation);
        tcase_add_test(tc, test_unicode);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(tokenizer_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
