#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of tests/fuzz/fuzz-gguf.c: small valid GGUF files and hostile
variants (bad magic, truncations, huge counts and lengths, unknown types, offsets out of
range, misalignment, duplicates). Deterministic; run it again after changing it:

    make_gguf_corpus.py tests/fuzz/corpus/gguf
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import (GGUFWriter, GGUF_TYPE_UINT32, GGUF_TYPE_FLOAT32, GGUF_TYPE_STRING,  # noqa: E402
                         GGUF_TYPE_INT32, GGML_TYPE_F32, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K)


def tiny_model(arch="llama", bias=False):
    n_embd, n_ff, n_vocab, n_head = 32, 64, 8, 2
    w = GGUFWriter()
    w.add_kv("general.architecture", GGUF_TYPE_STRING, arch)
    for k, v in (("context_length", 64), ("embedding_length", n_embd), ("block_count", 1),
                 ("feed_forward_length", n_ff), ("attention.head_count", n_head),
                 ("attention.head_count_kv", 1)):
        w.add_kv(arch + "." + k, GGUF_TYPE_UINT32, v)
    w.add_kv(arch + ".rope.freq_base", GGUF_TYPE_FLOAT32, 10000.0)
    w.add_kv("tokenizer.ggml.model", GGUF_TYPE_STRING, "llama")
    w.add_array("tokenizer.ggml.tokens", GGUF_TYPE_STRING, ["<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"])
    w.add_array("tokenizer.ggml.token_type", GGUF_TYPE_INT32, [2, 3, 3, 1, 1, 1, 1, 1])

    def f32(name, shape):
        n = 1
        for d in shape:
            n *= d
        w.add_tensor(name, shape, GGML_TYPE_F32, struct.pack("<%df" % n, *[((i * 37) % 11 - 5) / 10.0 for i in range(n)]))
    kv_dim = n_embd // n_head
    f32("token_embd.weight", (n_embd, n_vocab))
    f32("blk.0.attn_norm.weight", (n_embd,))
    f32("blk.0.attn_q.weight", (n_embd, n_embd))
    f32("blk.0.attn_k.weight", (n_embd, kv_dim))
    f32("blk.0.attn_v.weight", (n_embd, kv_dim))
    f32("blk.0.attn_output.weight", (n_embd, n_embd))
    if bias:
        f32("blk.0.attn_q.bias", (n_embd,))
        f32("blk.0.attn_k.bias", (kv_dim,))
        f32("blk.0.attn_v.bias", (kv_dim,))
    f32("blk.0.ffn_norm.weight", (n_embd,))
    f32("blk.0.ffn_gate.weight", (n_embd, n_ff))
    f32("blk.0.ffn_up.weight", (n_embd, n_ff))
    f32("blk.0.ffn_down.weight", (n_ff, n_embd))
    f32("output_norm.weight", (n_embd,))
    return w.to_bytes()


def header(version=3, n_tensors=0, n_kv=0, magic=b"GGUF"):
    return magic + struct.pack("<IQQ", version, n_tensors, n_kv)


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {}
    good = tiny_model()
    files["valid-llama.gguf"] = good
    files["valid-qwen2.gguf"] = tiny_model("qwen2", bias=True)
    files["valid-empty.gguf"] = header()
    w = GGUFWriter()
    w.add_kv("general.alignment", GGUF_TYPE_UINT32, 64)
    w.add_tensor("x", (32, 2), GGML_TYPE_Q8_0, bytes(68))
    w.add_tensor("y", (256,), GGML_TYPE_Q4_K, bytes(144))
    files["valid-aligned64.gguf"] = w.to_bytes()
    files["bad-magic.gguf"] = b"GGML" + good[4:]
    files["version1.gguf"] = header(version=1)
    files["version99.gguf"] = header(version=99)
    files["truncated-header.gguf"] = good[:10]
    files["truncated-kv.gguf"] = good[:60]
    files["truncated-data.gguf"] = good[: len(good) - 100]
    files["huge-tensor-count.gguf"] = header(n_tensors=1 << 40)
    files["huge-kv-count.gguf"] = header(n_kv=(1 << 64) - 1)
    files["claimed-kv-no-room.gguf"] = header(n_kv=1000)
    files["huge-key-len.gguf"] = header(n_kv=1) + struct.pack("<Q", 1 << 62)
    files["huge-string.gguf"] = header(n_kv=1) + s("k") + struct.pack("<IQ", GGUF_TYPE_STRING, (1 << 63) + 5)
    files["huge-array.gguf"] = header(n_kv=1) + s("k") + struct.pack("<IIQ", 9, GGUF_TYPE_UINT32, 1 << 61)
    files["nested-array.gguf"] = header(n_kv=1) + s("k") + struct.pack("<IIQ", 9, 9, 1)
    files["unknown-value-type.gguf"] = header(n_kv=1) + s("k") + struct.pack("<I", 77)
    files["duplicate-key.gguf"] = header(n_kv=2) + (s("k") + struct.pack("<II", GGUF_TYPE_UINT32, 1)) * 2
    files["bad-alignment.gguf"] = header(n_kv=1) + s("general.alignment") + struct.pack("<II", GGUF_TYPE_UINT32, 3)
    tensor = lambda name, dims, typ, off: s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", typ, off)
    pad = lambda b: b + bytes((-len(b)) % 32)
    files["tensor-unknown-type.gguf"] = pad(header(n_tensors=1) + tensor("t", [4], 200, 0)) + bytes(32)
    files["tensor-offset-out-of-range.gguf"] = pad(header(n_tensors=1) + tensor("t", [4], 0, 1 << 40)) + bytes(32)
    files["tensor-misaligned.gguf"] = pad(header(n_tensors=1) + tensor("t", [4], 0, 3)) + bytes(64)
    files["tensor-zero-dim.gguf"] = pad(header(n_tensors=1) + tensor("t", [0], 0, 0)) + bytes(32)
    files["tensor-five-dims.gguf"] = pad(header(n_tensors=1) + tensor("t", [1, 1, 1, 1, 1], 0, 0)) + bytes(32)
    files["tensor-absurd-dims.gguf"] = pad(header(n_tensors=1) + tensor("t", [1 << 32, 1 << 32], 0, 0)) + bytes(32)
    files["tensor-partial-block.gguf"] = pad(header(n_tensors=1) + tensor("t", [33], GGML_TYPE_Q8_0, 0)) + bytes(64)
    files["tensor-duplicate.gguf"] = pad(header(n_tensors=2) + tensor("t", [4], 0, 0) + tensor("t", [4], 0, 32)) + bytes(64)
    files["tensor-past-end.gguf"] = pad(header(n_tensors=1) + tensor("t", [64], 0, 0)) + bytes(16)
    files["arch-unsupported.gguf"] = good.replace(b"llama", b"gemma", 1)
    for name, data in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
