import NIOCore
import NIOHTTP1

/// Refuses a chunked request whose chunk size does not fit 63 bits, which NIO's decoder lets
/// through (see `ChunkSizeScanner`). Sits before the decoder: the requests before the offending
/// one go on to it, the offending bytes never do, and the refusal travels as the decoder's own
/// parse error, so `HTTP1ServerConnection` answers 400 in that request's turn and closes, as for
/// any request it cannot parse.
final class ChunkSizeGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var scanner = ChunkSizeScanner()
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        // No copy of the buffer may outlive this statement: the decoder keeps the buffer to
        // parse into, and a second reference would make its next write copy it.
        let verdict = unwrapInboundIn(data).withUnsafeReadableBytes { scanner.scan($0) }
        guard case .overflow(let messageStart) = verdict else {
            context.fireChannelRead(data)
            return
        }
        refused = true
        let buffer = unwrapInboundIn(data)
        if messageStart > 0, let before = buffer.getSlice(at: buffer.readerIndex, length: messageStart) {
            context.fireChannelRead(wrapInboundOut(before))
        }
        context.fireErrorCaught(HTTPParserError.invalidChunkSize)
    }
}
