import Foundation
import PorticoCore
import XCTest

/// The ClientHello parser on hand-built hellos: every prefix of a valid one asks for more,
/// records split anywhere still parse, and every broken length is `malformed`, never a crash.
final class TLSClientHelloTests: XCTestCase {
    // MARK: Building hellos

    private static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    private static func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16 & 0xFF)] + u16(value) }

    /// A `server_name` extension with `names` as host_name entries.
    static func serverNameExtension(_ names: [String]) -> [UInt8] {
        let list = names.flatMap { [UInt8(0)] + u16($0.utf8.count) + Array($0.utf8) }
        let body = u16(list.count) + list
        return u16(0) + u16(body.count) + body
    }

    /// A ClientHello body with the given extensions (nil: no extensions block at all).
    static func helloBody(extensions: [[UInt8]]?, sessionID: Int = 32) -> [UInt8] {
        var body: [UInt8] = [3, 3] + Array(repeating: 0xAB, count: 32)
        body += [UInt8(sessionID)] + Array(repeating: 0x11, count: sessionID)
        body += u16(4) + [0x13, 0x01, 0xC0, 0x2B]
        body += [1, 0]
        if let extensions {
            let all = extensions.flatMap { $0 }
            body += u16(all.count) + all
        }
        return body
    }

    static func handshake(_ body: [UInt8], type: UInt8 = 1) -> [UInt8] {
        [type] + u24(body.count) + body
    }

    /// `handshake` in records of at most `recordSize` payload bytes.
    static func records(_ handshake: [UInt8], recordSize: Int = 16384, type: UInt8 = 22) -> [UInt8] {
        stride(from: 0, to: handshake.count, by: recordSize).flatMap { start -> [UInt8] in
            let payload = Array(handshake[start..<min(start + recordSize, handshake.count)])
            return [type, 3, 1] + u16(payload.count) + payload
        }
    }

    /// Extensions a browser sends besides the server name, so the name is not the only thing.
    static let otherExtensions: [[UInt8]] = [
        u16(10) + u16(4) + u16(2) + u16(0x1D),              // supported_groups: x25519
        u16(16) + u16(5) + u16(3) + [2] + Array("h2".utf8),  // ALPN: h2
        u16(43) + u16(3) + [2, 3, 4],                        // supported_versions: TLS 1.3
    ]

    static func hello(serverName: String) -> [UInt8] {
        records(handshake(helloBody(extensions: [otherExtensions[0], serverNameExtension([serverName])] + otherExtensions.dropFirst())))
    }

    // MARK: Whole hellos

    func testReadsTheServerName() {
        XCTAssertEqual(TLSClientHello.parse(Self.hello(serverName: "db.example.com")), .complete(serverName: "db.example.com"))
    }

    func testEveryPrefixAsksForMoreBytes() {
        let hello = Self.hello(serverName: "db.example.com")
        for cut in 0..<hello.count {
            XCTAssertEqual(TLSClientHello.parse(Array(hello[..<cut])), .needMoreBytes, "cut at \(cut) of \(hello.count)")
        }
        // Bytes after the hello (a client that sends early data with it) change nothing.
        XCTAssertEqual(TLSClientHello.parse(hello + [23, 3, 3, 0, 1, 0]), .complete(serverName: "db.example.com"))
    }

    func testAHelloSplitOverRecordsOfAnySize() {
        let handshake = Self.handshake(Self.helloBody(extensions: [Self.serverNameExtension(["a.internal.example"])]))
        for recordSize in [1, 2, 3, 4, 5, 7, 50, handshake.count - 1] {
            let bytes = Self.records(handshake, recordSize: recordSize)
            XCTAssertEqual(TLSClientHello.parse(bytes), .complete(serverName: "a.internal.example"), "records of \(recordSize)")
            for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
                XCTAssertEqual(TLSClientHello.parse(Array(bytes[..<cut])), .needMoreBytes, "records of \(recordSize), cut at \(cut)")
            }
        }
    }

    func testNoServerName() {
        let withoutSNI = Self.records(Self.handshake(Self.helloBody(extensions: Self.otherExtensions)))
        XCTAssertEqual(TLSClientHello.parse(withoutSNI), .complete(serverName: nil))
        let noExtensions = Self.records(Self.handshake(Self.helloBody(extensions: nil)))
        XCTAssertEqual(TLSClientHello.parse(noExtensions), .complete(serverName: nil))
    }

    /// The ClientHello Python's `ssl` module (OpenSSL) really sends: TLS 1.3 key shares,
    /// session ticket, ALPN and all.
    private func realHello(serverName: String?) throws -> [UInt8] {
        let script = """
            import ssl, sys
            context = ssl.create_default_context()
            context.set_alpn_protocols(["h2", "http/1.1"])
            name = sys.argv[1] if len(sys.argv) > 1 else None
            if name is None:
                context.check_hostname = False
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            sys.stdout.buffer.write(outgoing.read())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + (serverName.map { [$0] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return Array(data)
    }

    func testARealClientHello() throws {
        let hello = try realHello(serverName: "db.example.com")
        XCTAssertGreaterThan(hello.count, 200)
        XCTAssertEqual(TLSClientHello.parse(hello), .complete(serverName: "db.example.com"))
        for cut in 0..<hello.count {
            XCTAssertEqual(TLSClientHello.parse(Array(hello[..<cut])), .needMoreBytes, "cut at \(cut) of \(hello.count)")
        }
        XCTAssertEqual(TLSClientHello.parse(try realHello(serverName: nil)), .complete(serverName: nil))
    }

    // MARK: What is refused

    func testNotTLS() {
        XCTAssertEqual(TLSClientHello.parse(Array("GET / HTTP/1.1\r\n".utf8)), .notTLS)
        // SSLv2's hello, and a TLS alert record.
        XCTAssertEqual(TLSClientHello.parse([0x80, 0x2E, 0x01, 0x03, 0x01, 0, 0]), .notTLS)
        XCTAssertEqual(TLSClientHello.parse([21, 3, 3, 0, 2, 2, 40]), .notTLS)
        // Decided from the first record header alone, before any payload.
        XCTAssertEqual(TLSClientHello.parse([0x47, 0x45, 0x54, 0x20, 0x2F]), .notTLS)
    }

    func testMalformedLengths() {
        func malformed(_ bytes: [UInt8], _ why: String, file: StaticString = #filePath, line: UInt = #line) {
            guard case .malformed = TLSClientHello.parse(bytes) else {
                return XCTFail("\(why): \(TLSClientHello.parse(bytes))", file: file, line: line)
            }
        }
        let sni = Self.serverNameExtension(["db.example.com"])
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [sni], sessionID: 33))), "session id over 32")
        // The extensions block says one byte more than there is.
        var body = Self.helloBody(extensions: [sni])
        let extensionsAt = body.count - sni.count - 2
        body[extensionsAt + 1] &+= 1
        malformed(Self.records(Self.handshake(body)), "extensions length")
        // An extension longer than the block.
        var long = sni
        long[3] &+= 5
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [long]))), "extension length")
        // A server name list length that does not match its extension.
        var list = sni
        list[5] &-= 1
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [list]))), "list length")
        // A name longer than its list.
        var name = sni
        name[8] &+= 1
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [name]))), "name length")
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [Self.serverNameExtension([""])]))), "empty name")
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [Self.serverNameExtension(["a b"])]))), "space in name")
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [Self.serverNameExtension(["ex\u{0}ample"])]))), "NUL in name")
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [sni, sni]))), "two server_name extensions")
        // The hello's own length leaves out its last byte: what is left does not add up.
        var short = Self.handshake(Self.helloBody(extensions: [sni]))
        short[3] &-= 1
        malformed(Self.records(short), "hello length")
        malformed(Self.records(Self.handshake(Self.helloBody(extensions: [sni]), type: 2)), "a ServerHello")
        malformed([22, 3, 1, 0, 0], "an empty record")
        malformed([22, 3, 1, 0x40, 0x01] + Array(repeating: 0, count: 16385), "a record over 16 KiB")
        // A handshake record, then an application data record before the hello is whole.
        let handshake = Self.handshake(Self.helloBody(extensions: [sni]))
        malformed(Self.records(Array(handshake[..<10])) + Self.records(Array(handshake[10...]), type: 23), "record type change")
    }

    func testOversizedHellos() {
        // Declares 20 000 bytes: refused as soon as the length is known, without waiting for them.
        XCTAssertEqual(TLSClientHello.parse([22, 3, 1, 0, 4, 1] + Self.u24(20_000)), .tooLarge)
        // A 15 KiB padding extension fits; the limit is what the caller buffers.
        let padding = Self.u16(21) + Self.u16(15 * 1024) + Array(repeating: 0, count: 15 * 1024)
        let big = Self.records(Self.handshake(Self.helloBody(extensions: [padding, Self.serverNameExtension(["a.example"])])))
        XCTAssertEqual(TLSClientHello.parse(big), .complete(serverName: "a.example"))
        XCTAssertEqual(TLSClientHello.parse(big, limit: 8 * 1024), .tooLarge)
        // Split into tiny records the same hello costs more than the limit in record headers.
        let tiny = Self.records(Self.handshake(Self.helloBody(extensions: [padding])), recordSize: 8)
        XCTAssertEqual(TLSClientHello.parse(tiny), .tooLarge)
        XCTAssertEqual(TLSClientHello.parse(Array(tiny[..<(16 * 1024 + 1)])), .tooLarge)
    }

    /// Random damage to a valid hello, many times over: any outcome but a crash.
    func testDamagedHellosNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let hello = Self.hello(serverName: "db.example.com")
        for _ in 0..<5000 {
            var bytes = hello
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { bytes = Array(bytes[..<Int.random(in: 0..<bytes.count, using: &generator)]) }
            _ = TLSClientHello.parse(bytes)
        }
    }
}
