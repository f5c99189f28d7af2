import NIOCore
import PorticoHTTP1

/// Hands each request's end to the loop's taps (`portico tap`, the dashboard's local replies).
///
/// Last of the ending layers; while no one taps it reads one loop-local array and returns.
final class TapLayer: RequestLayer {
    @inline(__always)
    func exchangeEnded(_ ending: ExchangeEnding) {
        let tap = ending.loop.tap
        guard tap.hasSubscribers else { return }
        tap.record(ending)
    }

    /// The request's trace id, for the tap line: Portico's own when tracing is configured (the
    /// client's, when it sent a `traceparent`, since sampling is parent-based), else the one of
    /// the client's `traceparent` (W3C, `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`),
    /// else `-`.
    static func writeTraceID(of ending: ExchangeEnding, to buffer: inout ByteBuffer) {
        if let trace = ending.trace {
            buffer.writeStaticString("\"")
            buffer.writeHex64(trace.traceIDHigh)
            buffer.writeHex64(trace.traceIDLow)
            buffer.writeStaticString("\"")
        } else if let traceID = clientTraceID(of: ending) {
            buffer.writeJSONString(String(traceID))
        } else {
            buffer.writeStaticString("\"-\"")
        }
    }

    static func clientTraceID(of ending: ExchangeEnding) -> Substring? {
        guard let value = ending.requestFields.firstValue(of: "traceparent") else { return nil }
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[1].utf8.count == 32,
              parts[1].utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              parts[1].utf8.contains(where: { $0 != 0x30 }) else { return nil }
        return parts[1]
    }

    /// One line of a tap, as JSON: what Linkerd's tap shows of a request.
    static func writeLine(_ ending: ExchangeEnding, local: Bool, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"time_unix_ms\":")
        buffer.writeDecimal(Int(AccessClock.unixMilliseconds()))
        buffer.writeStaticString(",\"method\":")
        buffer.writeJSONString(ending.method)
        buffer.writeStaticString(",\"path\":")
        buffer.writeJSONString(ending.target)
        buffer.writeStaticString(",\"route\":")
        buffer.writeJSONString(ending.record.route)
        buffer.writeStaticString(",\"backend\":")
        buffer.writeJSONString(ending.record.backend)
        buffer.writeStaticString(",\"upstream\":")
        if let upstream = ending.upstream {
            buffer.writeJSONString(upstream.description)
        } else {
            buffer.writeStaticString("\"-\"")
        }
        buffer.writeStaticString(",\"status\":")
        buffer.writeDecimal(ending.status)
        buffer.writeStaticString(",\"duration_us\":")
        buffer.writeDecimal(Int(ending.elapsedNanoseconds / 1000))
        buffer.writeStaticString(",\"retries\":")
        buffer.writeDecimal(ending.retries)
        buffer.writeStaticString(",\"trace_id\":")
        writeTraceID(of: ending, to: &buffer)
        buffer.writeStaticString(",\"local\":")
        if local { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
        // Why the gateway answered by itself, as `portico_local_replies_total` says it.
        buffer.writeStaticString(",\"reason\":")
        if let reason = ending.localReply {
            buffer.writeStaticString("\"")
            buffer.writeString(reason.name)
            buffer.writeStaticString("\"")
        } else {
            buffer.writeStaticString("null")
        }
        buffer.writeStaticString(",\"request_id\":")
        buffer.writeJSONString(ending.record.requestID)
        buffer.writeStaticString("}")
    }
}
