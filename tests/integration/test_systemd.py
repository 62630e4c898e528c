#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The scheduler under a service manager: socket activation through
systemd-socket-activate, and the sd_notify protocol read from our own NOTIFY_SOCKET.

Run one case: test_systemd.py NAME."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "helpers"))
from cluster import run_case, SCHEDULER, SLOW, Daemon, free_port, skip, wait_for  # noqa: E402


def empty_config(c):
    path = os.path.join(c.dir, "empty.yaml")
    open(path, "w").close()
    return path


def socket_activation(c):
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        skip("systemd-socket-activate is not installed")
    port = free_port()
    argv = [activate, "-l", "127.0.0.1:%d" % port, "-l", c.socket,
            "--fdname=cluster:control", "-E", "CLUSTER_LOG_TARGET=console",
            SCHEDULER, "--state-dir", os.path.join(c.dir, "scheduler"),
            "--control-socket", os.path.join(c.dir, "not-used.sock"),
            "--listen", "127.0.0.1:1", "--auto-approve", "--log-level", "debug",
            "--config", empty_config(c)]
    c.scheduler = Daemon("scheduler", argv, os.path.join(c.dir, "scheduler.log"), env=c.env)
    # systemd-socket-activate execs the scheduler on the first connection.
    st = wait_for(c._status_or_none, 20, "the activated scheduler")
    assert st["listen"] == "127.0.0.1:%d" % port, st
    assert not os.path.exists(os.path.join(c.dir, "not-used.sock")), \
        "the scheduler bound its own control socket instead of the passed one"
    c.address = st["listen"]
    c.start_agent("alpha")
    r = c.cli("run", "--", "echo", "activated")
    assert r.stdout == b"activated\n"
    assert "passed by the service manager" in c.scheduler.text()


def recv_all(sock, until, timeout):
    msgs = []
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            break
        msgs.append(data)
        if until(data):
            return msgs
    raise AssertionError("no notification matching; got %r" % msgs)


def notify_protocol(c):
    path = os.path.join(c.dir, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    env = dict(c.env)
    env["NOTIFY_SOCKET"] = path
    env["WATCHDOG_USEC"] = "400000"
    # WATCHDOG_PID must be the scheduler's own PID: exec through a shell.
    argv = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', SCHEDULER,
            "--listen", "127.0.0.1:0", "--control-socket", c.socket,
            "--state-dir", os.path.join(c.dir, "scheduler"), "--auto-approve",
            "--config", empty_config(c)]
    c.scheduler = Daemon("scheduler", argv, os.path.join(c.dir, "scheduler.log"), env=env)
    msgs = recv_all(ns, lambda m: "READY=1" in m, 20)
    assert any("READY=1" in m for m in msgs), msgs
    st = wait_for(c._status_or_none, 10, "the scheduler")
    c.address = st["listen"]
    c.start_agent("alpha")
    # STATUS follows the cluster; the watchdog is fed at half the interval.
    recv_all(ns, lambda m: "STATUS=1 agents" in m, 10)
    recv_all(ns, lambda m: "WATCHDOG=1" in m, 5)
    recv_all(ns, lambda m: "WATCHDOG=1" in m, 5)
    # SIGHUP: RELOADING=1, then READY=1 again.
    c.scheduler.proc.send_signal(signal.SIGHUP)
    recv_all(ns, lambda m: "RELOADING=1" in m, 10)
    recv_all(ns, lambda m: "READY=1" in m, 10)
    # SIGTERM: STOPPING=1 and exit 0.
    c.scheduler.proc.send_signal(signal.SIGTERM)
    recv_all(ns, lambda m: "STOPPING=1" in m, 10)
    assert c.scheduler.proc.wait(15 * SLOW) == 0, c.scheduler.text()
    ns.close()


def drain(c):
    """SIGTERM lets a running task finish, refuses new work, then exits 0."""
    c.start_scheduler("--auto-approve")
    c.start_agent("alpha")
    p = c.popen_cli("run", "--", "sh", "-c", "echo go; sleep 1; echo done",
                    stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"go\n"
    c.scheduler.proc.send_signal(signal.SIGTERM)
    assert p.wait(20 * SLOW) == 0
    assert p.stdout.read() == b"done\n"
    assert c.scheduler.proc.wait(20 * SLOW) == 0, c.scheduler.text()


CASES = {f.__name__: f for f in (socket_activation, notify_protocol, drain)}


if __name__ == "__main__":
    sys.exit(run_case(CASES))
