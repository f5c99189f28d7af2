#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol against a running gateway's dashboard.

Usage: dashboard_driver.py ADMIN_URL HTTP_URL FUNCTION LOAD_PATH LOCAL_REPLY_PATHS ARTIFACTS_DIR

LOCAL_REPLY_PATHS: comma-separated paths the gateway answers itself (no route, a redirect).

Loads the dashboard, puts load on FUNCTION (LOAD_PATH on the gateway), waits until the page
shows the function with workers, takes a screenshot, stops the load, waits until the page
shows zero workers (after the function's idle timeout), and takes another. Every wait reads
the DOM with a deadline. Prints one `step: ...` line per condition met; exits 1 with the
reason (and a screenshot of the page as it was) when one is not met in time.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket  # websocket-client, from PyPI

admin, http, function, load_path, local_reply_path, artifacts = sys.argv[1:7]
os.makedirs(artifacts, exist_ok=True)


class DevTools:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, name):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = os.path.join(artifacts, name)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))
        print(f"screenshot: {path}", flush=True)
        return path


def wait_for(devtools, description, expression, timeout):
    deadline = time.monotonic() + timeout
    value = None
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = devtools.evaluate(expression)
        except RuntimeError as error:
            # The page is still loading (its body not there yet): not yet, rather than a failure.
            value = None
            last_error = error
        if value:
            print(f"step: {description} ({value})", flush=True)
            return value
        time.sleep(0.1)  # a poll interval, not a wait for a condition
    devtools.screenshot("dashboard-failure.png")
    text = devtools.evaluate("document.body ? document.body.innerText : ''")
    raise SystemExit(f"timed out after {timeout}s waiting for {description}; last value {value!r}"
                     f" (last error {last_error}); page:\n{text}")


def workers_expression(name):
    return (f"(() => {{ const node = document.querySelector('[data-function=\"{name}\"]');"
            f" return node ? Number(node.dataset.workers) : -1; }})()")


profile = tempfile.mkdtemp(prefix="portico-chromium-")
browser = subprocess.Popen(
    ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
     "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--force-device-scale-factor=1",
     "--window-size=1280,800", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
stop_load = threading.Event()
try:
    # Chromium writes the port it picked into the profile.
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + 60
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        if browser.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("chromium did not start its DevTools endpoint")
        time.sleep(0.1)
    port = int(open(port_file).read().split()[0])
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
    page = next(target for target in targets if target["type"] == "page")
    devtools = DevTools(page["webSocketDebuggerUrl"])
    devtools.call("Page.enable")
    devtools.call("Runtime.enable")
    devtools.call("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1, mobile=False)
    devtools.call("Page.navigate", url=admin + "/")

    wait_for(devtools, "the first snapshot", "Number(document.body.dataset.snapshots || 0) >= 1", 30)
    wait_for(devtools, f"the function {function} listed", f"{workers_expression(function)} >= 0", 30)

    # Requests Portico answers itself (no route, a redirect), for the local replies.
    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirects)
    for path in local_reply_path.split(","):
        try:
            opener.open(http + path, timeout=10)
        except urllib.error.HTTPError as error:
            print(f"step: local reply {error.code}", flush=True)

    sent = [0]

    def load():
        while not stop_load.is_set():
            try:
                urllib.request.urlopen(http + load_path, timeout=10).read()
                sent[0] += 1
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()

    wait_for(devtools, f"{function} with more than zero workers", f"{workers_expression(function)} > 0", 60)
    wait_for(devtools, "the route's request rate", "[...document.querySelectorAll('#routes tbody tr')]"
             ".some(row => row.children[1].textContent.includes('ƒ') && parseFloat(row.children[2].textContent) > 0)", 30)
    wait_for(devtools, "a local reply", "document.querySelectorAll('#replies tbody tr td.num').length > 0", 30)
    wait_for(devtools, "the topology", "document.querySelectorAll('#topology .node').length >= 3", 10)
    # A few more snapshots under load, so the page shows rates and the worker count's history.
    seen = devtools.evaluate("Number(document.body.dataset.snapshots)")
    wait_for(devtools, "five more snapshots under load", f"Number(document.body.dataset.snapshots) >= {seen + 5}", 30)
    wait_for(devtools, f"{function} still with workers", f"{workers_expression(function)} > 0", 10)
    shot = devtools.screenshot("dashboard.png")

    stop_load.set()
    for thread in threads:
        thread.join(timeout=15)
    print(f"step: load stopped after {sent[0]} requests", flush=True)
    wait_for(devtools, f"{function} with zero workers after its idle timeout", f"{workers_expression(function)} === 0", 60)
    devtools.screenshot("dashboard-idle.png")
    print("done", flush=True)
finally:
    stop_load.set()
    browser.terminate()
    try:
        browser.wait(timeout=15)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()
    shutil.rmtree(profile, ignore_errors=True)
