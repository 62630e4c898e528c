# SPDX-License-Identifier: GPL-2.0-or-later
"""Start real cluster-ai daemons on loopback for the integration tests.

Every test gets its own temporary directory holding the scheduler's and each
agent's state directory, the control socket and the daemons' logs. Nothing here
mocks a part of cluster-ai: the tests drive the real binaries through their
public interfaces (the CLI, the sockets, signals) and read their logs.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("CLUSTER_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SCHEDULER = os.path.join(BUILD, "daemon", "cluster-scheduler")
AGENT = os.path.join(BUILD, "agent", "cluster-agent")
CLI = os.path.join(BUILD, "cli", "cluster-ai")

# Sanitizer builds are several times slower: scale every wait.
SLOW = float(os.environ.get("CLUSTER_TEST_SLOWDOWN", "1"))


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                         % (timeout * SLOW, what, last))


class Daemon:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)

    def alive(self):
        return self.proc.poll() is None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.alive():
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not stop within %ss after %s"
                                 % (self.name, timeout * SLOW, sig))
        finally:
            self.log.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Cluster:
    def __init__(self, keep=False):
        for b in (SCHEDULER, AGENT, CLI):
            if not os.access(b, os.X_OK):
                raise AssertionError("missing binary %s (set CLUSTER_BUILD_DIR)" % b)
        self.dir = tempfile.mkdtemp(prefix="cluster-ai-test-")
        # Tasks run as an unprivileged user when the tests run as root: it must be able
        # to reach its work directory below ours.
        os.chmod(self.dir, 0o711)
        self.keep = keep
        self.socket = os.path.join(self.dir, "scheduler.sock")
        self.scheduler = None
        self.agents = {}
        self.address = None
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("LISTEN_FDS", None)
        self.env["CLUSTER_LOG_TARGET"] = "console"

    # -- daemons -----------------------------------------------------------------

    def start_scheduler(self, *extra, listen="127.0.0.1:0", state="scheduler",
                        wait=True, env=None):
        argv = [SCHEDULER, "--listen", listen, "--control-socket", self.socket,
                "--state-dir", os.path.join(self.dir, state), "--name", "test-scheduler",
                "--log-level", "debug", "--config", os.path.join(self.dir, "scheduler.yaml")]
        argv += list(extra)
        if not os.path.exists(os.path.join(self.dir, "scheduler.yaml")):
            with open(os.path.join(self.dir, "scheduler.yaml"), "w") as f:
                f.write("# test configuration\n")
        self.scheduler = Daemon("scheduler", argv, os.path.join(self.dir, "scheduler.log"),
                                env=env or self.env)
        if wait:
            st = wait_for(self._status_or_none, 20, "the scheduler to answer")
            self.address = st["listen"]
        return self.scheduler

    def _status_or_none(self):
        if self.scheduler and not self.scheduler.alive():
            raise AssertionError("scheduler exited with %s:\n%s"
                                 % (self.scheduler.proc.returncode, self.scheduler.text()))
        r = self.cli("status", "--json", check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def start_agent(self, name, *extra, token=None, address=None, wait=True):
        argv = [AGENT, "--scheduler", address or self.address, "--name", name,
                "--state-dir", os.path.join(self.dir, "agent-" + name),
                "--log-level", "debug", "--config", os.path.join(self.dir, "agent.yaml")]
        if token:
            argv += ["--token", token]
        argv += list(extra)
        if not os.path.exists(os.path.join(self.dir, "agent.yaml")):
            with open(os.path.join(self.dir, "agent.yaml"), "w") as f:
                f.write("# test configuration\nreconnect_min: 100ms\nreconnect_max: 1s\n"
                        "run_as: nobody\n")
        d = Daemon("agent " + name, argv, os.path.join(self.dir, "agent-%s.log" % name),
                   env=self.env)
        self.agents[name] = d
        if wait:
            self.wait_worker(name, "ready")
        return d

    def token(self):
        r = self.cli("token", "create", "--description", "test")
        return r.stdout.decode().strip()

    # -- the CLI -----------------------------------------------------------------

    def cli(self, *args, input=None, check=True, timeout=60):
        r = subprocess.run([CLI, "--socket", self.socket] + list(args), input=input,
                           capture_output=True, timeout=timeout * SLOW, env=self.env)
        if check and r.returncode != 0:
            raise AssertionError("cluster-ai %s exited %d\nstdout: %r\nstderr: %r"
                                 % (" ".join(args), r.returncode, r.stdout[:2000],
                                    r.stderr[:2000]))
        return r

    def popen_cli(self, *args, **kw):
        return subprocess.Popen([CLI, "--socket", self.socket] + list(args), env=self.env, **kw)

    def workers(self):
        r = self.cli("workers", "--json", check=False)
        if r.returncode != 0:
            return None
        return {w["name"]: w for w in json.loads(r.stdout)}

    def wait_worker(self, name, state, timeout=20):
        def check():
            a = self.agents.get(name)
            if state == "ready" and a and not a.alive():
                raise AssertionError("agent %s exited with %s:\n%s"
                                     % (name, a.proc.returncode, a.text()))
            w = self.workers() or {}
            return w.get(name, {}).get("state") == state
        wait_for(check, timeout, "agent %s to be %s" % (name, state))

    # -- teardown ----------------------------------------------------------------

    def stop(self):
        """Stops everything; a daemon that fails to exit 0 on SIGTERM (a crash, a
        sanitizer report, a leak) fails the test."""
        problems = []
        for name, a in list(self.agents.items()):
            if a.alive():
                rc = a.stop()
                if rc != 0:
                    problems.append("agent %s exited %s:\n%s" % (name, rc, a.text()[-4000:]))
        if self.scheduler and self.scheduler.alive():
            rc = self.scheduler.stop()
            if rc != 0:
                problems.append("scheduler exited %s:\n%s" % (rc, self.scheduler.text()[-4000:]))
        for d in [self.scheduler] + list(self.agents.values()):
            if d and ("ERROR: AddressSanitizer" in d.text() or "runtime error:" in d.text()):
                problems.append("%s: sanitizer report:\n%s" % (d.name, d.text()[-6000:]))
        if not self.keep and not problems:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise AssertionError("\n\n".join(problems) + "\n(logs kept in %s)" % self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        except AssertionError:
            if exc[0] is None:
                raise
        return False


# -- raw protocol, for hostile-peer tests ----------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def hello(version=1, min_version=1, role=3, name=b"raw", token=b""):
    h = field(1, 0, version) + field(2, 0, min_version) + field(3, 0, role) + field(4, 2, name)
    if token:
        h += field(6, 2, token)
    return field(1, 2, h)


def frame(payload):
    return len(payload).to_bytes(4, "big") + payload


def read_frame(sock, timeout=5):
    sock.settimeout(timeout * SLOW)
    buf = b""
    while len(buf) < 4:
        chunk = sock.recv(4 - len(buf))
        if not chunk:
            return None
        buf += chunk
    n = int.from_bytes(buf, "big")
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
