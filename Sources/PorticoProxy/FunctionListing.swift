import Foundation

/// The admin API's `GET /functions` body: every function with its revision, state, routes and
/// workers, and the functions that failed with why.
///
/// Encodable and written by `JSONEncoder`: `JSONSerialization` of the same dictionaries spent
/// about 80 ms of a thousand functions' 100 ms in bridging to `NSDictionary` and sorting keys
/// with `NSString.compare`.
struct FunctionListing: Encodable {
    var functions: [Entry]

    struct Entry: Encodable {
        var name: String
        var routes: [String]
        var lastError: String?
        /// Nil for a function that failed to deploy and has no serving revision.
        var revision: String?
        var mode: String?
        var state: String
        var queueLength: Int?
        var workers: [Worker]?

        init(name: String, routes: [String], failure: String?, status: FunctionStatus?) {
            self.name = name
            self.routes = routes
            lastError = failure ?? status?.lastError
            guard let status else {
                state = "failed"
                return
            }
            revision = status.revision
            mode = status.mode
            state = status.state
            queueLength = status.queueLength
            workers = status.workers.map(Worker.init)
        }
    }

    struct Worker: Encodable {
        var id: UInt64
        var pid: Int?
        var port: Int?
        var state: String
        var inFlight: Int
        var ageSeconds: Double

        init(_ worker: FunctionStatus.Worker) {
            id = worker.id
            pid = worker.pid
            port = worker.port
            state = worker.state
            inFlight = worker.inFlight
            ageSeconds = (worker.ageSeconds * 1000).rounded() / 1000
        }
    }

    /// Pretty JSON with sorted keys (as the other admin endpoints write it), and a newline.
    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
