import CoreMetrics
import Synchronization

/// What a stream does when it fails after content has reached the caller.
public struct MidStreamPolicy: Hashable, Sendable, CustomStringConvertible {
    enum Base: Hashable, Sendable { case fail, restart, `continue`, continueWithInstruction }
    let base: Base

    /// End the stream with a ``StreamInterrupted`` error that says how much was delivered (the default).
    public static let fail = MidStreamPolicy(base: .fail)
    /// Re-run the request on the next provider, first sending a chunk of kind ``ChatChunk/Kind/restart`` so a UI
    /// can clear the partial text.
    public static let restart = MidStreamPolicy(base: .restart)
    /// Finish the answer on the next provider that can continue a partial answer (``AssistantPrefill``): it is
    /// sent the delivered text to go on from, and the caller sees one answer. Providers that cannot continue are
    /// passed over; when none is left, or the answer was a tool call or JSON output (never continued by another
    /// model), the stream ends with ``StreamInterrupted`` as under ``fail``.
    public static let `continue` = MidStreamPolicy(base: .continue)
    /// As ``continue``, and a provider that cannot take a prefill is sent the partial answer as an assistant turn
    /// followed by a short user instruction to continue from exactly where it stopped. The trade-off: it works on
    /// every provider (the official OpenAI API included), but an instruction is a request, not a guarantee: the
    /// model may start over or rephrase (the chain cuts a repeated overlap of up to 200 characters) and its voice
    /// may change at the seam.
    public static let continueWithInstruction = MidStreamPolicy(base: .continueWithInstruction)

    /// Whether the policy finishes a broken answer on another provider (``continue``, ``continueWithInstruction``).
    var continues: Bool { base == .continue || base == .continueWithInstruction }

    public var description: String {
        switch base {
        case .fail: return "fail"
        case .restart: return "restart"
        case .continue: return "continue"
        case .continueWithInstruction: return "continue_with_instruction"
        }
    }
}

extension FallbackChain {
    /// Everything that tunes a chain. Every field has a default; set only what you change.
    ///
    /// ```swift
    /// var configuration = FallbackChain.Configuration()
    /// configuration.strategy = .latency
    /// configuration.circuitBreaker.failureThreshold = 3
    /// configuration.requestTimeout = .seconds(20)
    /// let chain = FallbackChain(providers, configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// How providers are ordered per request.
        public var strategy: RoutingStrategy
        /// The per-provider circuit breaker.
        public var circuitBreaker: CircuitBreaker.Configuration
        /// An upper bound on each attempt (in addition to each provider's own ``Provider/timeout``).
        public var timeout: Duration?
        /// The overall deadline of a request: retries, backoff, failovers, hedges and a stream's whole body
        /// included. `nil` for none.
        ///
        /// A provider's own ``Provider/timeout`` bounds one non-streamed attempt end to end, and a streamed attempt
        /// until its first token; after that a stream is bounded by its ``StreamTimeouts`` (stall, total) and by
        /// this deadline, so a long answer is not cut at the provider's timeout.
        public var requestTimeout: Duration?
        /// Backoff between retries of one provider.
        public var retry: RetryPolicy
        /// What each error class does.
        public var failurePolicy: FailurePolicy
        /// Stream time limits (a provider's own ``Provider/streamTimeouts`` win).
        public var streamTimeouts: StreamTimeouts
        /// What a stream does when it fails after content reached the caller.
        public var midStreamPolicy: MidStreamPolicy
        /// The largest response body accepted, streamed bodies included; a longer one is an
        /// ``ProviderError/Kind/invalidResponse`` that fails over (mid-stream: the ``midStreamPolicy``).
        public var maxResponseBytes: Int
        /// The longest line, and the longest event, a stream may carry (16 MiB by default); longer ones (an
        /// upstream streaming without newlines) are an ``ProviderError/Kind/invalidResponse``.
        public var maxStreamEventBytes: Int
        /// Latency samples older than this are forgotten: the provider counts as unmeasured again, so the next
        /// request tries it and its figure starts afresh. This is how latency routing gives a provider that it
        /// stopped choosing (after a slow spell) a chance to win again.
        public var latencyMaxAge: Duration
        /// Under latency routing, the most requests at once that go first to a provider without a recent latency
        /// figure (to measure it); the others route on what is known (2 by default).
        public var maxConcurrentExplorations: Int
        /// Whether a provider that cannot be sent every parameter of a request is skipped for it (`false` by
        /// default: the parameter is dropped, and named in ``ChatResponse/droppedParameters``, so that a failover
        /// never turns an outage into an error). When no provider can take them all, the chain throws
        /// ``AllProvidersFailed`` of ``ProviderError/Kind/invalidRequest`` failures that name the parameters.
        public var strictParameters = false
        /// Hedged requests for the slow tail (off by default): when the first provider has not answered within
        /// the hedge delay, the rest of the order starts in parallel and the first answer wins.
        public var hedging: Hedging?
        /// Where the chain's swift-metrics figures go; `nil` uses the process-wide `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// A seed for routing and jitter randomness, for reproducible tests; `nil` uses the system generator.
        public var randomSeed: UInt64?
        /// Where provider health is shared with other instances (`PostgresHealthStore` from the
        /// `LLMFallbackPostgres` product); `nil` (the default) keeps it in this chain's memory only, at no cost.
        ///
        /// With a store, the chain publishes its providers' transitions (breaker opened or closed, `Retry-After`
        /// windows, suspensions), applies the other instances' ones, and takes a probe lease from the store before
        /// probing a recovering provider. Nothing on the request path waits for the store.
        public var healthStore: (any HealthStore)?

