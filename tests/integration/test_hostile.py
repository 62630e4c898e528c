#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile peers against a real cluster-scheduler: a raw-protocol client on the control
socket and a fake agent (its own self-signed certificate) on the TLS cluster port send
garbage, absurd values and floods. After each attack the scheduler is alive, answers
`cluster-ai status` quickly, runs a real command on a real agent, and exits 0 on
SIGTERM without a sanitizer report (Cluster.stop() checks the last two).

Run one case: test_hostile.py NAME (meson registers each case as its own test)."""

import json
import math
import os
import random
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "helpers"))
from cluster import (run_case, SLOW, RawPeer, agent_info, envelope, field, frame,  # noqa: E402
                     heartbeat, hello, make_cert, mutate, parse_fields, ping, run_request,
                     status_request,
                     task_ack, task_cancel, task_exit, task_input, task_output, task_started,
                     vm_rss_kib, wait_for)

CASES = {}
# AddressSanitizer's redzones and shadow memory add to every allocation.
MEM = 1.5 if SLOW > 1 else 1
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def setup(c):
    # Under AddressSanitizer freed memory waits in a quarantine of 256 MiB before reuse:
    # keep it small, so that VmRSS measures what the scheduler holds.
    asan = c.env.get("ASAN_OPTIONS", "")
    c.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=8"
    c.start_scheduler("--auto-approve")
    c.start_agent("alpha")


def healthy(c, what):
    """The scheduler survived `what`: alive, status is quick, a real command runs."""
    assert c.scheduler.alive(), "scheduler died after %s:\n%s" % (what, c.scheduler.text()[-4000:])
    t = time.monotonic()
    st = json.loads(c.cli("status", "--json", timeout=10).stdout)
    took = time.monotonic() - t
    assert took < 3 * SLOW, "status took %.1fs after %s" % (took, what)
    assert st["agents_ready"] >= 1, st
    r = c.cli("run", "--agent", "alpha", "--", "echo", "ok", timeout=30)
    assert r.stdout == b"ok\n", (what, r)


def client(c):
    p = RawPeer.control(c.socket)
    p.hello()
    return p


def still_talks(p):
    """The connection is still served: a ping gets its pong."""
    p.send(ping(4242))
    m = p.recv_until({"pong", "error"})
    assert m and m[0] == "pong" and m[1][1] == [4242], m


def drain(p, seconds=0.05):
    """Reads whatever is there for a moment; False at EOF."""
    try:
        while True:
            m = p.recv(seconds / SLOW)
            if m is None:
                return False
    except (socket.timeout, TimeoutError):
        return True


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# -- garbage -----------------------------------------------------------------------

@case
def garbage_frames(c):
    """Random and mutated frames after a valid hello, on fresh connections: each is
    answered with an Error (or ignored) and nobody else notices."""
    setup(c)
    rng = random.Random(int(os.environ.get("CLUSTER_TEST_SEED", "1234")))
    seeds = [run_request(["/bin/true"], agent="alpha"), status_request(7), ping(9),
             task_ack(1, 5), task_input(1, b"data", True), task_cancel(1, 9),
             run_request(["/bin/true"], env=["A=b"], cpus=1, memory=1 << 20, timeout_ms=10),
             envelope("token_request", field(1, 0, 3) + field(2, 0, 2)),
             agent_info(), heartbeat(), task_exit(1), hello()]
    for i in range(200):
        p = client(c)
        kind = rng.randrange(3)
        if kind == 0:
            payload = os.urandom(rng.randint(0, 64))
        else:
            payload = mutate(rng.choice(seeds), rng)
        if kind == 2:
            # A bad length prefix around a good-looking body.
            p.sock.sendall(rng.choice([0, 1, 3, 0xFFFFFF, 0xFFFFFFFF]).to_bytes(4, "big") +
                           payload)
        else:
            p.send(payload)
        drain(p)
        p.close()
    healthy(c, "200 garbage frames")
    # Messages only other roles send, from a client: an error each, the session stays.
    p = client(c)
    for m in (agent_info(), heartbeat(), task_exit(1), task_started(1), task_output(1, b"x"),
              envelope("welcome", field(1, 0, 1)), envelope("status_reply", b""),
              envelope("task_start", field(1, 2, field(2, 2, b"true")))):
        p.send(m)
        r = p.recv_until({"error", "pong"})
        assert r and r[0] == "error", r
    still_talks(p)
    p.close()
    healthy(c, "misdirected messages")
    # Strings from peers end up in log messages: they cannot forge log lines.
    q = RawPeer.control(c.socket)
    q.send(field(1, 2, field(1, 0, 1) + field(2, 0, 1) + field(3, 0, 3) +
                 field(4, 2, b"n\nFORGED-NAME") + field(7, 2, b"x\n<0>FORGED-CLUSTER")))
    m = q.recv()
    assert m and m[0] == "error", m
    q.close()
    lines = c.scheduler.text().splitlines()
    assert any("FORGED-CLUSTER" in line for line in lines), "the refusal was not logged"
    assert not [line for line in lines if line.startswith(("FORGED", "<0>FORGED"))], lines[-5:]


@case
def absurd_values(c):
    setup(c)
    p = client(c)

    def answer(req):
        p.send(req)
        return p.recv_until({"error", "task_started", "task_exit"}, timeout=20)

    # Resources nobody has: refused, not queued forever.
    for kw in ({"cpus": U32}, {"memory": U64}, {"cpus": U32, "memory": U64}):
        m = answer(run_request(["true"], request_id=5, **kw))
        assert m[0] == "error" and m[1][3] == [5], (kw, m)
    # An empty argv or an empty command, env entries that are not KEY=value.
    q = client(c)
    q.send(envelope("run_request", field(1, 0, 6) + field(2, 2, b"")))
    m = q.recv()
    assert m and m[0] == "error", m  # a protocol error: argv needs an entry
    assert q.recv() is None
    q.close()
    for req in (run_request([""], request_id=6), run_request(["true"], request_id=6, env=["NOEQ"]),
                run_request(["true"], request_id=6, env=["=x"])):
        m = answer(req)
        assert m and m[0] == "error", m
    still_talks(p)
    # 4096 argv entries is the limit: it runs; 4097 is a protocol error.
    argv = ["sh", "-c", 'echo "$#"', "sh"] + ["a"] * 4092
    m = answer(run_request(argv, request_id=8, agent="alpha"))
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    out = b""
    while True:
        m = p.recv_until({"task_output", "task_exit"})
        if m[0] == "task_exit":
            break
        out += m[1][3][0]
    assert out == b"4092\n", out
    q = client(c)
    q.send(run_request(["true"] * 4097))
    m = q.recv()
    assert m and m[0] == "error", m
    assert q.recv() is None  # and closed
    q.close()
    # A huge timeout, a huge output window, a huge memory reservation that fits nobody.
    m = answer(run_request(["echo", "hi"], request_id=9, timeout_ms=U32, output_window=U32,
                           agent="alpha"))
    assert m[0] == "task_started", m
    m = p.recv_until({"task_exit"})
    # Unknown task ids: ignored, the session goes on.
    for t in (0, 1, tid + 1000, U64):
        p.send(task_input(t, b"x" * 1000))
        p.send(task_input(t, b"", True))
        p.send(task_ack(t, U64))
        p.send(task_cancel(t, 9))
    still_talks(p)
    # A running task of ours: acks of 2^63 bytes, absurd signals.
    m = answer(run_request(["sh", "-c", "echo go; exec sleep 30"], request_id=10,
                           agent="alpha", stdin=True))
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    for n in (1 << 63, U64, 1 << 62, 1 << 62):
        p.send(task_ack(tid, n))
    for sig in (-1, -(1 << 31), (1 << 31) - 1, 65, 1000):
        p.send(task_cancel(tid, sig))
    m = p.recv_until({"task_exit"}, timeout=20)
    assert m and m[0] == "task_exit", m
    still_talks(p)
    p.close()
    healthy(c, "absurd values")


# -- many connections, slow connections ---------------------------------------------

@case
def silent_connections(c):
    """Connections that never say hello are bounded and dropped after the hello
    timeout; the control socket keeps answering even when the cluster port is full."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    setup(c)
    pid = c.scheduler.proc.pid
    base = fds(pid)
    host, port = c.address.rsplit(":", 1)
    socks = []
    for i in range(200):
        u = socket.socket(socket.AF_UNIX)
        u.connect(c.socket)
        socks.append(u)
    # More TCP connections than the scheduler accepts in all (agents + clients + 64).
    refused = 0
    for i in range(1500):
        try:
            socks.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError:
            refused += 1
    t = time.monotonic()
    healthy(c, "1700 silent connections")
    assert fds(pid) < base + 1500, (base, fds(pid))
    # They go after the hello timeout (10 s), without anyone closing them.
    wait_for(lambda: fds(pid) <= base + 5, 20, "silent connections to be dropped")
    assert time.monotonic() - t < 20 * SLOW
    for u in socks:
        u.close()
    healthy(c, "silent connections closed")


