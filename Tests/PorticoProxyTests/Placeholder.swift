import XCTest
final class PlaceholderPorticoProxyTests: XCTestCase {}
