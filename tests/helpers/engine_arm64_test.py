#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The engine on arm64: cross-builds it alone (-Dengine_only=true, Debian's
gcc-aarch64-linux-gnu, -Dwerror=true), runs the arm64 engine-tool under qemu-user, and
checks it against the native build's reference kernels (--scalar) on synthetic models of
every tensor type, both vocabulary kinds and both architectures: logits of every prompt
position, a 16-token greedy continuation and the token ids of tricky strings must be
bit for bit the same.

On arm64 the engine runs its portable C kernels (there are no NEON ones yet), so this
is what a phone or a board would run. The arm64 build is made with -ffp-contract=off:
by default GCC fuses a * b + c into one rounding on arm64, which x86-64's baseline
cannot, and those last bits then move an activation across a quantization step now and
then (up to 0.1 in a logit of a random Q8_0 model); without fusion the two
architectures compute the same thing, so any difference left is a portability bug
(char signedness, alignment, endianness, undefined behaviour). Exits 77 when the cross
compiler or qemu is missing (scripts/install-deps.sh installs both).

    engine_arm64_test.py --tool build/engine/engine-tool --make-model tests/helpers/make_model.py \\
        --source-root . --workdir build/engine-arm64
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64-static"
SYSROOT = "/usr/aarch64-linux-gnu"

CASES = [
    # (arch, type, vocab)
    ("llama", "F32", "spm"),
    ("llama", "F16", "bpe"),
    ("llama", "BF16", "spm"),
    ("llama", "Q8_0", "spm"),
    ("llama", "Q4_0", "bpe"),
    ("llama", "Q4_K", "spm"),
    ("llama", "Q5_K", "bpe"),
    ("llama", "Q6_K", "spm"),
    ("llama", "Q4_K_M", "bpe"),
    ("qwen2", "F16", "bpe"),
    ("qwen2", "Q8_0", "spm"),
]
TEXTS = ["Hello, world!", "  two  spaces\tand a tab\n", "digits 1234567 and 3.14159",
         "ünïcödé — ☃ 日本語 🙂", "<s>special</s> tokens", "x" * 40]
PROMPT = [1, 17, 42, 5, 99, 300, 7, 64, 128, 3, 250, 11]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def cross_build(src, work):
    build = os.path.join(work, "build-arm64")
    if not os.path.exists(os.path.join(build, "build.ninja")):
        run(["meson", "setup", build, src, "--cross-file",
             os.path.join(src, "scripts", "cross", "aarch64-linux-gnu.ini"),
             "-Dengine_only=true", "-Dbuildtype=release", "-Dwerror=true",
             "-Dc_args=-ffp-contract=off"])
    run(["ninja", "-C", build, "engine/engine-tool"])
    return os.path.join(build, "engine", "engine-tool")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="the native engine-tool")
    ap.add_argument("--make-model", required=True)
    ap.add_argument("--source-root", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()

    for prog in (CC, QEMU, "meson", "ninja"):
        if not shutil.which(prog):
            print("SKIP: %s is not installed (scripts/install-deps.sh installs it)" % prog)
            return 77
    os.makedirs(a.workdir, exist_ok=True)
    try:
        arm_tool = cross_build(os.path.abspath(a.source_root), os.path.abspath(a.workdir))
    except subprocess.CalledProcessError as e:
        print("FAIL: the arm64 build failed:\n%s%s" % (e.stdout, e.stderr))
        return 1
    arm = [QEMU, "-L", SYSROOT, arm_tool]
    print("arm64 engine-tool: %s" % run(["file", "-b", arm_tool]).strip())

    failures = 0
    for arch, t, vocab in CASES:
        name = "%s-%s-%s" % (arch, t.lower(), vocab)
        path = os.path.join(a.workdir, name + ".gguf")
        if not os.path.exists(path):
            run([sys.executable, a.make_model, "--tool", a.tool, "--arch", arch, "--type", t,
                 "--shape", "tiny", "--vocab", vocab, "--seed", "3", path + ".tmp"])
            os.rename(path + ".tmp", path)
        toks = [str(x) for x in PROMPT]
        native = run([a.tool, "logits", "--scalar", path] + toks)
        other = run(arm + ["logits", path] + toks)
        ln, lo = json.loads(native)["logits"], json.loads(other)["logits"]
        diff = max(abs(x - y) for rn, ro in zip(ln, lo) for x, y in zip(rn, ro))
        greedy_same = (run([a.tool, "greedy", "--scalar", path, "16"] + toks) ==
                       run(arm + ["greedy", path, "16"] + toks))
        ids_same = all(run([a.tool, "tokenize", path, text]) == run(arm + ["tokenize", path, text])
                       for text in TEXTS)
        ok = native == other and greedy_same and ids_same
        print("%s %s: logits %s (max diff %.2g), greedy %s, token ids %s" % (
            "ok  " if ok else "FAIL", name, "identical" if native == other else "DIFFER", diff,
            "identical" if greedy_same else "DIFFERS", "identical" if ids_same else "DIFFER"))
        failures += not ok
    print("%d of %d models differ" % (failures, len(CASES)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
