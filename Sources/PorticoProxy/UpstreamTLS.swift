import NIOCore
import NIOSSL
import NIOTLS
import PorticoAuth
import PorticoConfig

/// How a service's endpoints are reached over TLS: the client context (trust roots, and a
/// client certificate for mTLS), the name sent as SNI, and the names the upstream's
/// certificate must carry.
final class UpstreamTLS: Sendable {
    let config: UpstreamTLSConfig
    let context: NIOSSLContext
    /// To notice a rotation.
    let files: WatchedFiles

    /// The service's protocol: which protocols ALPN offers (`h2` for `h2`, both for `auto`).
    let upstreamProtocol: UpstreamProtocol

    init(config: UpstreamTLSConfig, protocol upstreamProtocol: UpstreamProtocol = .http1) throws {
        self.config = config
        self.upstreamProtocol = upstreamProtocol
        self.files = WatchedFiles([config.ca, config.certificate, config.key].compactMap { $0 })
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch upstreamProtocol {
        case .http1, .h2c: configuration.applicationProtocols = ["http/1.1"]
        case .h2: configuration.applicationProtocols = ["h2"]
        case .auto: configuration.applicationProtocols = ["h2", "http/1.1"]
        }
        if let ca = config.ca {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        }
        if let certificate = config.certificate, let key = config.key {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        // With `subjectAltNames` the names are checked after the handshake, against the list
        // (a SPIFFE ID is a URI, which hostname verification does not look at); the chain is
        // verified either way.
        configuration.certificateVerification = config.subjectAltNames.isEmpty ? .fullVerification : .noHostnameVerification
        self.context = try NIOSSLContext(configuration: configuration)
    }

    /// The SNI and verified name for `endpoint`: `serverName`, else the endpoint's host when
    /// it is a name (an IP address cannot be sent as SNI).
    func serverHostname(for endpoint: HostPort) -> String? {
        if let name = config.serverName { return name }
        return endpoint.hostIsIPAddress ? nil : endpoint.host
    }

    /// Whether the upstream's certificate carries one of the required names: one of
    /// `subjectAltNames`, or else a DNS name matching `serverName`. (NIOSSL's own check also
    /// accepts a certificate whose IP SAN is the address dialled, whatever name was asked for;
    /// a name the config states must be the certificate's.)
    func acceptsPeer(_ certificate: NIOSSLCertificate?) -> Bool {
        guard !config.subjectAltNames.isEmpty || config.serverName != nil else { return true }
        guard let certificate, let identity = try? PeerIdentity(derEncoded: certificate.toDERBytes()) else { return false }
        if !config.subjectAltNames.isEmpty {
            return config.subjectAltNames.contains { identity.uris.contains($0) || identity.dnsNames.contains($0) }
        }
        let wanted = config.serverName!.lowercased()
        return identity.dnsNames.contains { name in
            let name = name.lowercased()
            if name == wanted { return true }
            // `*.example.com` covers one label: `api.example.com`, not `example.com` or `a.b.example.com`.
            guard name.hasPrefix("*."), let dot = wanted.firstIndex(of: ".") else { return false }
            return wanted[dot...] == name.dropFirst()
        }
    }
}

/// Holds a new upstream connection back until its TLS handshake is done and the peer's name
/// checked, so a failed handshake is a failed connect (502, retried as `connect-failure`), not
/// a reset in the middle of a request.
final class UpstreamHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let tls: UpstreamTLS
    private let promise: EventLoopPromise<Void>
    /// The ALPN results the connection may have (nil: any): `h2` for an HTTP/2 pool, as an
    /// endpoint that chose HTTP/1.1, or nothing, would read the HTTP/2 preface as garbage.
    private let acceptedProtocols: Set<String?>?

    init(tls: UpstreamTLS, promise: EventLoopPromise<Void>, acceptedProtocols: Set<String?>? = nil) {
        self.tls = tls
        self.promise = promise
        self.acceptedProtocols = acceptedProtocols
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            if let acceptedProtocols, !acceptedProtocols.contains(negotiated) {
                promise.fail(UpstreamTLSError.protocolNotNegotiated)
                context.close(promise: nil)
            } else if tls.acceptsPeer(certificate ?? nil) {
                promise.succeed(())
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } else {
                promise.fail(UpstreamTLSError.nameMismatch)
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(UpstreamTLSError.closedDuringHandshake)
        context.fireChannelInactive()
    }

    /// A channel that never connected is torn down without going inactive: the promise is
    /// settled either way (failing a settled one does nothing).
    func handlerRemoved(context: ChannelHandlerContext) {
        promise.fail(UpstreamTLSError.closedDuringHandshake)
    }
}

enum UpstreamTLSError: Error {
    case nameMismatch
    case closedDuringHandshake
    case handshakeTimeout
    /// ALPN did not agree on the protocol the service is configured to speak.
    case protocolNotNegotiated
}
