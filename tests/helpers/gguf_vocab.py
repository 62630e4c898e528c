# SPDX-License-Identifier: GPL-2.0-or-later
"""Deterministic synthetic tokenizer vocabularies for tests (no downloads).

spm_vocab(n_merges, corpus)  a SentencePiece-style ("llama") vocabulary: <unk> <s> </s>, the 256 byte
             tokens <0x00>..<0xFF>, every character of the corpus, then pieces with the
             U+2581 word marker learned by byte-pair merging over the corpus; scores fall
             with merge order, so earlier merges win.
bpe_vocab(n_merges, corpus)  a GPT-2-style byte-level vocabulary: the 256 byte symbols of GPT-2's
             alphabet, merges learned from the same corpus (words split roughly the way
             Llama 3 splits them), and special tokens of Llama 3 (<|begin_of_text|>,
             <|eot_id|>, ...) and Qwen2 (<|im_start|>, <|im_end|>, <|endoftext|>).
write_vocab_gguf(path, vocab, ...)  a vocab-only GGUF: tokenizer.ggml.* plus the minimal
             llama hyper-parameters a loader wants, no tensors.

Run as a script to write both kinds: gguf_vocab.py OUTDIR
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import (GGUFWriter, GGUF_TYPE_STRING, GGUF_TYPE_FLOAT32,  # noqa: E402
                         GGUF_TYPE_INT32, GGUF_TYPE_UINT32, GGUF_TYPE_BOOL)

TOKEN_NORMAL = 1
TOKEN_UNKNOWN = 2
TOKEN_CONTROL = 3
TOKEN_USER_DEFINED = 4
TOKEN_UNUSED = 5
TOKEN_BYTE = 6

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog didn't care; it's a lazy dog
and they're all asleep. We've seen it, you'll see it, I'd say I'm sure.
Once upon a time, in a land far away, there lived a king and a queen who had three
daughters. The youngest daughter was the most beautiful of them all, and the king
loved her more than anything in the world. In 2023 the kingdom had 1234567 people,
up from 999 in the year 1000; prices rose 12.5% and 3.14159 is still pi.
def tokenize(text):
    for word in text.split():
        if word.startswith("#"):
            continue
        yield word.lower()
print("hello world")  # comment
x = [1, 2, 3]; y = {"key": "value"}
Le café est très bon. Naïve façade, déjà vu, über schön, Straße, España, niño.
Привет, как дела? Это тест. Γειά σου κόσμε.
日本語のテキストです。東京は大きい都市です。中文文本也很好。한국어 텍스트.
Emoji time 😀🎉👍 and flags 🇫🇷 with family 👨‍👩‍👧 done.
Tabs\tand\tnewlines
and   multiple   spaces    here.
"""

SPM_SPACE = "\u2581"

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sta", "the", "ing", "tion", "er", "an", "\u4e2d",
             "\u6587", "\u5b57", "\u00f6", "\u00df", "\u0439", "\u0442\u044c", " ", "  ", ",",
             ".", "1", "23", "\n", "'s", "\t"]


def synthetic_text(n, seed=7):
    """n syllables picked by a fixed LCG: more text to learn bigger vocabularies from."""
    x = seed
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(SYLLABLES[(x >> 33) % len(SYLLABLES)])
    return "".join(out)


def _learn_merges(words, n_merges):
    """Classic BPE over a {tuple(symbols): count} dict; returns [(left, right)]."""
    words = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        # most frequent pair; ties broken by the pair itself for determinism
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pairs[best] < 1:
            break
        merges.append(best)
        new = {}
        for w, c in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            t = tuple(out)
            new[t] = new.get(t, 0) + c
        words = new
    return merges


def spm_vocab(n_merges=400, corpus=CORPUS):
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL]
    scores = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append("<0x%02X>" % b)
        types.append(TOKEN_BYTE)
        scores.append(0.0)
    seen = set(tokens)

    words = {}
    for line in corpus.split("\n"):
        for w in line.split(" "):
            if w:
                w = SPM_SPACE + w
                t = tuple(w)
                words[t] = words.get(t, 0) + 1
    chars = sorted({ch for w in words for ch in w} - {"\t"})
    merges = _learn_merges(words, n_merges)

    # pieces first (higher scores for earlier merges), then single characters
    rank = 0
    for a, b in merges:
        p = a + b
        if p not in seen:
            seen.add(p)
            tokens.append(p)
            types.append(TOKEN_NORMAL)
            scores.append(-float(rank))
            rank += 1
    # runs of word markers, as real llama vocabularies have for indentation
    for k in (2, 3, 4, 8):
        p = SPM_SPACE * k
        if p not in seen:
            seen.add(p)
            tokens.append(p)
            types.append(TOKEN_NORMAL)
            scores.append(-float(rank) - k)
    for i, ch in enumerate(chars):
        if ch not in seen:
            seen.add(ch)
            tokens.append(ch)
            types.append(TOKEN_NORMAL)
            scores.append(-1000.0 - i)
    # a user-defined token: cut out of the text even without parse_special
    tokens.append("<mask>")
    types.append(TOKEN_USER_DEFINED)
    scores.append(0.0)
    return {
        "model": "llama",
        "tokens": tokens,
        "scores": scores,
        "types": types,
        "merges": None,
        "bos": 1,
        "eos": 2,
        "unk": 0,
        "add_bos": True,
        "add_eos": False,
        "add_space_prefix": True,
    }


