import Synchronization

/// One provider's health, as a status page would show it.
public struct ProviderHealth: Sendable, Hashable {
    /// The entry's label (``Provider/name``).
    public var name: String
    /// The provider kind.
    public var kind: String
    /// The model.
    public var model: String
    /// The breaker's state.
    public var state: CircuitBreaker.State
    /// Consecutive failures counted by the breaker.
    public var consecutiveFailures: Int
    /// Time until an open breaker lets a probe through.
    public var reopensIn: Duration?
    /// Time until a `Retry-After` the provider sent expires.
    public var retryAfterRemaining: Duration?
    /// The decaying average latency (time to first token for streams, whole time for answers).
    public var latency: Duration?
    /// Attempts sent to this provider.
    public var attempts: Int
    /// Attempts it answered.
    public var successes: Int
    /// Attempts that failed, by error class label.
    public var failuresByClass: [String: Int]
    /// The last error's summary.
    public var lastError: String?
    /// This provider's share of all answers the chain got (0...1).
    public var share: Double

    /// Attempts that failed.
    public var failures: Int { failuresByClass.values.reduce(0, +) }
}

/// Why a provider was skipped without an attempt.
public struct SkippedProvider: Sendable, Hashable, CustomStringConvertible {
    /// Why.
    public enum Reason: Hashable, Sendable {
        /// Its circuit breaker is open (or its half-open probes are taken).
        case circuitOpen
        /// It asked for a pause with `Retry-After` that has not passed.
        case retryAfter
    }
    /// The entry's label.
    public var provider: String
    /// Why it was skipped.
    public var reason: Reason
    /// How long until it can be tried again.
    public var availableIn: Duration

    public var description: String {
        switch reason {
        case .circuitOpen: return "\(provider): skipped, circuit open for \(formatDuration(availableIn))"
        case .retryAfter: return "\(provider): skipped, retry after \(formatDuration(availableIn))"
        }
    }
}

/// The chain's in-memory record of every provider's health: breakers, Retry-After windows, latency, counts.
///
/// Every read and update goes through this narrow interface, so a store shared between instances can replace it
/// without touching the engine.
final class HealthRegistry: Sendable {
    struct Entry {
        var breaker: CircuitBreaker
        var notBefore: Duration = .zero
        var latencyMs: Double?
        var lastSampleAt: Duration = .zero
        var recentLatencies: [Double] = []
        var recentNext = 0
        var attempts = 0
        var successes = 0
        var failuresByClass: [String: Int] = [:]
        var lastError: String?
    }

    enum Admission: Equatable {
        case allowed
        case probe
        case rejected(until: Duration, reason: SkippedProvider.Reason)
    }

    private let entries: Mutex<[Entry]>
    /// Latency samples older than this are forgotten, so a recovered provider is measured again.
    let latencyMaxAge: Duration
    /// Weight of a new sample in the decaying average.
    let latencySmoothing: Double
    /// The ceiling of every latency figure, in milliseconds (an hour). A failure counts as a sample twice as slow
    /// as the average; without a ceiling an outage of a few hundred requests doubles it past `Duration`'s range.
    static let slowestLatencyMs: Double = 3_600_000

    init(count: Int, breaker: CircuitBreaker.Configuration, latencyMaxAge: Duration, latencySmoothing: Double = 0.3) {
        entries = Mutex(Array(repeating: Entry(breaker: CircuitBreaker(configuration: breaker)), count: count))
        self.latencyMaxAge = latencyMaxAge
        self.latencySmoothing = latencySmoothing
    }

    func admit(_ index: Int, now: Duration) -> Admission {
        entries.withLock { entries in
            if entries[index].notBefore > now {
                return .rejected(until: entries[index].notBefore, reason: .retryAfter)
            }
            switch entries[index].breaker.admit(now: now) {
            case .allowed: return .allowed
            case .probe: return .probe
            case .rejected(let until): return .rejected(until: until, reason: .circuitOpen)
            }
        }
    }

