#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Deterministic synthetic llama-family GGUF models for the engine's tests and benchmarks.

    make_model.py --tool build/engine/engine-tool --arch llama --type Q4_K_M \
                  --shape small --vocab spm --seed 1 OUT.gguf

The weights are pseudo-random (same seed, same bytes) and are generated and quantized by
`engine-tool gen-tensor`, which uses the engine's reference quantizers, so this script
needs nothing beyond the standard library. Shapes:

    tiny    n_embd 256, 2 layers, 4 heads (GQA 2), ff 512, vocab >= 600
    small   n_embd 256, 2 layers, 4 heads (no GQA unless --gqa), ff 768, vocab >= 1000
    medium  n_embd 512, 4 layers, 8 heads (GQA 2), ff 1536, vocab 4000
    110m    n_embd 768, 12 layers, 12 heads (GQA 4), ff 2048, vocab 16384
    1b      n_embd 2048, 22 layers, 32 heads (GQA 4), ff 5632, vocab 32000 (TinyLlama's shape)

Types: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K, and Q4_K_M (Q4_K with Q6_K for the output,
and for attn_v and ffn_down in some layers, as llama.cpp's Q4_K_M mix does).
Vocabularies: spm (tokenizer.ggml.model "llama", byte fallback) or bpe ("gpt2", byte-level),
learned by engine-text's gguf_vocab.py and padded with unused tokens to the shape's size.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_vocab  # noqa: E402  (engine-text's vocabulary builders)
from gguf_writer import (  # noqa: E402
    GGUFWriter, GGUF_TYPE_UINT32, GGUF_TYPE_INT32, GGUF_TYPE_FLOAT32, GGUF_TYPE_BOOL,
    GGUF_TYPE_STRING, GGML_TYPE_F32)

TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14,
            "BF16": 30}
# general.file_type values (llama_ftype)
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K": 15, "Q4_K_M": 15,
              "Q5_K": 17, "Q6_K": 18, "BF16": 32}

SHAPES = {
    "tiny": dict(n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512, n_vocab=600),
    "small": dict(n_embd=256, n_layer=2, n_head=4, n_head_kv=4, n_ff=768, n_vocab=1000),
    "medium": dict(n_embd=512, n_layer=4, n_head=8, n_head_kv=4, n_ff=1536, n_vocab=4000),
    "110m": dict(n_embd=768, n_layer=12, n_head=12, n_head_kv=4, n_ff=2048, n_vocab=16384),
    "1b": dict(n_embd=2048, n_layer=22, n_head=32, n_head_kv=4, n_ff=5632, n_vocab=32000),
}

TEMPLATES = {
    "chatml": ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
               "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    "llama2": ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
               "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
               "'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}"
               "{% endfor %}"),
    "llama3": ("{% set loop_messages = messages %}{% for message in loop_messages %}"
               "{% set content = '<|start_header_id|>' + message['role'] + "
               "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
               "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
               "{{ content }}{% endfor %}{% if add_generation_prompt %}"
               "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"),
}

def padded(tokens, types, scores, n_vocab):
    """Pads a learned vocabulary with unused tokens up to the shape's size."""
    i = 0
    while len(tokens) < n_vocab:
        tokens.append("<unused%d>" % i)
        types.append(5)
        if scores is not None:
            scores.append(-1e4)
        i += 1


