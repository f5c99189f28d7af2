import Foundation
import NIOCore

/// A Lambda handler's result as the HTTP response API Gateway's HTTP API makes of it (payload
/// format 2.0).
///
/// A JSON object with `statusCode` says it all: `statusCode`, `headers`, `multiValueHeaders`,
/// `cookies` (a `set-cookie` each), `body` and `isBase64Encoded`. Any other valid JSON (an
/// object without `statusCode`, a string, a number, a list) is inferred, as API Gateway does:
/// 200, `content-type: application/json`, and the result as the body, where a JSON string
/// becomes its text. A result that is not JSON, or a `statusCode` answer that is malformed,
/// is API Gateway's 500 "Internal Server Error", which Portico answers as a 502: the fault is
/// the function's, not the gateway's.
struct LambdaResult: Equatable {
    var status: Int
    /// Lower-case names, in order; `content-type` among them.
    var headers: [(String, String)]
    var body: [UInt8]

    static func == (lhs: LambdaResult, rhs: LambdaResult) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.map { "\($0.0): \($0.1)" } == rhs.headers.map { "\($0.0): \($0.1)" }
    }

    /// API Gateway's answer when the integration fails.
    static let internalServerError = LambdaResult(
        status: 502, headers: [("content-type", "application/json")], body: Array(#"{"message":"Internal Server Error"}"#.utf8))

    /// Headers Portico sets itself or that describe a connection, not a response; a handler's
    /// value for them is dropped.
    static let droppedHeaders: Set<String> = [
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "proxy-connection", "te", "trailer",
    ]

    static func decode(_ result: [UInt8]) -> LambdaResult {
        guard let value = try? JSONSerialization.jsonObject(with: Data(result), options: [.fragmentsAllowed]) else {
            return .internalServerError
        }
        guard let object = value as? [String: Any], let statusValue = object["statusCode"] else {
            // Inferred: the result itself is the body; a string is its text, anything else its JSON.
            let body = (value as? String).map { Array($0.utf8) } ?? result
            return LambdaResult(status: 200, headers: [("content-type", "application/json")], body: body)
        }
        guard let status = integer(statusValue), (200...599).contains(status) else { return .internalServerError }
        var headers: [(String, String)] = []
        if let single = object["headers"] as? [String: Any] {
            for (name, value) in single.sorted(by: { $0.key < $1.key }) {
                add(name, text(value), to: &headers)
            }
        }
        if let multi = object["multiValueHeaders"] as? [String: Any] {
            for (name, values) in multi.sorted(by: { $0.key < $1.key }) {
                for value in (values as? [Any]) ?? [values] { add(name, text(value), to: &headers) }
            }
        }
        if let cookies = object["cookies"] as? [Any] {
            for cookie in cookies { add("set-cookie", text(cookie), to: &headers) }
        }
        if !headers.contains(where: { $0.0 == "content-type" }) {
            headers.insert(("content-type", "application/json"), at: 0)
        }
        var body: [UInt8] = []
        if let bodyValue = object["body"], !(bodyValue is NSNull) {
            let bodyText = text(bodyValue)
            if (object["isBase64Encoded"] as? Bool) == true {
                guard let decoded = Data(base64Encoded: bodyText) else { return .internalServerError }
                body = Array(decoded)
            } else {
                body = Array(bodyText.utf8)
            }
        }
        return LambdaResult(status: status, headers: headers, body: body)
    }

    private static func integer(_ value: Any) -> Int? {
        if let number = value as? NSNumber, number.doubleValue == number.doubleValue.rounded() { return number.intValue }
        if let string = value as? String { return Int(string) }
        return nil
    }

    /// A JSON value as header or body text: strings as they are, anything else as its JSON.
    private static func text(_ value: Any) -> String {
        if let string = value as? String { return string }
        if let number = value as? NSNumber { return number.stringValue }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return ""
    }

    /// Adds a handler's header unless it cannot be written on the wire as it is (not a token, or
    /// a value with a line break) or is one Portico sets itself.
    private static func add(_ name: String, _ value: String, to headers: inout [(String, String)]) {
        let lower = name.lowercased()
        guard !lower.isEmpty, lower.utf8.allSatisfy(isTokenByte), !droppedHeaders.contains(lower) else { return }
        guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else { return }
        headers.append((lower, value))
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
