import Foundation
import Logging
import NIOCore
import PorticoConfig
import PorticoCore
import PorticoProxy

/// A lambda-mode revision as the gateway answers it: each request waits for a worker of the
/// revision (one invocation per worker at a time; the scaler starts more up to `maxWorkers`),
/// goes to its runtime as an API Gateway HTTP API event, and the handler's result comes back
/// as the response.
///
/// The workers, their scaling, redeploys and drains are the revision's `FunctionInstance`, as
/// for http mode; only the exchange with a worker differs.
public struct LambdaFunction: LocalResponder {
    let instance: FunctionInstance

    /// The account in the ARN and the event: Portico has none, so the placeholder AWS uses in
    /// its own examples of a local run.
    static let accountID = "000000000000"
    static let defaultRegion = "us-east-1"

    static func region(_ manifest: FunctionManifest) -> String {
        manifest.env.last(where: { $0.name == "AWS_REGION" })?.value ?? defaultRegion
    }

    static func arn(_ manifest: FunctionManifest) -> String {
        "arn:aws:lambda:\(region(manifest)):\(accountID):function:\(manifest.name)"
    }

    /// What a Lambda runtime reads from its environment (the Lambda documentation's "defined
    /// runtime environment variables"), next to Portico's own; the manifest's `env` may set any
    /// of them but the Runtime API's address.
    static func addEnvironment(to environment: inout [String: String], manifest: FunctionManifest, runtimeAPIPort: Int,
                               worker: UInt64) {
        func setDefault(_ name: String, _ value: String) {
            if environment[name] == nil { environment[name] = value }
        }
        environment["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:\(runtimeAPIPort)"
        setDefault("AWS_LAMBDA_FUNCTION_NAME", manifest.name)
        setDefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        setDefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", String((manifest.limits.memory ?? 128 << 20) >> 20))
        setDefault("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/\(manifest.name)")
        setDefault("AWS_LAMBDA_LOG_STREAM_NAME", "portico/\(manifest.name)/\(worker)")
        setDefault("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        setDefault("AWS_REGION", defaultRegion)
        setDefault("AWS_DEFAULT_REGION", environment["AWS_REGION"] ?? defaultRegion)
        // Absolute, as in Lambda (`/var/task`): a runtime may change directory before it reads it.
        let root = URL(fileURLWithPath: manifest.directory).standardizedFileURL.path
        setDefault("LAMBDA_TASK_ROOT", root)
        setDefault("LAMBDA_RUNTIME_DIR", root)
        if let handler = manifest.handler { setDefault("_HANDLER", handler) }
    }

    public func respond(to request: ExecRequest, on loop: EventLoop) -> EventLoopFuture<ExecOutcome> {
        let promise = loop.makePromise(of: ExecOutcome.self)
        let logger = instance.logger
        let name = instance.manifest.name
        instance.acquire(id: Self.leaseID(), on: loop) { result in
            let lease: WorkerLease
            switch result {
            case .failure(let reason):
                return promise.succeed(.unavailable(reason))
            case .success(let leased):
                lease = leased
            }
            let invocationID = Self.invocationID()
            let event = LambdaEvent.encode(request, requestID: request.requestID.isEmpty ? invocationID : request.requestID,
                                           epochMilliseconds: Int64(Date().timeIntervalSince1970 * 1000),
                                           allocator: ByteBufferAllocator())
            let answered = loop.makePromise(of: LambdaRuntimeServer.Machine.Outcome.self)
            lease.instance.homeLoop.execute {
                lease.instance.invoke(lease, id: invocationID, event: event) { outcome in
                    lease.instance.release(lease)
                    answered.succeed(outcome)
                }
            }
            // Back on the request's loop: the result becomes the response there.
            answered.futureResult.whenSuccess { outcome in
                promise.succeed(Self.response(for: outcome, function: name, logger: logger))
            }
        }
        return promise.futureResult
    }

    static func response(for outcome: LambdaRuntimeServer.Machine.Outcome, function: String, logger: Logger) -> ExecOutcome {
        let result: LambdaResult
        switch outcome {
        case .response(let body):
            result = LambdaResult.decode(Array(body.readableBytesView))
            if result == .internalServerError {
                logger.warning("lambda result is not a valid response", metadata: ["function": .string(function)])
            }
        case .error(let body):
            logger.warning("lambda invocation failed", metadata: [
                "function": .string(function), "error": .string(LambdaRuntimeServer.describeError(body)),
            ])
            result = .internalServerError
        case .timedOut:
            return .timedOut
        case .lost, .refused:
            result = .internalServerError
        }
        return .response(status: result.status, headers: result.headers, body: ByteBuffer(bytes: result.body))
    }

    /// A lease id for the revision's scaler: unique in the process, as ids a redeploy hands over
    /// must be. The proxy's own ids count up from one per loop; these have the top bit set and
    /// 63 random bits.
    static func leaseID() -> UInt64 {
        var random = SystemRandomNumberGenerator()
        return random.next() | (1 << 63)
    }

    /// The invocation's `Lambda-Runtime-Aws-Request-Id`: a random UUID, as Lambda's are.
    static func invocationID() -> String {
        var random = SystemRandomNumberGenerator()
        let high: UInt64 = random.next()
        let low: UInt64 = random.next()
        func hex(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        return "\(hex(high >> 32, 8))-\(hex((high >> 16) & 0xFFFF, 4))-\(hex(0x4000 | (high & 0x0FFF), 4))-"
            + "\(hex(0x8000 | ((low >> 48) & 0x3FFF), 4))-\(hex(low & 0xFFFF_FFFF_FFFF, 12))"
    }
}
