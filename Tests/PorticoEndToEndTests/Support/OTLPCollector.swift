import Foundation
import XCTest

/// A real OTLP/HTTP trace receiver: a Python server that decodes each export with the
/// `opentelemetry-proto` package (the protocol's own generated code, from PyPI) and keeps the
/// spans, which the test reads back as JSON (`GET /spans`).
final class OTLPCollector {
    let port: Int
    private let peer: PythonPeer

    /// `port` nil picks a free one; a test that brings a collector up where one was down names it.
    init(port: Int? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        self.port = try port ?? freePort()
        peer = try PythonPeer(script: Self.script, arguments: [String(self.port)], marker: "otlp-collector",
                              file: file, line: line)
    }

    var endpoint: String { "http://127.0.0.1:\(port)/v1/traces" }

    struct Span {
        let traceID: String
        let spanID: String
        let parentSpanID: String
        let name: String
        let kind: Int
        let start: UInt64
        let end: UInt64
        let attributes: [String: Any]
        let events: [(name: String, attributes: [String: Any])]
        let statusCode: Int
        let traceState: String
        let serviceName: String

        func string(_ key: String) -> String? { attributes[key] as? String }
        func int(_ key: String) -> Int? { (attributes[key] as? NSNumber)?.intValue }
    }

    /// Every span received so far.
    func spans() -> [Span] {
        guard let body = try? Curl.run(["http://127.0.0.1:\(port)/spans"]).body,
              let array = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else { return [] }
        return array.map { object in
            Span(traceID: object["trace_id"] as? String ?? "", spanID: object["span_id"] as? String ?? "",
                 parentSpanID: object["parent_span_id"] as? String ?? "", name: object["name"] as? String ?? "",
                 kind: object["kind"] as? Int ?? 0,
                 start: (object["start"] as? NSNumber)?.uint64Value ?? 0, end: (object["end"] as? NSNumber)?.uint64Value ?? 0,
                 attributes: object["attributes"] as? [String: Any] ?? [:],
                 events: (object["events"] as? [[String: Any]] ?? []).map {
                     ($0["name"] as? String ?? "", $0["attributes"] as? [String: Any] ?? [:])
                 },
                 statusCode: object["status_code"] as? Int ?? 0, traceState: object["trace_state"] as? String ?? "",
                 serviceName: object["service_name"] as? String ?? "")
        }
    }

    /// The spans of one trace, once `condition` holds for them (or whatever came by the deadline).
    func trace(_ traceID: String, timeout: TimeInterval = 20, until condition: ([Span]) -> Bool) -> [Span] {
        var found: [Span] = []
        _ = eventually(timeout: timeout) {
            found = self.spans().filter { $0.traceID == traceID }
            return condition(found)
        }
        return found
    }

    var exportRequests: Int {
        Int((try? Curl.run(["http://127.0.0.1:\(port)/count"]).body.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "") ?? 0
    }

    func stop() { peer.stop() }

    static let script = #"""
    import json, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans, lock, exports = [], threading.Lock(), [0]

    def value(any_value):
        kind = any_value.WhichOneof("value")
        return getattr(any_value, kind) if kind else None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            data = self.rfile.read(int(self.headers["content-length"]))
            if self.path != "/v1/traces" or self.headers["content-type"] != "application/x-protobuf":
                return self.reply(400, b"unexpected request")
            request = ExportTraceServiceRequest()
            request.ParseFromString(data)
            received = []
            for resource_spans in request.resource_spans:
                service = next((value(a.value) for a in resource_spans.resource.attributes if a.key == "service.name"), "")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        received.append({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
                            "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                            "attributes": {a.key: value(a.value) for a in span.attributes},
                            "events": [{"name": e.name, "attributes": {a.key: value(a.value) for a in e.attributes}}
                                       for e in span.events],
                            "status_code": span.status.code, "trace_state": span.trace_state,
                            "service_name": service,
                        })
            with lock:
                spans.extend(received)
                exports[0] += 1
            self.reply(200, b"", "application/x-protobuf")

        def do_GET(self):
            with lock:
                body = json.dumps(spans if self.path == "/spans" else exports[0]).encode()
            self.reply(200, body)

    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    print("ready", flush=True)
    server.serve_forever()
    """#
}