    func forceProbe(_ index: Int, now: Duration) {
        entries.withLock { $0[index].breaker.forceProbe(now: now) }
    }

    /// Records an attempt's end; returns the breaker's new state when it changed.
    func record(
        _ index: Int,
        outcome: CircuitBreaker.Outcome,
        wasProbe: Bool,
        now: Duration,
        latency: Duration?,
        error: ProviderError?
    ) -> CircuitBreaker.State? {
        entries.withLock { entries in
            entries[index].attempts += 1
            if let error {
                entries[index].failuresByClass[error.kind.label, default: 0] += 1
                entries[index].lastError = error.description
            } else if outcome == .success {
                entries[index].successes += 1
            }
            if let latency, outcome != .neutral {
                let sample = min(max(0, latency.milliseconds), Self.slowestLatencyMs)
                let stale = now - entries[index].lastSampleAt > latencyMaxAge
                if let current = entries[index].latencyMs, !stale {
                    // A failure counts as a slow sample: never faster than what we knew.
                    let value = outcome == .failure ? min(max(sample, current * 2), Self.slowestLatencyMs) : sample
                    entries[index].latencyMs = current + latencySmoothing * (value - current)
                } else {
                    entries[index].latencyMs = outcome == .failure ? min(max(sample, 1) * 2, Self.slowestLatencyMs) : sample
                }
                entries[index].lastSampleAt = now
                if entries[index].recentLatencies.count < 64 {
                    entries[index].recentLatencies.append(sample)
                } else {
                    entries[index].recentLatencies[entries[index].recentNext] = sample
                    entries[index].recentNext = (entries[index].recentNext + 1) % 64
                }
            }
            return entries[index].breaker.record(outcome, wasProbe: wasProbe, now: now)
        }
    }

    func suspend(_ index: Int, until: Duration) -> CircuitBreaker.State? {
        entries.withLock { $0[index].breaker.trip(until: until) }
    }

    func setNotBefore(_ index: Int, _ time: Duration) {
        entries.withLock { $0[index].notBefore = max($0[index].notBefore, time) }
    }

    /// Average latencies in milliseconds, `nil` for providers without a recent sample.
    func latencies(now: Duration) -> [Double?] {
        entries.withLock { entries in
            entries.map { entry in
                guard let latency = entry.latencyMs, now - entry.lastSampleAt <= latencyMaxAge else { return nil }
                return latency
            }
        }
    }

    /// The `percentile` (0...1) of the provider's recent latencies, `nil` without recent samples.
    func latencyPercentile(_ index: Int, _ percentile: Double, now: Duration) -> Duration? {
        entries.withLock { entries in
            let entry = entries[index]
            guard !entry.recentLatencies.isEmpty, now - entry.lastSampleAt <= latencyMaxAge else { return nil }
            let sorted = entry.recentLatencies.sorted()
            let position = min(sorted.count - 1, max(0, Int(saturating: (Double(sorted.count - 1) * percentile).rounded(.up))))
            return .clampedMilliseconds(sorted[position])
        }
    }

    func snapshot(providers: [Provider], now: Duration) -> [ProviderHealth] {
        entries.withLock { entries in
            let total = max(1, entries.reduce(0) { $0 + $1.successes })
            return zip(providers, entries).map { provider, entry in
                ProviderHealth(
                    name: provider.name,
                    kind: provider.kind,
                    model: provider.model,
                    state: entry.breaker.state,
                    consecutiveFailures: entry.breaker.consecutiveFailures,
                    reopensIn: entry.breaker.opensAt.map { max(.zero, $0 - now) },
                    retryAfterRemaining: entry.notBefore > now ? entry.notBefore - now : nil,
                    latency: entry.latencyMs.map { .clampedMilliseconds($0) },
                    attempts: entry.attempts,
                    successes: entry.successes,
                    failuresByClass: entry.failuresByClass,
                    lastError: entry.lastError,
                    share: Double(entry.successes) / Double(total)
                )
            }
        }
    }
}
