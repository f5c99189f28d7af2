"""Portico's launcher for `runtime: python` functions (shipped inside the gateway's binary).

Two ways to run, chosen by the gateway:

  template IFACE MODULE:NAME
                         Import the handler once, then wait on fd 0, a socket to the gateway.
                         Each worker is a fork of this process: it skips the interpreter's
                         start and every import, which is most of a Python cold start.
  serve IFACE MODULE:NAME
                         Import the handler and serve it: the same worker, spawned plainly
                         (`template: false`).

IFACE is `wsgi`, a WSGI application (PEP 3333) served on 127.0.0.1:$PORT, or `lambda`, a
Lambda-style handler(event, context) fed by the Lambda Runtime API on $AWS_LAMBDA_RUNTIME_API.

The control protocol is one JSON object per line:

  gateway -> template  {"op": "fork", "id": N, "port": P, "env": {...}}
                       {"op": "signal", "pid": PID, "signal": S}
  template -> gateway  {"op": "ready", "pid": PID}
                       {"op": "failed", "error": TRACEBACK}          (then it exits 1)
                       {"op": "forked", "id": N, "pid": PID}
                       {"op": "fork-failed", "id": N, "error": TEXT}
                       {"op": "exited", "pid": PID, "status": WAIT_STATUS}

The fork rules (the README says them to users): the module must not start threads when it is
imported (a fork copies only the thread that forks, so locks held by the others stay held
forever), and anything random seeded at import must be reseeded in the worker; Python's own
`random` is reseeded here after every fork.
"""

import gc
import importlib
import io
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn, TCPServer


def load(spec):
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    target = module
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


# ---------------------------------------------------------------------------------------------
# The worker: a small threaded HTTP/1.1 server around a WSGI application.


class WSGIRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "portico-python"
    sys_version = ""

    def setup(self):
        # A stop signal must reach the main thread, which waits in select() and runs Python's
        # handlers; delivered to this one, it would wait for the main thread's next wakeup.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        super().setup()

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.parse_request():
                return
            self.run_application()
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = io.BytesIO()
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: WSGI has no place for them
                    break
                body.write(self.rfile.read(size))
                self.rfile.readline(3)
            length = body.tell()
            body.seek(0)
            return body, length
        length = int(self.headers.get("content-length") or 0)
        return io.BytesIO(self.rfile.read(length) if length else b""), length

    def environ(self, body, length):
        path, _, query = self.path.partition("?")
        from urllib.parse import unquote
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(length) if length else "",
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"):
                continue
            environ[key] = environ[key] + "," + value if key in environ else value
        return environ

    def run_application(self):
        body, length = self.read_body()
        state = {"status": None, "headers": None, "sent": False, "chunked": False}

        def start_response(status, headers, exc_info=None):
            if exc_info and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def send_head():
            code, _, reason = state["status"].partition(" ")
            self.send_response_only(int(code), reason)
            names = {name.lower() for name, _ in state["headers"]}
            for name, value in state["headers"]:
                self.send_header(name, value)
            if "content-length" not in names and self.command != "HEAD" and int(code) not in (204, 304):
                self.send_header("transfer-encoding", "chunked")
                state["chunked"] = True
            self.end_headers()
            state["sent"] = True

        def write(data):
            if not state["sent"]:
                send_head()
            if not data:
                return
            if state["chunked"]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)

        try:
            result = self.server.application(self.environ(body, length), start_response)
            try:
                for data in result:
                    write(data)
                if not state["sent"]:
                    send_head()
                if state["chunked"]:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            traceback.print_exc()
            if state["sent"]:
                self.close_connection = True
            else:
                message = b"internal error in the function\n"
                self.send_response_only(500)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)

    def log_message(self, format, *args):
        pass  # Portico's access log already has every request.