@case
def remote_clients_full(c):
    """Remote clients (with a token) fill max_clients: the next remote one is told the
    scheduler is busy, and the local command still works."""
    with open(os.path.join(c.dir, "scheduler.yaml"), "w") as f:
        f.write("max_clients: 4\n")
    setup(c)
    tok = c.token()
    cert = make_cert(c.dir, "remote")
    held = []
    for i in range(4):
        r = RawPeer.tls(c.address, *cert)
        r.hello(name="remote-%d" % i, token=tok)
        held.append(r)
    r = RawPeer.tls(c.address, *cert)
    r.send(hello(name=b"one-too-many", token=tok.encode()))
    m = r.recv()
    assert m and m[0] == "error" and b"too many clients" in m[1][2][0], m
    r.close()
    healthy(c, "max_clients remote clients")
    for r in held:
        r.close()


@case
def slowloris(c):
    """A hello, then a frame, one byte every 100 ms: others are served meanwhile, and a
    peer that has not finished its hello after 10 s is dropped."""
    setup(c)
    pre = RawPeer.control(c.socket)
    post = client(c)
    msg = frame(hello())
    big = (1 << 20).to_bytes(4, "big") + b"\x4a" * 64
    host, port = c.address.rsplit(":", 1)
    tcp = socket.create_connection((host, int(port)))
    t = time.monotonic()
    i = 0
    pre_closed = False
    while time.monotonic() - t < 13:
        try:
            pre.sock.send(msg[i % len(msg):i % len(msg) + 1] if i < len(msg) - 1 else b"\0")
        except OSError:
            pre_closed = True
        try:
            tcp.send(b"\x16")
        except OSError:
            pass
        if i < len(big):
            post.sock.send(big[i:i + 1])
        i += 1
        if i % 20 == 0:
            r = c.cli("status", "--json", timeout=10)
            assert r.returncode == 0
        time.sleep(0.1)
    # 13 s in: the unfinished hello and the unfinished TLS handshake are gone.
    pre.sock.settimeout(2 * SLOW)
    try:
        while pre.sock.recv(4096):
            pass
        pre_closed = True
    except (ConnectionResetError, BrokenPipeError):
        pre_closed = True
    except socket.timeout:
        pass
    assert pre_closed, "a peer dribbling its hello was not dropped"
    tcp.settimeout(2 * SLOW)
    try:
        while tcp.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    pre.close()
    post.close()
    tcp.close()
    healthy(c, "slowloris")


