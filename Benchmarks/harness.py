#!/usr/bin/env python3
"""Portico's benchmark harness: Portico, nginx, HAProxy and Caddy proxying to the same nginx
backend on loopback, one system at a time, in interleaved rounds. Standard library only.

Called by Benchmarks/run (which installs the tools and builds Portico); see Benchmarks/README.md
for the method and how to read the table.
"""
import argparse
import datetime
import collections
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import idle_functions
import tracing_cost

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CONFIGS = os.path.join(HERE, "configs")
RESULTS = os.path.join(HERE, "results")

SUT_CORE = "1"    # the system under test
LOAD_CORE = "0"   # the load generator, the backend and this harness

BACKEND = {"BACKEND_H1": 18000, "BACKEND_H2C": 18001, "BACKEND_TLS": 18043}
PORTS = {
    "direct": {"H1": 18000, "H2C": 18001, "TLS": 18043, "TCP": 18000},
    "Portico": {"H1": 18100, "H2C": 18100, "TLS": 18143, "ADMIN": 18190, "TCP": 18150},
    "nginx": {"H1": 18200, "H2C": 18201, "TLS": 18243},
    "HAProxy": {"H1": 18300, "H2C": 18301, "TLS": 18343, "TCP": 18350},
    "Caddy": {"H1": 18400, "H2C": 18400, "TLS": 18443},
    # Not a gateway: the smallest proxy on SwiftNIO's own HTTP codecs (tools/nio-floor), to read
    # Portico's numbers against what its libraries cost. No TLS.
    "NIO floor": {"H1": 18600, "H2C": 18601, "H2UP": 18602},
}
SYSTEMS = ["direct", "Portico", "nginx", "HAProxy", "Caddy", "NIO floor"]
# Scenario 7 (HTTP/2 to the backend too): nginx with grpc_pass (its only HTTP/2 upstream),
# HAProxy with `proto h2`, Caddy with an h2c:// upstream. Envoy is not in Debian's packages.
# The NIO floor relays the frames between two `NIOHTTP2Handler`s and does nothing else (its
# `h2h2` listener, H2UP): the least any proxy built on swift-nio-http2 costs here.
H2_UPSTREAM_SYSTEMS = ["direct", "Portico", "nginx", "HAProxy", "Caddy", "NIO floor"]
# Scenario 8 (a TCP listener's throughput): against HAProxy in `mode tcp`, as the issue asks;
# the direct row is the backend itself. The body each request fetches through the pipe:
TCP_BODY_BYTES = 1 << 20
FLOOR_PORT = 18500
# Every cold start, Portico's and the floor's, begins after the previous worker has stopped
# and the machine has been quiet this long. A start right after the last one (the floor's
# loop did that) finds the core awake and its caches warm: a native floor of 0.5-0.7 ms
# against 1.0-1.4 ms after 10 to 350 ms of quiet, on the EPYC VM.
COLD_QUIET_S = 0.05

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: every one is started here, in its own process group, and stopped here.

class Processes:
    def __init__(self):
        self.running = []

    def start(self, name, argv, core, env=None, cwd=None, stdout=None, stderr=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        process = subprocess.Popen(["taskset", "-c", core] + argv, env=full_env, cwd=cwd,
                                   stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        process.bench_name = name
        self.running.append(process)
        return process

    def stop(self, process, grace=5.0):
        """SIGTERM to the group, a grace period, SIGKILL, then reap."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # leftovers in the group (nginx workers, function workers)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self):
        for process in list(reversed(self.running)):
            self.stop(process, grace=2.0)


PROCESSES = Processes()


def on_signal(number, _frame):
    raise SystemExit(128 + number)


# ---------------------------------------------------------------------------------------------
# /proc readings

def tree(pid):
    """pid and all its descendants."""
    pids, queue = [], [pid]
    while queue:
        p = queue.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    queue.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def cpu_seconds(pid):
    """user + system time of pid and its descendants, in seconds."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / CLK_TCK


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def serving_pid(pid):
    """The process that serves requests: nginx's worker (the master's child), else pid itself."""
    pids = tree(pid)
    return pids[-1] if len(pids) > 1 else pid


# ---------------------------------------------------------------------------------------------
# Setup

def render(template_name, values, destination):
    with open(os.path.join(CONFIGS, template_name)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    leftover = re.findall(r"\{\{[A-Z_0-9]+\}\}", text)
    if leftover:
        raise SystemExit(f"{template_name}: no value for {leftover}")
    with open(destination, "w") as f:
        f.write(text)
    return destination


def make_certificate(work):
    """A throwaway self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost."""
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    both = os.path.join(work, "cert-and-key.pem")
    with open(both, "w") as out:
        for path in (cert, key):
            with open(path) as f:
                out.write(f.read())
    return cert, key, both


def wait_accepting(port, timeout=20.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.bench_name} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_ready(url, timeout=30.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.bench_name} exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def read_response(s, data=b""):
    """Reads one HTTP/1.1 response with a Content-Length (what every server here sends); the
    connection is not read to its end, since a server may keep it open after Connection: close."""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", data[:end])
            if length and len(data) >= end + 4 + int(length.group(1)):
                return int(data.split(b" ", 2)[1]), data[end + 4:end + 4 + int(length.group(1))]
        chunk = s.recv(65536)
        if not chunk:
            raise OSError(f"connection closed in the middle of a response: {data[:200]!r}")
        data += chunk


def http_get(port, path="/", timeout=10.0):
    """One HTTP/1.1 request on a fresh connection; returns (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return read_response(s)


def tls_facts(port):
    """The TLS version, cipher and ALPN a client gets from the TLS port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as s:
            return {"version": s.version(), "cipher": s.cipher()[0], "alpn": s.selected_alpn_protocol()}


class System:
    """A system under test: started per round, pinned to the SUT core."""

    def __init__(self, name, settings):
        self.name, self.settings, self.process = name, settings, None
        self.work = settings.work

    def values(self):
        values = dict(BACKEND)
        values.update(PORTS[self.name])
        values.update(WORK=self.work, CERT=self.settings.cert, KEY=self.settings.key,
                      CERT_AND_KEY=self.settings.cert_and_key)
        return values

    def start(self):
        w, name = self.work, self.name
        stderr = open(os.path.join(w, f"{name}.stderr.log"), "ab")
        if name == "Portico":
            config = render("portico.yaml", self.values(), os.path.join(w, "portico.yaml"))
            functions = os.path.join(w, "no-functions")
            os.makedirs(functions, exist_ok=True)
            self.process = PROCESSES.start(name, [self.settings.binary, "serve", "--config", config,
                                                  "--functions", functions, "--threads", "1"],
                                           SUT_CORE, cwd=w, stderr=stderr)
            wait_ready(f"http://127.0.0.1:{PORTS[name]['ADMIN']}/ready", process=self.process)
        elif name == "nginx":
            for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                os.makedirs(os.path.join(w, "nginx-tmp", d), exist_ok=True)
            config = render("nginx.conf", self.values(), os.path.join(w, "nginx.conf"))
            self.process = PROCESSES.start(name, ["nginx", "-p", w, "-e", os.path.join(w, "nginx-error.log"),
                                                  "-c", config], SUT_CORE, stderr=stderr)
        elif name == "HAProxy":
            config = render("haproxy.cfg", self.values(), os.path.join(w, "haproxy.cfg"))
            self.process = PROCESSES.start(name, ["haproxy", "-db", "-f", config], SUT_CORE, stderr=stderr)
        elif name == "NIO floor":
            ports = PORTS[name]
            self.process = PROCESSES.start(name, [self.settings.floor_binary, str(BACKEND["BACKEND_H1"]),
                                                  f"h1proxy={ports['H1']}", f"h2proxy={ports['H2C']}",
                                                  f"h2h2={ports['H2UP']}:{BACKEND['BACKEND_H2C']}"],
                                           SUT_CORE, stderr=stderr)
        elif name == "Caddy":
            config = render("Caddyfile", self.values(), os.path.join(w, "Caddyfile"))
            home = os.path.join(w, "caddy-home")
            os.makedirs(home, exist_ok=True)
            self.process = PROCESSES.start(name, ["caddy", "run", "--config", config, "--adapter", "caddyfile"],
                                           SUT_CORE, cwd=w, stderr=stderr,
                                           env={"GOMAXPROCS": "1", "HOME": home, "XDG_DATA_HOME": home,
                                                "XDG_CONFIG_HOME": home})
        for port in PORTS[name].values():
            wait_accepting(port, process=self.process)
        time.sleep(0.2)
        status, body = http_get(PORTS[name]["H1"])
        if status != 200 or body != b"hello from the backend\n":
            raise RuntimeError(f"{name}: GET / answered {status} {body[:80]!r}")

    def stop(self):
        if self.process is not None:
            PROCESSES.stop(self.process)
            self.process = None


# ---------------------------------------------------------------------------------------------
# Load generators (all on the load core)

def warm_up(url, connections, seconds, h2=False):
    """The same load, not measured: opens the upstream connections, fills caches."""
    if not seconds:
        return
    if h2:
        argv = ["h2load", "-t1", f"-c{connections}", "-m32", f"-D{seconds}", url]
    else:
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    subprocess.run(["taskset", "-c", LOAD_CORE] + argv, capture_output=True, timeout=seconds + 30)


def run_wrk(url, connections, seconds, warmup=0):
    lua = os.path.join(CONFIGS, "wrk-report.lua")
    warm_up(url, connections, warmup)
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "--timeout", "5s", "-s", lua, url], capture_output=True, text=True, timeout=seconds + 60)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"wrk failed on {url}: {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(line[-1])
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "requests": r["requests"],
            "p50_us": r["p50_us"], "p99_us": r["p99_us"],
            "errors": r["connect"] + r["read"] + r["write"] + r["timeout"], "non_2xx": r["status"],
            "tool": "wrk"}


