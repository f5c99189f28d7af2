/// Which completed requests a tap (or the dashboard's list of local replies) wants to hear of.
///
/// Matched on the request's event loop against values the request already has (its route's
/// name, its status), before any line is written: a request no tap wants costs one comparison
/// per tap.
public struct TapFilter: Sendable, Equatable {
    /// Only requests of this route (by name); nil: every route.
    public var route: String?
    /// Only these statuses (`5xx` is 500...599, `404` is 404...404); empty: every status.
    public var statuses: [ClosedRange<Int>]
    /// Only requests the gateway answered itself (no upstream answered).
    public var localOnly: Bool

    public init(route: String? = nil, statuses: [ClosedRange<Int>] = [], localOnly: Bool = false) {
        self.route = route
        self.statuses = statuses
        self.localOnly = localOnly
    }

    @inline(__always)
    public func matches(route name: String, status: Int, local: Bool) -> Bool {
        if localOnly && !local { return false }
        if let route, route != name { return false }
        if statuses.isEmpty { return true }
        for range in statuses where range.contains(status) { return true }
        return false
    }

    public struct InvalidStatus: Error, CustomStringConvertible {
        public let text: String
        public var description: String {
            "status filter '\(text)': expected a status code (404) or a class (5xx), comma-separated"
        }
    }

    /// Parses `5xx`, `404`, or a comma-separated list of them (`4xx,503`).
    public static func statuses(parsing text: String) throws -> [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingSpaces().lowercased()
            if item.count == 3, item.hasSuffix("xx"), let digit = item.first?.wholeNumberValue, (1...5).contains(digit) {
                ranges.append(digit * 100 ... digit * 100 + 99)
            } else if item.count == 3, let code = Int(item), (100...599).contains(code) {
                ranges.append(code...code)
            } else {
                throw InvalidStatus(text: text)
            }
        }
        return ranges
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var slice = self
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return slice
    }
}