@case
def big_frames_before_hello(c):
    """Peers that have not said who they are announce 16 MiB frames and send most of
    them: refused at the header, the scheduler does not buffer them."""
    setup(c)
    pid = c.scheduler.proc.pid
    for _ in range(3):
        healthy(c, "warm-up")
    before = vm_rss_kib(pid)
    body = b"\x0a" * (8 << 20)
    socks = []
    for i in range(24):
        u = socket.socket(socket.AF_UNIX)
        u.connect(c.socket)
        u.settimeout(2 * SLOW)
        try:
            u.sendall(((16 << 20) - 1).to_bytes(4, "big") + body)
        except (socket.timeout, TimeoutError, BrokenPipeError, ConnectionResetError):
            pass
        socks.append(u)
    cert = make_cert(c.dir, "big")
    for i in range(4):
        a = RawPeer.tls(c.address, *cert)
        a.sock.settimeout(2 * SLOW)
        try:
            a.sock.sendall(((16 << 20) - 1).to_bytes(4, "big") + body)
        except (socket.timeout, TimeoutError, BrokenPipeError, ConnectionResetError, OSError):
            pass
        socks.append(a.sock)
    grew = vm_rss_kib(pid) - before
    print("8 MiB of a frame from 28 peers before hello: VmRSS +%d KiB" % grew)
    assert grew < 32 * 1024 * MEM, grew
    healthy(c, "big frames before hello")
    for u in socks:
        u.close()


