import CFuzzDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The entry point libFuzzer's callback runs (a C callback cannot capture it).
nonisolated(unsafe) private var entryPoint: ((UnsafeRawBufferPointer) -> Void)?

/// Hands the process over to libFuzzer's driver, which runs `body` on every input, and exits with its status.
///
/// SwiftPM renames an executable target's entry point (to `<module>_main`, so that tests can link the
/// executable), which leaves libFuzzer's own `main` unused: swift-nio-http2's `-parse-as-library` targets do not
/// link here for that reason. Instead each target's `main.swift` calls this function, which calls
/// `LLVMFuzzerRunDriver` with the command line, as libFuzzer's `main` would.
public func fuzz(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    entryPoint = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        entryPoint!(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    exit(status)
}

/// libFuzzer's `main` is linked all the same (and needs this symbol), though the renamed entry point replaces it:
/// both run the same entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    entryPoint?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
