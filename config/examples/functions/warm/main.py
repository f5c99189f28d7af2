"""Portico example: a worker that takes a while to start (as loading a model does), then answers
GET with a greeting and POST with the size of what it was sent."""
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

time.sleep(float(os.environ.get("LOAD_SECONDS", "2")))  # stands in for loading a model


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, text):
        body = text.encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(f"warm {os.environ['K_REVISION']}\n")

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        self.answer(f"received {len(self.rfile.read(length))} bytes\n")

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