# -- floods --------------------------------------------------------------------------

def flood(c, payload, count, reader_check=None):
    """Sends payload count times on one connection and never reads; returns the
    scheduler's VmRSS growth in KiB."""
    pid = c.scheduler.proc.pid
    p = client(c)
    # Warm up: the scheduler's allocator reaches its steady state first.
    for _ in range(3):
        healthy(c, "warm-up")
    before = vm_rss_kib(pid)
    p.sock.settimeout(0.5 * SLOW)
    sent = 0
    blocked = 0
    chunk = frame(payload) * 64
    while sent < count:
        try:
            p.sock.sendall(chunk)
            sent += 64
        except (socket.timeout, TimeoutError):
            # The scheduler stopped reading us: that is the bound working.
            blocked += 1
            if blocked >= 3:
                break
        except (BrokenPipeError, ConnectionResetError):
            break  # or it closed us
        if reader_check and sent % 4096 == 0:
            reader_check()
    time.sleep(0.5)
    after = vm_rss_kib(pid)
    healthy(c, "a flood")
    p.close()
    return after - before, sent


@case
def unread_replies(c):
    """A client that sends requests in a loop without reading the replies: the
    scheduler stops reading it instead of queueing megabytes of answers."""
    setup(c)
    grew, sent = flood(c, status_request(1), 200000,
                       reader_check=lambda: c.cli("status", timeout=10))
    print("status flood: %d requests sent, VmRSS +%d KiB" % (sent, grew))
    assert grew < 24 * 1024 * MEM, grew
    grew, sent = flood(c, ping(1), 400000)
    print("ping flood: %d requests sent, VmRSS +%d KiB" % (sent, grew))
    assert grew < 24 * 1024 * MEM, grew


@case
def queue_flood(c):
    """RunRequests in a loop for an agent that is away: the queue is bounded in memory,
    not only in count, and others still get served."""
    setup(c)
    c.start_agent("gone")
    c.agents["gone"].stop()
    del c.agents["gone"]
    c.wait_worker("gone", "lost", timeout=10)
    big = ["sh", "-c", "true"] + ["x" * 1000] * 120  # ~120 KiB per request
    grew, sent = flood(c, run_request(big, agent="gone"), 3000)
    print("queue flood: %d requests sent, VmRSS +%d KiB" % (sent, grew))
    assert grew < 160 * 1024 * MEM, grew
    st = json.loads(c.cli("status", "--json").stdout)
    print("queued: %d" % st["queued_tasks"])


@case
def input_flood(c):
    """A client that ignores stdin credit and floods TaskInput for a task that never
    reads its stdin: the agent connection survives, memory stays bounded."""
    setup(c)
    pid = c.scheduler.proc.pid
    p = client(c)
    p.send(run_request(["sleep", "60"], agent="alpha", stdin=True))
    m = p.recv_until({"task_started", "error"})
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    before = vm_rss_kib(pid)
    apid = c.agents["alpha"].proc.pid
    abefore = vm_rss_kib(apid)
    data = task_input(tid, b"i" * (1 << 20))
    p.sock.settimeout(0.5 * SLOW)
    for i in range(200):
        try:
            p.sock.sendall(frame(data))
        except (socket.timeout, TimeoutError, BrokenPipeError, ConnectionResetError):
            break
    time.sleep(0.5)
    grew = vm_rss_kib(pid) - before
    agrew = vm_rss_kib(apid) - abefore
    print("input flood: %d MiB sent, VmRSS +%d KiB, agent +%d KiB" % (i, grew, agrew))
    assert grew < 24 * 1024 * MEM, grew
    assert agrew < 24 * 1024 * MEM, agrew
    m = p.recv_until({"error"}, timeout=10)
    assert m and b"window" in m[1][2][0], m
    p.close()
    healthy(c, "a stdin flood")
    assert c.workers()["alpha"]["state"] == "ready"


