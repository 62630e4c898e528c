#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compares our tokenizer with llama.cpp's on a corpus of tricky strings.

    tokenize_compare.py TOKENIZE_GGUF_TOOL

llama.cpp comes from the npm package node-llama-cpp (pinned below, prebuilt binaries
inside), installed on first use into NODE_LLAMA_CPP_DIR (default
~/.cache/cluster-ai/node-llama-cpp) with its postinstall download skipped. Synthetic
vocabularies (SPM; BPE with the llama-bpe, qwen2, gpt-2, smollm and dbrx pre-tokenizers) are written
to a temporary directory; every string is tokenized by both, with and without
parse_special, and the ids must be identical.

Exit 77 (skip) when node or npm are missing or the registry cannot be reached.
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf_vocab  # noqa: E402

NODE_LLAMA_CPP_VERSION = "3.21.1"

STRINGS = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    " \n",
    "\r\n",
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello world ",
    "Hello world  ",
    "hello\tworld",
    "a\n\nb\r\n\tc",
    "   leading and trailing   ",
    "The quick brown fox jumps over the lazy dog.",
    "the dog didn't care; it's a lazy dog and they're all asleep",
    "We'VE seen IT, you'LL see it, I'D say I'M sure. O'Neil's",
    "don't DON'T Don'T 'tis 's 're",
    "1",
    "12",
    "123",
    "1234",
    "1234567",
    "12345",
    " 12345",
    "3.14159 and 12.5% of 999/1000",
    "x=1+2*3-4/5",
    "Once upon a time, in a land far away",
    "def tokenize(text):\n    for word in text.split():\n        yield word.lower()\n",
    "print(\"hello world\")  # comment",
    "if (a && b || !c) { return -1; }",
    "Le café est très bon. Naïve façade, déjà vu",
    "über schön Straße España niño",
    "Привет, как дела?",
    "Γειά σου κόσμε",
    "日本語のテキストです。",
    "東京は大きい都市です",
    "中文文本也很好。한국어 텍스트",
    "Emoji 😀🎉👍 time",
    "🇫🇷 flags and 👨‍👩‍👧 family",
    "e\u0301 combining e\u0301\u0302\u0303 marks a\u0308",
    "\u00a0non-breaking\u00a0space \u3000ideographic",
    "zero\u200bwidth\u200djoiner",
    "\u2581already escaped \u2581\u2581",
    "<s>",
    "</s>",
    "<s> Hello</s>",
    "Hello<s>world</s>",
    "<unk>",
    "<mask> masked <mask>",
    "<|begin_of_text|>Hi<|eot_id|>",
    "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|><|im_end|>",
    "<|endoftext|>",
    "<tool> call <tool>",
    "<|unknown_special|> <not special>",
    "zebra unreachable zebras",
    " zebra  unreachable",
    "\u0080\u00ff\u0100 latin-1 supplement",
    "\x01\x02\x7f controls",
    "🤖" * 5,
    "a" * 50,
    " " * 17 + "x",
    "!!!???...",
    "...\n\n---\n",
    "'''\"\"\"```",
    "mixed 中文 and English and 123 and 😀!",
]


# Characters random strings are drawn from: every class the splitters distinguish.
POOL = (list("aAzZeiou") + list("0123456789") + [" ", " ", " ", "\t", "\n", "\r", "\u00a0",
        "\u3000", "'", "'", "s", "t", "re", "ll", "!", ".", ",", "-", "_", "$", "+", "<", ">",
        "|", "\u00e9", "e\u0301", "\u00df", "\u0416", "\u03a9", "\u4e2d", "\u6587",
        "\u3042", "\ud55c", "\u0663", "\u00bd", "\u2581", "\U0001f600", "\U0001f44d\U0001f3fd",
        "\u200d", "\u200b", "\x00", "\x7f", "\x1b", "<s>", "</s>", "<mask>", "<tool>",
        "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "the", " the", "hello",
        " zebra", "123", "dog", "don't"])


def random_strings(n, seed=1234):
    """Deterministic pseudo-random strings (a fixed LCG, not Python's random module, so
    the corpus never changes between Python versions)."""
    x = seed
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        length = 1 + (x >> 33) % 24
        parts = []
        for _ in range(length):
            x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            parts.append(POOL[(x >> 33) % len(POOL)])
        out.append("".join(parts))
    return out


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