def gen_tensor(tool, type_name, ne0, ne1, seed, scale):
    with tempfile.NamedTemporaryFile(prefix="gen-tensor-", delete=False) as f:
        path = f.name
    try:
        subprocess.run([tool, "gen-tensor", type_name, str(ne0), str(ne1), str(seed),
                        repr(scale), path], check=True)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def floats(values):
    import struct
    return struct.pack("<%df" % len(values), *values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="path of engine-tool")
    ap.add_argument("--arch", default="llama", choices=["llama", "qwen2"])
    ap.add_argument("--type", default="F32", choices=sorted(list(TYPE_IDS) + ["Q4_K_M"]))
    ap.add_argument("--shape", default="small", choices=sorted(SHAPES))
    ap.add_argument("--gqa", type=int, default=None, help="override n_head_kv")
    ap.add_argument("--vocab", default="spm", choices=["spm", "bpe"])
    ap.add_argument("--template", default=None, choices=sorted(TEMPLATES))
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--rope-scale", type=float, default=None, help="linear RoPE scaling factor")
    ap.add_argument("--tied", action="store_true", help="no output.weight (tied to token_embd)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out")
    a = ap.parse_args()

    sh = dict(SHAPES[a.shape])
    if a.gqa:
        sh["n_head_kv"] = a.gqa
    n_embd, n_layer, n_head, n_head_kv, n_ff = (sh[k] for k in ("n_embd", "n_layer", "n_head",
                                                               "n_head_kv", "n_ff"))
    head_dim = n_embd // n_head
    rng = random.Random(a.seed)
    w = GGUFWriter()
    arch = a.arch
    w.add_kv("general.architecture", GGUF_TYPE_STRING, arch)
    w.add_kv("general.name", GGUF_TYPE_STRING, "synthetic-%s-%s-%s" % (arch, a.shape, a.type))
    w.add_kv("general.file_type", GGUF_TYPE_UINT32, FILE_TYPES[a.type])
    w.add_kv(arch + ".context_length", GGUF_TYPE_UINT32, a.ctx)
    w.add_kv(arch + ".embedding_length", GGUF_TYPE_UINT32, n_embd)
    w.add_kv(arch + ".block_count", GGUF_TYPE_UINT32, n_layer)
    w.add_kv(arch + ".feed_forward_length", GGUF_TYPE_UINT32, n_ff)
    w.add_kv(arch + ".attention.head_count", GGUF_TYPE_UINT32, n_head)
    w.add_kv(arch + ".attention.head_count_kv", GGUF_TYPE_UINT32, n_head_kv)
    w.add_kv(arch + ".attention.layer_norm_rms_epsilon", GGUF_TYPE_FLOAT32, 1e-5)
    w.add_kv(arch + ".rope.freq_base", GGUF_TYPE_FLOAT32, a.rope_base)
    w.add_kv(arch + ".rope.dimension_count", GGUF_TYPE_UINT32, head_dim)
    if a.rope_scale:
        w.add_kv(arch + ".rope.scaling.type", GGUF_TYPE_STRING, "linear")
        w.add_kv(arch + ".rope.scaling.factor", GGUF_TYPE_FLOAT32, a.rope_scale)

    n_merges = 300 if sh["n_vocab"] < 2000 else 2000
    corpus = gguf_vocab.CORPUS if sh["n_vocab"] < 2000 else gguf_vocab.synthetic_text(6000)
    if a.vocab == "spm":
        v = gguf_vocab.spm_vocab(n_merges, corpus)
        tokens, scores, types = v["tokens"], v["scores"], v["types"]
        padded(tokens, types, scores, sh["n_vocab"])
        w.add_kv("tokenizer.ggml.model", GGUF_TYPE_STRING, "llama")
        w.add_array("tokenizer.ggml.tokens", GGUF_TYPE_STRING, tokens)
        w.add_array("tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores)
        w.add_array("tokenizer.ggml.token_type", GGUF_TYPE_INT32, types)
        w.add_kv("tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, v["bos"])
        w.add_kv("tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, v["eos"])
        w.add_kv("tokenizer.ggml.unknown_token_id", GGUF_TYPE_UINT32, v["unk"])
        w.add_kv("tokenizer.ggml.add_bos_token", GGUF_TYPE_BOOL, True)
        w.add_kv("tokenizer.ggml.add_eos_token", GGUF_TYPE_BOOL, False)
        w.add_kv("tokenizer.ggml.add_space_prefix", GGUF_TYPE_BOOL, True)
        template = a.template or "llama2"
    else:
        v = gguf_vocab.bpe_vocab(n_merges, corpus)
        tokens, types = v["tokens"], v["types"]
        padded(tokens, types, None, sh["n_vocab"])
        w.add_kv("tokenizer.ggml.model", GGUF_TYPE_STRING, "gpt2")
        if arch == "qwen2":
            pre, template = "qwen2", a.template or "chatml"
            bos = eos = tokens.index("<|endoftext|>")
            add_bos = False
        else:
            pre, template = "llama-bpe", a.template or "llama3"
            bos, eos = tokens.index("<|begin_of_text|>"), tokens.index("<|end_of_text|>")
            w.add_kv("tokenizer.ggml.eot_token_id", GGUF_TYPE_UINT32, tokens.index("<|eot_id|>"))
            add_bos = True
        w.add_kv("tokenizer.ggml.pre", GGUF_TYPE_STRING, pre)
        w.add_array("tokenizer.ggml.tokens", GGUF_TYPE_STRING, tokens)
        w.add_array("tokenizer.ggml.token_type", GGUF_TYPE_INT32, types)
        w.add_array("tokenizer.ggml.merges", GGUF_TYPE_STRING, v["merges"])
        w.add_kv("tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, bos)
        w.add_kv("tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, eos)
        w.add_kv("tokenizer.ggml.add_bos_token", GGUF_TYPE_BOOL, add_bos)
        w.add_kv("tokenizer.ggml.add_eos_token", GGUF_TYPE_BOOL, False)
    w.add_kv("tokenizer.chat_template", GGUF_TYPE_STRING, TEMPLATES[template])
    n_vocab = len(tokens)

    mixed = a.type == "Q4_K_M"
    base_type = "Q4_K" if mixed else a.type
    seed = [a.seed * 1000]

    def matrix(name, ne0, ne1, type_name=None, scale=None):
        t = type_name or base_type
        seed[0] += 1
        s = scale if scale is not None else (6.0 / ne0) ** 0.5
        w.add_tensor(name, (ne0, ne1), TYPE_IDS[t], gen_tensor(a.tool, t, ne0, ne1, seed[0], s))

    def vector(name, n, center, spread):
        w.add_tensor(name, (n,), GGML_TYPE_F32,
                     floats([center + spread * (2 * rng.random() - 1) for _ in range(n)]))

    q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
    matrix("token_embd.weight", n_embd, n_vocab, scale=1.0)
    for i in range(n_layer):
        more_bits = i < n_layer // 8 or i >= 7 * n_layer // 8 or (i - n_layer // 8) % 3 == 2
        p = "blk.%d." % i
        vector(p + "attn_norm.weight", n_embd, 1.0, 0.2)
        matrix(p + "attn_q.weight", n_embd, q_dim)
        matrix(p + "attn_k.weight", n_embd, kv_dim)
        matrix(p + "attn_v.weight", n_embd, kv_dim, "Q6_K" if mixed and more_bits else None)
        matrix(p + "attn_output.weight", q_dim, n_embd)
        if arch == "qwen2":
            vector(p + "attn_q.bias", q_dim, 0.0, 0.5)
            vector(p + "attn_k.bias", kv_dim, 0.0, 0.5)
            vector(p + "attn_v.bias", kv_dim, 0.0, 0.5)
        vector(p + "ffn_norm.weight", n_embd, 1.0, 0.2)
        matrix(p + "ffn_gate.weight", n_embd, n_ff)
        matrix(p + "ffn_up.weight", n_embd, n_ff)
        matrix(p + "ffn_down.weight", n_ff, n_embd, "Q6_K" if mixed and more_bits else None)
    vector("output_norm.weight", n_embd, 1.0, 0.2)
    if not a.tied:
        matrix("output.weight", n_embd, n_vocab, "Q6_K" if mixed else None, scale=(6.0 / n_embd) ** 0.5 * 4)
    w.write(a.out)


if __name__ == "__main__":
    main()
