import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

// The least a gateway built on SwiftNIO can do per request, so Portico's numbers can be read
// against what its libraries cost on the same core. Not part of Portico: a measuring tool (see
// Benchmarks/README.md, "The floor under the design"). One event loop; every listener on it.
//
//     nio-floor UPSTREAM_PORT MODE=PORT[:UPSTREAM_PORT] [...]
//
// Proxies (to 127.0.0.1:UPSTREAM_PORT, upstream connections kept alive and reused):
//   forward   bytes copied both ways, nothing parsed: SwiftNIO and the kernel alone
//   h1proxy   HTTP/1.1 in, HTTP/1.1 out, through NIO's own HTTP/1 codecs, nothing else done
//   h2proxy   HTTP/2 in through NIO's stream multiplexer (a child channel per stream, as
//             gateways use it), HTTP/1.1 out as h1proxy
//   h2h2      HTTP/2 in and HTTP/2 out (scenario 7): `NIOHTTP2Handler` on both sides without a
//             multiplexer, as Portico uses it; each client stream's frames are relayed as they
//             are to a stream on a shared upstream connection and the answer's frames back, with
//             nothing looked at but stream ids. Its upstream is the port after `:`, as in
//             `h2h2=18602:18001`.
// Servers that answer 200 with a 23-byte body themselves (one half of a proxy):
//   h1        NIO's HTTP/1 server pipeline
//   h2        HTTP/2 through the multiplexer
//   h2frames  HTTP/2 without a multiplexer: one handler answers every stream's frames
//
// Everything optional is off (NIO's HTTP/1 pipelining helper, error handler and header
// validators; swift-nio-http2's header and content-length validation), HTTP/2 responses are
// flushed once per event-loop tick as Portico does, and nothing is checked, routed or logged.
// It is enough HTTP for the benchmark's loads and no more: one request at a time per
// connection or stream, no pipelining, no error handling.

let body = ByteBuffer(string: "hello from the backend\n")

// MARK: - Upstream connections

/// The keep-alive upstream connections of one client connection, reused one request at a time.
final class Upstreams {
    private let eventLoop: EventLoop
    private let port: Int
    private var idle: [UpstreamLink] = []

    init(eventLoop: EventLoop, port: Int) {
        self.eventLoop = eventLoop
        self.port = port
    }

    func takeIdle() -> UpstreamLink? { idle.popLast() }

    func connect(_ connected: @escaping (UpstreamLink) -> Void) {
        let link = UpstreamLink(upstreams: self)
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(link)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .whenSuccess { _ in connected(link) }
    }

    func release(_ link: UpstreamLink) { idle.append(link) }
}

/// One upstream connection: sends a request's parts and hands the response's parts to the
/// client channel that leased it.
final class UpstreamLink: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let upstreams: Upstreams
    private var context: ChannelHandlerContext?
    private var client: RequestForwarder?

    init(upstreams: Upstreams) { self.upstreams = upstreams }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ part: HTTPClientRequestPart, for client: RequestForwarder) {
        guard let context else { return }
        self.client = client
        if case .end = part {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let client else { return }
        let part = unwrapInboundIn(data)
        client.respond(part)
        if case .end = part {
            self.client = nil
            upstreams.release(self)
        }
    }
}

// MARK: - Client side

/// A client connection's (or HTTP/2 stream's) requests: each part goes upstream as it comes,
/// the response's parts come back the same way.
final class RequestForwarder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstreams: Upstreams
    private var context: ChannelHandlerContext?
    private var link: UpstreamLink?
    /// Parts that came while the upstream connection was being leased.
    private var waiting: [HTTPClientRequestPart] = []

    init(upstreams: Upstreams) { self.upstreams = upstreams }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch unwrapInboundIn(data) {
        case .head(var head):
            // HTTP/2 streams come with version 2.0; upstream speaks HTTP/1.1.
            if head.version != .http1_1 { head.version = .http1_1 }
            part = .head(head)
        case .body(let buffer): part = .body(.byteBuffer(buffer))
        case .end: part = .end(nil)
        }
        if link == nil, case .head = part { link = upstreams.takeIdle() }
        if let link {
            link.send(part, for: self)
            return
        }
        waiting.append(part)
        guard case .head = part else { return }
        upstreams.connect { link in
            self.link = link
            for part in self.waiting { link.send(part, for: self) }
            self.waiting.removeAll(keepingCapacity: true)
        }
    }

    /// A response's part; after its end, the upstream connection goes back to `upstreams`.
    func respond(_ part: HTTPClientResponsePart) {
        if case .end = part { link = nil }
        guard let context else { return }
        switch part {
        case .head(let head): context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let buffer): context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end: context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// Answers each request with 200 and `body`.
final class PartsResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "23")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }
}

/// Answers each HTTP/2 stream with a HEADERS and a DATA frame, on the connection channel.
final class FrameResponder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers) where headers.endStream: respond(context: context, stream: frame.streamID)
        case .data(let data) where data.endStream: respond(context: context, stream: frame.streamID)
        default: break
        }
    }

    private func respond(context: ChannelHandlerContext, stream: HTTP2StreamID) {
        let headers: HPACKHeaders = [":status": "200", "content-length": "23"]
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers)))), promise: nil)
        let data = HTTP2Frame.FramePayload.Data(data: .byteBuffer(body), endStream: true)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(data))), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }
}