@case
def ack_credit(c):
    """A client that acks 2^63 bytes it never read (and asks for a 4 GiB window): the
    agent may only send what the client's window allows, so the scheduler holds about
    a window for it, not the connection's 64 MiB limit."""
    setup(c)
    pid = c.scheduler.proc.pid
    for _ in range(3):
        healthy(c, "warm-up")
    before = vm_rss_kib(pid)
    p = client(c)
    p.send(run_request(["head", "-c", "200000000", "/dev/zero"], agent="alpha",
                       output_window=U32))
    m = p.recv_until({"task_started", "error"})
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    for _ in range(16):
        p.send(task_ack(tid, 1 << 63))
    time.sleep(3 * SLOW)
    grew = vm_rss_kib(pid) - before
    print("unread output with a forged credit: VmRSS +%d KiB" % grew)
    assert grew < 32 * 1024 * MEM, grew
    # The client is still connected and its task still there: it can read on. (It
    # acks by the megabyte: a client that does not read is not read either, so one
    # that blocks writing an ack per chunk while 16 MiB wait for it would stall.)
    got = unacked = 0
    while got < 20 << 20:
        m = p.recv_until({"task_output", "task_exit", "error"})
        assert m and m[0] == "task_output", m
        got += len(m[1][3][0])
        unacked += len(m[1][3][0])
        if unacked >= 1 << 20:
            p.send(task_ack(tid, unacked))
            unacked = 0
    p.send(task_cancel(tid, 9))
    m = p.recv_until({"task_exit"}, timeout=20)
    assert m and m[0] == "task_exit", m
    # A client far behind on its task's output can still cancel it.
    p.send(run_request(["yes"], agent="alpha", output_window=U32))
    m = p.recv_until({"task_started", "error"})
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    time.sleep(1 * SLOW)
    p.send(task_ack(tid, 1))  # as a client does while it reads, slowly
    p.send(task_cancel(tid, 9))
    wait_for(lambda: "Task %d cancelled" % tid in c.agents["alpha"].text(), 5,
             "the cancel to reach the agent")
    m = p.recv_until({"task_exit"}, timeout=20)
    assert m and m[0] == "task_exit", m
    p.close()
    healthy(c, "forged credit")


@case
def cancel_flood(c):
    """A client cancels its task 20000 times (and sends as many empty inputs): the
    agent hears it once per signal, not 20000 times."""
    setup(c)
    p = client(c)
    p.send(run_request(["sh", "-c", "trap '' TERM; echo up; sleep 60"], agent="alpha",
                       stdin=True))
    m = p.recv_until({"task_started", "error"})
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    m = p.recv_until({"task_output"})
    burst = (frame(task_cancel(tid, 0)) + frame(task_input(tid))) * 1000
    for _ in range(20):
        p.sock.sendall(burst)
    p.send(task_cancel(tid, 9))
    m = p.recv_until({"task_exit"}, timeout=20)
    assert m and m[0] == "task_exit", m
    lines = [line for line in c.agents["alpha"].text().splitlines() if "cancelled" in line]
    assert 1 <= len(lines) <= 4, lines[:10]
    p.close()
    healthy(c, "a cancel flood")


# -- a fake agent on the cluster port -----------------------------------------------

def fake_agent(c, name="fake", cert=None):
    cert = cert or make_cert(c.dir, name)
    a = RawPeer.tls(c.address, *cert)
    a.send(hello(role=2, name=name.encode()))
    m = a.recv()
    assert m and m[0] == "welcome", m
    return a, cert


