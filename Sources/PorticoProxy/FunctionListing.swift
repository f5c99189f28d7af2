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
        /// A worker of the revision has been ready: what `portico deploy` waits for.
        var ready: Bool?
        /// Its deploy's warm-up is starting a worker.
        var warming: Bool?
        var startFailure: String?
        var queueBodyBytes: Int?
        var workers: [Worker]?
        /// A `runtime: python` revision's template process.
        var template: Template?

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
            ready = status.ready
            warming = status.warming
            startFailure = status.startFailure
            queueBodyBytes = status.queueBodyBytes
            workers = status.workers.map(Worker.init)
            template = status.template.map(Template.init)
        }
    }

    struct Template: Encodable {
        var state: String
        var pid: Int?
        var failures: Int
        /// Why it last failed: an import's whole traceback, say.
        var lastFailure: String?

        init(_ template: FunctionStatus.Template) {
            state = template.state
            pid = template.pid
            failures = template.failures
            lastFailure = template.lastFailure
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
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
