import NIOCore
import PorticoHTTP1

/// gRPC-Web to gRPC and back, as Envoy's grpc_web filter does it, for one call: a browser (or
/// any HTTP/1.1 client) speaks gRPC-Web to the gateway, and the service hears plain gRPC.
///
/// - The request's `content-type` becomes `application/grpc`; its body is the same
///   length-prefixed messages, base64-encoded for `application/grpc-web-text`.
/// - The answer's `content-type` becomes the client's kind. Its trailers cannot travel as HTTP
///   trailers (browsers cannot read them), so they become the body's last frame: flag 0x80,
///   a 4-byte length, then `name:value\r\n` lines (the gRPC-Web protocol). A text call's whole
///   answer body is base64.
///
/// A request's base64 may break anywhere across body parts: the characters of a group not yet
/// whole are carried to the next part. An answer's parts are each encoded whole, padded (the
/// gRPC-Web protocol lets padding come mid-stream), so a message of a server stream reaches
/// the client complete, not held back until the next one.
struct GRPCWebTranslator {
    let text: Bool
    /// Request side: base64 characters of a group not yet whole.
    private var requestCarry: [UInt8] = []

    init(text: Bool) {
        self.text = text
    }

    // MARK: Heads

    /// The head the service gets: a gRPC call. A text body shrinks as it is decoded, so its
    /// length is not known up front: it is sent chunked (HTTP/2 frames it with DATA anyway).
    static func upstreamHead(_ head: inout RequestHead, text: Bool) {
        head.fields.replaceOrAppend(name: "content-type", value: "application/grpc")
        if text {
            head.fields.removeAll(named: "content-length")
            head.fields.replaceOrAppend(name: "transfer-encoding", value: "chunked")
        }
    }

    /// The answer's head as the gRPC-Web client reads it.
    func responseHead(_ head: inout ResponseHead) {
        let upstreamType = head.fields.firstValue(of: "content-type") ?? "application/grpc"
        let suffix = upstreamType.hasPrefix("application/grpc") ? upstreamType.dropFirst("application/grpc".count) : "+proto"
        head.fields.replaceOrAppend(name: "content-type", value: (text ? "application/grpc-web-text" : "application/grpc-web")
                                        + (suffix.isEmpty ? "+proto" : suffix))
        // The body gains a trailer frame (and, for text, changes size).
        head.fields.removeAll(named: "content-length")
    }

    // MARK: Request body

    /// A body part as the service gets it; nil when a text body is not base64.
    mutating func requestBody(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard text else { return buffer }
        var output = allocator.buffer(capacity: (requestCarry.count + buffer.readableBytes) / 4 * 3)
        for byte in buffer.readableBytesView {
            // Line breaks and spaces are not part of the data (RFC 4648 3.3 lets a reader skip them).
            if byte == 0x0A || byte == 0x0D || byte == 0x20 { continue }
            requestCarry.append(byte)
            if requestCarry.count == 4 {
                guard Self.decodeGroup(requestCarry, into: &output) else { return nil }
                requestCarry.removeAll(keepingCapacity: true)
            }
        }
        return output
    }

    /// The request ended: a text body must have ended on a whole group.
    func requestEnded() -> Bool {
        requestCarry.isEmpty
    }

    // MARK: Response body

    func responseBody(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard text else { return buffer }
        return encode(Array(buffer.readableBytesView), allocator: allocator)
    }

    /// What follows the answer's last body part: its trailers as a frame (none for a
    /// trailers-only answer, whose status is in its head), base64 for text.
    func responseEnd(trailers: HTTPFieldList?, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var frame: [UInt8] = []
        if let trailers, !trailers.isEmpty {
            var lines: [UInt8] = []
            for index in 0..<trailers.count {
                let field = trailers[index]
                lines += Array(field.lowercasedName.utf8) + [UInt8(ascii: ":")] + Array(field.value.utf8) + [0x0D, 0x0A]
            }
            frame = [0x80] + withUnsafeBytes(of: UInt32(lines.count).bigEndian, Array.init) + lines
        }
        guard text else {
            guard !frame.isEmpty else { return nil }
            var buffer = allocator.buffer(capacity: frame.count)
            buffer.writeBytes(frame)
            return buffer
        }
        guard !frame.isEmpty else { return nil }
        return encode(frame, allocator: allocator)
    }

    private func encode(_ input: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: (input.count + 2) / 3 * 4)
        Base64.encode(input) { output.writeInteger($0) }
        return output
    }

    // MARK: Base64 (RFC 4648)

    /// One group of four characters, padding included (a text body may be several padded
    /// segments one after another, as gRPC-Web clients send a message per segment).
    private static func decodeGroup(_ group: [UInt8], into output: inout ByteBuffer) -> Bool {
        let padding = group[3] == UInt8(ascii: "=") ? (group[2] == UInt8(ascii: "=") ? 2 : 1) : 0
        guard let v0 = Base64.value(of: group[0]), let v1 = Base64.value(of: group[1]) else { return false }
        let v2 = padding == 2 ? 0 : Base64.value(of: group[2])
        let v3 = padding >= 1 ? 0 : Base64.value(of: group[3])
        guard let v2, let v3 else { return false }
        output.writeInteger(v0 << 2 | v1 >> 4)
        if padding < 2 { output.writeInteger((v1 & 0x0F) << 4 | v2 >> 2) }
        if padding < 1 { output.writeInteger((v2 & 0x03) << 6 | v3) }
        return true
    }
}
