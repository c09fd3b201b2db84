import Foundation
import Metrics
import NIOCore
import Synchronization
import Tracing

/// One provider of a chain, resolved once, with its adapter and metrics.
///
/// A class: the engine passes entries around on every attempt, and a reference is cheaper to copy and to keep in
/// an async frame than the whole provider.
final class ChainEntry: Sendable {
    struct Metrics: Sendable {
        let attempts: Counter
        let successes: Counter
        let duration: Timer
        let breakerState: Gauge
    }

    let index: Int
    let provider: Provider
    /// Whether this provider refused a prefill (a `400` to a continuation): it is not asked to continue again.
    let refusedPrefill = Atomic<Bool>(false)
    let resolved: Result<ResolvedProvider, ProviderError>
    /// The resolved provider, `nil` when resolution failed. The engine passes it from here, borrowed: taken out of
    /// `resolved` it was copied (every field retained, and released again) on every request.
    let resolvedProvider: ResolvedProvider?
    let adapter: any ProviderAdapter
    let metrics: Metrics

    init(index: Int, provider: Provider, environment: [String: String], metricsFactory: any MetricsFactory) {
        self.index = index
        self.provider = provider
        do {
            let resolved = try provider.resolved(environment: environment)
            self.resolved = .success(resolved)
            self.resolvedProvider = resolved
            self.adapter = resolved.kind.wireFormat.adapter
        } catch {
            self.resolved = .failure(error)
            self.resolvedProvider = nil
            self.adapter = OpenAIAdapter()
        }
        let dimensions = [("provider", provider.name), ("model", provider.model)]
        self.metrics = Metrics(
            attempts: Counter(label: "llm_fallback_attempts_total", dimensions: dimensions, factory: metricsFactory),
            successes: Counter(label: "llm_fallback_successes_total", dimensions: dimensions, factory: metricsFactory),
            duration: Timer(label: "llm_fallback_attempt_duration_seconds", dimensions: dimensions, factory: metricsFactory),
            breakerState: Gauge(label: "llm_fallback_breaker_state", dimensions: dimensions, factory: metricsFactory)
        )
    }

    /// Removes the key from an error's message, whatever the provider echoed.
    func redact(_ error: ProviderError) -> ProviderError {
        var error = error
        error.provider = provider.name
        if case .success(let resolved) = resolved, let key = resolved.apiKey, key.count >= 4, error.message.contains(key) {
            error.message = error.message.replacingOccurrences(of: key, with: "<redacted>")
        }
        return error
    }
}

/// A type-erased clock measured as offsets from the chain's creation.
///
/// The real clock (`ContinuousClock`, the default) is read directly: the engine reads the time several times per
/// attempt, and through a closure over a generic clock each reading was an unspecialised call with `Clock`'s
/// witnesses (perf: about a twentieth of the chain's own time on the first-provider path). A class: the chain reads
/// it through its `let` property, and a struct of closures was copied (and its closures retained) on every reading.
final class ChainClock: Sendable {
    private enum Source {
        /// The real clock, and the instant the offsets count from.
        case real(origin: ContinuousClock.Instant)
        /// An injected clock, read through its witnesses.
        case injected(now: @Sendable () -> Duration)
    }

    private let source: Source
    let sleepUntil: @Sendable (Duration) async throws -> Void
    let scheduleAt: @Sendable (Duration, @escaping @Sendable () -> Void) -> ScheduledAction

    /// Whether this is the real clock (`ContinuousClock`), on which the transports' own deadlines run too.
    var isReal: Bool {
        if case .real = source { return true }
        return false
    }

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let origin = clock.now
        if C.self == ContinuousClock.self, let realOrigin = origin as? ContinuousClock.Instant {
            source = .real(origin: realOrigin)
            // The real clock sleeps and schedules on event loop timers: see EventLoopSleep for why not Task.sleep.
            sleepUntil = { offset in try await EventLoopSleep.sleep(for: offset - realOrigin.duration(to: .now)) }
            scheduleAt = { offset, action in ScheduledAction.onEventLoop(after: offset - realOrigin.duration(to: .now), action) }
        } else {
            source = .injected(now: { origin.duration(to: clock.now) })
            sleepUntil = { offset in try await clock.sleep(until: origin.advanced(by: offset), tolerance: nil) }
            scheduleAt = { offset, action in
                .task(
                    Task {
                        do {
                            try await clock.sleep(until: origin.advanced(by: offset), tolerance: nil)
                        } catch {
                            return
                        }
                        action()
                    }
                )
            }
        }
    }

    /// The time since the chain's creation.
    func now() -> Duration {
        switch source {
        case .real(let origin): return origin.duration(to: .now)
        case .injected(let now): return now()
        }
    }

    /// Runs `action` at `offset` unless cancelled first.
    func schedule(at offset: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledAction {
        scheduleAt(offset, action)
    }

    func sleep(until offset: Duration) async throws {
        try await sleepUntil(offset)
    }
}