def gpt2_byte_map():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) +
          list(range(0xAE, 0xFF + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


# A rough stand-in for the Llama 3 expression, only used to pick training words.
_WORD_RE = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+")

SPECIAL_LLAMA3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_0|>"]
SPECIAL_QWEN2 = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bpe_vocab(n_merges=600, corpus=CORPUS):
    bmap = gpt2_byte_map()
    tokens = [bmap[b] for b in sorted(bmap, key=lambda b: ord(bmap[b]))]
    seen = set(tokens)
    words = {}
    for m in _WORD_RE.finditer(corpus):
        w = "".join(bmap[b] for b in m.group(0).encode("utf-8"))
        t = tuple(w)
        words[t] = words.get(t, 0) + 1
    merges = _learn_merges(words, n_merges)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    # Words that are tokens although no merge builds them: Llama 3 ("ignore merges")
    # takes them whole, other pre-tokenizers cannot reach them.
    for w in ("\u0120zebra", "\u0120unreachable", "12345"):
        w = "".join(bmap[b] for b in w.replace("\u0120", " ").encode("utf-8"))
        if w not in seen:
            seen.add(w)
            tokens.append(w)
    types = [TOKEN_NORMAL] * len(tokens)
    for s in SPECIAL_LLAMA3 + SPECIAL_QWEN2:
        tokens.append(s)
        types.append(TOKEN_CONTROL)
    tokens.append("<tool>")
    types.append(TOKEN_USER_DEFINED)
    return {
        "model": "gpt2",
        "tokens": tokens,
        "scores": None,
        "types": types,
        "merges": ["%s %s" % m for m in merges],
        "bos": tokens.index("<|begin_of_text|>"),
        "eos": tokens.index("<|end_of_text|>"),
        "unk": None,
        "add_bos": True,
        "add_eos": False,
        "add_space_prefix": False,
    }


def write_vocab_gguf(path, vocab, pre=None, chat_template=None, add_bos=None, add_eos=None,
                     name="synthetic vocab"):
    """A GGUF with the vocabulary and no tensors; pre is tokenizer.ggml.pre (BPE)."""
    w = GGUFWriter()
    n = len(vocab["tokens"])
    w.add_kv("general.architecture", GGUF_TYPE_STRING, "llama")
    w.add_kv("general.name", GGUF_TYPE_STRING, name)
    w.add_kv("general.alignment", GGUF_TYPE_UINT32, 32)
    w.add_kv("llama.vocab_size", GGUF_TYPE_UINT32, n)
    w.add_kv("llama.context_length", GGUF_TYPE_UINT32, 2048)
    w.add_kv("llama.embedding_length", GGUF_TYPE_UINT32, 64)
    w.add_kv("llama.block_count", GGUF_TYPE_UINT32, 1)
    w.add_kv("llama.feed_forward_length", GGUF_TYPE_UINT32, 128)
    w.add_kv("llama.attention.head_count", GGUF_TYPE_UINT32, 4)
    w.add_kv("llama.attention.head_count_kv", GGUF_TYPE_UINT32, 4)
    w.add_kv("llama.attention.layer_norm_rms_epsilon", GGUF_TYPE_FLOAT32, 1e-5)
    w.add_kv("llama.rope.dimension_count", GGUF_TYPE_UINT32, 16)
    w.add_kv("tokenizer.ggml.model", GGUF_TYPE_STRING, vocab["model"])
    if pre is not None:
        w.add_kv("tokenizer.ggml.pre", GGUF_TYPE_STRING, pre)
    w.add_array("tokenizer.ggml.tokens", GGUF_TYPE_STRING, vocab["tokens"])
    if vocab["scores"] is not None:
        w.add_array("tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, vocab["scores"])
    w.add_array("tokenizer.ggml.token_type", GGUF_TYPE_INT32, vocab["types"])
    if vocab["merges"] is not None:
        w.add_array("tokenizer.ggml.merges", GGUF_TYPE_STRING, vocab["merges"])
    w.add_kv("tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, vocab["bos"])
    w.add_kv("tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, vocab["eos"])
    if vocab["unk"] is not None:
        w.add_kv("tokenizer.ggml.unknown_token_id", GGUF_TYPE_UINT32, vocab["unk"])
    w.add_kv("tokenizer.ggml.add_bos_token", GGUF_TYPE_BOOL,
             vocab["add_bos"] if add_bos is None else add_bos)
    w.add_kv("tokenizer.ggml.add_eos_token", GGUF_TYPE_BOOL,
             vocab["add_eos"] if add_eos is None else add_eos)
    if vocab["model"] == "llama":
        w.add_kv("tokenizer.ggml.add_space_prefix", GGUF_TYPE_BOOL, vocab["add_space_prefix"])
    if chat_template is not None:
        w.add_kv("tokenizer.chat_template", GGUF_TYPE_STRING, chat_template)
    w.write(path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    write_vocab_gguf(os.path.join(out, "vocab-spm.gguf"), spm_vocab())
    bpe = bpe_vocab()
    write_vocab_gguf(os.path.join(out, "vocab-llama-bpe.gguf"), bpe, pre="llama-bpe")
    write_vocab_gguf(os.path.join(out, "vocab-qwen2.gguf"), bpe, pre="qwen2", add_bos=False)
    write_vocab_gguf(os.path.join(out, "vocab-gpt2.gguf"), bpe, pre="gpt-2", add_bos=False)


if __name__ == "__main__":
    main()
