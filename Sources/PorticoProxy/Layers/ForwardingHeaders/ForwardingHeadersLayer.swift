import PorticoHTTP1

/// What the backend learns about the hop before it: `X-Forwarded-For`/`-Proto`/`-Host`,
/// `Forwarded` (RFC 7239), `X-Request-Id`, and the verified client certificate
/// (`X-Forwarded-Client-Cert`, Envoy's format).
final class ForwardingHeadersLayer: RequestLayer {
    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        // Never trust a client's claim to have been verified by a proxy before this one. Done
        // before the policies, so an authorization rule on the header sees only Portico's.
        if request.head.fields.contains("x-forwarded-client-cert") {
            request.head.fields.removeAll(named: "x-forwarded-client-cert")
        }
        if let certificate = request.connection.forwardedClientCertificate {
            request.head.fields.append(name: "x-forwarded-client-cert", value: certificate)
        }
        return .proceed
    }

    func upstreamHead(_ head: inout RequestHead, of request: LayerRequest) {
        let connection = request.connection
        let forwardedFor = head.fields.count(of: "x-forwarded-for")
        if forwardedFor == 1, let existing = head.fields.firstValue(of: "x-forwarded-for") {
            head.fields.replaceOrAppend(name: "x-forwarded-for", value: existing + ", " + connection.clientAddress)
        } else if forwardedFor > 1 {
            // Several lines are one list (RFC 9110 5.3): all of them, in order, then this hop.
            let chain = head.fields.values(of: "x-forwarded-for").joined(separator: ", ")
            head.fields.replaceOrAppend(name: "x-forwarded-for", value: chain + ", " + connection.clientAddress)
        } else {
            head.fields.append(name: "x-forwarded-for", value: connection.clientAddress)
        }
        if head.fields.contains("x-forwarded-proto") { head.fields.removeAll(named: "x-forwarded-proto") }
        head.fields.append(name: "x-forwarded-proto", value: connection.scheme)
        if head.fields.contains("x-forwarded-host") { head.fields.removeAll(named: "x-forwarded-host") }
        head.fields.append(name: "x-forwarded-host", value: request.authority)
        head.fields.append(name: "forwarded", value: connection.forwardedValue(authority: request.authority))
        if !request.hadRequestID { head.fields.append(name: "x-request-id", value: request.requestID) }
    }
}