@case
def fake_agent_lies(c):
    setup(c)
    a, cert = fake_agent(c)
    # 2^32-1 CPUs, 2^64-1 bytes, 2^32-1 slots; heartbeats with NaN, infinities, huge
    # numbers.
    a.send(agent_info(cpus=U32, memory=U64, max_tasks=U32))
    for seq, v in enumerate((-1.0, 3.4e38, math.inf, -math.inf, math.nan)):
        a.send(heartbeat(seq=seq, cpu_busy=v, load_avg1=v, psi=v, runq_p99=v, running=U32,
                         used_cpus=U32, mem_total=U64))
    wait_for(lambda: (c.workers() or {}).get("fake", {}).get("state") == "ready", 10,
             "the fake agent to be ready")
    # The scheduler keeps numbers: the CLI's JSON has the fake agent's load, and no
    # NaN (which is not JSON).
    def no_constants(x):
        raise AssertionError("%s in the JSON" % x)
    def fake_load():
        ws = json.loads(c.cli("workers", "--json").stdout, parse_constant=no_constants)
        return [w for w in ws if w["name"] == "fake"][0]["load"]
    load = wait_for(fake_load, 5, "the fake agent's load in the JSON")
    assert load["cpu_busy"] == 0 and load["runq_latency_p99_us"] == 0, load
    c.cli("workers", "--probes")
    c.cli("status")
    # A real task on the real agent; the fake one claims it is over, talks about tasks
    # it does not have, acks and outputs for everyone's ids.
    p = client(c)
    p.send(run_request(["sh", "-c", "sleep 2; echo real"], agent="alpha"))
    m = p.recv_until({"task_started", "error"})
    assert m[0] == "task_started", m
    tid = m[1][1][0]
    for t in (tid, 0, 1, tid + 1, U64):
        a.send(task_exit(t, kind=2, exit_code=-1, sig=-(1 << 31)))
        a.send(task_output(t, os.urandom(1000)))
        a.send(task_started(t, pid=U32))
        a.send(task_ack(t, U64))
    out = b""
    while True:
        m = p.recv_until({"task_output", "task_exit"}, timeout=20)
        if m[0] == "task_exit":
            break
        out += m[1][3][0]
    assert out == b"real\n" and m[1][2] == [1], (out, m)  # EXITED, from alpha
    # A task placed on the fake agent: it floods output without credit, then says the
    # task ended twice; the client hears one exit.
    p.send(run_request(["whatever"], agent="fake", request_id=77))
    m = a.recv_until({"task_start"})
    spec = m[1][1][0]
    ftid = parse_fields(spec)[1][0]
    a.send(task_started(ftid, pid=1))
    chunk = task_output(ftid, b"o" * 65536)
    for _ in range(64):
        a.send(chunk)
    a.send(task_exit(ftid, kind=1, exit_code=7))
    a.send(task_exit(ftid, kind=1, exit_code=8))
    got = 0
    while True:
        m = p.recv_until({"task_output", "task_exit", "error"}, timeout=20)
        assert m is not None
        if m[0] != "task_output":
            break
        got += len(m[1][3][0])
    assert m[0] == "task_exit" and m[1][3] == [7], m
    still_talks(p)
    # The fake agent sends what only clients send, with a task running: it is closed,
    # and the task's client hears the task is lost.
    p.send(run_request(["whatever"], agent="fake", request_id=78))
    a.recv_until({"task_start"})
    a.send(run_request(["true"]))
    m = a.recv_until({"error"})
    assert m and m[0] == "error" and a.recv() is None, m
    a.close()
    m = p.recv_until({"task_exit", "error"}, timeout=20)
    assert m and m[0] == "task_exit" and m[1][2] == [6], m  # EXIT_LOST
    p.close()
    healthy(c, "a lying agent")


@case
def agent_names_flood(c):
    """One auto-approved certificate claiming name after name: live agents stay bounded
    by max_agents, and names that left do not keep new agents out."""
    with open(os.path.join(c.dir, "scheduler.yaml"), "w") as f:
        f.write("max_agents: 8\n")
    setup(c)
    cert = make_cert(c.dir, "many")
    live = []
    for i in range(7):
        a, _ = fake_agent(c, "many-%d" % i, cert)
        live.append(a)
    # The ninth live agent is one too many.
    a = RawPeer.tls(c.address, *cert)
    a.send(hello(role=2, name=b"many-x"))
    m = a.recv()
    assert m and m[0] == "error" and b"too many agents" in m[1][2][0], m
    a.close()
    for a in live:
        a.close()
    # Forty more names come and go.
    for i in range(40):
        a, _ = fake_agent(c, "gone-%d" % i, cert)
        a.close()
    w = wait_for(lambda: len(c.workers() or {}) <= 8 and c.workers(), 10, "at most 8 agents")
    assert w["alpha"]["state"] == "ready", w
    c.start_agent("late")
    healthy(c, "a flood of agent names")
    r = c.cli("run", "--agent", "late", "--", "echo", "late")
    assert r.stdout == b"late\n", r


