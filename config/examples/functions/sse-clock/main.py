"""Server-sent events: the time, once a second, for as long as the client listens.

A stream is one request in flight for as long as it is open: Portico never scales this worker
down under it, and a redeploy lets it run on the old worker (up to maxStreamDuration).
"""
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            while True:
                self.wfile.write(f"data: {time.strftime('%H:%M:%S')} from {os.environ.get('K_REVISION')}\n\n".encode())
                self.wfile.flush()
                time.sleep(1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left

    def log_message(self, format, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
