import Foundation

/// What the chain does after a failure of a given class.
public struct FailurePolicy: Sendable {
    /// The chain's reaction to one failure.
    public enum Action: Hashable, Sendable, CustomStringConvertible {
        /// Retry the same provider (up to its `maxRetries`, with backoff), then fail over.
        case retry
        /// Move on to the next provider at once.
        case failover
        /// Move on, and skip this provider in every request until its recovery timeout (a refused key).
        case failoverAndSuspend
        /// Stop and surface the error to the caller.
        case stop

        public var description: String {
            switch self {
            case .retry: return "retry"
            case .failover: return "fail over"
            case .failoverAndSuspend: return "fail over and suspend the provider"
            case .stop: return "stop"
            }
        }
    }

    /// The action per error class; classes missing here fail over.
    public var actions: [ProviderError.Kind: Action]

    /// Creates a policy from a table.
    public init(actions: [ProviderError.Kind: Action]) {
        self.actions = actions
    }

    /// The documented default:
    ///
    /// | class | action |
    /// |---|---|
    /// | rate limited, overloaded, server error, connection | retry, then fail over |
    /// | timeout | fail over (a provider that hangs costs one timeout, not `maxRetries` of them) |
    /// | authentication, permission denied, not found, misconfigured | fail over and suspend until recovery |
    /// | context length exceeded, invalid response | fail over |
    /// | content filtered, invalid request | stop and surface the provider's reason |
    ///
    /// A rate limit or overload that the provider marks as not transient (an exhausted quota) fails over and
    /// suspends the provider instead of retrying.
    public static let `default` = FailurePolicy(actions: [
        .rateLimited: .retry,
        .overloaded: .retry,
        .serverError: .retry,
        .connection: .retry,
        .timeout: .failover,
        .authentication: .failoverAndSuspend,
        .permissionDenied: .failoverAndSuspend,
        .notFound: .failoverAndSuspend,
        .misconfigured: .failoverAndSuspend,
        .contextLengthExceeded: .failover,
        .invalidResponse: .failover,
        .contentFiltered: .stop,
        .invalidRequest: .stop,
    ])

    /// The default, except that content-filtered and invalid requests fail over too.
    public static let failoverOnClientErrors: FailurePolicy = {
        var policy = FailurePolicy.default
        policy.actions[.contentFiltered] = .failover
        policy.actions[.invalidRequest] = .failover
        return policy
    }()

    /// The action for `error`.
    public func action(for error: ProviderError) -> Action {
        let action = actions[error.kind] ?? .failover
        if action == .retry && !error.isTransient { return .failoverAndSuspend }
        return action
    }
}

/// Exponential backoff with full jitter between retries of one provider.
public struct RetryPolicy: Hashable, Sendable {
    /// The first retry's delay ceiling.
    public var baseDelay: Duration
    /// The largest delay.
    public var maxDelay: Duration
    /// Growth per retry.
    public var multiplier: Double
    /// Whether the delay is drawn uniformly from zero to the ceiling ("full jitter"); `false` waits the ceiling.
    public var jitter: Bool
    /// The longest `Retry-After` the chain waits for on the same provider; longer ones fail over at once.
    ///
    /// A wait that fits (and fits the request's deadline) is lengthened by a random 0–10%, so the clients a
    /// provider refused together do not all come back in the same instant.
    public var maxRetryAfterWait: Duration
    /// The longest a `Retry-After` keeps a provider out of rotation (5 minutes by default), however long it asks:
    /// a maintenance page saying `Retry-After: 86400` must not silence a provider for a day. When every provider
    /// of a request is closed to traffic, the one whose window ends soonest is probed anyway, like an open breaker.
    public var maxRetryAfterSkip: Duration
    /// How many retries a provider may get, as a share of its recent requests, so that an outage does not
    /// multiply the traffic sent to it.
    public var budget: RetryBudget

    /// Creates a policy.
    public init(
        baseDelay: Duration = .milliseconds(250),
        maxDelay: Duration = .seconds(8),
        multiplier: Double = 2,
        jitter: Bool = true,
        maxRetryAfterWait: Duration = .seconds(10),
        maxRetryAfterSkip: Duration = .seconds(300),
        budget: RetryBudget = .init()
    ) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.jitter = jitter
        self.maxRetryAfterWait = maxRetryAfterWait
        self.maxRetryAfterSkip = maxRetryAfterSkip
        self.budget = budget
    }

    /// No waiting between retries (tests, or callers who want the fastest failover).
    public static let immediate = RetryPolicy(baseDelay: .zero, maxDelay: .zero, jitter: false)

    /// The wait before retrying a provider that said `Retry-After: retryAfter`: the provider's word, plus a
    /// random 0–10% when ``jitter`` is on.
    public func delay(forRetryAfter retryAfter: Duration, using generator: inout some RandomNumberGenerator) -> Duration {
        let milliseconds = max(0, retryAfter.milliseconds)
        guard jitter, milliseconds > 0 else { return .clampedMilliseconds(milliseconds) }
        return .clampedMilliseconds(milliseconds * (1 + Double.random(in: 0...0.1, using: &generator)))
    }

    /// The delay before retry number `retry` (1 for the first retry).
    public func delay(forRetry retry: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        // Total for any configuration: a NaN or infinite growth, or an absurd maximum, never traps.
        let growth = baseDelay.milliseconds * pow(multiplier, Double(max(0, retry - 1)))
        let ceilingMs = min(maxDelay.milliseconds, Bounds.longestDuration.milliseconds, growth.isNaN ? 0 : growth)
        guard ceilingMs > 0 else { return .zero }
        let ms = jitter ? Double.random(in: 0...ceilingMs, using: &generator) : ceilingMs
        return .clampedMilliseconds(ms)
    }
}

/// A retry budget, in the manner of Envoy's retry budgets and gRPC's retry throttling: within any ``window``, a
/// provider gets at most ``minimumRetries`` plus ``ratio`` × its requests in retries. Beyond that a retryable
/// failure fails over at once, so an outage costs each request at most one attempt per provider instead of
/// `maxRetries + 1`.
public struct RetryBudget: Hashable, Sendable {
    /// Retries allowed as a share of the provider's requests in the window (0.2: one retry per five requests).
    public var ratio: Double
    /// Retries always allowed within the window, so a provider with little traffic can still be retried.
    public var minimumRetries: Int
    /// The sliding window the budget counts over.
    public var window: Duration

    /// Creates a budget.
    public init(ratio: Double = 0.2, minimumRetries: Int = 10, window: Duration = .seconds(10)) {
        self.ratio = ratio.isFinite ? min(max(ratio, 0), 1_000) : 0
        self.minimumRetries = max(0, minimumRetries)
        self.window = max(.milliseconds(10), window.clamped(to: Bounds.longestDuration))
    }

    /// No budget: every retry the policy allows is made.
    public static let unlimited = RetryBudget(ratio: 1_000, minimumRetries: Int.max / 2)
}
