import Foundation

/// A per-provider circuit breaker: a value-type state machine. Events go in, decisions come out; it keeps no
/// clock of its own (times are offsets on the chain's clock), so it is tested without any I/O.
///
/// - **Closed**: requests pass. ``Configuration/failureThreshold`` consecutive failures (or, when configured, a
///   failure rate over a sliding window with a minimum number of calls) open it.
/// - **Open**: requests skip the provider until its recovery period has passed: ``Configuration/recoveryTimeout``
///   the first time, doubled after each failed probe up to ``Configuration/maxRecoveryTimeout`` (a provider back
///   after a short outage is used again within seconds; one that stays dead is not probed every few seconds).
/// - **Half-open**: up to ``Configuration/halfOpenMaxProbes`` probe requests pass; others skip. A successful probe
///   closes the breaker (and resets the period); a failed one re-opens it for the next, longer period.
public struct CircuitBreaker: Sendable {
    /// How a breaker opens and recovers.
    public struct Configuration: Hashable, Sendable {
        /// Whether the breaker is used at all.
        public var isEnabled: Bool
        /// Consecutive failures that open the breaker.
        public var failureThreshold: Int
        /// How long the breaker stays open before letting a probe through, the first time it opens.
        public var recoveryTimeout: Duration
        /// The longest open period: each failed probe doubles the period, from ``recoveryTimeout`` up to this.
        /// A value below ``recoveryTimeout`` keeps every period at ``recoveryTimeout``.
        public var maxRecoveryTimeout: Duration
        /// Probe requests allowed at once while half-open.
        public var halfOpenMaxProbes: Int
        /// Optional: open when the failure rate within ``slidingWindow`` reaches this fraction (0...1).
        public var failureRateThreshold: Double?
        /// The window the failure rate is computed over.
        public var slidingWindow: Duration
        /// Calls within the window needed before the rate is considered.
        public var minimumCalls: Int
        /// Whether a rate limit that says when to come back (`429` with `Retry-After`) counts as a failure.
        ///
        /// `false` by default: such a provider is healthy and has said when it takes requests again, which the
        /// chain honours by skipping it for that long (at most ``RetryPolicy/maxRetryAfterSkip``); opening its
        /// breaker on top would keep it out longer than it asked. A rate limit without `Retry-After` always counts.
        public var countsRateLimitsWithRetryAfter: Bool

        /// Creates a configuration.
        public init(
            isEnabled: Bool = true,
            failureThreshold: Int = 5,
            recoveryTimeout: Duration = .seconds(5),
            halfOpenMaxProbes: Int = 1,
            failureRateThreshold: Double? = nil,
            slidingWindow: Duration = .seconds(60),
            minimumCalls: Int = 20,
            maxRecoveryTimeout: Duration = .seconds(300),
            countsRateLimitsWithRetryAfter: Bool = false
        ) {
            self.isEnabled = isEnabled
            self.failureThreshold = max(1, failureThreshold)
            self.recoveryTimeout = recoveryTimeout.clamped(to: Bounds.longestDuration)
            self.maxRecoveryTimeout = maxRecoveryTimeout.clamped(to: Bounds.longestDuration)
            self.halfOpenMaxProbes = max(1, halfOpenMaxProbes)
            self.failureRateThreshold = failureRateThreshold
            self.slidingWindow = slidingWindow
            self.minimumCalls = max(1, minimumCalls)
            self.countsRateLimitsWithRetryAfter = countsRateLimitsWithRetryAfter
        }

        /// The open period after `failedProbes` consecutive failed probes: ``recoveryTimeout`` doubled each time,
        /// never beyond ``maxRecoveryTimeout`` (nor below ``recoveryTimeout``).
        public func recoveryPeriod(afterFailedProbes failedProbes: Int) -> Duration {
            let base = recoveryTimeout.milliseconds
            let ceiling = max(base, maxRecoveryTimeout.milliseconds)
            let grown = base * pow(2, Double(min(max(0, failedProbes), 64)))
            return .clampedMilliseconds(min(grown, ceiling))
        }

        /// No breaker: every request is let through.
        public static let disabled = Configuration(isEnabled: false)
    }

    /// The state as seen from outside.
    public enum State: Hashable, Sendable, CustomStringConvertible {
        case closed
        case open
        case halfOpen

        public var description: String {
            switch self {
            case .closed: return "closed"
            case .open: return "open"
            case .halfOpen: return "half-open"
            }
        }
    }