def parse_h2load(text, url):
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (m and req and codes):
        raise RuntimeError(f"h2load output not understood for {url}: {text[-800:]}")
    proto = re.search(r"Application protocol: (\S+)", text)
    return {"rps": float(m.group(2)), "requests": int(req.group(3)),
            "errors": int(req.group(5)) + int(req.group(6)) + int(req.group(7)),
            "non_2xx": int(codes.group(2)) + int(codes.group(3)) + int(codes.group(4)),
            "protocol": proto.group(1) if proto else None, "tool": "h2load"}


def run_h2load(url, clients, streams, seconds, warmup=0, expect_protocol="h2c"):
    warm_up(url, clients, warmup, h2=True)
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "h2load", "-t1", f"-c{clients}", f"-m{streams}",
                          f"-D{seconds}", url],
                         capture_output=True, text=True, timeout=seconds + warmup + 60)
    result = parse_h2load(out.stdout, url)
    if result["protocol"] != expect_protocol:
        raise RuntimeError(f"{url}: h2load spoke {result['protocol']}, expected {expect_protocol}")
    return result


def run_paced(port, connections, rate, seconds, warmup):
    """HTTP/1.1 keep-alive at a fixed total rate, open loop: request i is due at start + i/rate,
    sent on a free connection (round robin), and its latency runs from when it was due to the
    last byte of its response, so a stall is not hidden (no coordinated omission)."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    socks = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    interval = 1e9 / rate
    total, warm = int(rate * (seconds + warmup)), int(rate * warmup)
    start = time.perf_counter_ns() + 20_000_000
    give_up = start + int((seconds + warmup + 10) * 1e9)
    due = collections.deque()          # requests that are due and not sent yet: (index, due time)
    busy = {}                          # socket -> (index, due time, buffer)
    free = collections.deque(socks)
    latencies, non_2xx, errors, scheduled = [], 0, 0, 0
    try:
        while (scheduled < total or due or busy) and time.perf_counter_ns() < give_up:
            now = time.perf_counter_ns()
            while scheduled < total and start + scheduled * interval <= now:
                due.append((scheduled, start + scheduled * interval))
                scheduled += 1
            while due and free:
                s = free.popleft()
                index, t = due.popleft()
                try:
                    s.send(request)
                except OSError:
                    errors += 1
                    continue
                busy[s] = (index, t, b"")
            wait = 0.0 if scheduled >= total else max(0.0, (start + scheduled * interval - now) / 1e9)
            if not busy:
                time.sleep(wait)
                continue
            readable, _, _ = select.select(list(busy), [], [], wait if scheduled < total else 1.0)
            for s in readable:
                index, t, buffer = busy[s]
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    errors += 1
                    del busy[s]
                    continue
                buffer += chunk
                end = buffer.find(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buffer[:end]) if end >= 0 else None
                if end < 0 or length is None or len(buffer) < end + 4 + int(length.group(1)):
                    busy[s] = (index, t, buffer)
                    continue
                finished = time.perf_counter_ns()
                del busy[s]
                free.append(s)
                if index >= warm:
                    latencies.append((finished - t) / 1000)
                    if not buffer.startswith(b"HTTP/1.1 2"):
                        non_2xx += 1
    finally:
        for s in socks:
            s.close()
    measured = total - warm
    errors = max(errors, measured - len(latencies) )  # a request never answered is an error
    latencies.sort()
    return {"rps": len(latencies) / seconds, "requests": len(latencies), "target_rps": rate,
            "connections": connections, "p50_us": round(percentile(latencies, 50)) if latencies else None,
            "p99_us": round(percentile(latencies, 99)) if latencies else None,
            "errors": errors, "non_2xx": non_2xx, "tool": "harness paced client"}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


# ---------------------------------------------------------------------------------------------
# Scenarios 1-5, one system, one round

def measure_system(name, settings, backend):
    d = settings.durations
    ports = PORTS[name]
    sut = None
    result = {"system": name, "pid_measured": "backend nginx" if name == "direct" else name}
    try:
        if name != "direct":
            sut = System(name, settings)
            sut.start()
            pid = sut.process.pid
        else:
            pid = backend.pid
        server = serving_pid(pid)
        time.sleep(0.3)
        # The backend lives through every round: its idle peak is the one taken before any load.
        result["rss_idle_kib"] = settings.backend_idle_kib if name == "direct" else status_kib(server, "VmHWM")

        # 1. HTTP/1.1 keep-alive, 64 connections; 5. CPU per request over the same run.
        url = f"http://127.0.0.1:{ports['H1']}/"
        warm_up(url, 64, d["warmup"])
        cpu0 = cpu_seconds(pid)
        h1 = run_wrk(url, 64, d["h1"])
        cpu1 = cpu_seconds(pid)
        result["h1"] = h1
        result["cpu_window_h1_s"] = cpu1 - cpu0

        # 2. h2c prior knowledge, 16 connections x 32 streams.
        url = f"http://127.0.0.1:{ports['H2C']}/"
        warm_up(url, 16, 1, h2=True)
        cpu2 = cpu_seconds(pid)
        h2 = run_h2load(url, 16, 32, d["h2"])
        cpu3 = cpu_seconds(pid)
        result["h2c"] = h2
        result["cpu_window_h2c_s"] = cpu3 - cpu2

        # 7. HTTP/2 on both sides: h2c in, h2c to the backend (issue 16), 16 connections x 32
        # streams. Every system routes /h2up/ to the backend's h2c port (the NIO floor relays
        # everything on its own port); the direct row is that port itself.
        if name in H2_UPSTREAM_SYSTEMS:
            url = f"http://127.0.0.1:{ports.get('H2UP', ports['H2C'])}/h2up/"
            warm_up(url, 16, 1, h2=True)
            cpu4 = cpu_seconds(pid)
            result["h2up"] = run_h2load(url, 16, 32, d["h2"])
            cpu5 = cpu_seconds(pid)
            result["cpu_window_h2up_s"] = cpu5 - cpu4

        # 8. TCP throughput (issue 16): wrk through a byte pipe to the backend, 1 MiB a request
        # over 16 keep-alive connections (each its own upstream connection).
        if "TCP" in ports:
            url = f"http://127.0.0.1:{ports['TCP']}/big"
            warm_up(url, 16, d["warmup"])
            cpu6 = cpu_seconds(pid)
            result["tcp"] = run_wrk(url, 16, d["h1"])
            cpu7 = cpu_seconds(pid)
            result["cpu_window_tcp_s"] = cpu7 - cpu6

        # 3. TLS 1.3: HTTP/1.1 (wrk, no ALPN) and h2 (h2load, ALPN h2).
        if "TLS" in ports:
            result["tls_facts"] = tls_facts(ports["TLS"])
            result["tls_h1"] = run_wrk(f"https://127.0.0.1:{ports['TLS']}/", 64, d["tls"], 1)
            result["tls_h2"] = run_h2load(f"https://127.0.0.1:{ports['TLS']}/", 16, 32, d["tls"], 1,
                                          expect_protocol="h2")

        # 4. Latency at a fixed moderate rate.
        result["fixed_rate"] = run_paced(ports["H1"], settings.rate_connections, settings.rate,
                                         d["rate"], 1)

        result["rss_load_kib"] = status_kib(server, "VmHWM")
    finally:
        if sut is not None:
            sut.stop()
    return result


def cpu_per_request_us(run, key):
    """CPU seconds over the measured run (warm-ups are outside the window) / its requests."""
    window = run.get(f"cpu_window_{key}_s")
    m = run.get(key)
    if window is None or not m or not m["requests"]:
        return None
    return window / m["requests"] * 1e6


# ---------------------------------------------------------------------------------------------
# Scenario 6: functions

class LogWatcher(threading.Thread):
    """Reads Portico's stderr and stamps each line with the monotonic time it arrived."""

    def __init__(self, stream, path):
        super().__init__(daemon=True)
        self.stream, self.lines, self.lock = stream, [], threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.copy = open(path, "ab")

    def run(self):
        for raw in iter(self.stream.readline, b""):
            stamp = time.perf_counter_ns()
            self.copy.write(raw)
            with self.changed:
                self.lines.append((stamp, raw.decode(errors="replace").rstrip("\n")))
                self.changed.notify_all()

    def wait_for(self, predicate, start_index, timeout):
        """The first (index, stamp, line) at or after start_index matching predicate."""
        deadline = time.monotonic() + timeout
        with self.changed:
            index = start_index
            while True:
                while index < len(self.lines):
                    stamp, line = self.lines[index]
                    if predicate(line):
                        return index, stamp, line
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)

    def count(self):
        with self.lock:
            return len(self.lines)


