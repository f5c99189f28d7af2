/// Why a parser stopped, and the status the gateway answers with.
///
/// A parser that reports an error has stopped for good: nothing after the offending bytes is
/// interpreted, because once framing is in doubt every later byte could belong to a smuggled
/// message. The caller answers with `status` and closes the connection.
public struct HTTP1ParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Error, Hashable, Sendable {
        // The start line.
        case invalidMethod
        case invalidTarget
        case invalidVersion
        case invalidStatusLine
        // Field lines.
        case invalidFieldName
        case whitespaceBeforeColon
        case obsoleteLineFolding
        case bareCR
        case bareLF
        case controlByte
        case headTooLarge
        case tooManyFields
        // Framing.
        case contentLengthWithTransferEncoding
        case duplicateContentLength
        case invalidContentLength
        case duplicateTransferEncoding
        case invalidTransferEncoding
        case unsupportedTransferCoding
        case transferEncodingOnHTTP10
        case bodyOnConnect
        // Chunked bodies.
        case invalidChunkSize
        case chunkSizeTooLarge
        case invalidChunkExtension
        case chunkLineTooLong
        case invalidChunkDelimiter
        case framingFieldInTrailers
        // Host.
        case duplicateHost
        case invalidHost
        // The connection ended inside a message.
        case truncatedMessage
        // A request head did not arrive whole in time (the reader's clock, not the parser's).
        case headTimeout
        // A response came with no request waiting for it.
        case unexpectedResponse
    }

    public let reason: Reason
    /// The status to answer: for a request 400, 431 or 501; for an upstream response 502.
    public let status: Int

    public init(_ reason: Reason, status: Int) {
        self.reason = reason
        self.status = status
    }

    /// The status a request parser answers for `reason`.
    public static func request(_ reason: Reason) -> HTTP1ParseError {
        switch reason {
        case .headTooLarge, .tooManyFields:
            // RFC 6585 §5: the header fields are too large.
            return HTTP1ParseError(reason, status: 431)
        case .unsupportedTransferCoding:
            // RFC 9112 §6.1: a coding the server does not understand.
            return HTTP1ParseError(reason, status: 501)
        case .headTimeout:
            // RFC 9110 §15.5.9: the server would not wait any longer.
            return HTTP1ParseError(reason, status: 408)
        default:
            return HTTP1ParseError(reason, status: 400)
        }
    }

    /// The status a gateway answers when an upstream response is malformed.
    static func response(_ reason: Reason) -> HTTP1ParseError {
        HTTP1ParseError(reason, status: 502)
    }

    public var description: String { "\(self.reason.rawValue) (\(self.status))" }
}