class WorkerServer(ThreadingMixIn, TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, listener, application):
        TCPServer.__init__(self, listener.getsockname(), WSGIRequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.server_address = listener.getsockname()
        self.application = application


def serve(listener, application):
    # SIGTERM is how Portico asks a worker to stop: finish and exit 0.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = WorkerServer(listener, application)
    server.serve_forever(poll_interval=3600)


def listen(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


# ---------------------------------------------------------------------------------------------
# A Lambda-style worker: handler(event, context) behind the Lambda Runtime API, which Portico
# serves to each worker on AWS_LAMBDA_RUNTIME_API (`mode: lambda`). The loop is the one AWS's
# runtime interface clients run: next, invoke, response or error, next.


class LambdaContext:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", os.environ.get("K_SERVICE", ""))
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self):
        import time
        return max(0, self.deadline_ms - int(time.time() * 1000))


def report_init_error(error):
    """Lambda's init/error call: the handler could not be loaded."""
    import http.client
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    api = http.client.HTTPConnection(host, int(port or 80))
    body = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__,
                       "stackTrace": traceback.format_exception(error)}).encode()
    api.request("POST", "/2018-06-01/runtime/init/error", body=body,
                headers={"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
    api.getresponse().read()


def serve_lambda(handler):
    import http.client
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    api = http.client.HTTPConnection(host, int(port or 80))
    base = "/2018-06-01/runtime"

    def call(method, path, body=None, headers=None):
        api.request(method, base + path, body=body, headers=headers or {})
        answer = api.getresponse()
        return answer, answer.read()

    while True:
        answer, body = call("GET", "/invocation/next")
        context = LambdaContext(answer.headers)
        trace = answer.headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        request_id = context.aws_request_id
        try:
            result = handler(json.loads(body or b"null"), context)
            payload = json.dumps(result).encode()
        except Exception as error:
            traceback.print_exc()
            payload = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__,
                                  "stackTrace": traceback.format_exception(error)}).encode()
            call("POST", f"/invocation/{request_id}/error", payload,
                 {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        call("POST", f"/invocation/{request_id}/response", payload, {"Content-Type": "application/json"})


# ---------------------------------------------------------------------------------------------
# The template.


class Template:
    def __init__(self, application, interface):
        self.application = application
        self.interface = interface
        self.control = socket.socket(fileno=0)
        self.control.setblocking(True)
        self.buffer = b""
        self.children = set()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        signal.set_wakeup_fd(self.wake_write)
        # A handler (not SIG_DFL) so that SIGCHLD writes to the wakeup fd.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.stop())

    def send(self, message):
        self.control.sendall((json.dumps(message) + "\n").encode())

    def stop(self):
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    def run(self):
        self.send({"op": "ready", "pid": os.getpid()})
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wake_read, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in selector.select():
                if key.data == "wake":
                    try:
                        os.read(self.wake_read, 512)
                    except BlockingIOError:
                        pass
                    self.reap()
                else:
                    data = self.control.recv(65536)
                    if not data:
                        self.stop()  # the gateway is gone
                    self.buffer += data
                    while b"\n" in self.buffer:
                        line, self.buffer = self.buffer.split(b"\n", 1)
                        self.handle(json.loads(line))
            self.reap()

    def reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.send({"op": "exited", "pid": pid, "status": status})

    def handle(self, message):
        if message["op"] == "fork":
            self.fork(message)
        elif message["op"] == "signal":
            if message["pid"] in self.children:
                try:
                    os.kill(message["pid"], message["signal"])
                except ProcessLookupError:
                    pass

    def fork(self, message):
        try:
            # Bound before the fork, so the worker accepts connections from its first instant. A
            # Lambda worker listens on nothing: it asks the gateway's Runtime API for work.
            listener = listen(message["port"]) if self.interface == "wsgi" else None
        except OSError as error:
            self.send({"op": "fork-failed", "id": message["id"], "error": f"cannot listen: {error}"})
            return
        try:
            pid = os.fork()
        except OSError as error:
            if listener is not None:
                listener.close()
            self.send({"op": "fork-failed", "id": message["id"], "error": f"fork: {error}"})
            return
        if pid == 0:
            try:
                self.become_worker(message["env"], listener)
            except BaseException:
                traceback.print_exc()
            os._exit(1)
        if listener is not None:
            listener.close()
        self.children.add(pid)
        self.send({"op": "forked", "id": message["id"], "pid": pid})

    def become_worker(self, environment, listener):
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        self.control.close()
        os.close(self.wake_read)
        os.close(self.wake_write)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.environ.clear()
        os.environ.update(environment)
        random.seed()
        if self.interface == "lambda":
            serve_lambda(self.application)
        else:
            serve(listener, self.application)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("template", "serve") or sys.argv[2] not in ("wsgi", "lambda"):
        print("usage: launcher (template|serve) (wsgi|lambda) MODULE:NAME", file=sys.stderr)
        sys.exit(2)
    how, interface, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    # The function's folder (the working directory) is where its modules are.
    sys.path.insert(0, os.getcwd())
    if how == "serve":
        if interface == "lambda":
            try:
                handler = load(spec)
            except BaseException as error:
                report_init_error(error)
                raise
            serve_lambda(handler)
        else:
            # Imported before the port opens: an open port is what tells the gateway it is ready.
            application = load(spec)
            serve(listen(int(os.environ["PORT"])), application)
        return
    try:
        application = load(spec)
    except BaseException:
        text = traceback.format_exc()
        sys.stderr.write(text)
        socket.socket(fileno=0).sendall((json.dumps({"op": "failed", "error": text}) + "\n").encode())
        sys.exit(1)
    # Native threads count too (a BLAS pool, a client library's I/O thread): /proc lists them all.
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads > 1:
        print(f"portico: importing {spec} started {threads - 1} thread(s); a fork copies only the "
              "thread that forks, so a worker may hang on a lock another one held", file=sys.stderr)
    # Everything imported so far is shared with every worker, copy-on-write. The collector
    # would write to each of those objects on its first pass in a worker and so copy their
    # pages; frozen, it leaves them alone (gunicorn's and Instagram's pre-fork recipe).
    gc.freeze()
    Template(application, interface).run()


main()