def about(function, message):
    return lambda line: message in line and f"function={function}" in line


def cold_start(port, function, watcher, timeout=30.0):
    """One request to a function with no worker; returns the client's and the log's timings (us)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mark = watcher.count()
        t0 = time.perf_counter_ns()
        s.sendall(f"GET /function/{function}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(1)
        t_first = time.perf_counter_ns()
        status, _ = read_response(s, first)
    started = watcher.wait_for(about(function, "starting worker"), mark, 5)
    ready = watcher.wait_for(about(function, "worker ready"), mark, 5)
    if not started or not ready:
        raise RuntimeError(f"{function}: no 'starting worker'/'worker ready' in Portico's log for a cold request")
    us_to_ready = int(re.search(r"us_to_ready=(\d+)", ready[2]).group(1))
    return {"status": status, "ttfb_us": (t_first - t0) / 1000,
            "spawn_us": (started[1] - t0) / 1000,
            "start_to_ready_us": (ready[1] - started[1]) / 1000,
            "first_response_us": (t_first - ready[1]) / 1000,
            "portico_us_to_ready": us_to_ready}, started[0]


def worker_path():
    """PATH for the functions scenario and its floor: the directory of the real python3 first,
    so `python3` is the interpreter itself and not a version manager's shim (pyenv's costs
    ~90 ms a start, which would be measured as cold start)."""
    real = os.path.dirname(os.path.realpath(sys.executable))
    return real + os.pathsep + os.environ.get("PATH", "")


def spawn_floor(settings, count, directory, argv, extra_env=None):
    tool = os.path.join(settings.work, "spawn_floor")
    # The helper polls from the load core; the worker runs on the SUT core, as under Portico.
    out = subprocess.run(["taskset", "-c", LOAD_CORE, tool, str(count), str(FLOOR_PORT), SUT_CORE, directory] + argv,
                         capture_output=True, text=True, timeout=count * 10 + 30,
                         env=dict(os.environ, PATH=worker_path(), FLOOR_QUIET_MS=str(int(COLD_QUIET_S * 1000)),
                                  **{f"FLOOR_ENV_{k}": v for k, v in (extra_env or {}).items()}))
    if out.returncode != 0:
        raise RuntimeError(f"spawn_floor failed: {out.stderr}")
    return [int(x) for x in out.stdout.split()]


def summary(values):
    values = sorted(v for v in values if v is not None)
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}


def measure_functions(settings):
    w = settings.work
    d = settings.durations
    functions_dir = os.path.join(w, "functions")
    shutil.rmtree(functions_dir, ignore_errors=True)
    numpy_app = os.path.join(CONFIGS, "functions", "numpy_app.py")
    lambda_app = os.path.join(REPO, "config", "examples", "functions", "lambda-python", "main.py")
    sources = {"native": os.path.join(REPO, "Functions", "native", "worker.c"),
               "native-cold": os.path.join(REPO, "Functions", "native", "worker.c"),
               "hello": os.path.join(REPO, "Functions", "hello", "main.py"),
               "hello-cold": os.path.join(REPO, "Functions", "hello", "main.py"),
               "lambda": lambda_app, "lambda-cold": lambda_app,
               "numpy-template-cold": numpy_app, "numpy-plain-cold": numpy_app}
    for name, file in sources.items():
        folder = os.path.join(functions_dir, name)
        os.makedirs(folder)
        shutil.copy(file, folder)
        shutil.copy(os.path.join(CONFIGS, "functions", f"{name}.yaml"), os.path.join(folder, "function.yaml"))
    # The floor's own copy of the C worker, built the way the manifest builds it.
    floor_dir = os.path.join(w, "floor")
    os.makedirs(floor_dir, exist_ok=True)
    subprocess.run(["cc", "-O2", "-o", os.path.join(floor_dir, "worker"),
                    os.path.join(REPO, "Functions", "native", "worker.c")], check=True)
    shutil.copy(os.path.join(REPO, "Functions", "hello", "main.py"), floor_dir)
    shutil.copy(numpy_app, floor_dir)

    ports = PORTS["Portico"]
    values = dict(H1=ports["H1"], ADMIN=ports["ADMIN"])
    config = render("portico-functions.yaml", values, os.path.join(w, "portico-functions.yaml"))
    process = PROCESSES.start("Portico (functions)", [settings.binary, "serve", "--config", config,
                                                      "--functions", functions_dir, "--threads", "1"],
                              SUT_CORE, cwd=w, stderr=subprocess.PIPE,
                              env={"PORTICO_LOG_LEVEL": "info", "PATH": worker_path()})
    watcher = LogWatcher(process.stderr, os.path.join(w, "portico-functions.stderr.log"))
    watcher.start()
    result = {"warm": {}, "cold": {}, "floor": {}, "paired": {}, "problems": []}
    try:
        wait_ready(f"http://127.0.0.1:{ports['ADMIN']}/ready", process=process)
        # The first request to each function waits for its build; it is not measured.
        for name in sources:
            status, body = http_get(ports["H1"], f"/function/{name}/", timeout=120)
            if status != 200:
                raise RuntimeError(f"function {name}: first request answered {status} {body[:200]!r}")

        # Warm: requests/s with workers running (native: 64 connections like scenario 1;
        # Python: 16, its 4 workers x concurrency 4, so the queue is not what is measured; the
        # Lambda handler: 4, its 4 workers x one invocation each).
        for round_number in range(settings.rounds):
            for name, connections in (("native", 64), ("hello", 16), ("lambda", 4)):
                r = run_wrk(f"http://127.0.0.1:{ports['H1']}/function/{name}/", connections, d["fn"], d["warmup"])
                r["round"] = round_number + 1
                result["warm"].setdefault(name, []).append(r)
                log(f"functions round {round_number + 1}: {name} warm {r['rps']:.0f} req/s")

        # The floor: the same workers started without Portico (see spawn_floor), one start
        # before each of Portico's, so that both see the machine as it is at that moment (in
        # blocks of 50, a Python floor moved by 5 ms between runs, more than the target).
        floors = {"native-cold": ("native", ["./worker"], None),
                  "hello-cold": ("hello", ["python3", "main.py"], None),
                  # Portico's launcher run directly, importing and serving.
                  "numpy-plain-cold": ("numpy-plain", ["python3", LAUNCHER, "serve", "wsgi", "numpy_app:application"],
                                       {"OPENBLAS_NUM_THREADS": "1"})}
        # Cold: wait for the worker to be stopped (300 ms idle), then one request. The two
        # functions with a target over their floor get twice the starts: a difference of under
        # 2 ms over a Python floor that moves by several between runs needs them.
        for name in COLD_FUNCTIONS:
            samples = []
            floor_samples = []
            index = 0
            for i in range(settings.cold_starts * (2 if name in TARGETED_COLD_FUNCTIONS else 1)):
                stopped = watcher.wait_for(about(name, "worker stopped"), index, 10)
                if stopped is None:
                    raise RuntimeError(f"{name}: the worker was not stopped after its idle timeout")
                if name in floors:
                    _, argv, extra_env = floors[name]
                    floor_samples += spawn_floor(settings, 1, floor_dir, argv, extra_env=extra_env)
                time.sleep(COLD_QUIET_S)
                sample, index = cold_start(ports["H1"], name, watcher)
                if sample["status"] != 200:
                    result["problems"].append(f"{name} cold start {i + 1}: status {sample['status']}")
                samples.append(sample)
            if name in floors:
                result["floor"][floors[name][0]] = summary(floor_samples)
                # Each start's own overhead, over the floor start just before it: its median is
                # the overhead's p50, and a drift of the machine during the run cancels out of it
                # (it does not out of the difference of the two medians).
                result["paired"][floors[name][0]] = summary(
                    [s["ttfb_us"] - f for s, f in zip(samples, floor_samples) if s["ttfb_us"] is not None])
            result["cold"][name] = {"samples": samples}
            for key in ("ttfb_us", "spawn_us", "start_to_ready_us", "first_response_us", "portico_us_to_ready"):
                result["cold"][name][key] = summary([s[key] for s in samples])
            log(f"{name}: cold TTFB p50 {result['cold'][name]['ttfb_us']['p50']:.0f} us")
    finally:
        PROCESSES.stop(process)

    for fn in ("native", "hello", "lambda"):
        for r in result["warm"].get(fn, []):
            if r["errors"] or r["non_2xx"]:
                result["problems"].append(f"{fn} warm round {r['round']}: {r['errors']} errors, "
                                          f"{r['non_2xx']} non-2xx")
    return result


def run_idle_functions(settings):
    """The idle-functions scenario (Benchmarks/idle_functions.py): a thousand idle functions."""
    try:
        return idle_functions.measure(settings, sys.modules[__name__])
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as error:
        log(f"  idle functions failed: {error}")
        return {"error": str(error), "problems": [f"idle functions: {error}"]}


# ---------------------------------------------------------------------------------------------
# Results

METRICS = [
    # key, header, unit/format, source
    ("h1_rps", "H1 req/s", "int"),
    ("h1_p50_ms", "H1 p50 ms", "ms"),
    ("h1_p99_ms", "H1 p99 ms", "ms"),
    ("h2c_rps", "h2c req/s", "int"),
    ("h2up_rps", "h2→h2 req/s", "int"),
    ("tcp_mbps", "TCP MB/s", "int"),
    ("tls_h1_rps", "TLS H1 req/s", "int"),
    ("tls_h2_rps", "TLS h2 req/s", "int"),
    ("rate_p50_added_us", "+p50 µs @rate", "int"),
    ("rate_p99_added_us", "+p99 µs @rate", "int"),
    ("cpu_us_h1", "CPU µs/req H1", "f2"),
    ("cpu_us_h2c", "CPU µs/req h2c", "f2"),
    ("cpu_us_h2up", "CPU µs/req h2→h2", "f2"),
    ("rss_idle_mib", "RSS idle MiB", "f1"),
    ("rss_load_mib", "RSS load MiB", "f1"),
]


def flatten(run):
    v = {}
    if "h1" in run:
        v["h1_rps"], v["h1_p50_ms"], v["h1_p99_ms"] = run["h1"]["rps"], run["h1"]["p50_us"] / 1000, run["h1"]["p99_us"] / 1000
    if "h2c" in run:
        v["h2c_rps"] = run["h2c"]["rps"]
    if "h2up" in run:
        v["h2up_rps"] = run["h2up"]["rps"]
    if "tcp" in run:
        v["tcp_mbps"] = run["tcp"]["rps"] * TCP_BODY_BYTES / 1e6
    if "tls_h1" in run:
        v["tls_h1_rps"] = run["tls_h1"]["rps"]
    if "tls_h2" in run:
        v["tls_h2_rps"] = run["tls_h2"]["rps"]
    if "fixed_rate" in run:
        v["rate_p50_us"], v["rate_p99_us"] = run["fixed_rate"]["p50_us"], run["fixed_rate"]["p99_us"]
    v["cpu_us_h1"] = cpu_per_request_us(run, "h1")
    v["cpu_us_h2c"] = cpu_per_request_us(run, "h2c")
    v["cpu_us_h2up"] = cpu_per_request_us(run, "h2up")
    if run.get("rss_idle_kib") is not None:
        v["rss_idle_mib"] = run["rss_idle_kib"] / 1024
    if run.get("rss_load_kib") is not None:
        v["rss_load_mib"] = run["rss_load_kib"] / 1024
    return v


def medians(runs):
    by_system = {}
    for run in runs:
        by_system.setdefault(run["system"], []).append(flatten(run))
    table = {}
    for system, flats in by_system.items():
        keys = set().union(*flats)
        table[system] = {k: statistics.median([f[k] for f in flats if f.get(k) is not None])
                         for k in keys if any(f.get(k) is not None for f in flats)}
    direct = table.get("direct", {})
    for system, row in table.items():
        for which in ("p50", "p99"):
            if f"rate_{which}_us" in row and f"rate_{which}_us" in direct:
                # Medians of the rounds' absolute latencies, minus the direct row's median.
                row[f"rate_{which}_added_us"] = row[f"rate_{which}_us"] - direct[f"rate_{which}_us"]
    return table


def fmt(value, kind):
    if value is None:
        return "n/a"
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "f2":
        return f"{value:.2f}"
    if kind == "f1":
        return f"{value:.1f}"
    return str(value)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def main_table(table):
    headers = ["system"] + [m[1] for m in METRICS]
    rows = []
    for system in SYSTEMS:
        row = table.get(system)
        if row is None:
            continue
        cells = [system]
        for key, _, kind in METRICS:
            if system == "direct" and key.startswith("rate_"):
                absolute = row.get(key.replace("_added", ""))
                cells.append(f"abs {fmt(absolute, 'int')}" if absolute is not None else "n/a")
            else:
                cells.append(fmt(row.get(key), kind))
        rows.append(cells)
    pairs = [("Portico", other) for other in ("nginx", "HAProxy", "Caddy", "direct", "NIO floor")]
    pairs.append(("NIO floor", "nginx"))
    for mine, other in pairs:
        if mine not in table or other not in table:
            continue
        cells = [f"{mine} / {other}"]
        for key, _, _ in METRICS:
            if other == "direct" and key.startswith("rate_"):
                cells.append("n/a")
            else:
                cells.append(ratio(table[mine].get(key), table[other].get(key)))
        rows.append(cells)
    return headers, rows


# Cold-started one at a time after each scale to zero; the numpy pair shows what a template saves.
COLD_FUNCTIONS = ("native-cold", "hello-cold", "lambda-cold", "numpy-template-cold", "numpy-plain-cold")
TARGETED_COLD_FUNCTIONS = ("native-cold", "hello-cold")
LAUNCHER = os.path.join(REPO, "Sources", "PorticoFunctions", "Launcher", "python_launcher.py")


def functions_table(fn):
    headers = ["function", "warm req/s", "cold TTFB p50 ms", "cold TTFB p99 ms", "spawn p50 ms",
               "start→ready p50 ms", "first response p50 ms", "Portico us_to_ready p50 ms",
               "floor p50 ms", "floor p99 ms", "overhead over floor p50 ms", "overhead, paired p50 ms"]
    rows = []
    # The Lambda handler has no floor of its own here: its runtime waits for Portico's API.
    for name in ("native", "hello", "lambda", "numpy-template", "numpy-plain"):
        warm = [r["rps"] for r in fn.get("warm", {}).get(name, [])]
        cold = fn.get("cold", {}).get(f"{name}-cold")
        # A forked worker has no floor of its own: it is compared with the plain worker's.
        floor = fn.get("floor", {}).get("numpy-plain" if name == "numpy-template" else name)
        if cold is None and not warm:
            continue
        ms = lambda v: "n/a" if v is None else f"{v / 1000:.2f}"
        cells = [name, fmt(statistics.median(warm), "int") if warm else "n/a"]
        if cold:
            cells += [ms(cold["ttfb_us"]["p50"]), ms(cold["ttfb_us"]["p99"]), ms(cold["spawn_us"]["p50"]),
                      ms(cold["start_to_ready_us"]["p50"]), ms(cold["first_response_us"]["p50"]),
                      ms(cold["portico_us_to_ready"]["p50"])]
        else:
            cells += ["n/a"] * 6
        cells += [ms(floor["p50"]), ms(floor["p99"])] if floor else ["n/a", "n/a"]
        if cold and floor:
            cells.append(ms(cold["ttfb_us"]["p50"] - floor["p50"]))
        else:
            cells.append("n/a")
        paired = fn.get("paired", {}).get(name)
        cells.append(ms(paired["p50"]) if cold and paired else "n/a")
        rows.append(cells)
    return headers, rows


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plain(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def check_runs(runs):
    problems = []
    for run in runs:
        for key in ("h1", "h2c", "h2up", "tcp", "tls_h1", "tls_h2", "fixed_rate"):
            m = run.get(key)
            if m and (m["errors"] or m["non_2xx"]):
                problems.append(f"round {run['round']} {run['system']} {key}: {m['errors']} errors, "
                                f"{m['non_2xx']} non-2xx of {m['requests']}")
        tls = run.get("tls_facts")
        if tls and tls["version"] != "TLSv1.3":
            problems.append(f"round {run['round']} {run['system']}: TLS version {tls['version']}")
        if run.get("error"):
            problems.append(f"round {run['round']} {run['system']}: {run['error']}")
    return problems


def versions(settings):
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    git = lambda *a: first_line(["git", "-C", REPO] + list(a))
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"portico_commit": git("rev-parse", "--short", "HEAD"),
            "portico_tree": "modified" if dirty else "clean",
            "nginx": first_line(["nginx", "-v"]), "haproxy": first_line(["haproxy", "-v"]),
            "caddy": first_line(["caddy", "version"]), "wrk": first_line(["wrk", "-v"]),
            "h2load": first_line(["h2load", "--version"]),
            "kernel": os.uname().release, "cpu": cpu_model(), "cores": os.cpu_count()}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def read_allocations(path):
    """Allocations per proxied request from the output of the allocation test
    (`ProxyAllocationTests`, run from a release build by Benchmarks/run): its lines
    `allocations per proxied HTTP/1.1 request: 13.0` and `allocations per proxied h2c stream: 41.0`."""
    if not path:
        return None
    found = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = re.search(r"allocations per proxied (HTTP/1\.1 request|h2c stream|HTTP/1\.1 request to an h2c service): ([0-9.]+)", line)
            if m:
                key = {"HTTP/1.1 request": "h1", "h2c stream": "h2c"}.get(m.group(1), "h2up")
                found[key] = float(m.group(2))
            elif " error: " in line or "with 0 failures" not in line and re.search(r"Executed .* with \d+ failure", line):
                found.setdefault("test_failures", []).append(line.strip())
    return found or None


def allocations_table(allocations):
    headers = ["", "HTTP/1.1 request", "h2c stream", "HTTP/1.1 request to an h2c service"]
    row = ["allocations per request (release)"]
    for key in ("h1", "h2c", "h2up"):
        row.append(fmt(allocations.get(key), "f1"))
    return headers, [row]


# The ceilings on allocations per proxied request, counted in a release build.
ALLOCATION_TARGETS = {"h1": ("HTTP/1.1 request", 10), "h2c": ("h2c stream", 15)}


def thresholds(table, fn, allocations=None):
    """The issue's targets, reported as met or not."""
    out = []
    for key, (label, limit) in ALLOCATION_TARGETS.items():
        if allocations and allocations.get(key) is not None:
            out.append({"target": f"allocations per {label} (release) <= {limit}", "value": allocations[key],
                        "met": allocations[key] <= limit})
    p, n = table.get("Portico", {}), table.get("nginx", {})
    # Issue 15 (proxy core v2): at least these shares of nginx's requests/s, at most these
    # multiples of its CPU per request and of its added p99.
    for key, label, least in (("h1_rps", "HTTP/1.1 req/s", 0.8), ("h2c_rps", "h2c req/s", 1.0),
                              ("tls_h1_rps", "TLS HTTP/1.1 req/s", 0.8), ("tls_h2_rps", "TLS h2 req/s", 0.8)):
        if p.get(key) and n.get(key):
            r = p[key] / n[key]
            out.append({"target": f"Portico >= {least}x nginx, {label}", "value": round(r, 3), "met": r >= least})
    for key, label, most in (("cpu_us_h1", "CPU per HTTP/1.1 request", 1.25),
                             ("rate_p99_added_us", "added p99 at the fixed rate", 1.0),
                             ("rate_p50_added_us", "added p50 at the fixed rate", 1.5)):
        if p.get(key) is not None and n.get(key):
            r = p[key] / n[key]
            out.append({"target": f"Portico <= {most}x nginx, {label}", "value": round(r, 3), "met": r <= most})
    # Issue 16: HTTP/2 on both sides at least as fast as the best of the others.
    others = [table[o]["h2up_rps"] for o in ("nginx", "HAProxy", "Caddy") if table.get(o, {}).get("h2up_rps")]
    if p.get("h2up_rps") and others:
        r = p["h2up_rps"] / max(others)
        out.append({"target": "Portico >= 1.0x the best of nginx, HAProxy, Caddy, h2c to an h2c backend req/s",
                    "value": round(r, 3), "met": r >= 1.0})
    h = table.get("HAProxy", {})
    if p.get("tcp_mbps") and h.get("tcp_mbps"):
        r = p["tcp_mbps"] / h["tcp_mbps"]
        out.append({"target": "Portico >= 0.9x HAProxy (mode tcp), TCP listener bytes/s", "value": round(r, 3),
                    "met": r >= 0.9})
    forked, plain = fn.get("cold", {}).get("numpy-template-cold"), fn.get("cold", {}).get("numpy-plain-cold")
    if forked and plain:
        out.append({"target": "Python handler importing numpy, forked from a template: cold TTFB <= 10 ms p50",
                    "value": round(forked["ttfb_us"]["p50"] / 1000, 3), "met": forked["ttfb_us"]["p50"] <= 10_000})
        out.append({"target": "the same handler spawned plainly: cold TTFB >= 100 ms p50 (what the template saves)",
                    "value": round(plain["ttfb_us"]["p50"] / 1000, 3), "met": plain["ttfb_us"]["p50"] >= 100_000})
    # Issue 17's targets (issue 13's was < 5 ms for the native worker).
    for function, floor_name, label, limit in (("native-cold", "native", "native", 1.0),
                                               ("hello-cold", "hello", "plain Python", 2.0)):
        cold, floor = fn.get("cold", {}).get(function), fn.get("floor", {}).get(floor_name)
        paired = fn.get("paired", {}).get(floor_name)
        if cold and floor:
            # The overhead's p50 is the median of each start's own overhead (paired with the
            # floor start just before it); the difference of the two medians is shown beside it.
            unpaired = (cold["ttfb_us"]["p50"] - floor["p50"]) / 1000
            overhead = paired["p50"] / 1000 if paired else unpaired
            out.append({"target": f"cold-start overhead over the floor < {limit:g} ms p50 ({label}; "
                                  f"median of paired differences, difference of medians {unpaired:.3f} ms)",
                        "value": round(overhead, 3), "met": overhead < limit})
    return out


