import PorticoConfig
import XCTest

/// The printed error for `yaml`, failing the test if the file loads.
func rejectionText(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        _ = try ConfigLoader.parse(yaml: yaml, file: "gateway.yaml")
        XCTFail("expected the config to be rejected", file: file, line: line)
        return ""
    } catch let error as ConfigError {
        return error.description
    } catch {
        XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        return ""
    }
}
