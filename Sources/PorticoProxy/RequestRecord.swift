import NIOCore

/// What the access log and the metrics need to know about a request, wherever it ended.
struct RequestRecord {
    var route: String
    var backend: String
    var requestID: String
    var started: NIODeadline
}