        /// Creates a configuration.
        public init(
            strategy: RoutingStrategy = .ordered,
            circuitBreaker: CircuitBreaker.Configuration = .init(),
            timeout: Duration? = nil,
            requestTimeout: Duration? = nil,
            retry: RetryPolicy = .init(),
            failurePolicy: FailurePolicy = .default,
            streamTimeouts: StreamTimeouts = .init(),
            midStreamPolicy: MidStreamPolicy = .fail,
            maxResponseBytes: Int = 32 << 20,
            maxStreamEventBytes: Int = 16 << 20,
            latencyMaxAge: Duration = .seconds(30),
            hedging: Hedging? = nil,
            metricsFactory: (any MetricsFactory)? = nil,
            randomSeed: UInt64? = nil,
            maxConcurrentExplorations: Int = 2
        ) {
            self.maxConcurrentExplorations = max(1, maxConcurrentExplorations)
            self.metricsFactory = metricsFactory
            self.hedging = hedging
            self.strategy = strategy
            self.circuitBreaker = circuitBreaker
            self.timeout = timeout
            self.requestTimeout = requestTimeout
            self.retry = retry
            self.failurePolicy = failurePolicy
            self.streamTimeouts = streamTimeouts
            self.midStreamPolicy = midStreamPolicy
            self.maxResponseBytes = maxResponseBytes
            self.maxStreamEventBytes = maxStreamEventBytes
            self.latencyMaxAge = latencyMaxAge
            self.randomSeed = randomSeed
        }
    }

    /// Per-request overrides.
    public struct RequestOptions: Sendable {
        /// This request's overall deadline, replacing the chain's ``Configuration/requestTimeout``.
        public var timeout: Duration?
        /// Restrict (and order) the providers tried, by ``Provider/name`` or kind; `nil` for all.
        public var providers: [String]?
        /// Whether to move past the first provider at all.
        public var allowFailover: Bool
        /// The task executor a stream's work runs on (the task ``FallbackChain/stream(_:options:)`` starts does
        /// not inherit the caller's preference, as no unstructured task does); `nil` for the global executor.
        ///
        /// A server that runs each connection's work on that connection's event loop passes the loop's executor
        /// here, so that the stream, its upstream request and its chunks stay on one thread.
        public var taskExecutor: (any TaskExecutor)?
        /// For a stream: how often to yield a keep-alive chunk (``ChatChunk/isKeepAlive``, no content) while the
        /// stream runs, on the chain's clock; `nil` (the default) for none. A server relaying the stream turns
        /// them into its format's keep-alive (an Anthropic `ping`), so that proxies and clients with read timeouts
        /// keep the connection while a provider thinks. At least 10 ms.
        public var keepAliveInterval: Duration?

        /// Creates options.
        public init(
            timeout: Duration? = nil,
            providers: [String]? = nil,
            allowFailover: Bool = true,
            taskExecutor: (any TaskExecutor)? = nil,
            keepAliveInterval: Duration? = nil
        ) {
            self.timeout = timeout
            self.providers = providers
            self.allowFailover = allowFailover
            self.taskExecutor = taskExecutor
            self.keepAliveInterval = keepAliveInterval
        }
    }

    /// Something that happened during a request, for the ``FallbackChain/init(_:configuration:transport:clock:logger:onFailover:onSuccess:onEvent:)``
    /// event hook.
    public enum Event: Sendable {
        /// An attempt is about to be sent.
        case attemptStarted(provider: Provider, number: Int)
        /// An attempt ended.
        case attemptFinished(provider: Provider, record: AttemptRecord)
        /// A provider was skipped (open breaker, Retry-After).
        case skipped(SkippedProvider)
        /// A breaker changed state.
        case breakerChanged(provider: Provider, state: CircuitBreaker.State)
    }
}

