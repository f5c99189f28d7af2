import PorticoConfig

extension FaultLayer: ExplainableLayer {
    /// What the fault would inject; no draw is made, so a share below 100% reads `maybe`.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        var config: [String: Explanation.Value] = [:]
        var parts: [String] = []
        if let abort = fault.abort {
            config["abortPercent"] = .double(abort.percent)
            config["abortStatus"] = .int(abort.status)
            parts.append("\(Explanation.number(abort.percent))% answered \(abort.status) at once")
        }
        if let delay = fault.delay {
            config["delayPercent"] = .double(delay.percent)
            config["delay"] = .duration(delay.duration)
            parts.append("\(Explanation.number(delay.percent))% delayed \(delay.duration)")
        }
        let reason = parts.joined(separator: "; ")
        if let abort = fault.abort, abort.percent >= 100 {
            return Explanation.Layer(layer: "fault", config: config, decision: "reject", status: abort.status, reason: reason)
        }
        if let delay = fault.delay, delay.percent >= 100, (fault.abort?.percent ?? 0) <= 0 {
            return Explanation.Layer(layer: "fault", config: config, decision: "delay", reason: reason)
        }
        let drawn = (fault.abort?.percent ?? 0) > 0 || (fault.delay?.percent ?? 0) > 0
        return Explanation.Layer(layer: "fault", config: config, decision: drawn ? "maybe" : "proceed",
                                 reason: reason + (drawn ? " (drawn per request)" : ""))
    }
}