def ensure_node_llama_cpp():
    d = os.environ.get("NODE_LLAMA_CPP_DIR") or os.path.expanduser(
        "~/.cache/cluster-ai/node-llama-cpp")
    if not shutil.which("node"):
        skip("node is not installed")
    pkg = os.path.join(d, "node_modules", "node-llama-cpp", "package.json")
    try:
        with open(pkg) as f:
            if json.load(f).get("version") == NODE_LLAMA_CPP_VERSION:
                return d
    except (OSError, ValueError):
        pass
    if not shutil.which("npm"):
        skip("npm is not installed")
    os.makedirs(d, exist_ok=True)
    # Tests run in parallel: one installs, the others wait for it.
    with open(os.path.join(d, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(pkg) as f:
                if json.load(f).get("version") == NODE_LLAMA_CPP_VERSION:
                    return d
        except (OSError, ValueError):
            pass
        env = dict(os.environ, NODE_LLAMA_CPP_SKIP_DOWNLOAD="true")
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", d,
                            "node-llama-cpp@" + NODE_LLAMA_CPP_VERSION],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        if p.returncode != 0:
            skip("cannot install node-llama-cpp@%s from the npm registry:\n%s" %
                 (NODE_LLAMA_CPP_VERSION, p.stdout[-2000:]))
    return d


def run_llama_cpp(nld, gguf, request):
    env = dict(os.environ, NODE_LLAMA_CPP_DIR=nld)
    p = subprocess.run(["node", os.path.join(HERE, "llama_tokenize.mjs"), gguf],
                       input=json.dumps(request),
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    if p.returncode != 0:
        raise RuntimeError("llama_tokenize.mjs failed:\n" + p.stderr[-3000:])
    return json.loads(p.stdout)


def llama_cpp_ids(nld, gguf, strings, special):
    return run_llama_cpp(nld, gguf, {"strings": strings, "special": special})["ids"]


def llama_cpp_pieces(nld, gguf, n):
    return [base64.b64decode(x) for x in run_llama_cpp(nld, gguf, {"pieces": n})["pieces"]]


def our_pieces(tool, gguf):
    p = subprocess.run([tool, gguf, "--pieces"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("tokenize tool failed:\n" + p.stderr)
    return [bytes.fromhex(line) for line in p.stdout.split("\n")[:-1]]


def our_ids(tool, gguf, strings, special):
    inp = "".join(s.encode("utf-8").hex() + "\n" for s in strings)
    p = subprocess.run([tool, gguf, "1" if special else "0", "0"], input=inp,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("tokenize tool failed:\n" + p.stderr)
    lines = p.stdout.split("\n")[:len(strings)]
    return [[int(x) for x in line.split()] for line in lines]


def main():
    tool = sys.argv[1]
    nld = ensure_node_llama_cpp()
    failures = 0
    checked = 0
    strings = STRINGS + random_strings(400) + [
        gguf_vocab.synthetic_text(40 + i, seed=1000 + i) for i in range(60)]
    with tempfile.TemporaryDirectory() as tmp:
        spm = gguf_vocab.spm_vocab()
        bpe = gguf_vocab.bpe_vocab()
        big_text = gguf_vocab.CORPUS + gguf_vocab.synthetic_text(6000)
        spm_big = gguf_vocab.spm_vocab(1500, big_text)
        bpe_big = gguf_vocab.bpe_vocab(2000, big_text)
        vocabs = {
            "spm": os.path.join(tmp, "spm.gguf"),
            "spm-no-prefix": os.path.join(tmp, "spm-no-prefix.gguf"),
            "llama-bpe": os.path.join(tmp, "llama-bpe.gguf"),
            "qwen2": os.path.join(tmp, "qwen2.gguf"),
            "gpt-2": os.path.join(tmp, "gpt2.gguf"),
            "smollm": os.path.join(tmp, "smollm.gguf"),
            "dbrx": os.path.join(tmp, "dbrx.gguf"),
            "spm-big": os.path.join(tmp, "spm-big.gguf"),
            "llama-bpe-big": os.path.join(tmp, "llama-bpe-big.gguf"),
            "qwen2-big": os.path.join(tmp, "qwen2-big.gguf"),
        }
        gguf_vocab.write_vocab_gguf(vocabs["spm"], spm)
        gguf_vocab.write_vocab_gguf(vocabs["spm-no-prefix"], dict(spm, add_space_prefix=False))
        gguf_vocab.write_vocab_gguf(vocabs["llama-bpe"], bpe, pre="llama-bpe")
        gguf_vocab.write_vocab_gguf(vocabs["qwen2"], bpe, pre="qwen2", add_bos=False)
        gguf_vocab.write_vocab_gguf(vocabs["gpt-2"], bpe, pre="gpt-2", add_bos=False)
        gguf_vocab.write_vocab_gguf(vocabs["smollm"], bpe, pre="smollm", add_bos=False)
        gguf_vocab.write_vocab_gguf(vocabs["dbrx"], bpe, pre="dbrx", add_bos=False)
        gguf_vocab.write_vocab_gguf(vocabs["spm-big"], spm_big)
        gguf_vocab.write_vocab_gguf(vocabs["llama-bpe-big"], bpe_big, pre="llama-bpe")
        gguf_vocab.write_vocab_gguf(vocabs["qwen2-big"], bpe_big, pre="qwen2", add_bos=False)
        for name, path in vocabs.items():
            for special in (False, True):
                ref = llama_cpp_ids(nld, path, strings, special)
                ours = our_ids(tool, path, strings, special)
                for s, a, b in zip(strings, ref, ours):
                    checked += 1
                    if a != b:
                        failures += 1
                        print("MISMATCH %s special=%s %r\n  llama.cpp: %s\n  ours:      %s" %
                              (name, special, s, a, b))
        # Pieces: llama.cpp's detokenizer drops one leading space of the first piece when
        # the vocabulary adds a space prefix (SPM), and "cleans" spaces for llama-bpe and
        # gpt-2, so compare SPM and qwen2 only.
        for name, lstrip in (("spm", True), ("qwen2", False)):
            ours = our_pieces(tool, vocabs[name])
            ref = llama_cpp_pieces(nld, vocabs[name], len(ours))
            for i, (a, b) in enumerate(zip(ref, ours)):
                checked += 1
                if lstrip and b.startswith(b" "):
                    b = b[1:]
                # the pieces reach us through a JavaScript string: invalid UTF-8 (a
                # piece with part of a character) arrives as U+FFFD
                b = b.decode("utf-8", "replace").encode("utf-8")
                if a != b:
                    failures += 1
                    print("MISMATCH %s piece of %d\n  llama.cpp: %r\n  ours:      %r" %
                          (name, i, a, b))
    print("%d strings and pieces compared, %d mismatches" % (checked, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
