#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Integration tests: a real cluster-scheduler and real cluster-agents on loopback,
driven through the cluster-ai command, signals and raw sockets.

Run one case: test_cluster.py NAME (meson registers each case as its own test)."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "helpers"))
from cluster import (run_case, SLOW, frame, free_port, hello, read_frame,  # noqa: E402
                     wait_for)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def two_agents(c, **kw):
    c.start_scheduler("--auto-approve", **kw)
    c.start_agent("alpha")
    c.start_agent("beta")


@case
def workers_and_status(c):
    two_agents(c)
    w = c.workers()
    assert set(w) == {"alpha", "beta"}, w
    for name, info in w.items():
        assert info["state"] == "ready", info
        assert info["cpus"] >= 1 and info["memory_bytes"] > 0, info
        assert info["address"].startswith("127.0.0.1:"), info
        assert info["heartbeat_age_ms"] < 3000 * SLOW, info
        assert len(info["fingerprint"]) == 64, info
    table = c.cli("workers").stdout.decode()
    assert "alpha" in table and "beta" in table and "ready" in table, table
    st = json.loads(c.cli("status", "--json").stdout)
    assert st["agents_ready"] == 2 and st["agents_lost"] == 0, st
    assert st["scheduler"] == "test-scheduler" and len(st["fingerprint"]) == 64, st
    human = c.cli("status").stdout.decode()
    assert "2 ready" in human, human
    # The heartbeats carry the probes' load; --probes shows it with its source.
    for info in w.values():
        load = info["load"]
        assert load and load["probe_source"], info
        assert load["mem_total_bytes"] > 0 and 0 <= load["cpu_busy"] <= 1, load
    probes = c.cli("workers", "--probes").stdout.decode()
    assert "RUNQ-P99" in probes and "alpha" in probes, probes
    assert ("bpf" in probes) or ("proc" in probes), probes
    # Heartbeats keep coming: the age stays small over several intervals.
    time.sleep(2.5)
    for info in c.workers().values():
        assert info["heartbeat_age_ms"] < 2000 * SLOW, info


