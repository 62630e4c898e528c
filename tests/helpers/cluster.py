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

    def stop(self, sig=signal.SIGTERM, timeout=35):
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


def run_case(cases):
    """main() of a test file: runs the case named on the command line in a fresh
    Cluster; exit 0, or an exception (a failure) with the logs kept."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print("usage: %s {%s}" % (sys.argv[0], ",".join(cases)))
        return 2
    with Cluster(keep=bool(os.environ.get("CLUSTER_TEST_KEEP"))) as c:
        cases[sys.argv[1]](c)
    print("ok " + sys.argv[1])
    return 0


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


# -- more of the protocol, by hand (field numbers from proto/cluster.proto) -------

import ssl  # noqa: E402
import struct  # noqa: E402

# Envelope oneof field numbers.
ENV = {"hello": 1, "welcome": 2, "error": 3, "goodbye": 4, "ping": 5, "pong": 6,
       "agent_info": 7, "heartbeat": 8, "run_request": 9, "task_start": 10,
       "task_started": 11, "task_output": 12, "task_ack": 13, "task_input": 14,
       "task_cancel": 15, "task_exit": 16, "status_request": 17, "status_reply": 18,
       "token_request": 19, "token_reply": 20}
ENV_NAME = {v: k for k, v in ENV.items()}


def u64(n):
    """A varint of a (possibly negative) integer, as protobuf encodes int32/int64."""
    return n & 0xFFFFFFFFFFFFFFFF


def f32(num, x):
    return varint(num << 3 | 5) + struct.pack("<f", x)


def s(x):
    return x if isinstance(x, bytes) else x.encode()


def envelope(kind, payload):
    return field(ENV[kind], 2, payload)


def run_request(argv, request_id=1, env=(), cpus=0, memory=0, timeout_ms=0, agent="",
                stdin=False, output_window=0, cwd=""):
    spec = b"".join(field(2, 2, s(a)) for a in argv)
    spec += b"".join(field(3, 2, s(e)) for e in env)
    if cpus:
        spec += field(4, 0, cpus)
    if memory:
        spec += field(5, 0, memory)
    if timeout_ms:
        spec += field(6, 0, timeout_ms)
    if agent:
        spec += field(7, 2, s(agent))
    if stdin:
        spec += field(8, 0, 1)
    if output_window:
        spec += field(9, 0, output_window)
    if cwd:
        spec += field(10, 2, s(cwd))
    return envelope("run_request", field(1, 0, request_id) + field(2, 2, spec))


def task_ack(task_id, nbytes):
    return envelope("task_ack", field(1, 0, task_id) + field(2, 0, nbytes))


def task_input(task_id, data=b"", eof=False):
    return envelope("task_input", field(1, 0, task_id) + field(2, 2, data) +
                    (field(3, 0, 1) if eof else b""))


def task_cancel(task_id, sig=0):
    return envelope("task_cancel", field(1, 0, task_id) + field(2, 0, u64(sig)))


def status_request(request_id=1):
    return envelope("status_request", field(1, 0, request_id))


def ping(nonce=1):
    return envelope("ping", field(1, 0, nonce))


def agent_info(cpus=1, memory=1 << 30, max_tasks=0, hostname="fake", features=(), models=()):
    p = field(1, 2, s(hostname)) + field(2, 2, b"x86_64") + field(3, 2, b"6.1")
    p += field(4, 0, cpus) + field(5, 0, memory)
    p += b"".join(field(6, 2, s(f)) for f in features)
    p += b"".join(field(7, 2, s(m)) for m in models)
    if max_tasks:
        p += field(10, 0, max_tasks)
    return envelope("agent_info", p)


def heartbeat(seq=1, cpu_busy=0.0, load_avg1=0.0, psi=0.0, runq_p99=0.0, running=0,
              used_cpus=0, mem_total=1 << 30):
    load = f32(1, cpu_busy) + f32(2, load_avg1) + field(3, 0, 1 << 29) + field(4, 0, mem_total)
    load += f32(5, psi) + f32(6, psi) + f32(7, psi) + field(8, 0, running)
    load += field(9, 0, used_cpus) + f32(12, runq_p99) + f32(13, runq_p99)
    load += field(18, 2, b"proc")
    return envelope("heartbeat", field(1, 0, seq) + field(2, 2, load))


def task_started(task_id, pid=1):
    return envelope("task_started", field(1, 0, task_id) + field(3, 0, pid))


def task_output(task_id, data, stream=1):
    return envelope("task_output", field(1, 0, task_id) + field(2, 0, stream) +
                    field(3, 2, data))


def task_exit(task_id, kind=1, exit_code=0, sig=0):
    return envelope("task_exit", field(1, 0, task_id) + field(2, 0, kind) +
                    field(3, 0, u64(exit_code)) + field(4, 0, u64(sig)))


def parse_fields(data):
    """{field number: [values]} of one protobuf message: ints for varints and fixed
    fields, bytes for length-delimited ones. Raises ValueError on garbage."""
    out = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire == 1:
            v, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wire == 5:
            v, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        elif wire == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(num, []).append(v)
    return out


def _read_varint(data, i):
    n = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def parse_envelope(data):
    """(message name, {field: [values]} of the message) of one frame's payload."""
    f = parse_fields(data)
    for num, vals in f.items():
        return ENV_NAME.get(num, str(num)), parse_fields(vals[0])
    return "none", {}


def mutate(data, rng):
    """A few random byte-level mutations of data, like a dumb fuzzer."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randint(0, 4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 8)]
        elif op == 2:
            pos = rng.randint(0, len(b))
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 4 and len(b) > 2:
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 16)]
    return bytes(b)


class RawPeer:
    """One protocol connection built by hand: the control socket (plain) or the cluster
    port (TLS 1.3 with a client certificate)."""

    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def control(cls, path):
        u = socket.socket(socket.AF_UNIX)
        u.settimeout(10 * SLOW)
        u.connect(path)
        return cls(u)

    @classmethod
    def tls(cls, address, cert, key):
        host, port = address.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the fingerprint is what counts, not a CA
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, int(port)), timeout=10 * SLOW)
        return cls(ctx.wrap_socket(raw))

    def send(self, payload):
        self.sock.sendall(frame(payload))

    def recv(self, timeout=5):
        """The next (name, fields), or None at EOF."""
        try:
            data = read_frame(self.sock, timeout)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return None
        if data is None:
            return None
        return parse_envelope(data)

    def recv_until(self, names, timeout=10):
        """Skips messages until one named in names arrives; None at EOF."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s" % (names,))
            m = self.recv(left / SLOW)
            if m is None or m[0] in names:
                return m

    def hello(self, role=3, name=b"raw", token=b""):
        self.send(hello(role=role, name=s(name), token=s(token)))
        m = self.recv()
        assert m and m[0] == "welcome", m
        return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_cert(directory, cn="fake-agent"):
    """A self-signed ECDSA client certificate made by certtool: (cert, key) paths."""
    if not shutil.which("certtool"):
        skip("certtool (gnutls-bin) is not installed")
    key = os.path.join(directory, cn + ".key")
    cert = os.path.join(directory, cn + ".crt")
    tmpl = os.path.join(directory, cn + ".tmpl")
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\nexpiration_days = 3650\ntls_www_client\nsigning_key\n' % cn)
    subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", key],
                   check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template",
                    tmpl, "--outfile", cert], check=True, capture_output=True)
    return cert, key


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)