/// Defers an HTTP/2 connection's flushes to the end of the event-loop tick, so the responses
/// whose upstream reads one tick handled leave in one write (Portico does the same).
final class FlushOncePerTick: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private var scheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.scheduled = false
            context.flush()
        }
    }
}

// MARK: - HTTP/2 to HTTP/2

/// The HTTP/2 upstream connections of the event loop, shared by every client connection as
/// Portico's and HAProxy's are: a stream goes on the first connection with a free slot, and a
/// new connection opens when none has one.
final class H2Upstreams {
    private let eventLoop: EventLoop
    private let port: Int
    private var connections: [H2UpstreamRelay] = []
    private var connecting = false
    /// Streams waiting for a slot: (client relay, client stream id, request head).
    private var waiting: [(H2ClientRelay, HTTP2StreamID, HPACKHeaders)] = []

    init(eventLoop: EventLoop, port: Int) {
        self.eventLoop = eventLoop
        self.port = port
    }

    func send(_ head: HPACKHeaders, from client: H2ClientRelay, stream: HTTP2StreamID) {
        if let connection = connections.first(where: { $0.hasRoom }) {
            connection.open(head, for: client, stream: stream)
            return
        }
        waiting.append((client, stream, head))
        guard !connecting else { return }
        connecting = true
        let relay = H2UpstreamRelay(upstreams: self)
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOHTTP2Handler(mode: .client, headerBlockValidation: .disabled,
                                                        contentLengthValidation: .disabled))
                    // Above the HTTP/2 handler: it encodes what was written once per tick.
                    try sync.addHandler(FlushOncePerTick())
                    try sync.addHandler(relay)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .whenFailure { _ in self.connecting = false }
    }

    /// A connection closed: it takes no more streams (its own were reset to their clients).
    func closed(_ connection: H2UpstreamRelay) {
        connections.removeAll { $0 === connection }
        if connections.isEmpty, !waiting.isEmpty, !connecting {
            let (client, stream, head) = waiting.removeLast()
            send(head, from: client, stream: stream)
        }
    }

    /// A connection got the peer's SETTINGS, or a stream ended on one: waiting streams go out.
    func slotsOpened(on connection: H2UpstreamRelay) {
        if !connections.contains(where: { $0 === connection }) {
            connections.append(connection)
            connecting = false
        }
        while !waiting.isEmpty, let connection = connections.first(where: { $0.hasRoom }) {
            let (client, stream, head) = waiting.removeFirst()
            connection.open(head, for: client, stream: stream)
        }
        if !waiting.isEmpty && !connecting {
            let (client, stream, head) = waiting.removeLast()
            send(head, from: client, stream: stream)
        }
    }
}

/// One upstream HTTP/2 connection: its streams' frames go back to the client streams they carry.
final class H2UpstreamRelay: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let upstreams: H2Upstreams
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: (H2ClientRelay, HTTP2StreamID)] = [:]
    private var nextID = 1
    private var maxStreams = 100
    private var ready = false
    /// DATA bytes since the connection window was last topped up.
    private var received = 0

    init(upstreams: H2Upstreams) { self.upstreams = upstreams }

    var hasRoom: Bool { ready && streams.count < maxStreams }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func open(_ head: HPACKHeaders, for client: H2ClientRelay, stream: HTTP2StreamID) {
        guard let context else { return }
        let id = HTTP2StreamID(nextID)
        nextID += 2
        streams[id] = (client, stream)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: head, endStream: true)))),
                      promise: nil)
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams { maxStreams = setting.value }
            ready = true
            upstreams.slotsOpened(on: self)
        case .headers(let headers):
            guard let (client, stream) = streams[frame.streamID] else { return }
            client.relay(HTTP2Frame(streamID: stream, payload: .headers(headers)))
            if headers.endStream { ended(frame.streamID) }
        case .data(let payload):
            guard let (client, stream) = streams[frame.streamID] else { return }
            received += payload.data.readableBytes
            client.relay(HTTP2Frame(streamID: stream, payload: .data(payload)))
            if payload.endStream { ended(frame.streamID) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let open = streams.values
        streams.removeAll()
        upstreams.closed(self)
        for (client, stream) in open { client.relay(HTTP2Frame(streamID: stream, payload: .rstStream(.refusedStream))) }
        context.fireChannelInactive()
    }

    private func ended(_ id: HTTP2StreamID) {
        streams.removeValue(forKey: id)
        upstreams.slotsOpened(on: self)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The connection window, returned in bulk (stream windows never run out at this size).
        if received >= 16_384 {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: received))),
                          promise: nil)
            received = 0
        }
        context.flush()
        context.fireChannelReadComplete()
    }
}

