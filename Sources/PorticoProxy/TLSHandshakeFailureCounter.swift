import NIOCore
import NIOSSL
import NIOTLS

/// Counts a listener's failed TLS handshakes by reason (`portico_tls_handshake_failures_total`),
/// then steps aside: it sits right after the `NIOSSLServerHandler` until the handshake is done.
///
/// The reason comes from the error NIOSSL raises, whose BoringSSL reason names what went wrong
/// on this side (no client certificate, one that does not verify, no shared cipher or version)
/// or the alert the client sent (it did not trust the listener's certificate). Over TLS 1.3 a
/// client that refuses the certificate sends its alert encrypted after the server's flight,
/// and BoringSSL reports a record it could not decrypt: that reads as `other`.
final class TLSHandshakeFailureCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let listener: String
    private let metrics: GatewayMetrics
    private var counted = false

    init(listener: String, metrics: GatewayMetrics) {
        self.listener = listener
        self.metrics = metrics
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !counted {
            // One failure per connection: NIOSSL may raise more than one error as it closes.
            counted = true
            metrics.tlsHandshakeFailureCounter(listener: listener, reason: Self.reason(for: error)).increment()
        }
        context.fireErrorCaught(error)
    }

    /// `no_certificate`, `bad_certificate`, `unknown_ca`, `protocol_version`, `no_shared_cipher`,
    /// `no_application_protocol`, `http_request`, `closed` or `other`.
    static func reason(for error: Error) -> String {
        switch error {
        case NIOSSLError.handshakeFailed(let failure):
            switch failure {
            case .sslError(let stack), .unknownError(let stack):
                for entry in stack {
                    if let reason = reason(forBoringSSLReason: entry.description) { return reason }
                }
                return "other"
            case .syscallError, .zeroReturn:
                return "closed"
            default:
                return "other"
            }
        case NIOSSLError.uncleanShutdown, NIOSSLError.readInInvalidTLSState:
            return "closed"
        default:
            return "other"
        }
    }

    /// BoringSSL's error text ends its reason in capitals (`...:OPENSSL_internal:NO_SHARED_CIPHER at
    /// ...`); the library exposes no code, so the text is read.
    static func reason(forBoringSSLReason text: String) -> String? {
        let table: [(String, String)] = [
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "no_certificate"),
            ("ALERT_CERTIFICATE_REQUIRED", "no_certificate"),
            ("CERTIFICATE_VERIFY_FAILED", "bad_certificate"),
            ("ALERT_UNKNOWN_CA", "unknown_ca"),
            ("ALERT_BAD_CERTIFICATE", "unknown_ca"),
            ("ALERT_CERTIFICATE_UNKNOWN", "unknown_ca"),
            ("UNSUPPORTED_PROTOCOL", "protocol_version"),
            ("ALERT_PROTOCOL_VERSION", "protocol_version"),
            ("WRONG_VERSION_NUMBER", "protocol_version"),
            ("NO_SHARED_CIPHER", "no_shared_cipher"),
            ("NO_SHARED_GROUP", "no_shared_cipher"),
            // A cipher suite the listener's key cannot sign for (RSA key exchange, EC key).
            ("WRONG_CURVE", "no_shared_cipher"),
            ("ALERT_HANDSHAKE_FAILURE", "no_shared_cipher"),
            ("NO_APPLICATION_PROTOCOL", "no_application_protocol"),
            ("HTTP_REQUEST", "http_request"),
            // NIOSSL's own words when the client closed mid-handshake.
            ("EOF during handshake", "closed"),
        ]
        for (name, reason) in table where text.contains(name) { return reason }
        return nil
    }
}
