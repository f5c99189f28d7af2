/// How a request's cold start went, phase by phase: the backend fills in what happened before
/// it handed the endpoint over (a function worker that had to start), and the proxy adds the
/// first response. It goes in the access-log line of the request that caused the start.
public struct ColdStartPhases: Sendable, Equatable {
    /// From the request's arrival at the backend to the endpoint handed over.
    public var waitNanoseconds: UInt64
    /// From the start being asked for to the process spawned (or forked from its template).
    public var spawnNanoseconds: UInt64
    /// From the process spawned to its being ready.
    public var startToReadyNanoseconds: UInt64
    /// From the endpoint handed over to the response head: the worker's first answer.
    public var firstResponseNanoseconds: UInt64?

    public init(waitNanoseconds: UInt64, spawnNanoseconds: UInt64, startToReadyNanoseconds: UInt64,
                firstResponseNanoseconds: UInt64? = nil) {
        self.waitNanoseconds = waitNanoseconds
        self.spawnNanoseconds = spawnNanoseconds
        self.startToReadyNanoseconds = startToReadyNanoseconds
        self.firstResponseNanoseconds = firstResponseNanoseconds
    }
}