    /// What the breaker decided about a request.
    public enum Admission: Hashable, Sendable {
        /// Go ahead.
        case allowed
        /// Go ahead as a half-open probe; report the outcome with `wasProbe: true`.
        case probe
        /// Skip this provider; it may be tried again at this time (an offset on the chain's clock).
        case rejected(until: Duration)
    }

    /// How a request ended, from the provider's health point of view.
    public enum Outcome: Hashable, Sendable {
        /// The provider answered.
        case success
        /// The provider failed (server error, timeout, rate limit, ...).
        case failure
        /// Says nothing about the provider's health (a client error, a cancellation).
        case neutral
    }

    private enum Storage: Hashable, Sendable {
        case closed(consecutiveFailures: Int)
        case open(until: Duration)
        case halfOpen(probesInFlight: Int, lastOpenedUntil: Duration)
    }

    /// The configuration.
    public let configuration: Configuration
    private var storage: Storage = .closed(consecutiveFailures: 0)
    private var window: FailureWindow?
    private var halfOpenConsecutiveFailures = 0

    /// Creates a closed breaker.
    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        if configuration.failureRateThreshold != nil {
            self.window = FailureWindow(span: configuration.slidingWindow)
        }
    }

    /// Failed probes in a row since the breaker last closed; each doubles the next open period.
    public var failedProbes: Int { halfOpenConsecutiveFailures }

    /// The current state (an open breaker whose timeout has passed still reads `open` until a request asks).
    public var state: State {
        switch storage {
        case .closed: return .closed
        case .open: return .open
        case .halfOpen: return .halfOpen
        }
    }

    /// Consecutive failures counted so far.
    public var consecutiveFailures: Int {
        switch storage {
        case .closed(let failures): return failures
        case .open, .halfOpen: return max(configuration.failureThreshold, halfOpenConsecutiveFailures)
        }
    }

    /// When an open breaker lets a probe through (an offset on the chain's clock).
    public var opensAt: Duration? {
        if case .open(let until) = storage { return until }
        return nil
    }

    /// Asks whether a request may go to this provider now. May move open to half-open.
    public mutating func admit(now: Duration) -> Admission {
        guard configuration.isEnabled else { return .allowed }
        switch storage {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(until: until) }
            storage = .halfOpen(probesInFlight: 1, lastOpenedUntil: until)
            return .probe
        case .halfOpen(let probes, let until):
            guard probes < configuration.halfOpenMaxProbes else { return .rejected(until: now) }
            storage = .halfOpen(probesInFlight: probes + 1, lastOpenedUntil: until)
            return .probe
        }
    }

    /// Lets a request through whatever the state (used when every provider is open: the soonest is tried). The
    /// caller bounds how many such probes run (``FallbackChain`` allows ``Configuration/halfOpenMaxProbes`` in
    /// flight for the whole chain).
    public mutating func forceProbe(now: Duration) {
        guard configuration.isEnabled else { return }
        switch storage {
        case .closed: return
        case .open(let until):
            // Half-open with every probe slot taken: a forced probe must not let ordinary requests probe before
            // the open period ends.
            storage = .halfOpen(probesInFlight: max(1, configuration.halfOpenMaxProbes), lastOpenedUntil: until)
        case .halfOpen(let probes, let until):
            storage = .halfOpen(probesInFlight: probes + 1, lastOpenedUntil: until)
        }
    }

    /// Records how a request ended.
    ///
    /// - Returns: The new state when it changed.
    @discardableResult
    public mutating func record(_ outcome: Outcome, wasProbe: Bool, now: Duration) -> State? {
        guard configuration.isEnabled else { return nil }
        if outcome != .neutral {
            window?.record(failed: outcome == .failure, now: now)
        }
        switch storage {
        case .closed(let failures):
            switch outcome {
            case .success:
                storage = .closed(consecutiveFailures: 0)
                return nil
            case .neutral:
                return nil
            case .failure:
                let failures = failures + 1
                if failures >= configuration.failureThreshold || rateExceeded(now: now) {
                    return open(until: now + configuration.recoveryPeriod(afterFailedProbes: 0))
                }
                storage = .closed(consecutiveFailures: failures)
                return nil
            }
        case .halfOpen(let probes, let until):
            guard wasProbe else {
                // A request admitted before the breaker opened: its failure extends nothing new.
                return nil
            }
            switch outcome {
            case .success:
                storage = .closed(consecutiveFailures: 0)
                halfOpenConsecutiveFailures = 0
                window?.reset()
                return .closed
            case .failure:
                halfOpenConsecutiveFailures = halfOpenConsecutiveFailures.saturatingAdd(1)
                return open(until: max(until, now + configuration.recoveryPeriod(afterFailedProbes: halfOpenConsecutiveFailures)))
            case .neutral:
                if now < until {
                    // A forced probe that said nothing, before the open period was over: open again, as before.
                    storage = .open(until: until)
                } else {
                    storage = .halfOpen(probesInFlight: max(0, probes - 1), lastOpenedUntil: until)
                }
                return nil
            }
        case .open(let until):
            if outcome == .failure {
                // A straggler admitted before the breaker opened: re-opening extends, never shortens.
                storage = .open(until: max(until, now + configuration.recoveryPeriod(afterFailedProbes: halfOpenConsecutiveFailures)))
            }
            return nil
        }
    }

    /// Opens the breaker until at least `until` (a refused key, an exhausted quota).
    @discardableResult
    public mutating func trip(until: Duration) -> State? {
        guard configuration.isEnabled else { return nil }
        switch storage {
        case .open(let current):
            storage = .open(until: max(current, until))
            return nil
        case .halfOpen(_, let current):
            return open(until: max(current, until))
        case .closed:
            return open(until: until)
        }
    }

    /// Takes an open period another instance published: open until at least `until`, with at least `failedProbes`
    /// failed probes behind it (so the next period grows as it would have there). Returns the new state when it
    /// changed.
    mutating func adoptOpen(until: Duration, failedProbes: Int) -> State? {
        guard configuration.isEnabled else { return nil }
        halfOpenConsecutiveFailures = max(halfOpenConsecutiveFailures, failedProbes)
        switch storage {
        case .open(let current):
            storage = .open(until: max(current, until))
            return nil
        case .halfOpen:
            // A probe of ours may be in flight; its result still counts (``record(_:wasProbe:now:)`` in open).
            storage = .open(until: until)
            return .open
        case .closed:
            storage = .open(until: until)
            return .open
        }
    }

    /// Takes a close another instance published (its probe succeeded). Returns the new state when it changed.
    mutating func adoptClosed() -> State? {
        guard configuration.isEnabled else { return nil }
        halfOpenConsecutiveFailures = 0
        window?.reset()
        if case .closed = storage { return nil }
        storage = .closed(consecutiveFailures: 0)
        return .closed
    }

    /// Whether the breaker is open and its period has passed, or half-open: the next admission would be a probe.
    func awaitsProbe(now: Duration) -> Bool {
        guard configuration.isEnabled else { return false }
        switch storage {
        case .closed: return false
        case .open(let until): return now >= until
        case .halfOpen: return true
        }
    }

    private func rateExceeded(now: Duration) -> Bool {
        guard let threshold = configuration.failureRateThreshold, let window else { return false }
        let (calls, failures) = window.totals(now: now)
        guard calls >= configuration.minimumCalls else { return false }
        return Double(failures) / Double(calls) >= threshold
    }

    private mutating func open(until: Duration) -> State? {
        let wasOpen = state == .open
        storage = .open(until: until)
        return wasOpen ? nil : .open
    }
}

