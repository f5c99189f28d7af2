"""The idle-functions scenario of Portico's benchmark: a thousand idle functions (issue 17, section 7).

A generated functions folder of 1,000 copies of `Functions/hello` (http mode, no worker
running), one gateway on it, and what idling costs: its RSS, its CPU over a fixed window, the
admin `/functions` latency, the CPU of a config reload and of a change to one function's
folder, and how long a new folder takes to be deployed.

Used by harness.py (`--only idle-functions` runs it alone); it takes the harness module as
`bench`, so it shares the harness's process list (everything it starts is stopped there).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

COUNT = 1000
# The targets: (key, label, limit, lower is better).
TARGETS = [
    ("rss_mib", "RSS with 1,000 idle functions (MiB)", 40),
    ("idle_cpu_pct", "idle CPU (% of a core)", 1.0),
    ("functions_p50_ms", "GET /functions p50 (ms)", 50),
    ("reload_cpu_ms", "CPU of a config reload (ms)", 100),
    ("change_cpu_ms", "CPU of a change to one folder (ms)", 100),
    ("new_folder_p50_ms", "a new folder routed, p50 (ms)", 1000),
]

MANIFEST = """\
command: ["python3", "main.py"]
env: { GREETING: Hello }
idleTimeout: 30s
readiness: { path: /healthz }
"""


def name_of(index):
    return f"fn-{index:04d}"


def write_function(functions_dir, name, hello):
    folder = os.path.join(functions_dir, name)
    os.makedirs(folder)
    shutil.copy(hello, os.path.join(folder, "main.py"))
    with open(os.path.join(folder, "function.yaml"), "w") as f:
        f.write(MANIFEST)
    return folder


def own_cpu_seconds(pid):
    """user + system time of the gateway process itself (every thread, live or exited), not of
    its children: a worker's start is the worker's CPU, not the gateway's."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin_request(port, method, path, timeout=30.0):
    """One request to the admin API on a fresh connection: (status, body, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", data[:end])
                if length and len(data) >= end + 4 + int(length.group(1)):
                    elapsed = time.perf_counter() - start
                    return int(data.split(b" ", 2)[1]), data[end + 4:end + 4 + int(length.group(1))], elapsed
            chunk = s.recv(1 << 20)
            if not chunk:
                raise OSError(f"admin {path}: connection closed mid-response")
            data += chunk


def folders_hashed(admin_port):
    """The gateway's count of function folders it has hashed, if it exports one."""
    _, body, _ = admin_request(admin_port, "GET", "/metrics")
    m = re.search(rb"(?m)^portico_function_folders_hashed_total (\d+)", body)
    return int(m.group(1)) if m else None


