import Yams

extension ConfigReader {
    /// `listeners:` — at least one (unless `required` is false: a config with `tcp:`
    /// listeners may have no HTTP one), unique names, unique addresses.
    ///
    /// Port 0 ("pick a free port") is allowed because tests start gateways on ephemeral ports;
    /// two listeners on port 0 of the same host do not clash, so they are not duplicates.
    func listeners(in top: Fields, policies: [PolicyConfig] = [], required: Bool = true) -> [ListenerConfig] {
        guard let node = top["listeners"] else {
            guard required else { return [] }
            requireKey("listeners", in: top, message: "at least one listener is required")
            return []
        }
        guard let items = sequence(node, key: "listeners", of: "listeners") else { return [] }
        guard !items.isEmpty || !required else {
            error("at least one listener is required", at: node, key: "listeners")
            return []
        }

        var result: [ListenerConfig] = []
        var namesSeen: [String: String] = [:]
        var addressesSeen: [HostPort: String] = [:]
        for (index, item) in items.enumerated() {
            let path = Self.path("listeners", index: index)
            guard let fields = fields(item, key: path, allowed: ["name", "address", "tls", "policies", "headersWithUnderscores"]) else { continue }

            var name = "listener-\(index)"
            if let nameNode = fields["name"], let given = string(nameNode, key: fields.path("name")) {
                name = given
                if let first = namesSeen[given] {
                    error("listener name '\(given)' is already used by \(first)", at: nameNode, key: fields.path("name"))
                }
            }
            namesSeen[name] = namesSeen[name] ?? path

            let address = listenerAddress(fields, owner: "listener '\(name)'", seen: &addressesSeen)

            let tls = fields["tls"].flatMap { listenerTLS($0, key: fields.path("tls")) }
            let policyNames = fields["policies"].map { self.policyNames($0, key: fields.path("policies"), known: policies) } ?? []
            var underscores = UnderscoreHeaderAction.drop
            if let underscoresNode = fields["headersWithUnderscores"] {
                underscores = choice(underscoresNode, key: fields.path("headersWithUnderscores"),
                                     [("drop", .drop), ("reject", .reject), ("allow", .allow)]) ?? .drop
            }
            if let address {
                result.append(ListenerConfig(name: name, address: address, tls: tls, policies: policyNames,
                                             headersWithUnderscores: underscores))
            }
        }
        return result
    }

