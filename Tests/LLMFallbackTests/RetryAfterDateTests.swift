import Foundation
import NIOHTTP1
import Testing

@testable import LLMFallback

/// A `Retry-After` that is not a number is tried as an HTTP-date (RFC 9110: ASCII only).
@Suite struct RetryAfterDateTests {
    /// Found by FuzzAnthropicError (LeakSanitizer): Foundation's `DateFormatter.date(from:)` on Linux leaks 128
    /// bytes per call on a string with a character outside the Basic Multilingual Plane, and the classifier tried
    /// three formats, so every error response with `Retry-After: x😀` kept 384 bytes of the process for good
    /// (RSS +1.5 MB per 3,000 responses in a release build). Run in a child process, so that no other test's
    /// allocations blur the count.
    @Test func aRetryAfterOutsideASCIIIsNeverParsedAsADateAndLeaksNothing() async {
        await #expect(processExitsWith: .success) {
            let headers = HTTPHeaders([("retry-after", "x\u{1F600}"), ("content-type", "text/html")])
            precondition(ErrorClassifier.retryAfter(from: headers) == nil)
            let before = HeapBytes.now()
            for _ in 0..<30_000 { precondition(ErrorClassifier.retryAfter(from: headers) == nil) }
            let grown = HeapBytes.now() - before
            // The leak was 11,520,000 bytes of heap (30,000 x 384); a debug build's RSS moves by far less alone.
            precondition(grown < 4 << 20, "the heap grew by \(grown) bytes over 30,000 classifications")
        }
    }

    @Test func anHTTPDateIsStillRead() {
        let now = Date(timeIntervalSince1970: 1_445_412_470)  // 10 s before Wed, 21 Oct 2015 07:28:00 GMT
        for value in ["Wed, 21 Oct 2015 07:28:00 GMT", "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015"] {
            #expect(ErrorClassifier.retryAfter(from: HTTPHeaders([("retry-after", value)]), now: now) == .seconds(10), "\(value)")
        }
        for value in ["Wed, 21 Oct 2015 07:28:00 GMT\u{1F600}", "Wéd, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015\t07:28:00 GMT"] {
            #expect(ErrorClassifier.retryAfter(from: HTTPHeaders([("retry-after", value)]), now: now) == nil, "\(value)")
        }
    }
}

/// The bytes the process holds: the sanitizer allocator's live heap bytes when a sanitizer's runtime is in the
/// process (its quarantine keeps freed memory resident), the resident set size otherwise.
private enum HeapBytes {
    typealias Counter = @convention(c) () -> Int

    static func now() -> Int {
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__sanitizer_get_current_allocated_bytes") {
            return unsafeBitCast(symbol, to: Counter.self)()
        }
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
