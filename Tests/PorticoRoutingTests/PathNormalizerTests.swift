import PorticoRouting
import XCTest

final class PathNormalizerTests: XCTestCase {
    /// Paths that are accepted, with what routing and the upstream will see.
    func testAcceptedPaths() {
        let cases: [(target: String, path: String, line: UInt)] = [
            ("/", "/", #line),
            ("/api/users/42", "/api/users/42", #line),
            ("/a//b", "/a/b", #line),
            ("//a///b//", "/a/b/", #line),
            ("/a/./b/../c", "/a/c", #line),
            ("/a/b/", "/a/b/", #line),
            ("/a/./", "/a/", #line),
            ("/a/.", "/a/", #line),
            ("/a/b/..", "/a/", #line),
            ("/a/..", "/", #line),
            ("/.", "/", #line),
            ("/%61pi", "/api", #line),
            ("/%7Euser/%2D%2E%5F", "/~user/-._", #line),
            ("/a/%2e/b", "/a/b", #line),
            ("/a/b/%2e%2E/c", "/a/c", #line),
            ("/a/.%2e/b", "/b", #line),
            ("/caf%c3%a9", "/caf%C3%A9", #line),
            ("/caf%C3%A9", "/caf%C3%A9", #line),
            ("/a%20b", "/a%20b", #line),
            ("/a%3fb%23c", "/a%3Fb%23c", #line),
            ("/..a/b..", "/..a/b..", #line),
            ("/.well-known/acme", "/.well-known/acme", #line),
            ("/a/...", "/a/...", #line),
            ("/users/{id}|x", "/users/{id}|x", #line),
        ]
        for testCase in cases {
            switch PathNormalizer.normalize(testCase.target) {
            case .success(let target):
                XCTAssertEqual(target.path, testCase.path, "normalizing \(testCase.target)", line: testCase.line)
                XCTAssertNil(target.query, line: testCase.line)
                XCTAssertEqual(target.form, .origin, line: testCase.line)
            case .failure(let error):
                XCTFail("\(testCase.target) rejected: \(error)", line: testCase.line)
            }
        }
    }

    /// Targets the gateway answers with 400.
    func testRejectedTargets() {
        let cases: [(target: String, error: PathError, line: UInt)] = [
            ("", .empty, #line),
            ("/a%2Fb", .encodedSeparator, #line),
            ("/a%2fb", .encodedSeparator, #line),
            ("/a%5Cb", .encodedSeparator, #line),
            ("/a%5cb", .encodedSeparator, #line),
            ("/..", .aboveRoot, #line),
            ("/../a", .aboveRoot, #line),
            ("/a/../..", .aboveRoot, #line),
            ("/a/%2e%2e/%2e%2e/", .aboveRoot, #line),
            ("/%2E%2E", .aboveRoot, #line),
            ("/a%zz", .invalidEscape, #line),
            ("/a%4", .invalidEscape, #line),
            ("/a%", .invalidEscape, #line),
            ("/a%4g/b", .invalidEscape, #line),
            ("a/b", .notAbsolutePath, #line),
            ("?x=1", .notAbsolutePath, #line),
            ("/a b", .invalidCharacter(0x20), #line),
            ("/a#frag", .invalidCharacter(UInt8(ascii: "#")), #line),
            ("/a\u{7F}", .invalidCharacter(0x7F), #line),
            ("/a\tb", .invalidCharacter(0x09), #line),
            ("/a\r\nHost: evil", .invalidCharacter(0x0D), #line),
            ("/a\u{0}", .invalidCharacter(0x00), #line),
            ("/a\\..\\b", .invalidCharacter(UInt8(ascii: "\\")), #line),
            ("/café", .invalidCharacter(0xC3), #line),
            ("/a?x=1 2", .invalidCharacter(0x20), #line),
            ("/a?x=1#frag", .invalidCharacter(UInt8(ascii: "#")), #line),
            ("ftp://host/a", .unsupportedScheme, #line),
            ("http:///a", .invalidAuthority, #line),
            ("http://user@host/a", .invalidAuthority, #line),
            ("http://host/..", .aboveRoot, #line),
        ]
        for testCase in cases {
            switch PathNormalizer.normalize(testCase.target) {
            case .success(let target):
                XCTFail("\(testCase.target.debugDescription) accepted as \(target.path)", line: testCase.line)
            case .failure(let error):
                XCTAssertEqual(error, testCase.error, "normalizing \(testCase.target.debugDescription)", line: testCase.line)
            }
        }
    }

    func testQueryIsSplitOffAndLeftUntouched() throws {
        let target = try PathNormalizer.normalize("/a//b/../c?x=%2F..&y=/../%zz&z=a?b").get()
        XCTAssertEqual(target.path, "/a/c")
        XCTAssertEqual(target.query, "x=%2F..&y=/../%zz&z=a?b")

        let bare = try PathNormalizer.normalize("/search?").get()
        XCTAssertEqual(bare.path, "/search")
        XCTAssertEqual(bare.query, "")
    }

    func testAbsoluteFormReturnsAuthoritySeparately() throws {
        let target = try PathNormalizer.normalize("http://Api.Example.com:80/v1//users/./42?page=2").get()
        XCTAssertEqual(target.form, .absolute)
        XCTAssertEqual(target.scheme, "http")
        XCTAssertEqual(target.authority, "Api.Example.com:80")
        XCTAssertEqual(target.path, "/v1/users/42")
        XCTAssertEqual(target.query, "page=2")

        let https = try PathNormalizer.normalize("HTTPS://[::1]:8443/a").get()
        XCTAssertEqual(https.scheme, "https")
        XCTAssertEqual(https.authority, "[::1]:8443")
        XCTAssertEqual(https.path, "/a")
    }

    func testAbsoluteFormWithoutPathMeansRoot() throws {
        let target = try PathNormalizer.normalize("http://example.com").get()
        XCTAssertEqual(target.path, "/")
        XCTAssertNil(target.query)

        let withQuery = try PathNormalizer.normalize("http://example.com?q=1").get()
        XCTAssertEqual(withQuery.authority, "example.com")
        XCTAssertEqual(withQuery.path, "/")
        XCTAssertEqual(withQuery.query, "q=1")
    }

    func testAsteriskIsOnlyForOptions() throws {
        XCTAssertEqual(try PathNormalizer.normalize("*", method: "OPTIONS").get(), .asterisk)
        XCTAssertEqual(PathNormalizer.normalize("*", method: "GET"), .failure(.asteriskNotAllowed))
        // Without a method the caller decides, from `form`.
        XCTAssertEqual(try PathNormalizer.normalize("*").get().form, .asterisk)
        XCTAssertEqual(PathNormalizer.normalize("*/a"), .failure(.notAbsolutePath))
    }

    /// The common case must hand back the received string rather than build a new one: a
    /// target longer than 15 bytes lives on the heap, so sharing shows as the same address.
    func testAlreadyNormalPathReusesTheReceivedString() throws {
        let received = "/api/v1/users/42/orders/7"
        let normalized = try PathNormalizer.normalize(received).get().path
        XCTAssertEqual(normalized, received)
        XCTAssertEqual(baseAddress(of: normalized), baseAddress(of: received))

        let rebuilt = try PathNormalizer.normalize("/api/v1//users/42/orders/7").get().path
        XCTAssertEqual(rebuilt, received)
        XCTAssertNotEqual(baseAddress(of: rebuilt), baseAddress(of: received))
    }

    func testErrorsDescribeTheProblem() {
        XCTAssertEqual(PathError.invalidCharacter(0x0A).description, "invalid character 0x0A in request target")
        XCTAssertEqual(PathError.aboveRoot.description, "'..' climbs above the root of the request path")
    }

    private func baseAddress(of string: String) -> UnsafeRawPointer? {
        string.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
    }
}
