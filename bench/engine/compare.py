#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Side-by-side speed of the engine and llama.cpp's llama-bench on the same synthetic
GGUF files and thread count: prompt processing (pp) and decode (tg) tokens per second,
the engine's aggregate decode rate with several sequences in one batch, and (--bound)
the decode rate against the memory-bandwidth bound: bytes read per token over the read
bandwidth `engine-tool membw` measures in the same round. --busy N runs both programs
beside N busy processes, as on a host shared with other work.

    bench/engine/compare.py --tool build/engine/engine-tool --llama-bench PATH \
        --shape 110m --types F16,Q8_0,Q4_0,Q4_K --threads 2 --bound

Figures are medians over --rounds alternating runs of the two programs; the ratios are
medians of each round's ratio. Models are
generated once into the cache ($XDG_CACHE_HOME or ~/.cache)/cluster-ai/
bench-models. Prints a Markdown table.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_MODEL = os.path.join(HERE, "..", "..", "tests", "helpers", "make_model.py")


def model_path(tool, shape, t):
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(cache, "cluster-ai", "bench-models")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "%s-%s.gguf" % (shape, t.lower()))
    if not os.path.exists(p):
        subprocess.run([sys.executable, MAKE_MODEL, "--tool", tool, "--shape", shape, "--type", t,
                        "--ctx", "4096", p + ".tmp"], check=True)
        os.rename(p + ".tmp", p)
    return p


def engine(tool, path, pp, tg, threads, reps, seqs=1):
    out = subprocess.run([tool, "bench", "-p", str(pp), "-n", str(tg), "-t", str(threads),
                          "-r", str(reps), "-s", str(seqs), path],
                         check=True, capture_output=True, text=True).stdout
    r = {}
    for line in out.splitlines():
        m = re.match(r"(pp|tg)\d+.*: ([\d.]+) tok/s", line)
        if m:
            r[m.group(1)] = float(m.group(2))
        m = re.match(r"decode reads ([\d.]+) MB per token", line)
        if m:
            r["mb"] = float(m.group(1))
    return r


def membw(tool, threads):
    out = subprocess.run([tool, "membw", "-t", str(threads)], check=True, capture_output=True,
                         text=True).stdout
    return float(re.search(r": ([\d.]+) GB/s", out).group(1))


def llama(bench, path, pp, tg, threads, reps):
    out = subprocess.run([bench, "-m", path, "-p", str(pp), "-n", str(tg), "-t", str(threads),
                          "-r", str(reps), "-o", "json"], check=True, capture_output=True,
                         text=True).stdout
    r = {}
    for row in json.loads(out):
        key = "pp" if row.get("n_prompt", 0) > 0 else "tg"
        r[key] = statistics.median(row.get("samples_ts") or [row["avg_ts"]])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--llama-bench", default=None)
    ap.add_argument("--shape", default="110m")
    ap.add_argument("--types", default="F16,Q8_0,Q4_0,Q4_K")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", type=int, default=128)
    ap.add_argument("--tg", type=int, default=64)
    # Each round runs each program once (--reps 1 inside it) and the table gives the
    # median over the rounds: the machines are shared, the rounds alternate the two
    # programs so that load from elsewhere hits both alike.
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seqs", type=int, default=8, help="sequences for the batched decode column")
    ap.add_argument("--bound", action="store_true",
                    help="measure read bandwidth (engine-tool membw) each round and give the "
                    "decode bound: bytes read per token / bandwidth")
    ap.add_argument("--raw", action="store_true", help="print every round's figures to stderr")
    ap.add_argument("--busy", type=int, default=0,
                    help="keep this many busy processes (yes > /dev/null) running beside the "
                    "programs, as on a host shared with other work")
    a = ap.parse_args()
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(a.busy)]
    try:
        run(a)
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def run(a):
    print("| model | type | size MiB | engine pp%d | llama.cpp pp%d | ratio | engine tg%d | llama.cpp tg%d | ratio | engine tg%d x%d aggregate | x%d / x1 | bound tg | tg / bound |" %
          (a.pp, a.pp, a.tg, a.tg, a.tg, a.seqs, a.seqs))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in a.types.split(","):
        p = model_path(a.tool, a.shape, t)
        rounds = []
        for _ in range(a.rounds):
            r = {"e": engine(a.tool, p, a.pp, a.tg, a.threads, a.reps)}
            if a.bound:
                # right after the engine's decode: the host's bandwidth moves with
                # other tenants' load, so each round's decode meets its own bound
                r["bw"] = membw(a.tool, a.threads)
            if a.llama_bench:
                r["l"] = llama(a.llama_bench, p, a.pp, a.tg, a.threads, a.reps)
            if a.seqs > 1:
                r["eb"] = engine(a.tool, p, 0, a.tg, a.threads, a.reps, a.seqs)
            rounds.append(r)
            if a.raw:
                print("round %s %s: %s" % (a.shape, t, json.dumps(r)), file=sys.stderr)

        def med(f):
            v = []
            for r in rounds:
                try:
                    x = f(r)
                except (KeyError, ZeroDivisionError):
                    continue
                if x is not None:
                    v.append(x)
            return statistics.median(v) if v else None

        def fmt(x, f="%.1f"):
            return f % x if x is not None else "-"

        # ratios are medians of each round's ratio (the two programs ran seconds apart)
        bound = med(lambda r: r["bw"] * 1e3 / r["e"]["mb"])
        print("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            a.shape, t, os.path.getsize(p) / 1048576,
            fmt(med(lambda r: r["e"]["pp"])), fmt(med(lambda r: r["l"]["pp"])),
            fmt(med(lambda r: r["e"]["pp"] / r["l"]["pp"]), "%.2fx"),
            fmt(med(lambda r: r["e"]["tg"])), fmt(med(lambda r: r["l"]["tg"])),
            fmt(med(lambda r: r["e"]["tg"] / r["l"]["tg"]), "%.2fx"),
            fmt(med(lambda r: r["eb"]["tg"])),
            fmt(med(lambda r: r["eb"]["tg"] / r["e"]["tg"]), "%.2fx"),
            fmt(bound),
            fmt(med(lambda r: 100 * r["e"]["tg"] * r["e"]["mb"] / (r["bw"] * 1e3)), "%.0f%%")))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
