import NIOCore

/// Writes one OpenTelemetry span as OTLP protobuf: the content of a `Span` message
/// (opentelemetry/proto/trace/v1/trace.proto), into a scratch buffer that `TraceBatch` then
/// frames as one entry of `ScopeSpans.spans`.
///
/// Attributes and events go straight to bytes, so recording a span builds no arrays or
/// dictionaries; a `String` attribute is one the request already had.
struct OTLPSpanBuilder {
    enum Kind: UInt64 {
        case `internal` = 1
        case server = 2
        case client = 3
    }

    enum Value {
        case string(String)
        case int(Int64)
        case bool(Bool)
    }

    /// `Span`'s field numbers.
    private enum Field {
        static let traceID = 1
        static let spanID = 2
        static let traceState = 3
        static let parentSpanID = 4
        static let name = 5
        static let kind = 6
        static let startTime = 7
        static let endTime = 8
        static let attributes = 9
        static let events = 11
        static let status = 15
    }

    var buffer: ByteBuffer

    init(scratch: ByteBuffer) {
        buffer = scratch
        buffer.clear()
    }

    /// The span's identity and times (Unix epoch nanoseconds); `parentSpanID` 0 for a root.
    mutating func start(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, parentSpanID: UInt64, name: String,
                        kind: Kind, startNanoseconds: UInt64, endNanoseconds: UInt64) {
        buffer.writeIDField(Field.traceID, high: traceIDHigh, low: traceIDLow)
        buffer.writeIDField(Field.spanID, high: nil, low: spanID)
        if parentSpanID != 0 { buffer.writeIDField(Field.parentSpanID, high: nil, low: parentSpanID) }
        buffer.writeStringField(Field.name, name)
        buffer.writeVarintField(Field.kind, kind.rawValue)
        buffer.writeFixed64Field(Field.startTime, startNanoseconds)
        buffer.writeFixed64Field(Field.endTime, endNanoseconds)
    }

    mutating func traceState(_ value: String) {
        buffer.writeStringField(Field.traceState, value)
    }

    mutating func attribute(_ key: String, _ value: Value) {
        Self.writeKeyValue(&buffer, field: Field.attributes, key: key, value: value)
    }

    mutating func attribute(_ key: String, _ value: String) { attribute(key, .string(value)) }
    mutating func attribute(_ key: String, _ value: Int) { attribute(key, .int(Int64(value))) }

    /// A timed event with integer attributes (a cold start's phases).
    mutating func event(_ name: String, atNanoseconds time: UInt64, _ attributes: (key: String, value: Int64)...) {
        // Event: time_unix_nano = 1, name = 2, attributes = 3.
        var length = 1 + 8 + ByteBuffer.lengthDelimitedSize(field: 2, length: name.utf8.count)
        for attribute in attributes {
            length += ByteBuffer.lengthDelimitedSize(field: 3, length: Self.keyValueSize(attribute.key, .int(attribute.value)))
        }
        buffer.writeLengthDelimitedHeader(Field.events, length: length)
        buffer.writeFixed64Field(1, time)
        buffer.writeStringField(2, name)
        for attribute in attributes {
            Self.writeKeyValue(&buffer, field: 3, key: attribute.key, value: .int(attribute.value))
        }
    }

    /// An error status (`STATUS_CODE_ERROR`), with a message when there is one to give.
    mutating func errorStatus(message: String? = nil) {
        // Status: message = 2, code = 3.
        var length = 2
        if let message { length += ByteBuffer.lengthDelimitedSize(field: 2, length: message.utf8.count) }
        buffer.writeLengthDelimitedHeader(Field.status, length: length)
        if let message { buffer.writeStringField(2, message) }
        buffer.writeVarintField(3, 2)
    }

    // MARK: KeyValue and AnyValue

    /// AnyValue: string_value = 1, bool_value = 2, int_value = 3.
    private static func anyValueSize(_ value: Value) -> Int {
        switch value {
        case .string(let text): return ByteBuffer.lengthDelimitedSize(field: 1, length: text.utf8.count)
        case .bool: return 2
        case .int(let number): return 1 + ByteBuffer.varintSize(UInt64(bitPattern: number))
        }
    }

    /// KeyValue: key = 1, value = 2.
    private static func keyValueSize(_ key: String, _ value: Value) -> Int {
        ByteBuffer.lengthDelimitedSize(field: 1, length: key.utf8.count)
            + ByteBuffer.lengthDelimitedSize(field: 2, length: anyValueSize(value))
    }

    static func writeKeyValue(_ buffer: inout ByteBuffer, field: Int, key: String, value: Value) {
        buffer.writeLengthDelimitedHeader(field, length: keyValueSize(key, value))
        buffer.writeStringField(1, key)
        buffer.writeLengthDelimitedHeader(2, length: anyValueSize(value))
        switch value {
        case .string(let text): buffer.writeStringField(1, text)
        case .bool(let flag): buffer.writeVarintField(2, flag ? 1 : 0)
        case .int(let number): buffer.writeVarintField(3, UInt64(bitPattern: number))
        }
    }
}
