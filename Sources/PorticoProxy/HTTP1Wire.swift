import NIOCore
import PorticoConfig
import PorticoHTTP1

/// How the body of an outgoing HTTP/1 message is delimited.
enum HTTP1BodyFraming {
    /// No body may follow (a 204, a 304, an interim response, a response to HEAD).
    case none
    case contentLength
    case chunked
    /// Whatever is written goes as it is: an HTTP/1.0 body that ends with the connection, or
    /// a GET whose headers announce no body (NIO's encoder does the same).
    case untilClose
}

/// Whether an outgoing HTTP/1 message carries a body, by its kind (NIO's `HasBody`).
enum HTTP1BodyExpectation {
    /// Never: a 204, a 304, a 1xx, a TRACE request.
    case no
    /// Always possible: a response, a POST, PUT or PATCH. Without a length it is chunked.
    case yes
    /// Only if the headers say so: a GET or DELETE request.
    case unlikely

    init(requestMethod method: String) {
        switch method {
        case "TRACE": self = .no
        case "POST", "PUT", "PATCH": self = .yes
        default: self = .unlikely
        }
    }

    /// A 1xx, 204 or 304 has no body (RFC 9110 6.4.1).
    init(responseStatus status: Int) {
        self = (status >= 100 && status < 200) || status == 204 || status == 304 ? .no : .yes
    }
}

extension HTTPFieldList {
    /// Makes the framing headers agree with whether the message carries a body, as NIO's
    /// encoders do: a body-less message loses `content-length` and `transfer-encoding`; a
    /// length wins over a transfer coding; an HTTP/1.1 message that may have a body and has
    /// neither is sent chunked.
    ///
    /// One scan in the common case, and no edit unless one has to change.
    mutating func frameForSending(_ expectation: HTTP1BodyExpectation, version: HTTPProtocolVersion = .http1_1)
        -> HTTP1BodyFraming {
        var hasLength = false
        var hasTransferEncoding = false
        var isChunkedOnly = false
        for index in 0..<count {
            let field = self[index]
            if field.hasName("content-length") {
                hasLength = true
            } else if field.hasName("transfer-encoding") {
                isChunkedOnly = !hasTransferEncoding && field.valueEqualsIgnoringCase("chunked")
                hasTransferEncoding = true
            }
        }
        if expectation == .no {
            if hasLength { removeAll(named: "content-length") }
            if hasTransferEncoding { removeAll(named: "transfer-encoding") }
            return .none
        }
        if hasLength {
            if hasTransferEncoding { removeAll(named: "transfer-encoding") }
            return .contentLength
        }
        guard version == .http1_1 else {
            return .untilClose
        }
        if expectation == .unlikely {
            return isChunkedOnly ? .chunked : .untilClose
        }
        if !isChunkedOnly { replaceOrAppend(name: "transfer-encoding", value: "chunked") }
        return .chunked
    }
}

/// The error a write fails with when a header would break the message: a name that is not a
/// token, or a value with a control character (CR and LF would let it start a new header).
struct InvalidOutboundHeader: Error {}

/// The error a body write fails with when the response may not have one (HEAD, 204, 304).
struct ResponseBodyNotAllowed: Error {}

extension ByteBuffer {
    /// Writes `HTTP/x.y CODE REASON\r\n` without Foundation or string interpolation.
    mutating func writeHTTP1StatusLine(_ head: ResponseHead) {
        writeStaticString(head.version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeDecimal(head.status)
        writeInteger(UInt8(ascii: " "))
        if let reason = head.reason, reason.utf8.isValidHeaderValue {
            writeString(reason)
        } else {
            // An upstream's phrase with a control character in it is not passed on; the
            // code's own phrase (empty for an unknown code) says the same.
            writeString(HTTPStatus(statusCode: head.status).reasonPhrase)
        }
        writeStaticString("\r\n")
    }

    /// Writes `METHOD TARGET HTTP/1.1\r\n`: upstream requests are always HTTP/1.1. The caller
    /// checks `isSendableRequestLine` first.
    mutating func writeHTTP1RequestLine(_ head: RequestHead) {
        writeString(head.method)
        writeInteger(UInt8(ascii: " "))
        writeString(head.target)
        writeStaticString(" HTTP/1.1\r\n")
    }

    /// Writes each field as `name: value\r\n`, then the empty line that ends the section; the
    /// bytes are copied as they are, without a `String`. Writes nothing and returns false if
    /// a name or value cannot be sent as it is.
    mutating func writeHTTP1HeaderSection(_ fields: HTTPFieldList) -> Bool {
        guard fields.isSendable else { return false }
        fields.write(to: &self)
        writeStaticString("\r\n")
        return true
    }

    /// Writes a chunk-size line: the length in hexadecimal and CRLF.
    mutating func writeChunkSizeLine(_ size: Int) {
        var digits = 0
        var rest = size
        repeat {
            digits += 1
            rest >>= 4
        } while rest > 0
        let hex: StaticString = "0123456789abcdef"
        hex.withUTF8Buffer { alphabet in
            for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
                writeInteger(alphabet[(size >> shift) & 0xF])
            }
        }
        writeStaticString("\r\n")
    }
}