/// The chain's spans (one per request, one per attempt), with the tracer looked up once per request.
///
/// `withSpan` looks the tracer up (a lock and a dynamic cast) and binds the span's context as a task-local value on
/// every call. With the no-op tracer (nothing bootstrapped, the default) the span records nothing and carries the
/// caller's context unchanged, so that binding buys nothing and costs a task-local entry that every task started
/// beneath it copies (AsyncHTTPClient starts one per request): then the body runs with a no-op span and nothing
/// bound. With any other tracer this is `withSpan`.
struct ChainTracing: Sendable {
    let isNoOp: Bool

    /// Looks the current instrument up (the bootstrapped one, or one bound with `withTracer`).
    init() {
        // `InstrumentationSystem.tracer` finds the tracer through two protocol-conformance casts, measured at about
        // 3 µs a request on this machine; the instrument's own type tells the no-op case (nothing bootstrapped, or
        // the no-op tracer) without them. Any other instrument takes `withSpan`, which finds its tracer, if any.
        let instrument = ObjectIdentifier(type(of: InstrumentationSystem.instrument))
        isNoOp = instrument == ObjectIdentifier(NoOpInstrument.self) || instrument == ObjectIdentifier(NoOpTracer.self)
    }

    static let noOpSpan: any Span = NoOpTracer.NoOpSpan(context: .topLevel)

    func withSpan<T>(_ operationName: String, _ operation: (any Span) async throws -> T) async rethrows -> T {
        if isNoOp { return try await operation(Self.noOpSpan) }
        return try await Tracing.withSpan(operationName, ofKind: .client) { span in try await operation(span) }
    }
}

/// Runs callbacks in order, off the request path and off Swift Concurrency's threads: callbacks are synchronous
/// closures, and one that blocks (a slow log sink, a lock) must neither delay a request nor hold one of the few
/// cooperative threads every task shares. At most 10,000 wait; beyond that the oldest are dropped.
final class CallbackDispatcher: Sendable {
    private struct State {
        /// Pending work from `head` on; the slots before `head` were dropped and are compacted in bulk.
        var pending: [(@Sendable () -> Void)?] = []
        var head = 0
        var draining = false
    }

    static let limit = 10_000
    private let queue = DispatchQueue(label: "llm-fallback.callbacks")
    private let state = Mutex(State())

    /// Queues `work`. When `limit` callbacks are already waiting (a callback that blocks), the oldest is dropped:
    /// in O(1), as this runs on the request path.
    func dispatch(_ work: @escaping @Sendable () -> Void) {
        let startDraining = state.locked { state -> Bool in
            if state.pending.count - state.head >= Self.limit {
                state.pending[state.head] = nil
                state.head += 1
                if state.head >= Self.limit {
                    // Once per `limit` drops: amortised O(1).
                    state.pending.removeFirst(state.head)
                    state.head = 0
                }
            }
            state.pending.append(work)
            defer { state.draining = true }
            return !state.draining
        }
        if startDraining {
            queue.async { self.drain() }
        }
    }

    /// How many callbacks wait to run (for tests).
    var pendingCount: Int { state.locked { $0.pending.count - $0.head } }

    private func drain() {
        while true {
            let batch = state.locked { state -> ArraySlice<(@Sendable () -> Void)?> in
                if state.pending.count == state.head {
                    state.draining = false
                    return []
                }
                defer {
                    state.pending.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return state.pending[state.head...]
            }
            if batch.isEmpty { return }
            for work in batch { work?() }
        }
    }
}
