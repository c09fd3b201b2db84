import Foundation
import InMemoryTracing
import LLMFallbackTesting
import Logging
import Metrics
import MetricsTestKit
import Synchronization
import Testing
import Tracing

@testable import LLMFallback

/// The process-wide metrics and tracing backends, bootstrapped once for the whole test process.
enum TestBackends {
    /// Given to the chain (never bootstrapped globally: other test targets in this process own that).
    static let metrics = TestMetrics()
    static let tracer: InMemoryTracer = {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()
}

/// Captures log lines.
struct CapturingLogHandler: LogHandler {
    final class Store: Sendable {
        let lines = Mutex<[(Logger.Level, String)]>([])
    }
    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let text = "\(event.message) \(merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        store.lines.locked { $0.append((event.level, text)) }
    }
}

@Suite(.serialized) struct ObservabilityTests {
    @Test func logsMetricsAndSpansWithoutKeys() async throws {
        let metrics = TestBackends.metrics
        let tracer = TestBackends.tracer
        try await withServer { server in
            server.script("obs-primary", .status(500, message: "upstream broke for key obs-secret-key"))
            server.script("obs-backup", .text("ok"))
            let store = CapturingLogHandler.Store()
            let logger = Logger(label: "test") { _ in CapturingLogHandler(store: store) }
            let events = Recorder<String>()
            let chain = FallbackChain(
                [server.openAI("obs-primary", key: "obs-secret-key"), server.openAI("obs-backup", key: "obs-secret-key")],
                configuration: { var c = config(threshold: 1); c.metricsFactory = metrics; return c }(),
                logger: logger,
                onEvent: { event in
                    switch event {
                    case .attemptStarted(let provider, _): events.append("start \(provider)")
                    case .attemptFinished(let provider, let record): events.append("end \(provider) \(record.outcome)")
                    case .skipped(let skip): events.append("skip \(skip.provider)")
                    case .breakerChanged(let provider, let state): events.append("breaker \(provider) \(state)")
                    }
                }
            )
            tracer.clearFinishedSpans()
            _ = try await chain.chat("hi")

            let lines = store.lines.locked { $0 }
            #expect(lines.filter { $0.0 == .debug && $0.1.hasPrefix("attempt finished") }.count == 2)
            #expect(lines.filter { $0.0 == .warning && $0.1.hasPrefix("failing over") }.count == 1)
            #expect(lines.allSatisfy { !$0.1.contains("obs-secret-key") })

            let errors = try metrics.expectCounter("llm_fallback_errors_total", [("provider", "obs-primary"), ("model", "obs-primary"), ("class", "server_error")])
            #expect(errors.totalValue == 1)
            let attempts = try metrics.expectCounter("llm_fallback_attempts_total", [("provider", "obs-backup"), ("model", "obs-backup")])
            #expect(attempts.totalValue == 1)
            let transitions = try metrics.expectCounter("llm_fallback_breaker_transitions_total", [("provider", "obs-primary"), ("model", "obs-primary"), ("state", "open")])
            #expect(transitions.totalValue == 1)
            let timer = try metrics.expectTimer("llm_fallback_attempt_duration_seconds", [("provider", "obs-backup"), ("model", "obs-backup")])
            #expect(timer.values.count == 1)

            let spans = tracer.finishedSpans.filter { $0.operationName.hasPrefix("llm_fallback") }
            let request = try #require(spans.first { $0.operationName == "llm_fallback.chat" && $0.attributes.get("llm_fallback.provider") == .string("obs-backup") })
            let attemptSpans = spans.filter { $0.operationName == "llm_fallback.attempt" && $0.traceID == request.traceID }
            #expect(attemptSpans.count == 2)
            #expect(attemptSpans.allSatisfy { $0.parentSpanID == request.spanID })
            #expect(attemptSpans.compactMap(\.status).map(\.code) == [.error])

            try await events.wait(for: 5)
            #expect(events.all.prefix(5) == ["start obs-primary", "end obs-primary failure(server error)", "breaker obs-primary open", "start obs-backup", "end obs-backup success"])
        }
    }

    @Test func aSlowCallbackNeverBlocksTheRequest() async throws {
        try await withServer { server in
            server.script("cb", .text("ok"))
            let semaphore = DispatchSemaphore(value: 0)
            let calls = Recorder<Bool>()
            let chain = FallbackChain(
                [server.openAI("cb")],
                configuration: config(),
                onSuccess: { _ in
                    calls.append(true)
                    semaphore.wait()  // a callback stuck until the test lets it go
                }
            )
            for _ in 0..<5 { _ = try await chain.chat("hi") }
            try await calls.wait(for: 1)
            #expect(calls.all.count == 1)  // still stuck in the first callback, yet all five requests completed
            for _ in 0..<5 { semaphore.signal() }
            try await calls.wait(for: 5)
        }
    }
}

@Suite struct TransportTracingTests {
    @Test("The failover client keeps no tracer when the bootstrapped one is the no-op tracer, and keeps any other")
    func failoverClientTracer() {
        #expect(AsyncHTTPClientTransport.clientTracer(NoOpTracer()) == nil)
        #expect(AsyncHTTPClientTransport.clientTracer(nil) == nil)
        #expect(AsyncHTTPClientTransport.clientTracer(InMemoryTracer()) is InMemoryTracer)
    }
}