def measure(settings, bench):
    """Runs the scenario; returns a dict of figures (see TARGETS) and problems."""
    w = settings.work
    smoke = settings.smoke
    idle_window = 10 if smoke else 30
    reloads = 5 if smoke else 20
    changes = 3 if smoke else 10
    new_folders = 3 if smoke else 10
    hello = os.path.join(bench.REPO, "Functions", "hello", "main.py")
    functions_dir = os.path.join(w, "idle-functions")
    shutil.rmtree(functions_dir, ignore_errors=True)
    os.makedirs(functions_dir)
    for i in range(COUNT):
        write_function(functions_dir, name_of(i), hello)

    ports = bench.PORTS["Portico"]
    config = bench.render("portico-functions.yaml", dict(H1=ports["H1"], ADMIN=ports["ADMIN"]),
                          os.path.join(w, "portico-idle.yaml"))
    started = time.monotonic()
    process = bench.PROCESSES.start("Portico (1,000 idle functions)",
                                    [settings.binary, "serve", "--config", config, "--functions", functions_dir,
                                     "--threads", "1"],
                                    bench.SUT_CORE, cwd=w, stderr=subprocess.PIPE,
                                    env={"PORTICO_LOG_LEVEL": "info", "PATH": bench.worker_path()})
    watcher = bench.LogWatcher(process.stderr, os.path.join(w, "portico-idle.stderr.log"))
    watcher.start()
    result = {"count": COUNT, "problems": []}
    pid = process.pid  # taskset execs portico in place
    try:
        # Every function is deployed before the listeners open, so ready means deployed.
        bench.wait_ready(f"http://127.0.0.1:{ports['ADMIN']}/ready", timeout=300, process=process)
        result["startup_s"] = time.monotonic() - started
        bench.log(f"idle functions: {COUNT} deployed and ready in {result['startup_s']:.1f} s")

        # Idle: let start-up work finish (the folders were written just now, so the gateway
        # reads them once more in its first looks: see FolderChangeTracker's racy rule), then
        # a fixed window with nothing asked of the gateway. RSS is read at its end, before any
        # admin request (a request's own allocations are in the "RSS after" row).
        time.sleep(8)
        hashed_at_start = folders_hashed(ports["ADMIN"])
        cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
        time.sleep(idle_window)
        cpu1, t1 = own_cpu_seconds(pid), time.monotonic()
        idle_rate = (cpu1 - cpu0) / (t1 - t0)
        result["idle_window_s"] = round(t1 - t0, 1)
        result["idle_cpu_pct"] = 100 * idle_rate
        result["rss_mib"] = bench.status_kib(pid, "VmRSS") / 1024
        result["hwm_mib"] = bench.status_kib(pid, "VmHWM") / 1024
        hashed = folders_hashed(ports["ADMIN"])
        if hashed is not None and hashed_at_start is not None:
            result["hashed_while_idle"] = hashed - hashed_at_start
        bench.log(f"idle functions: idle CPU {result['idle_cpu_pct']:.2f}% of a core over "
                  f"{result['idle_window_s']} s, RSS {result['rss_mib']:.1f} MiB")
        status, body, _ = admin_request(ports["ADMIN"], "GET", "/functions")
        listed = len(json.loads(body)["functions"]) if status == 200 else 0
        if listed != COUNT:
            result["problems"].append(f"idle functions: /functions listed {listed}, not {COUNT}")

        # GET /functions, one at a time.
        times = []
        for _ in range(21 if smoke else 51):
            status, body, seconds = admin_request(ports["ADMIN"], "GET", "/functions")
            if status != 200:
                result["problems"].append(f"idle functions: /functions answered {status}")
            times.append(seconds * 1000)
        result["functions_p50_ms"] = bench.percentile(sorted(times), 50)
        result["functions_bytes"] = len(body)

        # Config reloads (POST /reload answers once the new config serves), one at a time.
        cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
        for _ in range(reloads):
            status, body, _ = admin_request(ports["ADMIN"], "POST", "/reload")
            if status != 200:
                result["problems"].append(f"idle functions: reload answered {status} {body[:200]!r}")
        cpu1, t1 = own_cpu_seconds(pid), time.monotonic()
        result["reload_cpu_ms"] = max(0.0, (cpu1 - cpu0 - idle_rate * (t1 - t0))) * 1000 / reloads

        # A change to one function's folder: its code is edited, the gateway sees it, starts
        # a worker of the new revision and, once that is ready, routes to it. The CPU is the
        # gateway's own (the worker's start is the worker's), idle time taken off.
        hashed_before = folders_hashed(ports["ADMIN"])
        cpu_total, window_total = 0.0, 0.0
        for k in range(changes):
            name = name_of(100 * k + 7)
            mark = watcher.count()
            cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
            with open(os.path.join(functions_dir, name, "main.py"), "a") as f:
                f.write(f"# change {k}\n")
            done = watcher.wait_for(lambda line, n=name: "redeploying function" in line and f"function={n}" in line,
                                    mark, 30)
            if done is None:
                result["problems"].append(f"idle functions: the change to {name} was not deployed within 30 s")
                continue
            time.sleep(0.3)  # the new routes are published right after the log line
            cpu1, t1 = own_cpu_seconds(pid), time.monotonic()
            cpu_total += cpu1 - cpu0
            window_total += t1 - t0
        result["change_cpu_ms"] = max(0.0, cpu_total - idle_rate * window_total) * 1000 / changes
        hashed_after = folders_hashed(ports["ADMIN"])
        if hashed_before is not None and hashed_after is not None:
            result["hashed_per_change"] = (hashed_after - hashed_before) / changes

        # New folders, written in place (mkdir, then the files), as an editor or `cp -r` does:
        # the time until a request to it is routed (no longer 404), asking every 10 ms. That
        # request starts the function's first worker; it must answer 200.
        seen = []
        for k in range(new_folders):
            name = f"fn-new-{k}"
            t0 = time.perf_counter()
            write_function(functions_dir, name, hello)
            routed = None
            while time.perf_counter() - t0 < 30:
                sent = time.perf_counter()
                status, _ = bench.http_get(ports["H1"], f"/function/{name}/", timeout=30)
                if status != 404:
                    routed = sent
                    break
                time.sleep(0.01)
            if routed is None:
                result["problems"].append(f"idle functions: new folder {name} not routed within 30 s")
                continue
            seen.append((routed - t0) * 1000)
            if status != 200:
                result["problems"].append(f"idle functions: new function {name} answered {status}")
        if seen:
            result["new_folder_p50_ms"] = bench.percentile(sorted(seen), 50)
            result["new_folder_max_ms"] = max(seen)
        result["rss_after_mib"] = bench.status_kib(pid, "VmRSS") / 1024
    finally:
        bench.PROCESSES.stop(process)

    for key, label, limit in TARGETS:
        if result.get(key) is None:
            result["problems"].append(f"idle functions: no figure for {label}")
    bench.log("idle functions: " + ", ".join(f"{k} {result[k]:.2f}" for k, _, _ in TARGETS if result.get(k) is not None))
    return result


def table(result):
    """The rows for the results table: what, value, target."""
    headers = ["1,000 idle functions", "value", "target"]
    rows = []
    for key, label, limit in TARGETS:
        value = result.get(key)
        rows.append([label, "n/a" if value is None else f"{value:.2f}", f"<= {limit}" if key == "rss_mib"
                     else f"< {limit}"])
    extra = [("startup_s", "start-up with 1,000 functions (s)"), ("new_folder_max_ms", "a new folder routed, max (ms)"),
             ("rss_after_mib", "RSS after all of the above (MiB)"), ("hwm_mib", "peak RSS before the requests (MiB)"),
             ("hashed_while_idle", "folders hashed while idle"), ("hashed_per_change", "folders hashed per one-folder change"),
             ("functions_bytes", "GET /functions body (bytes)")]
    for key, label in extra:
        value = result.get(key)
        if value is not None:
            rows.append([label, f"{value:.2f}" if isinstance(value, float) else str(value), ""])
    return headers, rows


def targets(result):
    out = []
    for key, label, limit in TARGETS:
        value = result.get(key)
        if value is None:
            continue
        met = value <= limit if key == "rss_mib" else value < limit
        out.append({"target": f"1,000 idle functions: {label} {'<=' if key == 'rss_mib' else '<'} {limit}",
                    "value": round(value, 3), "met": met})
    return out
