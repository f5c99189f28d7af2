/// A real gRPC stack on both sides of the gateway: Python's `grpcio`, with raw-bytes messages
/// (no protobuf code generation: the generic handlers take and give `bytes`).
enum GRPCPeers {
    /// `python3 -c server MARKER PORT [CERT KEY]`: service `test.Echo`, over TLS when a
    /// certificate is given. Prints `ready`, then one line per call it starts (`call NAME`).
    /// Without PORT (a function worker) it listens on `$PORT`.
    static let server = #"""
        import grpc, os, sys, threading
        from concurrent import futures
        port = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ["PORT"])
        calls = {}
        lock = threading.Lock()

        def note(name):
            with lock:
                calls[name] = calls.get(name, 0) + 1
                print("call " + name, flush=True)
                return calls[name]

        def echo(request, context):
            note("Echo")
            metadata = dict(context.invocation_metadata())
            if "x-fail" in metadata:
                context.abort(getattr(grpc.StatusCode, metadata["x-fail"]), "failed on purpose")
            context.set_trailing_metadata((("x-trailer", "yes"),))
            return request

        def flaky(request, context):
            # Fails the first call of each key with UNAVAILABLE, then answers.
            if note("Flaky:" + request.decode()) == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
            return b"ok " + request

        def count(request, context):
            note("Count")
            for index in range(int(request)):
                yield str(index).encode()

        def big(request, context):
            note("Big")
            chunk = bytes(range(256)) * 4096
            for _ in range(int(request)):
                yield chunk

        def total(requests, context):
            note("Total")
            size = 0
            for message in requests:
                size += len(message)
            return str(size).encode()

        def chat(requests, context):
            note("Chat")
            for message in requests:
                yield b"re: " + message

        def sleep(request, context):
            # Answers only when the call ends without it: the client's deadline or cancellation
            # (which writes the marker file), or 20 s at most.
            note("Sleep")
            ended, answered = threading.Event(), threading.Event()
            def finished():
                if not answered.is_set():
                    with open(request.decode(), "w") as marker:
                        marker.write("cancelled")
                ended.set()
            context.add_callback(finished)
            ended.wait(20)
            answered.set()
            return b"late"

        killed = threading.Event()

        def die(request, context):
            # The process exits mid-stream, once the client says it has the first message.
            note("Die")
            yield b"first"
            killed.wait(10)
            os._exit(3)

        def kill(request, context):
            killed.set()
            return b""

        handlers = grpc.method_handlers_generic_handler("test.Echo", {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Flaky": grpc.unary_unary_rpc_method_handler(flaky),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Big": grpc.unary_stream_rpc_method_handler(big),
            "Total": grpc.stream_unary_rpc_method_handler(total),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
            "Die": grpc.unary_stream_rpc_method_handler(die),
            "Kill": grpc.unary_unary_rpc_method_handler(kill),
        })
        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        server.add_generic_rpc_handlers((handlers,))
        if len(sys.argv) > 4:
            credentials = grpc.ssl_server_credentials([(open(sys.argv[4], "rb").read(), open(sys.argv[3], "rb").read())])
            server.add_secure_port("127.0.0.1:%d" % port, credentials)
        else:
            server.add_insecure_port("127.0.0.1:%d" % port)
        server.start()
        print("ready", flush=True)
        server.wait_for_termination()
        """#

    /// `python3 -c client TARGET SCENARIO [ARGUMENT...]`: runs one scenario against TARGET
    /// (`127.0.0.1:PORT`, or `localhost:PORT` over TLS when `GRPC_CA` names the CA file) and
    /// prints what it saw, one `key=value` line each; a failed call prints `code=STATUS_NAME`
    /// and `details=...`.
    static let client = #"""
        import grpc, hashlib, os, sys, time
        target, scenario = sys.argv[1], sys.argv[2]
        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20),
                   ("grpc.enable_retries", 0)]
        if os.environ.get("GRPC_CA"):
            credentials = grpc.ssl_channel_credentials(root_certificates=open(os.environ["GRPC_CA"], "rb").read())
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        same = lambda value: value
        def method(kind, name):
            return getattr(channel, kind)("/test.Echo/" + name, request_serializer=same, response_deserializer=same)

        def report_error(error):
            print("code=" + error.code().name)
            print("details=" + (error.details() or ""))

        try:
            if scenario == "unary":
                reply, call = method("unary_unary", "Echo").with_call(b"hello", timeout=10)
                print("reply=" + reply.decode())
                print("trailers=" + ",".join("%s:%s" % (m.key, m.value) for m in call.trailing_metadata()))
            elif scenario == "server-stream":
                print("replies=" + ",".join(r.decode() for r in method("unary_stream", "Count")(b"5", timeout=10)))
            elif scenario == "client-stream":
                chunks = [b"abc", b"de", bytes(10 << 20)]
                print("total=" + method("stream_unary", "Total")(iter(chunks), timeout=30).decode())
            elif scenario == "bidi":
                replies = method("stream_stream", "Chat")(iter([b"1", b"2", b"3"]), timeout=10)
                print("replies=" + ",".join(r.decode() for r in replies))
            elif scenario == "big-download":
                digest = hashlib.sha256()
                size = 0
                for message in method("unary_stream", "Big")(b"10", timeout=30):
                    digest.update(message)
                    size += len(message)
                print("size=%d" % size)
                print("sha256=" + digest.hexdigest())
            elif scenario == "fail":
                method("unary_unary", "Echo")(b"x", metadata=(("x-fail", sys.argv[3]),), timeout=10)
            elif scenario == "flaky":
                print("reply=" + method("unary_unary", "Flaky")(sys.argv[3].encode(), timeout=10).decode())
            elif scenario == "sleep":
                started = time.monotonic()
                try:
                    method("unary_unary", "Sleep")(sys.argv[3].encode(), timeout=float(sys.argv[4]))
                finally:
                    print("elapsed=%.3f" % (time.monotonic() - started))
            elif scenario == "die":
                replies = []
                try:
                    for reply in method("unary_stream", "Die")(b"", timeout=10):
                        replies.append(reply.decode())
                        if len(replies) == 1:
                            # Through the gateway too: the server exits while this call is open.
                            try:
                                method("unary_unary", "Kill")(b"", timeout=5)
                            except grpc.RpcError:
                                pass
                finally:
                    print("replies=" + ",".join(replies))
            elif scenario == "unknown-method":
                channel.unary_unary("/test.Nowhere/Nothing", request_serializer=same, response_deserializer=same)(b"x", timeout=10)
            print("code=OK")
        except grpc.RpcError as error:
            report_error(error)
        """#

    /// The `key=value` lines a client run printed.
    static func values(_ output: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }
}
