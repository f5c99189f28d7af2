import PorticoConfig
import XCTest

/// The printed error of a load that must fail, failing the test if it succeeds.
func rejectionText(of load: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        try load()
        XCTFail("expected the file to be rejected", file: file, line: line)
        return ""
    } catch let error as ConfigError {
        return error.description
    } catch {
        XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        return ""
    }
}

/// The printed error for a `gateway.yaml` holding `yaml`.
func rejectionText(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    rejectionText(of: { _ = try ConfigLoader.parse(yaml: yaml, file: "gateway.yaml") }, file: file, line: line)
}
