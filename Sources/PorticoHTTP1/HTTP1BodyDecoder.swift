import NIOCore

/// Cuts a message body out of the received bytes, for any of the framings, without copying:
/// body bytes are handed out as slices of the buffer they arrived in.
///
/// Chunk-size lines are checked byte by byte as they arrive (RFC 9112 §7.1): hex digits
/// below 2^63, then extensions of the form `;name`, `;name=token` or `;name="quoted"` with no
/// whitespace, then CRLF; each chunk's data must be followed by exactly CRLF. A line longer
/// than `maxChunkLineBytes` is refused, so an endless extension cannot hold the parser.
struct HTTP1BodyDecoder {
    enum Output: Equatable {
        case body(ByteBuffer)
        case needMore
        /// The last chunk's line has been read: a trailer section follows.
        case trailerSection
        /// The body is complete.
        case end
        case error(HTTP1ParseError.Reason)
    }

    private enum ExtensionState {
        case afterSemicolon, name, afterEquals, tokenValue, quoted, quotedPair, afterQuoted
    }

    private enum State {
        case done
        case length(remaining: Int64)
        case chunkSize(size: Int64, digits: Int)
        case chunkExtension(size: Int64, ExtensionState)
        case chunkLineLF(size: Int64)
        case chunkData(remaining: Int64)
        case chunkDataCR
        case chunkDataLF
        case untilClose
    }

    static let maxChunkLineBytes = 4096

    private var state = State.done
    private var chunkLineBytes = 0

    /// Starts a body framed as `framing`.
    mutating func start(_ framing: HTTP1BodyFraming) {
        self.chunkLineBytes = 0
        switch framing {
        case .none: self.state = .done
        case .length(let length): self.state = .length(remaining: length)
        case .chunked: self.state = .chunkSize(size: 0, digits: 0)
        case .untilClose: self.state = .untilClose
        }
    }

    /// Takes what it can from `input`: one body slice, or the end, or a verdict.
    mutating func decode(_ input: inout ByteBuffer) -> Output {
        while true {
            switch self.state {
            case .done:
                return .end
            case .length(let remaining):
                guard input.readableBytes > 0 else { return .needMore }
                let length = Int(Swift.min(Int64(input.readableBytes), remaining))
                self.state = remaining == Int64(length) ? .done : .length(remaining: remaining - Int64(length))
                return .body(input.readSlice(length: length)!)
            case .chunkData(let remaining):
                guard input.readableBytes > 0 else { return .needMore }
                let length = Int(Swift.min(Int64(input.readableBytes), remaining))
                self.state = remaining == Int64(length) ? .chunkDataCR : .chunkData(remaining: remaining - Int64(length))
                return .body(input.readSlice(length: length)!)
            case .untilClose:
                guard input.readableBytes > 0 else { return .needMore }
                return .body(input.readSlice(length: input.readableBytes)!)
            case .chunkSize, .chunkExtension, .chunkLineLF, .chunkDataCR, .chunkDataLF:
                if let output = self.chunkLine(&input) { return output }
            }
        }
    }

    /// The connection ended: a body that runs until the close is complete, any other is cut short.
    mutating func decodeEOF() -> Output {
        switch self.state {
        case .done, .untilClose:
            self.state = .done
            return .end
        default:
            return .error(.truncatedMessage)
        }
    }

    /// Reads the CRLF after a chunk's data and the next chunk-size line. Returns nil when a
    /// chunk's data begins, so that `decode` slices it.
    private mutating func chunkLine(_ input: inout ByteBuffer) -> Output? {
        var consumed = 0
        let output: Output? = input.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                consumed += 1
                self.chunkLineBytes += 1
                guard self.chunkLineBytes <= HTTP1BodyDecoder.maxChunkLineBytes else { return .error(.chunkLineTooLong) }
                switch self.state {
                case .chunkDataCR:
                    guard byte == UInt8(ascii: "\r") else { return .error(.invalidChunkDelimiter) }
                    self.state = .chunkDataLF
                case .chunkDataLF:
                    guard byte == UInt8(ascii: "\n") else { return .error(.invalidChunkDelimiter) }
                    self.state = .chunkSize(size: 0, digits: 0)
                    self.chunkLineBytes = 0
                case .chunkSize(let size, let digits):
                    if HTTP1ByteClass.hex.contains(byte) {
                        // Below 2^63 after this digit, so that every size fits an Int64.
                        guard size <= Int64.max >> 4 else { return .error(.chunkSizeTooLarge) }
                        self.state = .chunkSize(size: size << 4 | HTTP1ByteClass.hexValue(byte), digits: digits + 1)
                    } else if digits == 0 {
                        return .error(.invalidChunkSize)
                    } else if byte == UInt8(ascii: ";") {
                        self.state = .chunkExtension(size: size, .afterSemicolon)
                    } else if byte == UInt8(ascii: "\r") {
                        self.state = .chunkLineLF(size: size)
                    } else {
                        return .error(byte == UInt8(ascii: "\n") ? .bareLF : .invalidChunkSize)
                    }
                case .chunkExtension(let size, let extensionState):
                    guard let next = HTTP1BodyDecoder.extensionStep(extensionState, byte) else {
                        return .error(byte == UInt8(ascii: "\n") ? .bareLF : .invalidChunkExtension)
                    }
                    self.state = next == nil ? .chunkLineLF(size: size) : .chunkExtension(size: size, next!)
                case .chunkLineLF(let size):
                    guard byte == UInt8(ascii: "\n") else { return .error(.bareCR) }
                    self.chunkLineBytes = 0
                    if size == 0 {
                        self.state = .done
                        return .trailerSection
                    }
                    self.state = .chunkData(remaining: size)
                    return nil
                case .done, .length, .chunkData, .untilClose:
                    preconditionFailure("not on a chunk line")
                }
            }
            return .needMore
        }
        input.moveReaderIndex(forwardBy: consumed)
        return output
    }

    /// One byte of `chunk-ext`. Returns nil if the byte is not allowed there, `.some(nil)`
    /// for the CR that ends the line, or the next state.
    private static func extensionStep(_ state: ExtensionState, _ byte: UInt8) -> ExtensionState?? {
        let isToken = HTTP1ByteClass.token.contains(byte)
        let endsElement = byte == UInt8(ascii: ";") || byte == UInt8(ascii: "\r")
        func element() -> ExtensionState?? {
            byte == UInt8(ascii: ";") ? .some(.afterSemicolon) : .some(nil)
        }
        switch state {
        case .afterSemicolon:
            return isToken ? .some(.name) : nil
        case .name:
            if isToken { return .some(.name) }
            if byte == UInt8(ascii: "=") { return .some(.afterEquals) }
            return endsElement ? element() : nil
        case .afterEquals:
            if isToken { return .some(.tokenValue) }
            return byte == UInt8(ascii: "\"") ? .some(.quoted) : nil
        case .tokenValue:
            if isToken { return .some(.tokenValue) }
            return endsElement ? element() : nil
        case .quoted:
            if byte == UInt8(ascii: "\"") { return .some(.afterQuoted) }
            if byte == UInt8(ascii: "\\") { return .some(.quotedPair) }
            return HTTP1ByteClass.quotedText.contains(byte) ? .some(.quoted) : nil
        case .quotedPair:
            return HTTP1ByteClass.lineByte.contains(byte) ? .some(.quoted) : nil
        case .afterQuoted:
            return endsElement ? element() : nil
        }
    }
}
