// The libFuzzer target of Portico's HTTP/1 codec: it feeds the fuzzer's bytes to the request
// and response parsers in several splits and stops the process when an invariant breaks
// (`HTTP1FuzzCheck`).
//
// Built for fuzzing (`.ci/run` does this):
//   swift build --product PorticoHTTP1Fuzz --scratch-path .build/fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -DPORTICO_LIBFUZZER
//   .build/fuzz/debug/PorticoHTTP1Fuzz -max_total_time=60 NEW_INPUTS_DIR Tests/PorticoHTTP1Fuzz/Corpus
// Built plainly (as `swift build` does), it replays the files named on its command line, so a
// crash file can be checked without the fuzzer.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func porticoHTTP1FuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    HTTP1FuzzCheck.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if PORTICO_LIBFUZZER
/// libFuzzer's driver, `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t))`.
/// Declared here rather than in a C module: its arguments are three pointers, passed alike by
/// the Swift and C conventions.
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

/// The entry point. SwiftPM links an executable's `main` to this, so libFuzzer's own `main`
/// never runs: with libFuzzer this starts its driver, without it replays files.
@main
enum HTTP1FuzzMain {
    static func main() {
        #if PORTICO_LIBFUZZER
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(llvmFuzzerRunDriver(&argc, &argv) { data, size in porticoHTTP1FuzzOneInput(data, size) })
        #else
        HTTP1FuzzCheck.replay(paths: Array(CommandLine.arguments.dropFirst()))
        #endif
    }
}
