/// An h2c upstream written with Python's `h2` package that breaks the rules on purpose, by path:
/// - `/reset`: RST_STREAM INTERNAL_ERROR instead of an answer;
/// - `/refuse-once`: REFUSED_STREAM the first time, then `200 again`;
/// - `/goaway`: on the first connection, holds the first stream until a second one arrives,
///   then sends GOAWAY naming the first as the last it takes, and answers only the first; later
///   connections answer at once (`200 fresh`);
/// - `/upload`: answers once the request ends: `200 bytes=N trailers=NAME:VALUE,...` (what
///   arrived of the body and its trailers);
/// - `/hang`: never answered;
/// - `/short-body` and `/long-body`: `content-length: 10` over 5 bytes, `content-length: 2` over 5;
/// - `/upper-name` and `/connection-field`: a field HTTP/2 forbids (`X-Upper`, `connection`);
/// - `/head-length`: `content-length: 100` and no body, as the answer to a HEAD has;
/// Anything else: `200 ok` with the trailer `x-checksum: abc`.
/// `python3 -c script MARKER PORT [stall]`; with `stall`, streams get a window of 100 bytes
/// (SETTINGS) that is never opened again, and no request is answered. Prints `ready`, then
/// `connection N` and `stream PATH` lines.
enum MisbehavingHTTP2Server {
    static let script = #"""
        import socket, struct, sys, threading
        import h2.config, h2.connection, h2.events, h2.errors, h2.settings
        port = int(sys.argv[2])
        stalls = len(sys.argv) > 3 and sys.argv[3] == "stall"
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        counter = {"connections": 0, "refused": 0}
        lock = threading.Lock()
        print("ready", flush=True)

        def serve(sock, number):
            # Unchecked and as written: some answers break the rules on purpose.
            config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                               validate_outbound_headers=False, normalize_outbound_headers=False)
            connection = h2.connection.H2Connection(config=config)
            connection.initiate_connection()
            if stalls:
                connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
            held = []
            uploads = {}
            sock.sendall(connection.data_to_send())
            def answer(stream_id, body, trailers=None):
                connection.send_headers(stream_id, [(":status", "200"), ("content-length", str(len(body)))] if trailers is None
                                        else [(":status", "200")])
                connection.send_data(stream_id, body, end_stream=trailers is None)
                if trailers is not None:
                    connection.send_headers(stream_id, trailers, end_stream=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                try:
                    events = connection.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        path = dict(event.headers)[":path"]
                        print("stream " + path, flush=True)
                        if stalls:
                            pass
                        elif path == "/reset":
                            connection.reset_stream(event.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                        elif path == "/refuse-once":
                            with lock:
                                counter["refused"] += 1
                                first = counter["refused"] == 1
                            if first:
                                connection.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                            else:
                                answer(event.stream_id, b"again")
                        elif path == "/hang":
                            pass
                        elif path in ("/short-body", "/long-body"):
                            declared = "10" if path == "/short-body" else "2"
                            connection.send_headers(event.stream_id, [(":status", "200"), ("content-length", declared)])
                            connection.send_data(event.stream_id, b"12345", end_stream=True)
                        elif path in ("/upper-name", "/connection-field"):
                            field = ("X-Upper", "1") if path == "/upper-name" else ("connection", "close")
                            connection.send_headers(event.stream_id, [(":status", "200"), field, ("content-length", "2")])
                            connection.send_data(event.stream_id, b"ok", end_stream=True)
                        elif path == "/head-length":
                            connection.send_headers(event.stream_id, [(":status", "200"), ("content-length", "100")],
                                                    end_stream=True)
                        elif path == "/upload":
                            uploads[event.stream_id] = {"bytes": 0, "trailers": []}
                        elif path == "/goaway" and number == 1:
                            held.append(event.stream_id)
                            if len(held) == 2:
                                # GOAWAY by hand, ahead of the first stream's answer: h2's own
                                # close_connection would refuse to send anything after it.
                                sock.sendall(connection.data_to_send() + struct.pack(">I", 8)[1:] + bytes([7, 0])
                                             + struct.pack(">III", 0, held[0], 0))
                                answer(held[0], b"first")
                        elif path == "/goaway":
                            answer(event.stream_id, b"fresh")
                        else:
                            answer(event.stream_id, b"ok", trailers=[("x-checksum", "abc")])
                    elif isinstance(event, h2.events.DataReceived) and not stalls:
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        if event.stream_id in uploads:
                            uploads[event.stream_id]["bytes"] += len(event.data)
                    elif isinstance(event, h2.events.TrailersReceived) and event.stream_id in uploads:
                        uploads[event.stream_id]["trailers"] = ["%s:%s" % pair for pair in event.headers]
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id in uploads:
                        upload = uploads.pop(event.stream_id)
                        answer(event.stream_id, ("bytes=%d trailers=%s" % (upload["bytes"], ",".join(upload["trailers"]))).encode())
                sock.sendall(connection.data_to_send())

        def accept():
            while True:
                sock, _ = listener.accept()
                with lock:
                    counter["connections"] += 1
                    number = counter["connections"]
                print("connection %d" % number, flush=True)
                threading.Thread(target=serve, args=(sock, number), daemon=True).start()
        accept()
        """#
}
