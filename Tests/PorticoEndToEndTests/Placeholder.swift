import XCTest
final class PlaceholderPorticoEndToEndTests: XCTestCase {}
