#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The probe view end to end: probe-tool --json prints one parseable snapshot per
interval with every field and a source for each metric; with --bpf (root suite) the
kernel-side metrics come from BPF, with --no-bpf never.

usage: probe-tool-check.py PROBE_TOOL (--bpf | --no-bpf)"""
import json
import os
import subprocess
import sys

FIELDS = ["timestamp_usec", "interval_usec", "runq_latency_p50_us", "runq_latency_p99_us",
          "runq_events", "cpu_busy", "io_latency_p50_us", "io_latency_p99_us", "io_events",
          "mem_available_bytes", "mem_total_bytes", "tcp_retransmits", "psi_cpu",
          "psi_memory", "psi_io", "load_avg", "tasks", "sources"]
METRICS = ["runq_latency", "cpu_busy", "psi_cpu", "psi_memory", "psi_io", "io_latency",
           "memory", "load_avg", "task_cpu", "tcp_retransmits"]


def main():
    tool, mode = sys.argv[1], sys.argv[2]
    bpf = mode == "--bpf"
    if bpf and os.geteuid() != 0:
        print("skipping: the BPF view needs root")
        return 77
    args = [tool, "--count", "2", "--interval", "200ms", "--json", "--watch", str(os.getpid())]
    if not bpf:
        args.append("--no-bpf")
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    if bpf and ("BPF unavailable" in out.stderr or "without BPF" in out.stderr):
        print("skipping: " + out.stderr.strip())
        return 77
    for line in lines:
        snap = json.loads(line)
        for f in FIELDS:
            assert f in snap, (f, snap)
        assert sorted(snap["sources"]) == sorted(METRICS), snap["sources"]
        for m, src in snap["sources"].items():
            assert src in ("bpf", "proc", "none"), (m, src)
            if not bpf:
                assert src != "bpf", (m, src)
        assert snap["interval_usec"] > 0
        assert 0 <= snap["cpu_busy"] <= 1
        assert 0 < snap["mem_available_bytes"] <= snap["mem_total_bytes"]
        assert len(snap["load_avg"]) == 3
        assert [t["pid"] for t in snap["tasks"]] == [os.getpid()], snap["tasks"]
        if bpf:
            for m in ("runq_latency", "io_latency", "task_cpu", "tcp_retransmits"):
                assert snap["sources"][m] == "bpf", (m, snap["sources"])
            assert snap["runq_events"] > 0
    print("ok: %d snapshots (%s)" % (len(lines), mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
