/// The comparison rules the differential tests share.
enum Differential {
    /// The first message where Portico handed out something the oracle did not hand out the
    /// same way: a head, body bytes, an end or trailers.
    static func disagreement(_ portico: [ParsedMessage], _ oracle: [ParsedMessage]) -> (index: Int, reason: String)? {
        for (index, message) in portico.enumerated() {
            guard index < oracle.count else { return (index, "Portico parsed message \(index), llhttp did not") }
            let other = oracle[index]
            guard message.startLine == other.startLine, message.fields == other.fields else {
                return (index, "message \(index) differs: \(message) vs \(other)")
            }
            guard other.body.starts(with: message.body) else {
                return (index, "message \(index): Portico handed out body bytes llhttp did not")
            }
            if message.ended {
                guard other.ended, other.body == message.body, message.trailers == other.trailers else {
                    return (index, "message \(index): Portico ended it, llhttp did not end it the same way")
                }
            }
        }
        return nil
    }

    /// `bytes` cut into pieces as long as those of `feeding`.
    static func cut(_ bytes: [UInt8], like feeding: [[UInt8]]) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0
        for piece in feeding {
            pieces.append(Array(bytes[start..<start + piece.count]))
            start += piece.count
        }
        return pieces
    }

    /// `input` with every HTAB that ends a `Content-Length` or `Transfer-Encoding` line made a
    /// space, or nil if there is none.
    static func spacesForTabsInFramingFields(_ input: [UInt8]) -> [UInt8]? {
        var result = input
        var changed = false
        var lineStart = 0
        for index in input.indices where input[index] == UInt8(ascii: "\n") {
            let line = String(decoding: input[lineStart..<index], as: UTF8.self).lowercased()
            if line.hasPrefix("content-length:") || line.hasPrefix("transfer-encoding:") {
                var end = index - 1
                while end > lineStart, input[end - 1] == UInt8(ascii: "\t") || input[end - 1] == UInt8(ascii: " ") {
                    if input[end - 1] == UInt8(ascii: "\t") {
                        result[end - 1] = UInt8(ascii: " ")
                        changed = true
                    }
                    end -= 1
                }
            }
            lineStart = index + 1
        }
        return changed ? result : nil
    }
}
