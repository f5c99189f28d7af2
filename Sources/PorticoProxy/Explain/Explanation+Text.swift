import Foundation

extension Explanation {
    /// The JSON of `--json` and `POST /explain`: sorted keys, no `\/` escapes.
    public func encodedJSON() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// The human-readable form `portico explain` prints.
    public func renderText() -> String {
        var out: [String] = []
        out.append("\(request.method) \(request.url)")
        var where_ = "  listener \(request.listener) (\(request.scheme)), host \(request.host.isEmpty ? "(none)" : request.host), target \(request.target)"
        if let principal = request.clientPrincipal { where_ += ", client certificate \(principal)" }
        out.append(where_)

        if let refused = edge.first(where: { !$0.passed }) {
            out.append("")
            out.append("edge: refused by the \(refused.check) check: \(refused.reason ?? "")")
            out.append("")
            out.append(resultLine)
            return finish(out)
        }
        if let normalizedPath {
            out.append("")
            out.append("normalized path: \(normalizedPath)" + (query.map { "   query: \($0)" } ?? ""))
        }

        out.append("")
        out.append("routes (in order; the first match wins):")
        let nameWidth = routes.map(\.name.count).max() ?? 0
        let whereWidth = routes.map { "\($0.file):\($0.line)".count }.max() ?? 0
        for step in routes {
            let location = "\(step.file):\(step.line)"
            var line = "  \(step.index)  " + step.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + "  " + location.padding(toLength: whereWidth, withPad: " ", startingAt: 0) + "  "
            switch step.outcome {
            case "matched":
                line += "MATCHED (\(step.match))"
            case "failed":
                line += "no: \(step.reason ?? step.failedCondition ?? "")"
            default:
                if step.wouldMatch == true, let route {
                    line += "not reached: it would match too, but \(route.name) (line \(route.line)) comes first"
                } else {
                    line += "not reached"
                }
            }
            if let by = step.shadowedBy {
                line += "; never matches anything: \(by.name) (line \(by.line)) takes every request it would"
            }
            out.append(line)
        }
        out.append("")
        guard let route else {
            out.append("no route: 404")
            return finish(out)
        }
        out.append("route: \(route.name) (\(route.file):\(route.line))")

        out.append("")
        out.append("layers (in the order they run):")
        let layerWidth = layers.map(\.layer.count).max() ?? 0
        for (number, layer) in layers.enumerated() {
            var decision = layer.decision + (layer.status.map { " \($0)" } ?? "")
            if !layer.reached { decision = "(not reached)" }
            var line = "  \(number + 1). " + layer.layer.padding(toLength: layerWidth, withPad: " ", startingAt: 0)
                + "  " + decision
            if let reason = layer.reason { line += ": " + reason }
            out.append(line)
            if !layer.config.isEmpty && layer.policies == nil {
                out.append("       " + Self.settings(layer.config))
            }
            for policy in layer.policies ?? [] {
                var text = "       policy \(policy.name)" + (policy.line.map { " (line \($0))" } ?? "") + ": \(policy.result)"
                if let reason = policy.reason { text += " - " + reason }
                out.append(text)
                if let token = policy.token, token.state == "valid" {
                    out.append("         subject \(token.subject ?? "-"), issuer \(token.issuer ?? "-")")
                    if let claims = token.claims, let data = try? Self.claimsEncoder.encode(claims) {
                        out.append("         claims " + String(decoding: data, as: UTF8.self))
                    }
                }
                if !policy.config.isEmpty { out.append("         " + Self.settings(policy.config)) }
            }
        }

        if let redirect {
            out.append("")
            out.append("redirect: \(redirect.status) to \(redirect.location)")
        }
        if let direct = directResponse {
            out.append("")
            out.append("direct response: \(direct.status), \(direct.contentType), \(direct.bodyBytes) bytes")
        }
        if let rewrite {
            out.append("")
            var line = "upstream path: \(rewrite.upstreamPath)"
            if let prefix = rewrite.prefix { line += " (rewrite.prefix \(prefix))" }
            if let host = rewrite.host { line += ", Host: \(host) (rewrite.host)" }
            out.append(line)
        }
        if let backend {
            out.append("")
            out.append("backend: \(backend.kind)")
            if let split = backend.split {
                out.append("  sides: " + split.sides.map { "\($0.backend) weight \($0.weight) (\(Explanation.number($0.percent))%)" }
                    .joined(separator: ", "))
                out.append("  " + (split.chosen.map { "this request gets \($0): " } ?? "") + split.reason)
            }
            for target in backend.targets {
                guard target.exists else {
                    out.append("  \(target.kind) \(target.name): not there (503)")
                    continue
                }
                if let service = target.service {
                    out.append("  service \(target.name): \(service.loadBalancer), \(service.protocol)\(service.tls ? " over TLS" : ""), connect timeout \(service.connectTimeout)")
                    for endpoint in service.endpoints {
                        var states: [String] = []
                        if let healthy = endpoint.healthy { states.append(healthy ? "healthy" : "unhealthy") }
                        if let ejected = endpoint.ejected { states.append(ejected ? "ejected" : "not ejected") }
                        out.append("    \(endpoint.address)" + (states.isEmpty ? "" : " (" + states.joined(separator: ", ") + ")"))
                    }
                    out.append("    chosen: \(service.choice)")
                }
                if let function = target.function {
                    var line = "  function \(target.name)"
                    if let revision = function.revision { line += ", revision \(revision)" }
                    if let mode = function.mode { line += ", \(mode) mode" }
                    if let workers = function.workers { line += ", \(workers) workers (\(function.warmWorkers ?? 0) ready)" }
                    out.append(line)
                    out.append("    chosen: \(function.choice)")
                }
            }
        }
        if let exchange {
            out.append("")
            var parts = ["timeout \(exchange.timeout)" + (exchange.grpcTimeout.map { " (the client's grpc-timeout \($0), sooner than the route's)" } ?? "")]
            if let retries = exchange.retries {
                parts.append("retries \(retries.attempts) on \(retries.retryOn.joined(separator: ","))"
                    + (retries.perTryTimeout.map { ", per try \($0)" } ?? ""))
            } else {
                parts.append("no retries")
            }
            for budget in exchange.retryBudgets ?? [] {
                parts.append("retry budget of \(budget.service): \(budget.percent)% + \(budget.minRetriesPerSecond)/s over \(budget.interval)"
                    + (budget.minRetries > 0 ? " + \(budget.minRetries)" : ""))
            }
            if let mirror = exchange.mirror {
                parts.append("mirror \(Explanation.number(mirror.percent))% to \(mirror.service)")
            }
            out.append("exchange: " + parts.joined(separator: "; "))
        }
        out.append("")
        out.append(resultLine)
        return finish(out)
    }

    private var resultLine: String {
        switch result.action {
        case "forward": return "result: forwarded (\(result.reason)); nothing was sent"
        default:
            return "result: \(result.status.map(String.init) ?? "-") from \(result.by): \(result.reason)"
        }
    }

    private func finish(_ lines: [String]) -> String {
        var lines = lines
        if !notes.isEmpty {
            lines.append("")
            lines.append(contentsOf: notes.map { "note: " + $0 })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func settings(_ config: [String: Value]) -> String {
        config.keys.sorted().map { "\($0)=\(config[$0]!)" }.joined(separator: " ")
    }

    private static var claimsEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