    /// `tls:` needs both files, or a `certificates:` list whose first entry then serves clients
    /// that name none of the list's names. Whether the files exist is not checked here: the
    /// gateway creates a development certificate at the default paths when both are missing,
    /// and a config check that touched the disk would also make `portico check` depend on the
    /// working directory.
    private func listenerTLS(_ node: Node, key: String) -> ListenerTLSConfig? {
        let allowed = ["certificate", "key", "certificates", "clientCA", "mode", "cipherSuites"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        let certificates = fields["certificates"].flatMap { listenerCertificates($0, key: fields.path("certificates")) }
        let singleFormOptional = fields["certificates"] != nil && fields["certificate"] == nil && fields["key"] == nil
        var paths: [String: String] = [:]
        for name in ["certificate", "key", "clientCA"] {
            guard let valueNode = fields[name] else {
                if name != "clientCA" && !singleFormOptional {
                    requireKey(name, in: fields, message: "tls needs both 'certificate' and 'key'; '\(name)' is missing")
                }
                continue
            }
            paths[name] = filePath(valueNode, key: fields.path(name))
        }
        var mode = ListenerTLSConfig.ClientCertificateMode.strict
        if let modeNode = fields["mode"] {
            mode = choice(modeNode, key: fields.path("mode"), [("strict", .strict), ("permissive", .permissive)]) ?? .strict
            if paths["clientCA"] == nil && fields["clientCA"] == nil {
                error("'mode' is about client certificates; it needs 'clientCA'", at: modeNode, key: fields.path("mode"))
            }
        }
        var cipherSuites = TLSCipherSuites.defaultOrder
        if let suitesNode = fields["cipherSuites"] {
            cipherSuites = self.cipherSuites(suitesNode, key: fields.path("cipherSuites")) ?? cipherSuites
        }
        guard let certificate = paths["certificate"] ?? certificates?.first?.certificate,
              let privateKey = paths["key"] ?? certificates?.first?.key else { return nil }
        return ListenerTLSConfig(certificate: certificate, key: privateKey, clientCA: paths["clientCA"], mode: mode,
                                 cipherSuites: cipherSuites, sniCertificates: certificates ?? [])
    }

    private func filePath(_ node: Node, key: String) -> String? {
        guard let value = string(node, key: key, what: "a file path") else { return nil }
        guard !value.isEmpty else {
            error("expected a file path, got ''", at: node, key: key)
            return nil
        }
        return value
    }

    /// `certificates: [{ names: [...], certificate: FILE, key: FILE }, ...]`, each name once.
    private func listenerCertificates(_ node: Node, key: String) -> [ListenerCertificateConfig]? {
        guard let items = sequence(node, key: key, of: "{ names, certificate, key } entries") else { return nil }
        guard !items.isEmpty else {
            error("needs at least one { names, certificate, key } entry", at: node, key: key)
            return nil
        }
        let errorsBefore = diagnostics.count
        var seen: [String: String] = [:]
        var result: [ListenerCertificateConfig] = []
        for (index, item) in items.enumerated() {
            let path = Self.path(key, index: index)
            guard let fields = fields(item, key: path, allowed: ["names", "certificate", "key"]) else { continue }
            var values: [String: String] = [:]
            for name in ["certificate", "key"] {
                if let valueNode = fields[name] {
                    values[name] = filePath(valueNode, key: fields.path(name))
                } else {
                    requireKey(name, in: fields, message: "each certificate needs both 'certificate' and 'key'; '\(name)' is missing")
                }
            }
            var names: [String]?
            if let namesNode = fields["names"] {
                names = serverNames(namesNode, key: fields.path("names"), seen: &seen, owner: path)
            } else {
                requireKey("names", in: fields, message: "each certificate needs 'names': the server names it is shown for")
            }
            if let names, let certificate = values["certificate"], let privateKey = values["key"] {
                result.append(ListenerCertificateConfig(names: names, certificate: certificate, key: privateKey))
            }
        }
        return diagnostics.count == errorsBefore ? result : nil
    }

    /// `cipherSuites: [NAME, ...]`: known TLS 1.2 suites, each once, in preference order.
    private func cipherSuites(_ node: Node, key: String) -> [String]? {
        guard let items = sequence(node, key: key, of: "cipher suite names such as ECDHE-ECDSA-AES128-GCM-SHA256") else { return nil }
        guard !items.isEmpty else {
            error("needs at least one cipher suite; leave 'cipherSuites' out for the default", at: node, key: key)
            return nil
        }
        let errorsBefore = diagnostics.count
        var suites: [String] = []
        for (index, item) in items.enumerated() {
            let itemKey = Self.path(key, index: index)
            guard let name = string(item, key: itemKey, what: "a cipher suite name") else { continue }
            if TLSCipherSuites.tls13.contains(name) {
                error("'\(name)' is a TLS 1.3 suite; TLS 1.3 always offers its three AEAD suites, and this list is for TLS 1.2",
                      at: item, key: itemKey)
            } else if !TLSCipherSuites.supported.contains(name) {
                var message = "unknown TLS 1.2 cipher suite '\(name)'"
                if let suggestion = KeySuggestion.closest(to: name, among: TLSCipherSuites.supported) {
                    message += " (did you mean '\(suggestion)'?)"
                } else {
                    message += " (OpenSSL names such as \(TLSCipherSuites.defaultOrder[0]))"
                }
                error(message, at: item, key: itemKey)
            } else if suites.contains(name) {
                error("'\(name)' is listed twice", at: item, key: itemKey)
            } else {
                suites.append(name)
            }
        }
        return diagnostics.count == errorsBefore ? suites : nil
    }

    /// `admin:` — where `GET /config`, health and metrics are served; must not share a listener's port.
    func admin(_ node: Node, listeners: [ListenerConfig]) -> AdminConfig? {
        guard let fields = fields(node, key: "admin", allowed: ["address"]) else { return nil }
        guard let addressNode = fields["address"] else {
            requireKey("address", in: fields)
            return nil
        }
        guard let address = hostPort(addressNode, key: "admin.address", allowPortZero: true) else { return nil }
        if address.port != 0, let listener = listeners.first(where: { $0.address == address }) {
            error("address \(address) is already used by listener '\(listener.name)'", at: addressNode, key: "admin.address")
        }
        return AdminConfig(address: address)
    }

    /// A listener's `address` (port 0: any free one), which no other listener, tcp listener or
    /// the admin API may use; `seen` holds who took each address so far.
    func listenerAddress(_ fields: Fields, owner: String, seen: inout [HostPort: String]) -> HostPort? {
        guard let addressNode = fields["address"] else {
            requireKey("address", in: fields)
            return nil
        }
        let address = hostPort(addressNode, key: fields.path("address"), allowPortZero: true)
        if let address, address.port != 0 {
            if let first = seen[address] {
                error("address \(address) is already used by \(first)", at: addressNode, key: fields.path("address"))
            } else {
                seen[address] = owner
            }
        }
        return address
    }
}
