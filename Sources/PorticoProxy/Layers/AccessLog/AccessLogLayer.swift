import NIOCore

/// Writes one JSON line per request to the event loop's access-log batch (written off the
/// loop by `AccessLogService`), without Foundation and without building a `String`.
final class AccessLogLayer: RequestLayer {
    func exchangeEnded(_ ending: ExchangeEnding) {
        guard let accessLog = ending.loop.accessLog else { return }
        let connection = ending.connection
        let record = ending.record
        accessLog.append { buffer in
            buffer.writeStaticString("{\"time_unix_ms\":")
            buffer.writeDecimal(Int(AccessClock.unixMilliseconds()))
            buffer.writeStaticString(",\"listener\":")
            buffer.writeJSONString(connection.listenerName)
            buffer.writeStaticString(",\"client\":")
            buffer.writeJSONString(connection.clientAddress)
            buffer.writeStaticString(",\"protocol\":")
            buffer.writeJSONString(connection.protocolName)
            buffer.writeStaticString(",\"method\":")
            buffer.writeJSONString(ending.method)
            buffer.writeStaticString(",\"uri\":")
            buffer.writeJSONString(ending.target)
            buffer.writeStaticString(",\"status\":")
            buffer.writeDecimal(ending.status)
            buffer.writeStaticString(",\"route\":")
            buffer.writeJSONString(record.route)
            buffer.writeStaticString(",\"backend\":")
            buffer.writeJSONString(record.backend)
            buffer.writeStaticString(",\"upstream\":")
            buffer.writeJSONString(ending.upstream?.description ?? "-")
            if let localReply = ending.localReply {
                // Why the gateway answered itself (`LocalReplyReason`); absent when a backend did.
                buffer.writeStaticString(",\"local_reply\":\"")
                buffer.writeString(localReply.name)  // snake_case ASCII: nothing to escape
                buffer.writeStaticString("\"")
            }
            if let grpcStatus = ending.grpcStatus {
                buffer.writeStaticString(",\"grpc_status\":")
                buffer.writeDecimal(grpcStatus)
            }
            if let coldStart = ending.coldStart {
                // The phases of the start this request waited for (issue 17): where its time went.
                buffer.writeStaticString(",\"cold_start\":{\"wait_us\":")
                buffer.writeDecimal(Int(coldStart.waitNanoseconds / 1000))
                buffer.writeStaticString(",\"spawn_us\":")
                buffer.writeDecimal(Int(coldStart.spawnNanoseconds / 1000))
                buffer.writeStaticString(",\"start_to_ready_us\":")
                buffer.writeDecimal(Int(coldStart.startToReadyNanoseconds / 1000))
                if let firstResponse = coldStart.firstResponseNanoseconds {
                    buffer.writeStaticString(",\"first_response_us\":")
                    buffer.writeDecimal(Int(firstResponse / 1000))
                }
                buffer.writeStaticString("}")
            }
            buffer.writeStaticString(",\"bytes_in\":")
            buffer.writeDecimal(ending.bytesIn)
            buffer.writeStaticString(",\"bytes_out\":")
            buffer.writeDecimal(ending.bytesOut)
            buffer.writeStaticString(",\"duration_us\":")
            buffer.writeDecimal(Int(ending.elapsedNanoseconds / 1000))
            buffer.writeStaticString(",\"request_id\":")
            buffer.writeJSONString(record.requestID)
            if let trace = ending.trace {
                // The ids a trace search takes: the line and the spans find each other.
                buffer.writeStaticString(",\"trace_id\":\"")
                buffer.writeHex64(trace.traceIDHigh)
                buffer.writeHex64(trace.traceIDLow)
                buffer.writeStaticString("\",\"span_id\":\"")
                buffer.writeHex64(trace.spanID)
                buffer.writeStaticString("\"")
            }
            buffer.writeStaticString("}")
        }
    }
}
