// The libFuzzer target of Portico's HTTP/1 codec: it feeds the fuzzer's bytes to the request
// and response parsers in several splits and stops the process when an invariant breaks
// (`HTTP1FuzzCheck`).
//
// Built for fuzzing, with libFuzzer's own `main`:
//   swift build --product PorticoHTTP1Fuzz --scratch-path .build/fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DPORTICO_LIBFUZZER
//   .build/fuzz/debug/PorticoHTTP1Fuzz Tests/PorticoHTTP1Fuzz/Corpus -max_total_time=60
// Built plainly (as `swift build` does), it replays the files named on its command line, so a
// crash file can be checked without the fuzzer.

@_cdecl("LLVMFuzzerTestOneInput")
public func porticoHTTP1FuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    HTTP1FuzzCheck.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if !PORTICO_LIBFUZZER
HTTP1FuzzCheck.replay(paths: Array(CommandLine.arguments.dropFirst()))
#endif
