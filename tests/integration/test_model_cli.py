#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`cluster-ai model info|run` on a synthetic GGUF model, and its errors on broken files."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "helpers"))
from cluster import BUILD, CLI, SLOW  # noqa: E402


def main():
    tool = os.path.join(BUILD, "engine", "engine-tool")
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "tiny.gguf")
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "helpers",
                                                     "make_model.py"),
                        "--tool", tool, "--arch", "llama", "--type", "Q8_0", "--shape", "tiny",
                        "--vocab", "spm", "--template", "chatml", "--seed", "3", model],
                       check=True, capture_output=True, timeout=120 * SLOW)
        r = subprocess.run([CLI, "model", "info", model], capture_output=True, timeout=60 * SLOW)
        assert r.returncode == 0, r
        out = r.stdout.decode()
        assert "llama" in out and "Q8_0" in out, out

        r = subprocess.run([CLI, "model", "run", "--temp", "0", "-n", "8", "-t", "1", model,
                            "hello"], capture_output=True, timeout=120 * SLOW)
        assert r.returncode == 0 and len(r.stdout) > 0, r
        # Greedy decoding is deterministic.
        r2 = subprocess.run([CLI, "model", "run", "--temp", "0", "-n", "8", "-t", "1", model,
                             "hello"], capture_output=True, timeout=120 * SLOW)
        assert r2.stdout == r.stdout, (r.stdout, r2.stdout)

        # A truncated file: a one-line error, a failure exit, no crash.
        bad = os.path.join(d, "truncated.gguf")
        with open(model, "rb") as f, open(bad, "wb") as g:
            g.write(f.read(5000))
        for verb in (["info", bad], ["run", bad, "hi"]):
            r = subprocess.run([CLI, "model"] + verb, capture_output=True, timeout=60 * SLOW)
            assert r.returncode not in (0, -11, -6) and r.returncode > 0, r
            assert r.stderr.strip() and len(r.stderr.splitlines()) <= 3, r.stderr
        r = subprocess.run([CLI, "model"], capture_output=True)
        assert r.returncode == 2, r
    print("ok model_cli")
    return 0


if __name__ == "__main__":
    sys.exit(main())
