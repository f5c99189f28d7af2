/// Input `portico explain` or `POST /explain` cannot explain: exit status 2, or 400.
public struct ExplainInputError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
