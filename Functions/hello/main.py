"""Portico's example function: an HTTP server on 127.0.0.1:$PORT (Knative's runtime contract)."""
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "Hello")
REVISION = os.environ.get("K_REVISION", "?")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, b"ok\n")
            return
        body = f"{GREETING} from {REVISION} (pid {os.getpid()}): you asked for {self.path}\n"
        self.reply(200, body.encode())

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        data = self.rfile.read(length)
        self.reply(200, f"{GREETING}, you sent {len(data)} bytes\n".encode())

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # Portico's access log already has every request.


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    # SIGTERM is how Portico asks a worker to stop: finish up and exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