/// When to send a second, parallel request for a request that is slow to answer.
public struct Hedging: Hashable, Sendable {
    enum Base: Hashable, Sendable {
        case fixed(Duration)
        case percentile(Double, minimum: Duration)
    }
    let base: Base
    /// The most hedges running at once across the chain, so a broad slowdown cannot double the traffic.
    public var maxConcurrentHedges: Int

    /// Hedge after a fixed delay.
    public static func after(_ delay: Duration, maxConcurrentHedges: Int = 8) -> Hedging {
        Hedging(base: .fixed(delay), maxConcurrentHedges: maxConcurrentHedges)
    }

    /// Hedge when the first provider is slower than its own recent `percentile` latency (0.95 for p95), never
    /// sooner than `minimum`.
    public static func percentile(_ percentile: Double = 0.95, minimum: Duration = .milliseconds(50), maxConcurrentHedges: Int = 8) -> Hedging {
        Hedging(base: .percentile(min(max(percentile, 0), 1), minimum: minimum), maxConcurrentHedges: maxConcurrentHedges)
    }
}

/// Counts hedges in flight.
final class HedgeCounter: Sendable {
    private let count = Mutex(0)

    func acquire(limit: Int) -> Bool {
        count.locked { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { count.locked { $0 -= 1 } }

    var inFlight: Int { count.locked { $0 } }
}

/// Whether a request's hedge has started.
final class HedgeFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.locked { $0 = true } }
    var isSet: Bool { value.locked { $0 } }
}

/// A stream failed after content had reached the caller; nothing more will come.
public struct StreamInterrupted: Error, Sendable, CustomStringConvertible {
    /// The provider whose stream broke.
    public var provider: String
    /// Characters of text already delivered.
    public var deliveredCharacters: Int
    /// Chunks already delivered.
    public var deliveredChunks: Int
    /// Why it broke.
    public var underlying: ProviderError
    /// Every attempt made.
    public var trace: [AttemptRecord]
    /// Why no other provider finished the answer, when the mid-stream policy would have had one do it
    /// (``MidStreamPolicy/continue``): "a tool call is never continued by another provider", "no provider left
    /// could continue it", "continuing it failed on anthropic/claude (invalid_request, HTTP 400)"; `nil` otherwise.
    public var continuationFailure: String?

    public var description: String {
        let reason = continuationFailure.map { "; \($0)" } ?? ""
        return "stream from \(provider) interrupted after \(deliveredChunks) chunks (\(deliveredCharacters) characters): \(underlying)\(reason)"
    }
}
