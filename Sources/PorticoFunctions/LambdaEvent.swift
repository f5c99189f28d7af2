import Foundation
import NIOCore
import PorticoProxy

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP request as the API Gateway HTTP API event a Lambda handler expects (payload format
/// 2.0): header names in lower case, repeated headers and query parameters joined with commas,
/// the `cookie` headers as the `cookies` list, and a body that is not text in base64.
/// `pathParameters` and `stageVariables` are left out: Portico has no route parameters or
/// stages, and API Gateway leaves them out too when there are none.
enum LambdaEvent {
    static func encode(_ request: ExecRequest, requestID: String, epochMilliseconds: Int64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var json = JSONWriter(capacity: 512 + request.body.readableBytes * 4 / 3)
        var headers: [(String, String)] = []
        var cookies: [String] = []
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if lower == "cookie" {
                cookies += value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            } else if let index = headers.firstIndex(where: { $0.0 == lower }) {
                headers[index].1 += "," + value
            } else {
                headers.append((lower, value))
            }
        }
        let host = headers.first(where: { $0.0 == "host" })?.1 ?? "localhost"
        let userAgent = headers.first(where: { $0.0 == "user-agent" })?.1 ?? ""

        json.open("{")
        json.field("version", "2.0")
        json.field("routeKey", "$default")
        json.field("rawPath", request.path)
        json.field("rawQueryString", request.query)
        if !cookies.isEmpty {
            json.key("cookies")
            json.open("[")
            for cookie in cookies { json.element(cookie) }
            json.close("]")
        }
        json.key("headers")
        json.open("{")
        for (name, value) in headers { json.field(name, value) }
        json.close("}")
        let query = queryParameters(request.query)
        if !query.isEmpty {
            json.key("queryStringParameters")
            json.open("{")
            for (name, value) in query { json.field(name, value) }
            json.close("}")
        }
        json.key("requestContext")
        json.open("{")
        json.field("accountId", LambdaFunction.accountID)
        json.field("apiId", "portico")
        json.field("domainName", host)
        json.field("domainPrefix", String(host.split(separator: ".").first ?? Substring(host)))
        json.key("http")
        json.open("{")
        json.field("method", request.method)
        json.field("path", request.path)
        json.field("protocol", request.protocolName)
        json.field("sourceIp", request.remoteAddress)
        json.field("userAgent", userAgent)
        json.close("}")
        json.field("requestId", requestID)
        json.field("routeKey", "$default")
        json.field("stage", "$default")
        json.field("time", apiGatewayTime(epochMilliseconds: epochMilliseconds))
        json.key("timeEpoch")
        json.raw(String(epochMilliseconds))
        json.close("}")

        var body = request.body
        let isText = isTextual(contentType: headers.first(where: { $0.0 == "content-type" })?.1)
        if body.readableBytes > 0 {
            let bytes = body.readBytes(length: body.readableBytes) ?? []
            // Invalid UTF-8 would not survive as a JSON string: decoding replaces it, so it
            // comes back different.
            let text = String(decoding: bytes, as: UTF8.self)
            if isText, text.utf8.elementsEqual(bytes) {
                json.field("body", text)
                json.key("isBase64Encoded")
                json.raw("false")
            } else {
                json.field("body", Data(bytes).base64EncodedString())
                json.key("isBase64Encoded")
                json.raw("true")
            }
        } else {
            json.key("isBase64Encoded")
            json.raw("false")
        }
        json.close("}")
        var buffer = allocator.buffer(capacity: json.bytes.count)
        buffer.writeBytes(json.bytes)
        return buffer
    }

    /// Text, as API Gateway sends it as it is; anything else goes in base64 so that no byte is
    /// lost in a JSON string.
    static func isTextual(contentType: String?) -> Bool {
        guard let contentType = contentType?.lowercased() else { return false }
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if type.hasPrefix("text/") { return true }
        return type.hasSuffix("json") || type.hasSuffix("+xml") || type == "application/xml"
            || type == "application/javascript" || type == "application/x-www-form-urlencoded" || type == "application/graphql"
    }

    /// `a=1&a=2&b` as `[("a", "1,2"), ("b", "")]`, percent-decoded, in first-seen order.
    static func queryParameters(_ query: String) -> [(String, String)] {
        var result: [(String, String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if let index = result.firstIndex(where: { $0.0 == name }) {
                result[index].1 += "," + value
            } else {
                result.append((name, value))
            }
        }
        return result
    }

    private static func decode(_ text: Substring) -> String {
        let plain = text.replacingOccurrences(of: "+", with: " ")
        return plain.removingPercentEncoding ?? plain
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// API Gateway's `requestContext.time`: `12/Mar/2020:19:03:58 +0000`.
    static func apiGatewayTime(epochMilliseconds: Int64) -> String {
        var seconds = time_t(epochMilliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(parts.tm_mday))/\(months[Int(parts.tm_mon)])/\(parts.tm_year + 1900):"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}
