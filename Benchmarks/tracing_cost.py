"""The tracing scenario of Portico's benchmark: what OpenTelemetry tracing costs (issue 18).

One gateway (`--threads 1`, pinned like the others) in front of the backend, HTTP/1.1
keep-alive at 64 connections (scenario 1's load), three ways: tracing off, tracing at a 1 %
sampling ratio, and at 100 %. Spans go to an OTLP/HTTP sink on the load core that accepts
every export. The figure is the gateway's CPU per request (user + system time of all its
threads, the exporter's included) and what tracing adds to it.

Used by harness.py (`--only tracing` runs it alone); it takes the harness module as `bench`.
"""
import os
import re
import statistics
import subprocess

MODES = [("off", None), ("1%", 0.01), ("100%", 1.0)]
SINK_PORT = 18170
LISTEN_PORT = 18160
ADMIN_PORT = 18161

# Accepts each export (200, empty ExportTraceServiceResponse) and counts the bytes: a sink, so
# the collector's own speed does not enter the figure.
SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


def config(bench, ratio):
    tracing = "" if ratio is None else f"""
tracing:
  endpoint: http://127.0.0.1:{SINK_PORT}/v1/traces
  sampling: {{ ratio: {ratio} }}
  maxQueueSize: 65536
"""
    return f"""
listeners:
  - name: plain
    address: 127.0.0.1:{LISTEN_PORT}
admin:
  address: 127.0.0.1:{ADMIN_PORT}
limits:
  idleTimeout: 300s
accessLog: {{ format: off }}
{tracing}
services:
  backend:
    endpoints: [127.0.0.1:{bench.BACKEND['BACKEND_H1']}]
routes:
  - match: {{ prefix: / }}
    service: backend
"""


def counter(body, series):
    m = re.search(rb"(?m)^" + re.escape(series.encode()) + rb" ([0-9.e+]+)$", body)
    return float(m.group(1)) if m else 0.0


def measure(settings, bench):
    w, d = settings.work, settings.durations
    sink = bench.PROCESSES.start("OTLP sink", ["python3", "-c", SINK, str(SINK_PORT)], bench.LOAD_CORE)
    bench.wait_accepting(SINK_PORT, process=sink)
    functions = os.path.join(w, "no-functions")
    os.makedirs(functions, exist_ok=True)
    runs = {mode: [] for mode, _ in MODES}
    problems = []
    for round_number in range(1, settings.rounds + 1):
        # Each round starts with another mode: a fresh gateway's first run of a round was seen
        # to come out a few µs cheaper than the next, whichever mode it was.
        start = (round_number - 1) % len(MODES)
        for mode, ratio in MODES[start:] + MODES[:start]:
            path = os.path.join(w, f"portico-tracing-{mode.rstrip('%')}.yaml")
            with open(path, "w") as f:
                f.write(config(bench, ratio))
            stderr = open(os.path.join(w, "portico-tracing.stderr.log"), "ab")
            process = bench.PROCESSES.start(f"Portico (tracing {mode})",
                                            [settings.binary, "serve", "--config", path, "--functions", functions,
                                             "--threads", "1"], bench.SUT_CORE, cwd=w, stderr=stderr)
            try:
                bench.wait_ready(f"http://127.0.0.1:{ADMIN_PORT}/ready", process=process)
                url = f"http://127.0.0.1:{LISTEN_PORT}/"
                bench.warm_up(url, 64, d["warmup"])
                cpu0 = bench.cpu_seconds(process.pid)
                load = bench.run_wrk(url, 64, d["h1"])
                cpu1 = bench.cpu_seconds(process.pid)
                # Spans still waiting go out within the export interval.
                _, metrics = bench.http_get(ADMIN_PORT, "/metrics")
                run = {"round": round_number, "rps": load["rps"], "requests": load["requests"],
                       "cpu_us": (cpu1 - cpu0) / load["requests"] * 1e6,
                       "errors": load["errors"], "non_2xx": load["non_2xx"],
                       "exported": counter(metrics, "portico_trace_spans_exported_total"),
                       "dropped": counter(metrics, 'portico_trace_spans_dropped_total{reason="queue_full"}')
                       + counter(metrics, 'portico_trace_spans_dropped_total{reason="export_failed"}')}
                runs[mode].append(run)
                bench.log(f"  tracing {mode}: {run['rps']:.0f} req/s, {run['cpu_us']:.2f} CPU us/req, "
                          f"{run['exported']:.0f} spans exported, {run['dropped']:.0f} dropped")
                if load["errors"] or load["non_2xx"]:
                    problems.append(f"tracing {mode}: {load['errors']} errors, {load['non_2xx']} non-2xx")
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
                problems.append(f"tracing {mode}: {error}")
            finally:
                bench.PROCESSES.stop(process)
    bench.PROCESSES.stop(sink)
    result = {"runs": runs, "problems": problems}
    for mode, _ in MODES:
        if runs[mode]:
            result[mode] = {key: statistics.median(r[key] for r in runs[mode])
                            for key in ("rps", "cpu_us", "exported", "dropped")}
    if "off" in result:
        for mode in ("1%", "100%"):
            if mode in result:
                result[mode]["added_cpu_us"] = result[mode]["cpu_us"] - result["off"]["cpu_us"]
    if runs["100%"] and all(r["exported"] == 0 for r in runs["100%"]):
        problems.append("tracing 100%: no span reached the sink")
    return result


def table(result):
    headers = ["tracing", "H1 req/s", "CPU µs/req", "added µs/req", "spans exported", "spans dropped"]
    rows = []
    for mode, _ in MODES:
        m = result.get(mode)
        if not m:
            continue
        added = m.get("added_cpu_us")
        rows.append([mode, f"{m['rps']:.0f}", f"{m['cpu_us']:.2f}", "" if added is None else f"{added:+.2f}",
                     f"{m['exported']:.0f}", f"{m['dropped']:.0f}"])
    return headers, rows
