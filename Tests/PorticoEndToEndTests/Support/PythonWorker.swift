/// Function workers for tests, in Python: an HTTP/1.1 server on `$PORT` whose `GET` answers
/// `status` with `body` (Python expressions evaluated per request) and any `headers`, after
/// running `before` (Python statements, with `self` the request handler).
enum PythonWorker {
    static func script(before: String = "", status: String = "200", body: String,
                       headers: [(String, String)] = [], globals: String = "") -> String {
        let indent = { (text: String) in
            text.split(separator: "\n", omittingEmptySubsequences: false).map { "        " + $0 }.joined(separator: "\n")
        }
        let headerLines = headers.map { "        self.send_header(\"\($0.0)\", \($0.1))" }.joined(separator: "\n")
        return """
            import os, sys, signal, time
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            \(globals)

            class Handler(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def do_GET(self):
            \(before.isEmpty ? "" : indent(before))
                    body = (\(body)).encode()
                    self.send_response(\(status))
                    self.send_header("content-length", str(len(body)))
            \(headerLines)
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
            """
    }
}
