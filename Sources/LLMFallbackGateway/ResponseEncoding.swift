import Foundation
import LLMFallback
import NIOCore
import Synchronization

/// Makes OpenAI-style ids (`chatcmpl-...`) without a system call per request: a random per-process prefix and a
/// counter.
final class CompletionIDs: Sendable {
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    /// Creates ids `prefix` + 12 random characters + a counter: `chatcmpl-...`, Anthropic's `msg_...`, `req_...`.
    init(prefix: String = "chatcmpl-") {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        self.prefix = prefix + String((0..<12).map { _ in alphabet.randomElement(using: &generator)! })
    }

    func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + String(value, radix: 36)
    }
}

/// Seconds since 1970, as OpenAI's `created`.
@inline(__always)
func unixTime() -> Int {
    let seconds = Date().timeIntervalSince1970
    // Total: a clock set absurdly far away is reported as 0 rather than trapping.
    return seconds.isFinite && abs(seconds) < 1e15 ? Int(seconds) : 0
}

enum InfoEncoder {
    static func models(_ names: [String], created: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRaw(#"{"object":"list","data":["#)
        for (offset, name) in names.enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            model(name, created: created, into: &buffer)
        }
        buffer.writeRaw("]}")
        return buffer
    }

    /// The list in Anthropic's format (`GET /v1/models` from a client that sends `anthropic-version`).
    static func anthropicModels(_ names: [String], created: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRaw(#"{"data":["#)
        for (offset, name) in names.enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            anthropicModel(name, created: created, into: &buffer)
        }
        buffer.writeRaw(#"],"has_more":false,"first_id":"#)
        buffer.writeJSONString(orNull: names.first)
        buffer.writeRaw(#","last_id":"#)
        buffer.writeJSONString(orNull: names.last)
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    static func anthropicModel(_ name: String, created: Int, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"type":"model","id":"#)
        buffer.writeJSONString(name)
        buffer.writeRaw(#","display_name":"#)
        buffer.writeJSONString(name)
        buffer.writeRaw(#","created_at":"#)
        buffer.writeJSONString(rfc3339(created))
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// `2026-12-02T05:00:00Z` for seconds since 1970.
    static func rfc3339(_ seconds: Int) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        return date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    static func model(_ name: String, created: Int, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"id":"#)
        buffer.writeJSONString(name)
        buffer.writeRaw(#","object":"model","created":"#)
        buffer.writeJSONInt(created)
        buffer.writeRaw(#","owned_by":"llm-fallback"}"#)
    }

    /// `{"status":...,"chains":{"name":{"status":...,"providers":[...]}}}`: a chain is `ok` when every breaker is
    /// closed, `down` when every breaker is open, `degraded` otherwise.
    static func health(_ chains: [(name: String, report: [ProviderHealth])], redactor: Redactor) -> ByteBuffer {
        var buffer = ByteBuffer()
        var statuses: [String] = []
        var body = ByteBuffer()
        body.writeRaw(#","chains":{"#)
        for (offset, chain) in chains.enumerated() {
            if offset > 0 { body.writeInteger(UInt8(ascii: ",")) }
            let status = status(of: chain.report)
            statuses.append(status)
            body.writeJSONString(chain.name)
            body.writeRaw(#":{"status":"#)
            body.writeJSONString(status)
            body.writeRaw(#","providers":["#)
            for (index, provider) in chain.report.enumerated() {
                if index > 0 { body.writeInteger(UInt8(ascii: ",")) }
                write(provider, redactor: redactor, into: &body)
            }
            body.writeRaw("]}")
        }
        body.writeRaw("}}")
        let overall = statuses.allSatisfy { $0 == "ok" } ? "ok" : statuses.allSatisfy { $0 == "down" } ? "down" : "degraded"
        buffer.writeRaw(#"{"status":"#)
        buffer.writeJSONString(overall)
        buffer.writeBuffer(&body)
        return buffer
    }

    static func status(of report: [ProviderHealth]) -> String {
        if report.allSatisfy({ $0.state == .closed }) { return "ok" }
        if report.allSatisfy({ $0.state == .open }) { return "down" }
        return "degraded"
    }

    static func write(_ provider: ProviderHealth, redactor: Redactor, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"name":"#)
        buffer.writeJSONString(provider.name)
        buffer.writeRaw(#","kind":"#)
        buffer.writeJSONString(provider.kind)
        buffer.writeRaw(#","model":"#)
        buffer.writeJSONString(provider.model)
        buffer.writeRaw(#","state":"#)
        switch provider.state {
        case .closed: buffer.writeRaw(#""closed""#)
        case .open: buffer.writeRaw(#""open""#)
        case .halfOpen: buffer.writeRaw(#""half_open""#)
        }
        buffer.writeJSONField("consecutive_failures", int: provider.consecutiveFailures)
        buffer.writeRaw(#","reopens_in_ms":"#)
        writeMilliseconds(provider.reopensIn, into: &buffer)
        buffer.writeRaw(#","retry_after_ms":"#)
        writeMilliseconds(provider.retryAfterRemaining, into: &buffer)
        buffer.writeRaw(#","latency_ms":"#)
        if let latency = provider.latency {
            buffer.writeJSONDouble((Self.milliseconds(latency) * 1000).rounded() / 1000)
        } else {
            buffer.writeRaw("null")
        }
        buffer.writeJSONField("attempts", int: provider.attempts)
        buffer.writeJSONField("successes", int: provider.successes)
        buffer.writeJSONField("failures", int: provider.failures)
        buffer.writeRaw(#","failures_by_class":{"#)
        for (offset, entry) in provider.failuresByClass.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeJSONString(entry.key)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeJSONInt(entry.value)
        }
        buffer.writeRaw(#"},"share":"#)
        buffer.writeJSONDouble((provider.share * 10000).rounded() / 10000)
        buffer.writeRaw(#","last_error":"#)
        buffer.writeJSONString(orNull: provider.lastError.map(redactor.redact))
        // Whether the state was learned by this instance or from another one through the shared health store.
        buffer.writeRaw(#","learned_from":"#)
        buffer.writeRaw(provider.source.isPeer ? #""peer""# : #""local""#)
        buffer.writeRaw(#","learned_from_instance":"#)
        buffer.writeJSONString(orNull: provider.source.instance)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Whole milliseconds, rounded up; `null` for none. Total: a duration from an upstream's header can be anything.
    private static func writeMilliseconds(_ duration: Duration?, into buffer: inout ByteBuffer) {
        if let duration {
            buffer.writeJSONInt(wholeMilliseconds(duration))
        } else {
            buffer.writeRaw("null")
        }
    }

    /// The longest duration `/health/providers` reports as it is; longer ones show as this (about 34,800 years).
    static let longestReported = Duration.seconds(Int64(1) << 40)

    /// `duration` in whole milliseconds, rounded up, clamped to `0...longestReported`: no conversion can trap
    /// (`Duration.components` itself traps past `Int64.max` seconds, so the clamp comes first).
    static func wholeMilliseconds(_ duration: Duration) -> Int {
        let clamped = min(max(duration, .zero), longestReported)
        let (seconds, attoseconds) = clamped.components
        let (milliseconds, rest) = attoseconds.quotientAndRemainder(dividingBy: 1_000_000_000_000_000)
        return Int(seconds) * 1000 + Int(milliseconds) + (rest > 0 ? 1 : 0)
    }

    /// `duration` in fractional milliseconds, clamped as ``wholeMilliseconds(_:)`` is.
    static func milliseconds(_ duration: Duration) -> Double {
        let clamped = min(max(duration, .zero), longestReported)
        let (seconds, attoseconds) = clamped.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
