extension HostPort {
    /// Parses `host:port`: `127.0.0.1:8080`, `localhost:80`, `[::1]:8443`.
    ///
    /// An IPv6 host must be bracketed, otherwise its last group could not be told from the port.
    /// The brackets are not stored (`description` adds them back). Port 0 ("any free port") is
    /// only meaningful for something that binds, so only listeners pass `allowPortZero: true`.
    public static func parse(_ s: String, allowPortZero: Bool = false) -> HostPort? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let hostPart = s[..<colon]
        let portPart = s[s.index(after: colon)...]

        guard !portPart.isEmpty, portPart.count <= 5,
              portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portPart),
              port <= 65535, port >= (allowPortZero ? 0 : 1) else { return nil }

        let host: Substring
        if hostPart.hasPrefix("[") {
            guard hostPart.hasSuffix("]"), hostPart.count > 2 else { return nil }
            host = hostPart.dropFirst().dropLast()
            // Zone ids (`fe80::1%eth0`) may carry interface names, hence letters beyond hex.
            guard host.contains(":"),
                  host.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0.isLetter || $0.isNumber || ":.%".contains($0)) })
            else { return nil }
        } else {
            host = hostPart
            guard !host.isEmpty, host.allSatisfy(isHostNameCharacter) else { return nil }
        }
        return HostPort(host: String(host), port: port)
    }

    /// The host is an IP address (IPv4 digits and dots, or IPv6), not a name: it cannot be sent
    /// as TLS SNI, nor checked against a DNS name.
    public var hostIsIPAddress: Bool {
        host.contains(":") || host.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
    }

    static func isHostNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "." || c == "_")
    }
}
