import NIOCore
import PorticoCore

/// A tap's end of the stream, on the admin connection's loop: writes the batches the loops
/// hand over while the client keeps up, drops them when it does not.
final class TapConnection {
    let stream: AdminEventStream
    let hub: TapHub
    var id = 0
    private var delivery = TapDelivery()

    init(stream: AdminEventStream, hub: TapHub) {
        self.stream = stream
        self.hub = hub
    }

    func receive(_ batch: ByteBuffer, lines: Int, dropped: Int) {
        guard !stream.isStopped else { return }
        switch delivery.batchArrived(lines: lines, droppedOnLoop: dropped, writable: stream.isWritable) {
        case .drop:
            break
        case .write(let droppedBefore):
            if let droppedBefore {
                // An event of its own, so a client reading `data:` lines as requests skips it.
                stream.write("event: dropped\ndata: {\"dropped\":\(droppedBefore),\"total_dropped\":\(delivery.dropped)}\n\n")
            }
            stream.write(batch)
        }
        hub.account(id, delivered: delivery.delivered, dropped: delivery.dropped)
    }
}