@case
def fat_agent_info(c):
    """Agents describing themselves with the most the protocol allows (4096 features and
    4096 models of 255 bytes, 2 MiB each): the scheduler keeps a bounded copy, and the
    status of ten of them still fits in a frame."""
    setup(c)
    cert = make_cert(c.dir, "fat")
    pid = c.scheduler.proc.pid
    before = vm_rss_kib(pid)
    lots = ["f%03d" % (i % 1000) + "x" * 251 for i in range(4096)]
    live = []
    for i in range(10):
        a, _ = fake_agent(c, "fat-%d" % i, cert)
        a.send(agent_info(cpus=2, features=lots, models=lots))
        a.send(heartbeat())
        live.append(a)
    wait_for(lambda: sum(1 for w in (c.workers() or {}).values() if w["state"] == "ready") == 11,
             10, "the fat agents")
    grew = vm_rss_kib(pid) - before
    print("10 agents with 2 MiB of AgentInfo each: VmRSS +%d KiB" % grew)
    assert grew < 24 * 1024 * MEM, grew
    w = c.workers()
    assert 0 < len(w["fat-3"]["features"]) <= 256, len(w["fat-3"]["features"])
    healthy(c, "fat agent infos")
    for a in live:
        a.close()


@case
def status_larger_than_a_frame(c):
    """With a small max_frame, three agents' features and models make the status larger
    than a frame: it is answered without those lists instead of failing."""
    with open(os.path.join(c.dir, "scheduler.yaml"), "w") as f:
        f.write("max_frame: 64KiB\n")
    setup(c)
    cert = make_cert(c.dir, "wide")
    lots = ["w%03d" % i + "y" * 251 for i in range(60)]
    live = []
    for i in range(3):
        a, _ = fake_agent(c, "wide-%d" % i, cert)
        a.send(agent_info(cpus=2, features=lots, models=lots))
        live.append(a)
    wait_for(lambda: (c.workers() or {}).get("wide-2", {}).get("cpus") == 2, 10,
             "the wide agents")
    w = c.workers()
    assert w["wide-0"]["features"] == [] and w["alpha"]["cpus"] >= 1, w["wide-0"]
    healthy(c, "a status larger than a frame")
    for a in live:
        a.close()


@case
def agent_unread_errors(c):
    """An agent that sends messages only clients send, in a loop, without reading: it
    is closed at the first, not answered until its connection's limit."""
    setup(c)
    pid = c.scheduler.proc.pid
    for _ in range(3):
        healthy(c, "warm-up")
    before = vm_rss_kib(pid)
    a, _ = fake_agent(c)
    a.send(agent_info(cpus=1))
    a.sock.settimeout(1 * SLOW)
    chunk = frame(status_request(1)) * 1024
    sent = 0
    try:
        for i in range(400):
            a.sock.sendall(chunk)
            sent += 1024
    except (OSError, socket.timeout, TimeoutError):
        pass
    time.sleep(0.5)
    grew = vm_rss_kib(pid) - before
    print("agent sent %d status requests: VmRSS +%d KiB" % (sent, grew))
    assert grew < 24 * 1024 * MEM, grew
    lines = [line for line in c.scheduler.text().splitlines() if "Unexpected" in line]
    assert len(lines) < 100, len(lines)
    a.close()
    healthy(c, "an agent sending client requests")


def pump(peer, seen, seconds=0.01):
    """Reads what is there; records task ids and TaskStarts. False at EOF."""
    while True:
        try:
            m = peer.recv(seconds / SLOW)
        except (socket.timeout, TimeoutError):
            return True
        except ValueError:
            continue
        if m is None:
            return False
        name, f = m
        if name in ("task_started", "task_output", "task_exit") and 1 in f:
            seen["ids"].add(f[1][0])
        if name == "task_start":
            spec = parse_fields(f[1][0])
            seen["starts"].append(spec[1][0])


