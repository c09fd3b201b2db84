/// A per-provider circuit breaker: a value-type state machine. Events go in, decisions come out; it keeps no
/// clock of its own (times are offsets on the chain's clock), so it is tested without any I/O.
///
/// - **Closed**: requests pass. ``Configuration/failureThreshold`` consecutive failures (or, when configured, a
///   failure rate over a sliding window with a minimum number of calls) open it.
/// - **Open**: requests skip the provider until ``Configuration/recoveryTimeout`` has passed.
/// - **Half-open**: up to ``Configuration/halfOpenMaxProbes`` probe requests pass; others skip. A successful probe
///   closes the breaker; a failed one re-opens it with a fresh timeout.
public struct CircuitBreaker: Sendable {
    /// How a breaker opens and recovers.
    public struct Configuration: Hashable, Sendable {
        /// Whether the breaker is used at all.
        public var isEnabled: Bool
        /// Consecutive failures that open the breaker.
        public var failureThreshold: Int
        /// How long the breaker stays open before letting a probe through.
        public var recoveryTimeout: Duration
        /// Probe requests allowed at once while half-open.
        public var halfOpenMaxProbes: Int
        /// Optional: open when the failure rate within ``slidingWindow`` reaches this fraction (0...1).
        public var failureRateThreshold: Double?
        /// The window the failure rate is computed over.
        public var slidingWindow: Duration
        /// Calls within the window needed before the rate is considered.
        public var minimumCalls: Int

        /// Creates a configuration.
        public init(
            isEnabled: Bool = true,
            failureThreshold: Int = 5,
            recoveryTimeout: Duration = .seconds(60),
            halfOpenMaxProbes: Int = 1,
            failureRateThreshold: Double? = nil,
            slidingWindow: Duration = .seconds(60),
            minimumCalls: Int = 20
        ) {
            self.isEnabled = isEnabled
            self.failureThreshold = max(1, failureThreshold)
            self.recoveryTimeout = recoveryTimeout
            self.halfOpenMaxProbes = max(1, halfOpenMaxProbes)
            self.failureRateThreshold = failureRateThreshold
            self.slidingWindow = slidingWindow
            self.minimumCalls = max(1, minimumCalls)
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
    private var window: [(time: Duration, failed: Bool)] = []
    private var halfOpenConsecutiveFailures = 0

    /// Creates a closed breaker.
    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

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

    /// Lets a request through whatever the state (used when every provider is open: the soonest is tried).
    public mutating func forceProbe(now: Duration) {
        guard configuration.isEnabled else { return }
        switch storage {
        case .closed: return
        case .open(let until):
            storage = .halfOpen(probesInFlight: 1, lastOpenedUntil: until)
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
        if outcome != .neutral, configuration.failureRateThreshold != nil {
            window.append((now, outcome == .failure))
            let horizon = now - configuration.slidingWindow
            if let firstKept = window.firstIndex(where: { $0.time >= horizon }), firstKept > 0 {
                window.removeFirst(firstKept)
            }
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
                if failures >= configuration.failureThreshold || rateExceeded {
                    return open(until: now + configuration.recoveryTimeout)
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
                window.removeAll()
                return .closed
            case .failure:
                halfOpenConsecutiveFailures += 1
                return open(until: max(until, now + configuration.recoveryTimeout))
            case .neutral:
                storage = .halfOpen(probesInFlight: max(0, probes - 1), lastOpenedUntil: until)
                return nil
            }
        case .open(let until):
            if outcome == .failure {
                // A straggler admitted before the breaker opened: re-opening extends, never shortens.
                storage = .open(until: max(until, now + configuration.recoveryTimeout))
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

    private var rateExceeded: Bool {
        guard let threshold = configuration.failureRateThreshold, window.count >= configuration.minimumCalls else {
            return false
        }
        let failures = window.reduce(0) { $0 + ($1.failed ? 1 : 0) }
        return Double(failures) / Double(window.count) >= threshold
    }

    private mutating func open(until: Duration) -> State? {
        let wasOpen = state == .open
        storage = .open(until: until)
        return wasOpen ? nil : .open
    }
}