extension RequestHead {
    /// The method is a token and the target has no space or control character: nothing in
    /// them can end the request line early or start another line. (An HTTP/2 client's
    /// `:method` and `:path` reach here without HTTP/1's parser having seen them.)
    var isSendableRequestLine: Bool {
        method.utf8.isValidHeaderName && target.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F })
    }
}

extension String.UTF8View {
    /// RFC 9110 `token`.
    fileprivate var isValidHeaderName: Bool {
        guard !isEmpty else { return false }
        return withContiguousStorageIfAvailable { $0.allSatisfy(\.isTokenByte) } ?? allSatisfy(\.isTokenByte)
    }

    /// No control character but HTAB (RFC 9110 5.5: CR, LF and NUL are dangerous, the other
    /// controls unsafe where the value may be parsed again), as NIO's validator checks.
    fileprivate var isValidHeaderValue: Bool {
        withContiguousStorageIfAvailable { $0.allSatisfy(\.isFieldValueByte) } ?? allSatisfy(\.isFieldValueByte)
    }
}

extension UInt8 {
    @inline(__always)
    fileprivate var isTokenByte: Bool { HTTPToken.isTokenByte(self) }

    @inline(__always)
    fileprivate var isFieldValueByte: Bool {
        self == UInt8(ascii: "\t") || (self >= 0x20 && self != 0x7F)
    }
}

/// Gathers the bytes of outgoing HTTP/1 messages into one buffer, so a head, small body parts
/// and an end leave in a single `write` at the flush instead of one buffer each.
///
/// A body part above `copyLimit` is not copied: what was gathered goes first, then the part's
/// own buffer. A part written with a promise is sent at once, so the promise keeps its meaning.
struct OutboundGatherer {
    /// Larger body parts are passed on as they are; copying them would cost more than an iovec.
    static let copyLimit = 4096
    /// Gathered bytes are invisible to the channel's writability, so the gathering stays small.
    static let gatherLimit = 16 * 1024

    var gathered: ByteBuffer?
    /// The buffer last handed to the channel. Once the channel has written it and let go, the
    /// next message is gathered into it again, which saves two allocations per message; if
    /// the channel still holds it, `clear()` gives a fresh buffer instead (copy on write), so
    /// bytes not yet sent are never touched.
    private var spare: ByteBuffer?
    /// A buffer that grew past this (a large head) is not kept for the next message: an idle
    /// connection holds at most this much for it.
    private static let spareCapacityLimit = 2048

    /// Makes sure there is a buffer to write into (`gathered!`), from the channel's allocator.
    @inline(__always)
    mutating func prepare(_ allocator: ByteBufferAllocator) {
        guard gathered == nil else { return }
        if var buffer = spare {
            spare = nil
            buffer.clear()
            gathered = buffer
        } else {
            gathered = allocator.buffer(capacity: 512)
        }
    }

    /// Takes what was gathered, leaving nothing; nil if that is no bytes.
    private mutating func take() -> ByteBuffer? {
        defer { gathered = nil }
        guard let gathered, gathered.readableBytes > 0 else { return nil }
        if gathered.capacity <= Self.spareCapacityLimit { spare = gathered }
        return gathered
    }

    var isOverLimit: Bool { (gathered?.readableBytes ?? 0) >= Self.gatherLimit }

    /// Passes what was gathered on to the channel (it reaches the socket at the next flush).
    /// With a promise and nothing gathered, an empty write completes the promise in order,
    /// behind what is already queued.
    mutating func write(to context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        if let pending = take() {
            context.write(NIOAny(IOData.byteBuffer(pending)), promise: promise)
        } else if let promise {
            context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }

    /// Frames a body part (a size line and CRLF around it when `chunked`) and gathers it if it
    /// is small; a larger one is written as it is, right behind what was gathered before it.
    mutating func writeBody(_ body: IOData, chunked: Bool, to context: ChannelHandlerContext,
                            promise: EventLoopPromise<Void>?) {
        let size = body.readableBytes
        guard size > 0 else {
            // An empty chunk would end a chunked body.
            if promise != nil { write(to: context, promise: promise) }
            return
        }
        prepare(context.channel.allocator)
        if chunked { gathered!.writeChunkSizeLine(size) }
        if case .byteBuffer(var buffer) = body, size <= Self.copyLimit {
            gathered!.writeBuffer(&buffer)
            if chunked { gathered!.writeStaticString("\r\n") }
            if promise != nil || isOverLimit { write(to: context, promise: promise) }
        } else {
            write(to: context)
            context.write(NIOAny(body), promise: promise)
            if chunked {
                prepare(context.channel.allocator)
                gathered!.writeStaticString("\r\n")
            }
        }
    }

    /// Gathers the end of a chunked body: the last chunk and the trailers (dropped, whole,
    /// if one cannot be sent). An unchunked body has no end on the wire.
    /// The last chunk, and the trailers when there are some and they can be sent.
    mutating func gatherEnd(trailers: HTTPFieldList?, chunked: Bool, allocator: ByteBufferAllocator) {
        guard chunked else { return }
        prepare(allocator)
        if let trailers, !trailers.isEmpty {
            gathered!.writeStaticString("0\r\n")
            if !gathered!.writeHTTP1HeaderSection(trailers) { gathered!.writeStaticString("\r\n") }
        } else {
            gathered!.writeStaticString("0\r\n\r\n")
        }
    }
}
