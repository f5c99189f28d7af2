import Foundation

/// A peer on 127.0.0.1 that accepts connections and never says a word (for 30 s): a stalled
/// upstream, a shadow that never answers, a TLS server that never finishes a handshake.
enum SilentPeer {
    /// Starts it on `port` and returns once it listens; the caller terminates it. (A fixed
    /// moment to start can be too short on a slow machine: the test then meets a refused
    /// connection, another failure than the one it meant.)
    static func start(port: Int) throws -> Process {
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        peer.arguments = ["-c", "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', \(port)))\ns.listen(64)\ntime.sleep(30)"]
        try peer.run()
        guard eventually({ (try? RawSocket(port: port, timeout: 1)) != nil }) else {
            peer.terminate()
            throw HarnessError.socket("the silent peer never listened on \(port)")
        }
        return peer
    }
}
