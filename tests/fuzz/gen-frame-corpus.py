#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz-frame: valid frames of several message types and
hostile ones. Run it from anywhere; it writes next to itself into corpus/frame/.

It encodes protobuf by hand (a few lines for varints and length-delimited fields) so
that it needs nothing but Python; field numbers follow proto/cluster.proto."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "frame")


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def u(field, n):
    return key(field, 0) + varint(n)


def s(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def f32(field, x):
    return key(field, 5) + struct.pack("<f", x)


def env(field, body):
    """An Envelope holding message `field` of the oneof."""
    return s(field, body)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


HELLO, WELCOME, ERROR, GOODBYE, PING, PONG, AGENT_INFO, HEARTBEAT = range(1, 9)
RUN_REQUEST, TASK_START, TASK_STARTED, TASK_OUTPUT, TASK_ACK = range(9, 14)
TASK_INPUT, TASK_CANCEL, TASK_EXIT, STATUS_REQUEST, STATUS_REPLY = range(14, 19)
TOKEN_REQUEST, TOKEN_REPLY = 19, 20

hello = env(HELLO, u(1, 1) + u(2, 1) + u(3, 2) + s(4, "node-1") +
            s(5, "cluster-ai 0.1.0") + s(6, "tok-secret") + s(7, "lab"))
welcome = env(WELCOME, u(1, 1) + s(2, "sched") + s(3, "lab") + u(4, 1000) + u(5, 77))
error = env(ERROR, u(1, 9) + s(2, "frame too large") + u(3, 12))
ping = env(PING, u(1, 5) + u(2, 1700000000000000))
pong = env(PONG, u(1, 5) + u(2, 1700000000000000))
load = (f32(1, 0.25) + f32(2, 1.5) + u(3, 8 << 30) + u(4, 16 << 30) + f32(5, 0.1) +
        u(8, 3) + u(9, 4) + u(11, 1 << 20) + f32(12, 12.5) + s(18, "bpf"))
heartbeat = env(HEARTBEAT, u(1, 42) + s(2, load))
agent_info_body = (s(1, "node-1") + s(2, "x86_64") + s(3, "6.18.0") + u(4, 8) +
                   u(5, 16 << 30) + s(6, "cgroup") + s(6, "bpf") + s(7, "llama3.2") +
                   u(8, 0) + s(9, "cluster-ai 0.1.0") + u(10, 16))
agent_info = env(AGENT_INFO, agent_info_body)
spec = (u(1, 1001) + s(2, "make") + s(2, "-j4") + s(3, "CC=gcc") + s(3, "LANG=C.UTF-8") +
        u(4, 4) + u(5, 1 << 30) + u(6, 60000) + s(7, "") + u(9, 65536) + s(10, "src"))
run_request = env(RUN_REQUEST, u(1, 7) + s(2, spec))
task_start = env(TASK_START, s(1, spec))
task_started = env(TASK_STARTED, u(1, 1001) + s(2, "node-1") + u(3, 4242) + u(4, 7))
task_output = env(TASK_OUTPUT, u(1, 1001) + u(2, 1) + s(3, bytes(range(256)) * 4))
task_ack = env(TASK_ACK, u(1, 1001) + u(2, 1024))
task_input = env(TASK_INPUT, u(1, 1001) + s(2, b"input\n") + u(3, 1))
task_cancel = env(TASK_CANCEL, u(1, 1001) + u(2, 15))
task_exit = env(TASK_EXIT, u(1, 1001) + u(2, 1) + u(3, 0) + u(6, 1234567) + u(7, 1000) +
                u(8, 200) + u(9, 1 << 24) + s(10, "node-1"))
worker = (s(1, "node-1") + s(2, "10.0.0.2:40112") + s(3, "ready") + s(4, agent_info_body) +
          s(5, load) + u(6, 2) + u(7, 300) + s(9, "ab" * 32))
status_reply = env(STATUS_REPLY, u(1, 3) + s(2, worker) + s(2, worker) + s(3, "sched") +
                   s(5, "0.1.0") + u(6, 99) + s(10, "cd" * 32) + s(11, "0.0.0.0:8786"))
token_request = env(TOKEN_REQUEST, u(1, 4) + u(2, 1) + s(4, "for the lab") + u(5, 3600))
token_reply = env(TOKEN_REPLY, u(1, 4) + s(2, s(1, "t1") + s(2, "secret") + u(4, 1) + u(6, 2)))

SEEDS = {
    # valid frames, one per file
    "hello": frame(hello),
    "welcome": frame(welcome),
    "error": frame(error),
    "ping-pong": frame(ping) + frame(pong),
    "goodbye": frame(env(GOODBYE, s(1, "draining"))),
    "agent-info": frame(agent_info),
    "heartbeat": frame(heartbeat),
    "run-request": frame(run_request),
    "task-start": frame(task_start),
    "task-started": frame(task_started),
    "task-output": frame(task_output),
    "task-ack-input-cancel": frame(task_ack) + frame(task_input) + frame(task_cancel),
    "task-exit": frame(task_exit),
    "status": frame(env(STATUS_REQUEST, u(1, 3))) + frame(status_reply),
    "tokens": frame(token_request) + frame(token_reply),
    "session": b"".join(frame(m) for m in (hello, welcome, agent_info, heartbeat,
                                           task_start, task_output, task_exit)),
    # hostile
    "huge-length": struct.pack(">I", 0xFFFFFFFF) + b"\x0a\x00" * 8,
    "over-limit": struct.pack(">I", 20000000) + hello,
    "zero-length": struct.pack(">I", 0) + frame(hello),
    "truncated": frame(hello)[:-3],
    "truncated-header": b"\x00\x00",
    "nested-garbage": frame(env(TASK_START, s(1, b"\x0a\x7f\xff\xff"))),
    "bad-wire-type": frame(u(HELLO, 1)),
    "unknown-only": frame(u(21, 5)),
    "bad-utf8": frame(env(HELLO, s(4, b"node\xc0\xafx"))),
    "run-request-no-spec": frame(env(RUN_REQUEST, u(1, 7))),
    "deep-length-overflow": frame(env(STATUS_REPLY, key(2, 2) + varint(1 << 40))),
    "valid-then-garbage": frame(ping) + b"\x00\x00\x00\x04\xff\xff\xff\xff",
    # field number 0 in a two-byte tag: protobuf-c unpacks it but cannot read it back
    "unknown-field-zero": frame(env(PING, u(1, 5) + b"\x80\x00\x00")),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
