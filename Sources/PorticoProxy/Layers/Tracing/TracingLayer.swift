import NIOCore
import PorticoConfig

/// Writes a recorded request's spans (OpenTelemetry HTTP semantic conventions) into its event
/// loop's trace batch as the request ends: the server span, a client span per upstream try,
/// and internal spans for an injected fault delay and a function's cold start.
final class TracingLayer: RequestLayer {
    func exchangeEnded(_ ending: ExchangeEnding) {
        guard var trace = ending.trace, trace.recording, let tracing = ending.loop.snapshot.tracing else { return }
        // Unsampled, a request is exported only as an error (`alwaysSampleErrors`).
        guard trace.sampled || ending.status >= 500 else { return }
        let batch = ending.loop.traces
        let end = ending.record.started + .nanoseconds(Int64(truncatingIfNeeded: ending.elapsedNanoseconds))
        trace.endCurrentTry(at: end)
        let exporter = tracing.exporter
        let interval = tracing.exportInterval
        let record = ending.record
        let connection = ending.connection

        batch.add(exporter: exporter, interval: interval) { span in
            let name = record.route == "-" ? ending.method : ending.method + " " + record.route
            span.start(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: trace.spanID,
                       parentSpanID: trace.parentSpanID, name: name, kind: .server,
                       startNanoseconds: batch.wallClock(trace.started), endNanoseconds: batch.wallClock(end))
            if let state = trace.traceState { span.traceState(state) }
            span.attribute("http.request.method", ending.method)
            span.attribute("url.path", trace.path ?? ending.target)
            span.attribute("url.scheme", connection.scheme)
            if record.route != "-" { span.attribute("http.route", record.route) }
            span.attribute("http.response.status_code", ending.status)
            if let authority = trace.authority {
                let (host, port) = Self.split(authority)
                span.attribute("server.address", host)
                if let port { span.attribute("server.port", port) }
            }
            span.attribute("client.address", connection.clientAddress)
            span.attribute("network.protocol.version", connection.isHTTP1 ? "1.1" : "2")
            span.attribute("portico.request_id", record.requestID)
            if record.backend != "-" { span.attribute("portico.backend", record.backend) }
            if let grpcStatus = ending.grpcStatus { span.attribute("rpc.grpc.status_code", grpcStatus) }
            // Why the gateway answered by itself (the same reasons as portico_local_replies_total).
            if let reason = ending.localReply { span.attribute("portico.local_reply", reason.name) }
            if ending.status >= 500 {
                // A server span is an error for a 5xx only (the semantic conventions): a 4xx is
                // the client's.
                span.attribute("error.type", String(ending.status))
                span.errorStatus()
            }
        }

        for upstreamTry in trace.finishedTries {
            batch.add(exporter: exporter, interval: interval) { span in
                span.start(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: upstreamTry.spanID,
                           parentSpanID: trace.spanID, name: ending.method, kind: .client,
                           startNanoseconds: batch.wallClock(upstreamTry.start),
                           endNanoseconds: batch.wallClock(upstreamTry.end ?? end))
                span.attribute("http.request.method", ending.method)
                if let endpoint = upstreamTry.endpoint {
                    span.attribute("server.address", endpoint.host)
                    span.attribute("server.port", endpoint.port)
                }
                if upstreamTry.number > 0 { span.attribute("http.request.resend_count", upstreamTry.number) }
                if let status = upstreamTry.status { span.attribute("http.response.status_code", status) }
                if let failure = upstreamTry.failure {
                    span.attribute("error.type", failure)
                    span.errorStatus(message: failure)
                } else if let status = upstreamTry.status, status >= 500 {
                    span.attribute("error.type", String(status))
                    span.errorStatus()
                } else if upstreamTry.status == nil {
                    // Over with no answer and no failure seen: the request ended first (the
                    // client left, or the route's timeout fired on the exchange as a whole).
                    span.attribute("error.type", "cancelled")
                    span.errorStatus(message: "cancelled")
                }
            }
        }

        if let delay = trace.faultDelay {
            batch.add(exporter: exporter, interval: interval) { span in
                span.start(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: ending.loop.random.nonZero(),
                           parentSpanID: trace.spanID, name: "fault delay", kind: .internal,
                           startNanoseconds: batch.wallClock(delay.start),
                           endNanoseconds: batch.wallClock(delay.start + .nanoseconds(delay.nanoseconds)))
                span.attribute("portico.fault.delay_ms", Int(delay.nanoseconds / 1_000_000))
            }
        }

        if let handedOver = trace.coldStartHandedOver, let phases = ending.coldStart {
            // The wait ends when the started worker is handed over; its phases, measured by the
            // backend, are laid back from there.
            let handed = batch.wallClock(handedOver)
            let ready = handed
            let spawned = ready &- phases.startToReadyNanoseconds
            let asked = spawned &- phases.spawnNanoseconds
            batch.add(exporter: exporter, interval: interval) { span in
                span.start(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: ending.loop.random.nonZero(),
                           parentSpanID: trace.spanID, name: "function cold start", kind: .internal,
                           startNanoseconds: handed &- phases.waitNanoseconds, endNanoseconds: handed)
                span.attribute("faas.coldstart", .bool(true))
                span.attribute("portico.backend", record.backend)
                span.event("spawn", atNanoseconds: asked)
                span.event("spawned", atNanoseconds: spawned, ("portico.spawn_us", Int64(phases.spawnNanoseconds / 1000)))
                span.event("ready", atNanoseconds: ready,
                           ("portico.start_to_ready_us", Int64(phases.startToReadyNanoseconds / 1000)))
                if let first = phases.firstResponseNanoseconds {
                    span.event("first response", atNanoseconds: handed &+ first,
                               ("portico.first_response_us", Int64(first / 1000)))
                }
            }
        }
    }

    /// `host:port` → (host, port); a bracketed IPv6 host loses its brackets.
    static func split(_ authority: String) -> (String, Int?) {
        var host = Substring(authority)
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"),
           let number = Int(authority[authority.index(after: colon)...]) {
            host = authority[..<colon]
            port = number
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }
}

extension TracingLayer {
    /// A mirrored copy's client span, written when the copy is over (often after its request).
    static func writeMirrorSpan(_ mirror: (trace: RequestTrace, spanID: UInt64, started: NIODeadline), method: String,
                                endpoint: HostPort, service: String, status: Int?, loop: LoopContext) {
        guard let tracing = loop.snapshot.tracing else { return }
        let batch = loop.traces
        let trace = mirror.trace
        let end = NIODeadline.now()
        batch.add(exporter: tracing.exporter, interval: tracing.exportInterval) { span in
            span.start(traceIDHigh: trace.traceIDHigh, traceIDLow: trace.traceIDLow, spanID: mirror.spanID,
                       parentSpanID: trace.spanID, name: method + " mirror", kind: .client,
                       startNanoseconds: batch.wallClock(mirror.started), endNanoseconds: batch.wallClock(end))
            span.attribute("http.request.method", method)
            span.attribute("server.address", endpoint.host)
            span.attribute("server.port", endpoint.port)
            span.attribute("portico.mirror.service", service)
            if let status {
                span.attribute("http.response.status_code", status)
                if status >= 500 {
                    span.attribute("error.type", String(status))
                    span.errorStatus()
                }
            } else {
                span.attribute("error.type", "no_answer")
                span.errorStatus(message: "no answer")
            }
        }
    }
}
