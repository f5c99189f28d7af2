import NIOCore
import PorticoHTTP1

/// Where a `ProxyHandler` writes its answer and asks for more of the request: an HTTP/1.1
/// connection's pipeline (`ChannelDownstream`), or one stream of an HTTP/2 connection
/// (`HTTP2ServerStream`), which has no channel of its own.
protocol ProxyDownstream: AnyObject {
    var eventLoop: EventLoop { get }
    var allocator: ByteBufferAllocator { get }
    /// Whether the client takes more now: the connection's buffer, and for HTTP/2 the
    /// stream's flow-control window too.
    var isWritable: Bool { get }
    func write(_ part: ResponsePart, promise: EventLoopPromise<Void>?)
    func flush()
    /// Ends the exchange abruptly: HTTP/1.1 closes the connection, HTTP/2 resets the stream.
    func close()
    /// The request body may come on (HTTP/2 returns flow-control credit for what was read).
    func read()
}

extension ProxyDownstream {
    func write(_ part: ResponsePart) {
        write(part, promise: nil)
    }

    func writeAndFlush(_ part: ResponsePart) {
        write(part, promise: nil)
        flush()
    }

    /// Writes the last part and closes once it is out: NIO drops writes still pending when
    /// a channel closes.
    func writeAndFlushThenClose(_ part: ResponsePart) {
        let written = eventLoop.makePromise(of: Void.self)
        write(part, promise: written)
        flush()
        written.futureResult.assumeIsolated().whenComplete { _ in self.close() }
    }
}

/// An HTTP/1.1 connection as a `ProxyHandler` sees it: the writes go down the pipeline from
/// the handler's own context, or straight to the `HTTP1ServerConnection` in front of it.
final class ChannelDownstream: ProxyDownstream {
    /// Unowned: the context owns the handler that owns this, and outlives both.
    private unowned let context: ChannelHandlerContext
    /// The connection handler right in front of the `ProxyHandler` (`ServerPipeline`), called
    /// directly while it is in the pipeline: a `ResponsePart` written down the pipeline is
    /// boxed on the heap (it is too large for `NIOAny`'s inline storage), three per response.
    private let connection: HTTP1ServerConnection?

    /// - Parameter context: the `ProxyHandler`'s, as it is added to its pipeline.
    init(context: ChannelHandlerContext) {
        self.context = context
        if let proxy = context.handler as? ProxyHandler,
           let connection = try? context.pipeline.syncOperations.handler(type: HTTP1ServerConnection.self),
           connection.isAttached {
            connection.attach(proxy)
            self.connection = connection
        } else {
            self.connection = nil
        }
    }

    var eventLoop: EventLoop { context.eventLoop }
    var allocator: ByteBufferAllocator { context.channel.allocator }
    var isWritable: Bool { context.channel.isWritable }

    func write(_ part: ResponsePart, promise: EventLoopPromise<Void>?) {
        if let connection, connection.isAttached {
            connection.write(part, promise: promise)
        } else {
            context.write(NIOAny(part), promise: promise)
        }
    }

    func flush() {
        context.flush()
    }

    func close() {
        context.close(promise: nil)
    }

    func read() {
        context.read()
    }
}