/// Calls and failures over a sliding window, in ten buckets: O(1) per outcome and per question, whatever the rate.
struct FailureWindow: Hashable, Sendable {
    static let bucketCount = 10
    /// The width of one bucket, in nanoseconds (at least 1).
    let bucketNanoseconds: Int64
    /// Per bucket: its number (time / width), calls and failures.
    private var numbers = [Int64](repeating: .min, count: bucketCount)
    private var calls = [Int](repeating: 0, count: bucketCount)
    private var failures = [Int](repeating: 0, count: bucketCount)

    init(span: Duration) {
        bucketNanoseconds = max(1, span.clampedNanoseconds / Int64(Self.bucketCount))
    }

    private func bucketNumber(_ now: Duration) -> Int64 {
        max(0, now.clampedNanoseconds) / bucketNanoseconds
    }

    mutating func record(failed: Bool, now: Duration) {
        let number = bucketNumber(now)
        let slot = Int(number % Int64(Self.bucketCount))
        if numbers[slot] != number {
            numbers[slot] = number
            calls[slot] = 0
            failures[slot] = 0
        }
        calls[slot] += 1
        if failed { failures[slot] += 1 }
    }

    /// Calls and failures in the buckets within the window (the current one and the nine before it).
    func totals(now: Duration) -> (calls: Int, failures: Int) {
        let current = bucketNumber(now)
        var total = (calls: 0, failures: 0)
        for slot in 0..<Self.bucketCount where numbers[slot] > current - Int64(Self.bucketCount) && numbers[slot] <= current {
            total.calls += calls[slot]
            total.failures += failures[slot]
        }
        return total
    }

    mutating func reset() {
        numbers = [Int64](repeating: .min, count: Self.bucketCount)
    }
}