/// A client connection: each stream's request head goes upstream as it came, and the answer's
/// frames are written back on the same stream.
final class H2ClientRelay: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let upstreams: H2Upstreams
    private var context: ChannelHandlerContext?

    init(upstreams: H2Upstreams) { self.upstreams = upstreams }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // The benchmark's requests are GETs: one HEADERS frame that ends the stream.
        guard case .headers(let headers) = frame.payload, headers.endStream else { return }
        upstreams.send(headers.headers, from: self, stream: frame.streamID)
    }

    func relay(_ frame: HTTP2Frame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        context.flush()
    }
}

// MARK: - Bytes only

/// One side of a byte pipe: writes what the other side reads, and reads only while the other
/// side can take it.
final class Glue: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var partner: Glue?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.context?.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.context?.close(promise: nil) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

func forward(_ client: Channel, to upstreamPort: Int) -> EventLoopFuture<Void> {
    ClientBootstrap(group: client.eventLoop)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: upstreamPort)
        .flatMap { upstream in
            let clientSide = Glue()
            let upstreamSide = Glue()
            clientSide.partner = upstreamSide
            upstreamSide.partner = clientSide
            upstream.closeFuture.whenComplete { _ in client.close(promise: nil) }
            return upstream.pipeline.addHandler(upstreamSide)
                .flatMap { client.pipeline.addHandler(clientSide) }
                // Nothing is read before the upstream connection is there to take it.
                .flatMap { client.setOption(.autoRead, value: true) }
        }
}

// MARK: - Listeners

/// The loop's shared HTTP/2 upstream connections (h2h2): one event loop, so one set.
nonisolated(unsafe) var h2Upstreams: H2Upstreams?

func initialize(_ channel: Channel, mode: String, upstreamPort: Int) -> EventLoopFuture<Void> {
    if mode == "forward" { return forward(channel, to: upstreamPort) }
    return channel.eventLoop.makeCompletedFuture {
        let sync = channel.pipeline.syncOperations
        switch mode {
        case "h2h2":
            if h2Upstreams == nil { h2Upstreams = H2Upstreams(eventLoop: channel.eventLoop, port: upstreamPort) }
            try sync.addHandler(NIOHTTP2Handler(mode: .server, headerBlockValidation: .disabled,
                                                contentLengthValidation: .disabled))
            try sync.addHandler(FlushOncePerTick())
            try sync.addHandler(H2ClientRelay(upstreams: h2Upstreams!))
        case "h1proxy", "h1":
            try sync.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false
            )
            let upstreams = Upstreams(eventLoop: channel.eventLoop, port: upstreamPort)
            try sync.addHandler(mode == "h1" ? PartsResponder() : RequestForwarder(upstreams: upstreams))
        case "h2proxy", "h2":
            // Shared by the connection's streams, all on its event loop.
            let upstreams = NIOLoopBound(Upstreams(eventLoop: channel.eventLoop, port: upstreamPort), eventLoop: channel.eventLoop)
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.headerBlockValidation = .disabled
            connection.contentLengthValidation = .disabled
            try sync.addHandler(FlushOncePerTick())
            _ = try sync.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: connection, streamConfiguration: .init()
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    let handler: ChannelHandler = mode == "h2" ? PartsResponder() : RequestForwarder(upstreams: upstreams.value)
                    try stream.pipeline.syncOperations.addHandlers([HTTP2FramePayloadToHTTP1ServerCodec(), handler])
                }
            }
        default:
            let http2 = NIOHTTP2Handler(mode: .server, headerBlockValidation: .disabled, contentLengthValidation: .disabled)
            try sync.addHandlers([http2, FrameResponder()])
        }
    }
}

let modes = ["forward", "h1proxy", "h2proxy", "h1", "h2", "h2frames", "h2h2"]
let arguments = CommandLine.arguments
// MODE=PORT, or MODE=PORT:UPSTREAM_PORT for a listener with an upstream of its own.
func parseListener(_ argument: String) -> [String]? {
    let modeAndPorts = argument.split(separator: "=").map(String.init)
    guard modeAndPorts.count == 2, modes.contains(modeAndPorts[0]) else { return nil }
    let ports = modeAndPorts[1].split(separator: ":").map(String.init)
    guard (1...2).contains(ports.count), ports.allSatisfy({ Int($0) != nil }) else { return nil }
    return [modeAndPorts[0]] + ports
}
let listeners = arguments.dropFirst(2).compactMap(parseListener)
guard arguments.count >= 3, let upstreamPort = Int(arguments[1]), listeners.count == arguments.count - 2 else {
    print("usage: nio-floor UPSTREAM_PORT MODE=PORT[:UPSTREAM_PORT] [...]   MODE: \(modes.joined(separator: ", "))")
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
var servers: [Channel] = []
for listener in listeners {
    let mode = listener[0]
    servers.append(try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.autoRead, value: mode != "forward")
        .childChannelInitializer { initialize($0, mode: mode, upstreamPort: listener.count == 3 ? Int(listener[2])! : upstreamPort) }
        .bind(host: "127.0.0.1", port: Int(listener[1])!).wait())
}
print("nio-floor: " + listeners.map { "\($0[0]) on 127.0.0.1:\($0[1])" }.joined(separator: ", "))
try servers[0].closeFuture.wait()
