/// The body of `GET /taps`.
struct TapListing: Encodable {
    struct Tap: Encodable {
        var id: Int
        var kind: String
        var route: String?
        var status: String?
        var delivered: Int
        var dropped: Int
    }

    var count: Int
    /// Each proxy loop's own count of subscriptions (what the request path reads).
    var subscriptionsOnLoops: [Int]
    var taps: [Tap]
}
