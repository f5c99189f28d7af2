import NIOCore
import NIOHTTP1

/// Answers a request the HTTP/1 parser refused, then lets the connection close.
///
/// NIO's `HTTPServerProtocolErrorHandler` answers every parse error with 400; a header section
/// over the configured limit deserves 431, so this handler tells the two apart.
final class EdgeErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInProgress = false

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The decoder closes the channel right after this returns, so the answer must be
        // written now; and only if no other response has begun.
        if !responseInProgress {
            let status: HTTPResponseStatus = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let headers = HTTPHeaders([("connection", "close"), ("content-length", "0")])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 100 && head.status.code < 200 && head.status.code != 101:
            break
        case .head:
            responseInProgress = true
        case .body:
            break
        case .end:
            responseInProgress = false
        }
        context.write(data, promise: promise)
    }
}
