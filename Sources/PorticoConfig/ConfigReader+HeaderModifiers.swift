import Yams

extension ConfigReader {
    /// Which message a header modifier edits: the names each may not touch differ.
    enum HeaderModifierSide {
        case request
        case response
    }

    /// `requestHeaders:` / `responseHeaders: { set: { NAME: VALUE }, add: { NAME: VALUE }, remove: [NAME] }`.
    func headerModifier(_ node: Node, key: String, side: HeaderModifierSide) -> HeaderModifierConfig? {
        // Counted before the keys are read: a misspelt key is reported once, not again as "changes nothing".
        let errorsBefore = diagnostics.count
        guard let fields = fields(node, key: key, allowed: ["set", "add", "remove"]) else { return nil }
        var config = HeaderModifierConfig()
        // Where each name was first given: a name in two places (`set` and `remove`, or `X-A`
        // and `x-a` in one map) has no single meaning, so it is refused rather than ordered.
        var seen: [String: String] = [:]
        func claim(_ name: String, at node: Node, key: String) -> Bool {
            if let first = seen[name] {
                error("'\(name)' is already edited at \(first); a header goes in one of set, add and remove, once",
                      at: node, key: key)
                return false
            }
            seen[name] = key
            return true
        }
        for listKey in ["set", "add"] {
            guard let listNode = fields[listKey],
                  let entries = namedEntries(listNode, key: fields.path(listKey), what: "headers") else { continue }
            for entry in entries {
                let entryKey = Self.path(fields.path(listKey), entry.name)
                guard let name = editableHeaderName(entry.name, at: entry.key, key: entryKey, side: side),
                      let value = fieldValue(entry.value, key: entryKey),
                      claim(name, at: entry.key, key: entryKey) else { continue }
                let header = HeaderModifierConfig.Header(name: name, value: value)
                if listKey == "set" { config.set.append(header) } else { config.add.append(header) }
            }
        }
        if let removeNode = fields["remove"], let items = sequence(removeNode, key: fields.path("remove"), of: "header names") {
            for (index, item) in items.enumerated() {
                let itemKey = Self.path(fields.path("remove"), index: index)
                guard let text = string(item, key: itemKey, what: "a header name"),
                      let name = editableHeaderName(text, at: item, key: itemKey, side: side),
                      claim(name, at: item, key: itemKey) else { continue }
                config.remove.append(name)
            }
        }
        guard diagnostics.count == errorsBefore else { return nil }
        if config.isEmpty {
            error("say what changes with 'set', 'add' or 'remove'", at: node, key: key)
            return nil
        }
        return config
    }

    /// A header name a route may edit, lower-cased; nil (reported) for anything else.
    private func editableHeaderName(_ text: String, at node: Node, key: String, side: HeaderModifierSide) -> String? {
        if text.hasPrefix(":") {
            error("'\(text)' is an HTTP/2 pseudo-header; Portico sets those itself and they cannot be edited", at: node, key: key)
            return nil
        }
        guard !text.isEmpty, text.utf8.allSatisfy(HTTPToken.isTokenByte) else {
            error("expected a header name such as x-env (letters, digits and !#$%&'*+-.^_`|~), got '\(text)'", at: node, key: key)
            return nil
        }
        let name = text.lowercased()
        if let reason = Self.headerEditRefusal(name, side: side) {
            error("'\(name)' cannot be edited: \(reason)", at: node, key: key)
            return nil
        }
        return name
    }

    /// Why a route may not edit `name`, or nil when it may. These are the headers the proxy
    /// itself owns: editing them would desynchronize the message's framing or one hop's
    /// connection, which is how request smuggling and stuck connections start.
    static func headerEditRefusal(_ name: String, side: HeaderModifierSide) -> String? {
        switch name {
        case "content-length", "transfer-encoding":
            return "it frames the message's body, and Portico frames each message itself"
        case "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate",
             "proxy-authorization", "http2-settings":
            return "it is hop-by-hop: it describes one connection, and Portico sets or removes it on each"
        case "host" where side == .request:
            // Envoy refuses `host` in request_headers_to_add for the same reason and offers
            // host_rewrite_literal; the Gateway API's URLRewrite filter is the hostname's place.
            return "routing and the backend read it; change it with the route's 'rewrite: { host: ... }'"
        case "expect" where side == .request:
            return "Portico answers '100-continue' itself, and the backend must not answer it again"
        default:
            return nil
        }
    }

    /// A field value as RFC 9110 5.5 allows: visible characters, spaces and tabs inside, and
    /// no control characters (a CR or LF would end the field and start another: header
    /// injection); no leading or trailing whitespace, which a receiver strips anyway.
    private func fieldValue(_ node: Node, key: String) -> String? {
        guard let value = string(node, key: key, what: "a header value") else { return nil }
        let bytes = value.utf8
        if let bad = bytes.first(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            let what: String
            switch bad {
            case 0x0D: what = "a carriage return (CR)"
            case 0x0A: what = "a line feed (LF)"
            case 0x00: what = "a NUL byte"
            default: what = "a control character"
            }
            error("a header value may not hold \(what)", at: node, key: key)
            return nil
        }
        if let first = bytes.first, let last = bytes.last,
           first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 {
            error("a header value may not start or end with whitespace, got '\(value)'", at: node, key: key)
            return nil
        }
        return value
    }
}
