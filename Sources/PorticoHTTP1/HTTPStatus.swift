/// A response status: its code, and the reason phrase RFC 9110 gives it.
///
/// Portico's own, so the request path needs nothing from NIOHTTP1 (which stays a test-only
/// dependency, as the codec's differential oracle).
public struct HTTPStatus: Sendable, Hashable {
    public let code: Int

    public init(statusCode: Int) {
        self.code = statusCode
    }

    public static let `continue` = HTTPStatus(statusCode: 100)
    public static let switchingProtocols = HTTPStatus(statusCode: 101)
    public static let ok = HTTPStatus(statusCode: 200)
    public static let noContent = HTTPStatus(statusCode: 204)
    public static let badRequest = HTTPStatus(statusCode: 400)
    public static let unauthorized = HTTPStatus(statusCode: 401)
    public static let forbidden = HTTPStatus(statusCode: 403)
    public static let notFound = HTTPStatus(statusCode: 404)
    public static let methodNotAllowed = HTTPStatus(statusCode: 405)
    public static let requestTimeout = HTTPStatus(statusCode: 408)
    public static let payloadTooLarge = HTTPStatus(statusCode: 413)
    public static let tooManyRequests = HTTPStatus(statusCode: 429)
    public static let requestHeaderFieldsTooLarge = HTTPStatus(statusCode: 431)
    public static let internalServerError = HTTPStatus(statusCode: 500)
    public static let notImplemented = HTTPStatus(statusCode: 501)
    public static let badGateway = HTTPStatus(statusCode: 502)
    public static let serviceUnavailable = HTTPStatus(statusCode: 503)
    public static let gatewayTimeout = HTTPStatus(statusCode: 504)

    /// The phrase of RFC 9110 section 15 (and of the RFCs that added codes since); empty for a
    /// code it does not name, which an HTTP/1 status line allows.
    public var reasonPhrase: String {
        switch self.code {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 102: return "Processing"
        case 103: return "Early Hints"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 203: return "Non-Authoritative Information"
        case 204: return "No Content"
        case 205: return "Reset Content"
        case 206: return "Partial Content"
        case 207: return "Multi-Status"
        case 208: return "Already Reported"
        case 226: return "IM Used"
        case 300: return "Multiple Choices"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 305: return "Use Proxy"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Payload Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 418: return "I'm a teapot"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Entity"
        case 423: return "Locked"
        case 424: return "Failed Dependency"
        case 425: return "Too Early"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 451: return "Unavailable For Legal Reasons"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 506: return "Variant Also Negotiates"
        case 507: return "Insufficient Storage"
        case 508: return "Loop Detected"
        case 510: return "Not Extended"
        case 511: return "Network Authentication Required"
        default: return ""
        }
    }
}
