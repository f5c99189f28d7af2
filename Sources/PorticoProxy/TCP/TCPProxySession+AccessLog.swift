import NIOCore

extension TCPProxySession {
    /// One JSON line when the connection has ended, in the access log's format for requests
    /// (`AccessLogLayer`), with `"protocol": "tcp"`, the server name and how it ended.
    func writeAccessLog() {
        guard let accessLog = loop.accessLog else { return }
        let end = machine.end ?? .clientClosed
        let upstreamAddress = endpointIndex.flatMap { index in serviceEntry?.endpoints[index].description } ?? "-"
        let elapsed = NIODeadline.now() - started
        accessLog.append { buffer in
            buffer.writeStaticString("{\"time_unix_ms\":")
            buffer.writeDecimal(Int(AccessClock.unixMilliseconds()))
            buffer.writeStaticString(",\"listener\":")
            buffer.writeJSONString(listener.name)
            buffer.writeStaticString(",\"client\":")
            buffer.writeJSONString(clientAddress)
            buffer.writeStaticString(",\"protocol\":\"tcp\",\"server_name\":")
            buffer.writeJSONString(serverName ?? "-")
            buffer.writeStaticString(",\"backend\":")
            buffer.writeJSONString(service?.name ?? "-")
            buffer.writeStaticString(",\"upstream\":")
            buffer.writeJSONString(upstreamAddress)
            buffer.writeStaticString(",\"bytes_in\":")
            buffer.writeDecimal(bytesIn)
            buffer.writeStaticString(",\"bytes_out\":")
            buffer.writeDecimal(bytesOut)
            buffer.writeStaticString(",\"duration_us\":")
            buffer.writeDecimal(Int(elapsed.nanoseconds / 1000))
            buffer.writeStaticString(",\"end\":")
            buffer.writeJSONString(end.rawValue)
            buffer.writeStaticString("}")
        }
    }
}