@case
def random_sessions(c):
    """Valid messages with random values in random order, from two clients and a fake
    agent at once: task ids that exist and that do not, cancels, acks and input at any
    point of a task's life, a fake agent answering TaskStart at random."""
    setup(c)
    rng = random.Random(int(os.environ.get("CLUSTER_TEST_SEED", "99")))
    seen = {"ids": {0, 1, U64}, "starts": []}
    clients = [client(c), client(c)]
    agent, _ = fake_agent(c)
    agent.send(agent_info(cpus=4, max_tasks=8))
    agent.send(heartbeat())
    commands = [["true"], ["echo", "x"], ["cat"], ["sleep", "0.2"],
                ["sh", "-c", "head -c 300000 /dev/zero"], ["no-such-command"]]
    for step in range(400):
        p = rng.choice(clients)
        ids = sorted(seen["ids"])
        tid = rng.choice(ids)
        kind = rng.randrange(8)
        if kind == 0:
            msg = run_request(rng.choice(commands), request_id=step, stdin=rng.random() < 0.5,
                              agent=rng.choice(["", "alpha", "fake", "nobody"]),
                              cpus=rng.choice([0, 1, 2, U32]),
                              memory=rng.choice([0, 1 << 20, U64]),
                              timeout_ms=rng.choice([0, 1, 200]),
                              output_window=rng.choice([0, 1, 4096, U32]))
        elif kind == 1:
            msg = task_ack(tid, rng.choice([0, 1, 65536, 1 << 63, U64]))
        elif kind == 2:
            msg = task_input(tid, os.urandom(rng.choice([0, 1, 8192])), rng.random() < 0.3)
        elif kind == 3:
            msg = task_cancel(tid, rng.choice([0, 9, 15, 19, -1, 1000]))
        elif kind == 4:
            msg = status_request(step)
        elif kind == 5:
            msg = ping(step)
        else:
            msg = None
        if msg:
            try:
                p.send(msg)
            except OSError:
                pass
        # The fake agent answers what it was given, at random.
        if seen["starts"] and rng.random() < 0.5:
            ftid = rng.choice(seen["starts"])
            r = rng.randrange(5)
            m = [task_started(ftid, pid=rng.randrange(1 << 32)),
                 task_output(ftid, os.urandom(rng.choice([0, 100, 65536]))),
                 task_exit(ftid, kind=rng.randrange(9), exit_code=rng.randrange(-300, 300)),
                 task_ack(ftid, rng.choice([1, U64])), heartbeat(seq=step)][r]
            agent.send(m)
            if r == 2:
                seen["starts"].remove(ftid)
        if step % 20 == 0:
            agent.send(heartbeat(seq=step))  # or it is lost after 3 s
        for q in clients:
            pump(q, seen)
        assert pump(agent, seen), "the fake agent was closed:\n" + c.scheduler.text()[-3000:]
    for q in clients:
        q.close()
    agent.close()
    healthy(c, "random sessions")
    wait_for(lambda: json.loads(c.cli("status", "--json").stdout)["running_tasks"] == 0, 15,
             "every task to end")


@case
def fake_agent_garbage(c):
    """Mutated frames from an admitted agent over TLS, each on a new session."""
    setup(c)
    rng = random.Random(int(os.environ.get("CLUSTER_TEST_SEED", "4321")))
    cert = make_cert(c.dir, "fuzzy")
    seeds = [agent_info(cpus=4), heartbeat(cpu_busy=0.5), task_output(1, b"x" * 40),
             task_exit(1), task_started(1), task_ack(1, 100), ping(3)]
    for i in range(40):
        a, _ = fake_agent(c, "fuzzy", cert)
        a.send(agent_info(cpus=2))
        for _ in range(5):
            a.send(mutate(rng.choice(seeds), rng))
        drain(a)
        a.close()
    # Garbage before the hello, over TLS.
    a = RawPeer.tls(c.address, *cert)
    a.send(os.urandom(100))
    drain(a)
    a.close()
    healthy(c, "garbage from an agent")


if __name__ == "__main__":
    sys.exit(run_case(CASES))