def ceilings(table):
    """How far a proxy on SwiftNIO's own HTTP codecs gets against nginx when it does nothing
    else (the NIO floor row), next to the throughput targets."""
    f, n = table.get("NIO floor", {}), table.get("nginx", {})
    out = [{"what": f"NIO floor / nginx, {label}", "value": round(f[key] / n[key], 3)}
           for key, label in (("h1_rps", "scenario 1 req/s"), ("h2c_rps", "scenario 2 req/s"))
           if f.get(key) and n.get(key)]
    # Scenario 7's target, met by the floor itself or not: what the rule that HTTP/2 is
    # swift-nio-http2's leaves reachable.
    others = [table[o]["h2up_rps"] for o in ("nginx", "HAProxy", "Caddy") if table.get(o, {}).get("h2up_rps")]
    if f.get("h2up_rps") and others:
        out.append({"what": "NIO floor / the best of nginx, HAProxy, Caddy, scenario 7 req/s (h2c to an h2c backend)",
                    "value": round(f["h2up_rps"] / max(others), 3)})
    return out


def write_results(settings, runs, table, fn, problems, started, allocations=None, idle=None, tracing=None):
    headers, rows = main_table(table)
    fheaders, frows = functions_table(fn) if fn else ([], [])
    aheaders, arows = allocations_table(allocations) if allocations else ([], [])
    iheaders, irows = idle_functions.table(idle) if idle and "error" not in idle else ([], [])
    theaders, trows = tracing_cost.table(tracing) if tracing else ([], [])
    targets = thresholds(table, fn or {}, allocations) + (idle_functions.targets(idle) if idle else [])
    ceiling = ceilings(table)
    meta = versions(settings)
    meta.update(mode="smoke" if settings.smoke else "full", rounds=settings.rounds, durations_s=settings.durations,
                fixed_rate_total_rps=settings.rate,
                fixed_rate_connections=settings.rate_connections, cold_starts=settings.cold_starts,
                started=started, finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                tls=next((r["tls_facts"] for r in runs if r["system"] == "Portico" and "tls_facts" in r), None))
    text = []
    text.append(f"Portico benchmark ({meta['mode']}): {settings.rounds} round(s), medians; "
                f"{meta['finished']}; Portico {meta['portico_commit']} ({meta['portico_tree']} tree)")
    if rows:
        text.append("")
        text.append(plain(headers, rows))
    if frows:
        text.append("")
        text.append("Functions (Portico only):")
        text.append(plain(fheaders, frows))
    if irows:
        text.append("")
        text.append("1,000 idle functions (Portico only):")
        text.append(plain(iheaders, irows))
    if trows:
        text.append("")
        text.append("Tracing (Portico only, H1 load):")
        text.append(plain(theaders, trows))
    if arows:
        text.append("")
        text.append("Allocations per proxied request (Portico, release build, ProxyAllocationTests):")
        text.append(plain(aheaders, arows))
    text.append("")
    for t in targets:
        text.append(f"target {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    for c in ceiling:
        text.append(f"ceiling {c['what']}: {c['value']}")
    text.append("")
    text.append("every run clean (zero errors, zero non-2xx): " + ("yes" if not problems else "NO"))
    for p in problems:
        text.append(f"  problem: {p}")
    print("\n".join(text), flush=True)

    rate = settings.rate
    md = [f"# Portico benchmark results ({meta['mode']})", "",
          f"{meta['finished']}, Portico `{meta['portico_commit']}` ({meta['portico_tree']} working tree), "
          f"{settings.rounds} round(s), medians. {meta['cpu']}, {meta['cores']} cores, Linux {meta['kernel']}.",
          f"{meta['nginx']}; {meta['haproxy']}; Caddy {meta['caddy']}; {meta['wrk']}; {meta['h2load']}.", ""]
    if rows:
        md += ["Method and how to read this: [../README.md](../README.md). H1 = HTTP/1.1 keep-alive, 64 connections "
               f"(wrk, {settings.durations['h1']} s); h2c = 16 connections x 32 streams (h2load, {settings.durations['h2']} s); "
               f"TLS = TLS 1.3, same loads; @rate = {rate} req/s over {settings.rate_connections} HTTP/1.1 connections "
               "(the harness's paced client), latency added over direct; CPU = user+system time of the system's processes "
               "per request; RSS = VmHWM of the serving process.", "",
               markdown(headers, rows), ""]
    if frows:
        md += ["## Functions (Portico only)", "",
               f"Warm: wrk, native 64 connections, Python 16, {settings.durations['fn']} s. "
               f"Cold: {settings.cold_starts} starts each ({2 * settings.cold_starts} for native and hello) after "
               "scale to zero (idleTimeout 300ms); the floor is the same worker spawned without Portico until the "
               "first byte of its answer to GET /, one floor start before each of Portico's, each after 50 ms of "
               "quiet; the paired overhead is the median of each start's TTFB minus the floor start's before it.", "",
               markdown(fheaders, frows), ""]
    if irows:
        md += ["## 1,000 idle functions (Portico only)", "",
               f"{idle_functions.COUNT} copies of `Functions/hello` (http mode, no worker running), one gateway "
               "(`--threads 1`). CPU is the gateway's own (/proc/PID/stat), over a "
               f"{idle.get('idle_window_s')} s idle window, and per reload (`POST /reload`) and per one-folder change "
               "(a function's code edited, until its new revision serves; the new worker's own CPU not counted), "
               "idle CPU taken off; RSS is VmRSS after the idle window; a new folder is written in place (mkdir, "
               "then its files) and timed until a request to it is no longer 404.", "",
               markdown(iheaders, irows), ""]
    if trows:
        md += ["## Tracing (Portico only)", "",
               f"Scenario 1's load (HTTP/1.1 keep-alive, 64 connections, wrk, {settings.durations['h1']} s) through one "
               "gateway with tracing off, at a 1 % sampling ratio and at 100 %, spans exported over OTLP/HTTP to a sink "
               "on the load core. CPU = user+system time of all the gateway's threads (the exporter's included) per "
               "request; added = the difference from tracing off.", "",
               markdown(theaders, trows), ""]
    if arows:
        md += ["## Allocations per proxied request (Portico)", "",
               "Heap allocations on the gateway's event loop per request, counted by "
               "`Tests/PorticoProxyTests/ProxyAllocationTests.swift` in a release build "
               "(`-enable-testing`), exact from run to run.", "",
               markdown(aheaders, arows), ""]
    md += ["## Targets", ""] + [f"- {'met' if t['met'] else '**missed**'}: {t['target']}: {t['value']}"
                                for t in targets]
    if ceiling:
        md += ["", "The same ratio for the NIO floor (SwiftNIO's own HTTP codecs proxying, nothing else done; "
               "see the README's \"The floor under the design\"):", ""]
        md += [f"- {c['what']}: {c['value']}" for c in ceiling]
    md += ["", "## Checks", "",
           "Every run had zero errors and zero non-2xx responses." if not problems else
           "Some runs were not clean:"] + [f"- {p}" for p in problems]
    md.append("")

    os.makedirs(settings.results, exist_ok=True)
    # A run of one scenario must not overwrite the full run's table.
    stem = f"latest-{settings.only}" if settings.only else "latest"
    with open(os.path.join(settings.results, f"{stem}.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(settings.results, f"{stem}.json"), "w") as f:
        json.dump({"meta": meta, "medians": table, "targets": targets, "ceilings": ceiling, "problems": problems,
                   "functions": fn, "idle_functions": idle, "tracing": tracing, "allocations": allocations, "runs": runs}, f, indent=1,
                  sort_keys=True)
        f.write("\n")
    log(f"wrote {os.path.relpath(settings.results, REPO)}/{stem}.md and {stem}.json")


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True, help="the release portico binary")
    parser.add_argument("--floor-binary", help="the nio-floor binary (default: next to --binary)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds per scenario, 1 round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset, for debugging")
    parser.add_argument("--no-functions", action="store_true", help="skip the functions scenarios (cold starts, idle functions)")
    parser.add_argument("--only", choices=["functions", "idle-functions", "tracing"],
                        help="run only this scenario (Portico alone); results go to latest-SCENARIO.md/.json")
    parser.add_argument("--only-functions", dest="only", action="store_const", const="functions",
                        help="the same as --only functions")
    parser.add_argument("--results", default=RESULTS, help="where latest.md and latest.json go")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder (configs, logs)")
    parser.add_argument("--allocations", help="the output of the allocation test in a release build "
                        "(Benchmarks/run writes it), for the allocations row")
    settings = parser.parse_args()
    settings.binary = os.path.abspath(settings.binary)
    settings.floor_binary = os.path.abspath(settings.floor_binary or
                                            os.path.join(os.path.dirname(settings.binary), "nio-floor"))
    if settings.smoke:
        settings.rounds = settings.rounds or 1
        settings.durations = {"warmup": 1, "h1": 2, "h2": 2, "tls": 2, "rate": 2, "fn": 2}
        settings.cold_starts = 5
    else:
        settings.rounds = settings.rounds or 3
        # Short enough that a fresh machine builds Portico and runs everything in under 20 minutes;
        # 6 s is still over 100,000 requests per H1 measurement for every system here.
        settings.durations = {"warmup": 2, "h1": 6, "h2": 6, "tls": 5, "rate": 5, "fn": 5}
        settings.cold_starts = 50
    # Smoke runs may use a debug binary (CI does), which cannot keep up with 2,000 req/s: a
    # backlog there would only measure the queue and risk timeouts that are not breakage.
    settings.rate, settings.rate_connections = (200 if settings.smoke else 2000), 16
    systems = [s for s in SYSTEMS if s in settings.systems.split(",")]
    if settings.only:
        settings.systems, systems = "Portico", []
    if "NIO floor" in systems and not settings.only and not os.access(settings.floor_binary, os.X_OK):
        # A debug build has it next to portico once every product is built (`swift build`).
        parser.error(f"no nio-floor binary at {settings.floor_binary} (--floor-binary, or leave out 'NIO floor')")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    settings.work = tempfile.mkdtemp(prefix="portico-bench-")
    runs, fn, idle = [], None, None
    try:
        if settings.only == "idle-functions":
            idle = run_idle_functions(settings)
            problems = idle.get("problems", [])
            write_results(settings, [], {}, None, problems, started, idle=idle)
            return 1 if problems else 0
        settings.cert, settings.key, settings.cert_and_key = make_certificate(settings.work)
        subprocess.run(["cc", "-O2", "-o", os.path.join(settings.work, "spawn_floor"),
                        os.path.join(HERE, "tools", "spawn_floor.c")], check=True)

        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(settings.work, "backend-tmp", d), exist_ok=True)
        tracing = None
        # Scenario 8's body, served by the backend at /big. nginx's workers run as an
        # unprivileged user: the folder (mkdtemp makes it 0700) and the file must be readable.
        big = os.path.join(settings.work, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(TCP_BODY_BYTES))
        os.chmod(settings.work, 0o755)
        os.chmod(big, 0o644)
        backend_conf = render("backend-nginx.conf", dict(BACKEND, WORK=settings.work, CERT=settings.cert,
                                                         KEY=settings.key), os.path.join(settings.work, "backend.conf"))
        backend = PROCESSES.start("backend", ["nginx", "-p", settings.work, "-e",
                                              os.path.join(settings.work, "backend-error.log"), "-c", backend_conf],
                                  LOAD_CORE)
        for port in BACKEND.values():
            wait_accepting(port, process=backend)
        time.sleep(0.3)
        settings.backend_idle_kib = status_kib(serving_pid(backend.pid), "VmHWM")

        if settings.only == "tracing" or ("Portico" in systems and not settings.only):
            log("tracing")
            tracing = tracing_cost.measure(settings, sys.modules[__name__])
            if settings.only == "tracing":
                problems = tracing["problems"]
                write_results(settings, [], {}, None, problems, started, tracing=tracing)
                return 1 if problems else 0

        for round_number in range(1, settings.rounds + 1):
            for system in systems:
                log(f"round {round_number}/{settings.rounds}: {system}")
                try:
                    run = measure_system(system, settings, backend)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
                    log(f"  {system} failed: {error}")
                    run = {"system": system, "error": str(error)}
                run["round"] = round_number
                if "h1" in run:
                    tls = (f"TLS {run['tls_h1']['rps']:.0f}/{run['tls_h2']['rps']:.0f}, " if "tls_h1" in run
                           else "")
                    log(f"  H1 {run['h1']['rps']:.0f} req/s, h2c {run['h2c']['rps']:.0f} req/s, {tls}"
                        f"@rate p50 {run['fixed_rate']['p50_us']} us")
                runs.append(run)

        if not settings.no_functions and ("Portico" in systems or settings.only == "functions"):
            log("functions")
            try:
                fn = measure_functions(settings)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
                log(f"  functions failed: {error}")
                fn = {"error": str(error), "problems": [f"functions: {error}"]}

            if settings.only != "functions":
                log("1,000 idle functions")
                idle = run_idle_functions(settings)

        table = medians([r for r in runs if "error" not in r])
        problems = (check_runs(runs) + (fn or {}).get("problems", []) + (idle or {}).get("problems", [])
                    + (tracing or {}).get("problems", []))
        allocations = read_allocations(settings.allocations)
        if settings.allocations and not (allocations and "h1" in allocations and "h2c" in allocations):
            problems.append("the allocation test printed no counts")
        for line in (allocations or {}).get("test_failures", [])[:5]:
            problems.append(f"allocation test: {line}")
        write_results(settings, runs, table, fn, problems, started, allocations, idle=idle, tracing=tracing)
        return 1 if problems else 0
    finally:
        PROCESSES.stop_all()
        if settings.keep_work:
            log(f"kept {settings.work}")
        else:
            shutil.rmtree(settings.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