@case
def run_streams_and_exit_codes(c):
    two_agents(c)
    r = c.cli("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3, r
    assert r.stdout == b"out\n" and r.stderr == b"err\n", r
    r = c.cli("run", "--", "true")
    assert r.returncode == 0 and r.stdout == b"", r
    r = c.cli("run", "--", "sh", "-c", "exit 255", check=False)
    assert r.returncode == 255, r
    # Killed by a signal: 128 + N, as a shell reports it.
    r = c.cli("run", "--", "sh", "-c", "kill -KILL $$", check=False)
    assert r.returncode == 137, r
    # Not found / not executable, like a shell.
    r = c.cli("run", "--", "no-such-command-xyz", check=False)
    assert r.returncode == 127 and b"not found" in r.stderr, r
    r = c.cli("run", "--", "/etc/hostname", check=False)
    assert r.returncode == 126, r
    # stdin is forwarded, EOF included.
    data = b"".join(b"line %d\n" % i for i in range(20000))
    r = c.cli("run", "--", "cat", input=data)
    assert r.stdout == data, (len(r.stdout), len(data))
    r = c.cli("run", "--", "wc", "-l", input=data)
    assert r.stdout.strip() == b"20000", r
    r = c.cli("run", "--no-stdin", "--", "cat")
    assert r.stdout == b"", r
    # Environment: ours is not leaked, --env is passed.
    r = c.cli("run", "--env", "GREETING=hello world", "--", "sh", "-c",
              'printf "%s|%s" "$GREETING" "${CLUSTER_TEST_SECRET:-unset}"')
    assert r.stdout == b"hello world|unset", r
    # --agent pins the placement.
    for name in ("alpha", "beta"):
        r = c.cli("run", "--agent", name, "--", "sh", "-c", "pwd")
        assert ("agent-%s" % name).encode() in r.stdout, r
    r = c.cli("run", "--agent", "gamma", "--", "true", check=False)
    assert r.returncode == 125 and b"no such agent" in r.stderr, r


@case
def run_large_output(c):
    two_agents(c)
    # 32 MiB through the credit window: every byte arrives, in order.
    r = c.cli("run", "--", "sh", "-c", "head -c 33554432 /dev/zero | tr '\\0' 'x'; echo end >&2",
              timeout=120)
    assert len(r.stdout) == 32 << 20 and r.stdout.count(b"x") == 32 << 20, len(r.stdout)
    assert r.stderr == b"end\n", r.stderr
    # A slow reader: the remote writer is throttled, nothing is lost.
    p = c.popen_cli("run", "--", "sh", "-c", "seq 1 300000", stdout=subprocess.PIPE)
    got = b""
    while True:
        chunk = p.stdout.read(4096)
        if not chunk:
            break
        got += chunk
        if len(got) < 200000:
            time.sleep(0.001)
    assert p.wait(60 * SLOW) == 0
    expect = b"".join(b"%d\n" % i for i in range(1, 300001))
    assert hashlib.sha256(got).digest() == hashlib.sha256(expect).digest(), len(got)


@case
def run_timeout(c):
    two_agents(c)
    t = time.monotonic()
    r = c.cli("run", "--timeout", "1", "--", "sleep", "30", check=False)
    assert r.returncode == 124, r
    assert time.monotonic() - t < 10 * SLOW
    # A command that ignores SIGTERM is killed after the grace period.
    t = time.monotonic()
    r = c.cli("run", "--timeout", "500ms", "--", "sh", "-c", "trap '' TERM; sleep 30",
              check=False)
    assert r.returncode == 124, r
    assert time.monotonic() - t < 15 * SLOW


def processes_with(marker):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout.decode()
    return [l for l in out.splitlines() if l.startswith(marker)]


@case
def run_cancel_kills_group(c):
    two_agents(c)
    marker = "1%d.5" % os.getpid()  # unique sleep duration
    p = c.popen_cli("run", "--", "sh", "-c",
                    "sleep %s & sleep %s & echo started; wait" % (marker, marker),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"started\n"
    wait_for(lambda: len(processes_with("sleep " + marker)) == 2, 10, "both sleeps")
    p.send_signal(signal.SIGINT)
    rc = p.wait(15 * SLOW)
    assert rc == 130, (rc, p.stderr.read())
    wait_for(lambda: not processes_with("sleep " + marker), 10, "the process group to die")
    st = json.loads(c.cli("status", "--json").stdout)
    assert st["running_tasks"] == 0, st


@case
def agent_killed(c):
    two_agents(c)
    p = c.popen_cli("run", "--agent", "alpha", "--", "sh", "-c", "echo up; sleep 60",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"up\n"
    t = time.monotonic()
    c.agents["alpha"].kill9()
    rc = p.wait(10 * SLOW)
    err = p.stderr.read()
    assert rc == 125 and b"lost" in err, (rc, err)
    c.wait_worker("alpha", "lost", timeout=3)
    assert time.monotonic() - t < 3 * SLOW + 0.5, time.monotonic() - t
    assert c.workers()["beta"]["state"] == "ready"
    # The cluster keeps working on what is left.
    r = c.cli("run", "--", "echo", "still")
    assert r.stdout == b"still\n"
    del c.agents["alpha"]


@case
def scheduler_restart(c):
    port = free_port()
    c.start_scheduler("--auto-approve", listen="127.0.0.1:%d" % port)
    c.start_agent("alpha")
    c.start_agent("beta")
    assert c.scheduler.stop() == 0
    c.start_scheduler("--auto-approve", listen="127.0.0.1:%d" % port)
    c.wait_worker("alpha", "ready", timeout=15)
    c.wait_worker("beta", "ready", timeout=15)
    r = c.cli("run", "--", "echo", "again")
    assert r.stdout == b"again\n"
    for a in c.agents.values():
        assert a.alive()


@case
def tokens(c):
    c.start_scheduler()
    # No token: refused, and told why.
    a = c.start_agent("nobody", wait=False)
    wait_for(lambda: "not admitted" in a.text(), 10, "the refusal in the agent's log")
    assert "nobody" not in (c.workers() or {})
    assert a.stop() == 0
    # A wrong token: refused too.
    b = c.start_agent("wrong", token="cat1-00000000-" + "0" * 32, wait=False)
    wait_for(lambda: "not admitted" in b.text(), 10, "the refusal")
    assert "wrong" not in (c.workers() or {})
    assert b.stop() == 0
    # A created token admits; revoked, it admits no one new; the admitted agent stays.
    tok = c.token()
    assert tok.startswith("cat1-"), tok
    c.start_agent("good", token=tok)
    lst = json.loads(c.cli("token", "list", "--json").stdout)
    assert len(lst) == 1 and lst[0]["uses"] == 1 and not lst[0]["revoked"], lst
    assert tok not in c.cli("token", "list").stdout.decode()  # secret never listed
    c.cli("token", "revoke", lst[0]["id"])
    d = c.start_agent("late", token=tok, wait=False)
    wait_for(lambda: "not admitted" in d.text(), 10, "the refusal of a revoked token")
    assert d.stop() == 0
    r = c.cli("token", "revoke", "ffffffff", check=False)
    assert r.returncode == 1 and b"no token" in r.stderr, r
    # The admitted agent rejoins after a restart without its token.
    g = c.agents["good"]
    assert g.stop() == 0
    argv = [x for x in g.argv]
    i = argv.index("--token")
    del argv[i:i + 2]
    c.agents["good"] = type(g)("agent good", argv, g.log_path, env=c.env)
    c.wait_worker("good", "ready")


@case
def changed_scheduler_certificate(c):
    port = free_port()
    c.start_scheduler("--auto-approve", listen="127.0.0.1:%d" % port)
    c.start_agent("alpha")
    assert c.scheduler.stop() == 0
    # Another scheduler (another key) on the same address: a rogue.
    c.start_scheduler("--auto-approve", listen="127.0.0.1:%d" % port, state="rogue")
    a = c.agents["alpha"]
    wait_for(lambda: "is pinned" in a.text(), 15, "the agent to refuse the new certificate")
    time.sleep(1)
    assert "alpha" not in (c.workers() or {}), c.workers()
    assert a.alive()


@case
def hostile_peers(c):
    two_agents(c)
    host, port = c.address.rsplit(":", 1)
    # Garbage instead of TLS on the cluster port.
    s = socket.create_connection((host, int(port)))
    s.sendall(os.urandom(4096))
    s.settimeout(5 * SLOW)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    # A wrong protocol version on the control socket: a clear error, then close.
    u = socket.socket(socket.AF_UNIX)
    u.connect(c.socket)
    u.sendall(frame(hello(version=99, min_version=99)))
    reply = read_frame(u)
    assert reply and b"incompatible protocol" in reply, reply
    u.close()
    # An oversize frame: refused before it is buffered.
    u = socket.socket(socket.AF_UNIX)
    u.connect(c.socket)
    u.sendall((1 << 30).to_bytes(4, "big") + b"x" * 1000)
    reply = read_frame(u)
    assert reply is None or b"exceeds" in reply or b"too large" in reply.lower(), reply
    u.close()
    # A malformed envelope after a valid hello.
    u = socket.socket(socket.AF_UNIX)
    u.connect(c.socket)
    u.sendall(frame(hello()))
    assert read_frame(u) is not None  # welcome
    u.sendall(frame(b"\xff\xff\xff\xff\xff"))
    try:
        reply = read_frame(u)
    except ConnectionResetError:
        reply = None
    u.close()
    # Silence: a connection that never says hello is dropped, others are unaffected.
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(c.socket)
    # Everything still works for everyone else.
    assert c.scheduler.alive()
    r = c.cli("run", "--", "echo", "fine")
    assert r.stdout == b"fine\n"
    assert set(c.workers()) == {"alpha", "beta"}
    idle.close()


@case
def cli_errors(c):
    # The CLI against a scheduler that is not there.
    r = c.cli("status", check=False)
    assert r.returncode == 3 and b"scheduler" in r.stderr, r
    r = c.cli("run", "--", "true", check=False)
    assert r.returncode == 125, r
    r = c.cli("frobnicate", check=False)
    assert r.returncode == 2, r
    r = c.cli("run", "--cpus", "lots", "--", "true", check=False)
    assert r.returncode == 2 and b"--cpus" in r.stderr, r
    # A scheduler with no agents says so.
    c.start_scheduler()
    r = c.cli("run", "--", "true", check=False)
    assert r.returncode == 125 and b"no agents" in r.stderr, r
    # A config with a typo: the daemon refuses to start and names file:line:column.
    bad = os.path.join(c.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("cluster: lab\nheartbeat_intervall: 1s\n")
    from cluster import SCHEDULER
    r = subprocess.run([SCHEDULER, "--config", bad, "--state-dir", os.path.join(c.dir, "x"),
                        "--control-socket", os.path.join(c.dir, "x.sock"),
                        "--listen", "127.0.0.1:0"], capture_output=True, timeout=30 * SLOW)
    assert r.returncode != 0 and b"bad.yaml:2:" in r.stderr and b"heartbeat_interval" in r.stderr, r


@case
def queueing(c):
    c.start_scheduler("--auto-approve")
    c.start_agent("solo", "--max-tasks", "1", "--cpus", "1")
    # Two tasks on a one-slot agent: the second waits for the first.
    t = time.monotonic()
    p1 = c.popen_cli("run", "--", "sh", "-c", "sleep 1; echo one", stdout=subprocess.PIPE)
    time.sleep(0.2)
    p2 = c.popen_cli("run", "--", "echo", "two", stdout=subprocess.PIPE)
    assert p2.wait(30 * SLOW) == 0 and p1.wait(30 * SLOW) == 0
    assert p1.stdout.read() == b"one\n" and p2.stdout.read() == b"two\n"
    assert time.monotonic() - t >= 1.0
    r = c.cli("run", "--cpus", "64", "--", "true", check=False)
    assert r.returncode == 125 and b"enough CPUs" in r.stderr, r


@case
def client_vanishes(c):
    """A client killed while its task floods output it never reads: the task is
    cancelled and its slot comes back, whether the task was still running or had
    already exited with output pending."""
    c.start_scheduler("--auto-approve")
    c.start_agent("solo", "--max-tasks", "1")
    for cmd in ("head -c 100000000 /dev/zero", "head -c 3000000 /dev/zero; exit 0"):
        p = c.popen_cli("run", "--", "sh", "-c", cmd, stdout=subprocess.PIPE)
        time.sleep(1.0)  # the window fills, the agent stops reading the pipe
        p.kill()
        p.wait()
        t = time.monotonic()
        r = c.cli("run", "--", "echo", "next", timeout=30)
        assert r.stdout == b"next\n", r
        assert time.monotonic() - t < 10 * SLOW
    st = json.loads(c.cli("status", "--json").stdout)
    assert st["running_tasks"] == 0, st


@case
def agent_drain(c):
    """SIGTERM to an agent with a task running: it shows as draining, takes nothing
    new, lets the task finish with all its output, then leaves and exits 0."""
    c.start_scheduler("--auto-approve")
    c.start_agent("alpha")
    c.start_agent("beta")
    p = c.popen_cli("run", "--agent", "alpha", "--", "sh", "-c", "echo go; sleep 2; echo done",
                    stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"go\n"
    a = c.agents["alpha"]
    a.proc.send_signal(signal.SIGTERM)
    c.wait_worker("alpha", "draining", timeout=5)
    # Nothing new lands on a draining agent: these all go to beta.
    for _ in range(4):
        r = c.cli("run", "--", "sh", "-c", "pwd")
        assert b"agent-beta" in r.stdout, r
    assert c.workers()["alpha"]["state"] == "draining"
    assert p.wait(20 * SLOW) == 0
    assert p.stdout.read() == b"done\n"
    assert a.proc.wait(20 * SLOW) == 0, a.text()
    c.wait_worker("alpha", "lost", timeout=5)
    del c.agents["alpha"]


if __name__ == "__main__":
    sys.exit(run_case(CASES))
