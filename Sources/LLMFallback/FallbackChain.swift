import Foundation
import Logging
import Metrics
import NIOCore
import Synchronization
import Tracing

/// An ordered set of providers that answers a chat as long as any of them can.
///
/// The chain orders its providers per request (``RoutingStrategy``), skips those whose circuit breaker is open or
/// whose `Retry-After` has not passed, retries transient failures with backoff, fails over on the rest as its
/// ``FailurePolicy`` says, and bounds every attempt and the whole request with deadlines.
///
/// ```swift
/// let chain = FallbackChain([
///     Provider("openai", model: "gpt-4o"),
///     Provider("anthropic", model: "claude-3-5-sonnet-20241022"),
/// ])
/// let response = try await chain.chat("What is the capital of France?")
/// print(response.content, response.provider, response.attempts)
/// ```
///
/// A chain is `Sendable` and meant to be shared: create it once, use it from every task. Each entry is its own
/// unit of health, even when two entries share a kind.
public final class FallbackChain: Sendable {
    /// Called once per switch from a failed provider to the next: `(from, to, error)`.
    public typealias FailoverHandler = @Sendable (Provider, Provider, ProviderError) -> Void
    /// Called when a request got its answer.
    public typealias SuccessHandler = @Sendable (ChatResponse) -> Void
    /// Called for each attempt-level event.
    public typealias EventHandler = @Sendable (Event) -> Void

    /// The chain's providers, in configured order.
    public let providers: [Provider]
    /// The chain's configuration.
    public let configuration: Configuration

    let entries: [ChainEntry]
    /// Every entry's index in configured order, and the providers' names in that order: built once, so that a
    /// request planned in that order shares them instead of building its own.
    let configuredOrder: [Int]
    let configuredRoute: [String]
    let health: HealthRegistry
    let transport: any HTTPTransport
    /// Whether the transport is one of the package's, which bound the wait for a response head by the timeout
    /// they are given, and the clock the real one, which their deadlines share: then a chat attempt sends in the
    /// request's own task and only a body still arriving runs in a child the attempt's expiry can cancel (on
    /// AsyncHTTPClientTransport; NIOHTTPClientTransport bounds the body itself, ``bodyBoundingTransport``).
    let transportBoundsResponseHead: Bool
    /// The transport, when it is ``NIOHTTPClientTransport`` on the real clock: it bounds a chat attempt's body
    /// as well as its head (``NIOHTTPClientTransport/send(_:timeout:boundingBody:)``), so the attempt needs no
    /// task or timer of its own at all.
    let bodyBoundingTransport: NIOHTTPClientTransport?
    let clock: ChainClock
    let logger: Logger
    let callbacks: CallbackDispatcher
    let onFailover: FailoverHandler?
    let onSuccess: SuccessHandler?
    let onEvent: EventHandler?
    let routing: Mutex<RoutingState>
    /// Each entry's ``Provider/weight``, computed once for weighted routing.
    let weights: [Double]
    let hedges = HedgeCounter()
    let metricsFactory: any MetricsFactory
    let requestCounter: Counter
    let failoverCounter: Counter

    struct RoutingState {
        var counter = 0
        var random: ChainRandom
    }

    /// Creates a chain.
    ///
    /// - Parameters:
    ///   - providers: The providers, in order of preference.
    ///   - configuration: Routing, breaker, retry, deadline and stream settings.
    ///   - transport: The HTTP client (AsyncHTTPClient's shared client by default).
    ///   - clock: The clock for deadlines, backoff and breakers (tests pass a manual clock).
    ///   - logger: Where attempts (debug) and failovers (warning) are logged. Keys never appear.
    ///   - onFailover: Called once per switch from a failed provider to the next.
    ///   - onSuccess: Called with each answer.
    ///   - onEvent: Called for each attempt-level event.
    ///
    /// Callbacks run outside the request path, in order, on a queue of their own: a slow callback never
    /// delays a request.
    public init(
        _ providers: [Provider],
        configuration: Configuration = .init(),
        transport: any HTTPTransport = AsyncHTTPClientTransport(),
        clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger = Logger(label: "llm-fallback"),
        onFailover: FailoverHandler? = nil,
        onSuccess: SuccessHandler? = nil,
        onEvent: EventHandler? = nil
    ) {
        self.providers = providers
        self.configuration = configuration
        let environment = ProcessInfo.processInfo.environment
        let entries = providers.enumerated().map { index, provider in
            ChainEntry(index: index, provider: provider, environment: environment, metricsFactory: configuration.metricsFactory ?? MetricsSystem.factory)
        }
        self.entries = entries
        self.configuredOrder = Array(entries.indices)
        self.configuredRoute = providers.map(\.name)
        let chainClock = ChainClock(clock)
        let shared = configuration.healthStore.map { store in
            SharedHealth(
                store: store,
                identities: entries.map { entry in (try? entry.resolved.get()).map(ProviderIdentity.init) },
                leaseDurations: providers.map { provider in
                    min(provider.timeout, configuration.timeout ?? provider.timeout).clamped(to: Bounds.longestDuration) + .seconds(1)
                },
                maxProbes: configuration.circuitBreaker.halfOpenMaxProbes,
                now: chainClock.now
            )
        }
        self.health = HealthRegistry(
            count: providers.count,
            breaker: configuration.circuitBreaker,
            latencyMaxAge: configuration.latencyMaxAge,
            retryBudget: configuration.retry.budget,
            longestSkip: configuration.retry.maxRetryAfterSkip,
            shared: shared
        )
        // A weight is a number from a config file: one that is negative, NaN or infinite counts as zero, and no
        // weight exceeds 1e12, so their sum stays finite.
        self.weights = providers.map { $0.weight.isFinite && $0.weight > 0 ? min($0.weight, 1e12) : 0 }
        self.transport = transport
        self.clock = chainClock
        self.transportBoundsResponseHead = chainClock.isReal && (transport is AsyncHTTPClientTransport || transport is NIOHTTPClientTransport)
        self.bodyBoundingTransport = chainClock.isReal ? transport as? NIOHTTPClientTransport : nil
        self.logger = logger
        self.callbacks = CallbackDispatcher()
        self.onFailover = onFailover
        self.onSuccess = onSuccess
        self.onEvent = onEvent
        self.routing = Mutex(RoutingState(random: ChainRandom(seeded: configuration.randomSeed.map(SeededGenerator.init(seed:)))))
        let metrics = configuration.metricsFactory ?? MetricsSystem.factory
        self.metricsFactory = metrics
        self.requestCounter = Counter(label: "llm_fallback_requests_total", factory: metrics)
        self.failoverCounter = Counter(label: "llm_fallback_failovers_total", factory: metrics)
        if let shared {
            // The registry and the chain are held weakly: the store never keeps a chain alive.
            shared.connect(health) { [weak self] index, state, origin in
                self?.observePeer(index: index, state: state, origin: origin)
            }
        }
    }

    /// A breaker change learned from another instance: the same gauge, counter, log line and event as a local one.
    func observePeer(index: Int, state: CircuitBreaker.State, origin: String) {
        let entry = entries[index]
        entry.metrics.breakerState.record(state.gaugeValue)
        Counter(
            label: "llm_fallback_breaker_transitions_total",
            dimensions: [("provider", entry.provider.name), ("model", entry.provider.model), ("state", state.description)],
            factory: metricsFactory
        ).increment()
        logger.notice("circuit breaker \(state) (learned from \(origin))", metadata: ["provider": "\(entry.provider.name)"])
        emit(.breakerChanged(provider: entry.provider, state: state))
    }

    /// Creates a chain from the common settings (the form in the README).
    ///
    /// - Parameters:
    ///   - providers: The providers, in order of preference.
    ///   - strategy: How providers are ordered per request.
    ///   - circuitBreaker: Whether each provider gets a circuit breaker.
    ///   - failureThreshold: Consecutive failures that open a breaker.
    ///   - recoveryTimeout: How long a breaker stays open before a probe.
    ///   - timeout: The longest one attempt may take (connect plus the whole response).
    ///   - requestTimeout: The longest a whole request may take, failovers included.
    ///   - onFailover: Called once per switch from a failed provider to the next.
    ///   - onSuccess: Called with each answer.
    public convenience init(
        providers: [Provider],
        strategy: RoutingStrategy = .ordered,
        circuitBreaker: Bool = true,
        failureThreshold: Int = 5,
        recoveryTimeout: Duration = .seconds(5),
        timeout: Duration? = nil,
        requestTimeout: Duration? = nil,
        onFailover: FailoverHandler? = nil,
        onSuccess: SuccessHandler? = nil
    ) {
        var configuration = Configuration()
        configuration.strategy = strategy
        configuration.circuitBreaker = CircuitBreaker.Configuration(
            isEnabled: circuitBreaker,
            failureThreshold: failureThreshold,
            recoveryTimeout: recoveryTimeout
        )
        configuration.timeout = timeout
        configuration.requestTimeout = requestTimeout
        self.init(providers, configuration: configuration, onFailover: onFailover, onSuccess: onSuccess)
    }

    // MARK: - Chat

    /// Asks one question.
    ///
    /// - Parameters:
    ///   - prompt: The user's message.
    ///   - system: An optional system message.
    ///   - temperature: Sampling temperature.
    ///   - maxTokens: The most tokens to generate.
    /// - Returns: The first answer any provider gave.
    /// - Throws: ``AllProvidersFailed`` when no provider answered, ``ProviderError`` when the policy stops on an
    ///   error (a content filter, an invalid request), `CancellationError` when the task is cancelled.
    public func chat(_ prompt: String, system: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) async throws -> ChatResponse {
        try await chat(ChatRequest(prompt: prompt, system: system, temperature: temperature, maxTokens: maxTokens))
    }

    /// Continues a conversation.
    ///
    /// - Throws: As ``chat(_:system:temperature:maxTokens:)``.
    public func chat(
        messages: [Message],
        temperature: Double? = nil,
        topP: Double? = nil,
        maxTokens: Int? = nil,
        stop: [String] = [],
        tools: [Tool] = [],
        toolChoice: ToolChoice? = nil,
        responseFormat: ResponseFormat? = nil
    ) async throws -> ChatResponse {
        try await chat(
            ChatRequest(
                messages: messages,
                temperature: temperature,
                topP: topP,
                maxTokens: maxTokens,
                stop: stop,
                tools: tools,
                toolChoice: toolChoice,
                responseFormat: responseFormat
            )
        )
    }

    /// Sends a full request.
    ///
    /// - Throws: As ``chat(_:system:temperature:maxTokens:)``.
    public func chat(_ request: ChatRequest, options: RequestOptions = .init()) async throws -> ChatResponse {
        let tracing = ChainTracing()
        // With the no-op tracer, one async closure layer fewer.
        if tracing.isNoOp { return try await answer(request, options: options, tracing: tracing, span: ChainTracing.noOpSpan) }
        return try await tracing.withSpan("llm_fallback.chat") { span in
            try await answer(request, options: options, tracing: tracing, span: span)
        }
    }

    /// One chat request, in the request's span.
    func answer(_ request: ChatRequest, options: RequestOptions, tracing: ChainTracing, span: any Span) async throws -> ChatResponse {
        requestCounter.increment()
        let run = makeExecution(options, request: request, tracing: tracing)
        defer { run.end() }
        let outcome: Outcome<ChatResponse>
        if let hedging = configuration.hedging, options.allowFailover, run.planned.count > 1 {
            outcome = try await hedged(run, hedging: hedging, span: span) { entry, resolved, timeout, context in
                await self.chatAttempt(entry: entry, resolved: resolved, request: request, timeout: timeout, started: context.started)
            }
        } else {
            // A closure literal for a parameter that does not escape: its context lives on the stack.
            outcome = try await execute(run, span: span) { entry, resolved, timeout, context in
                await self.chatAttempt(entry: entry, resolved: resolved, request: request, timeout: timeout, started: context.started)
            }
        }
        var response = outcome.value
        response.latency = outcome.latency
        response.attempts = outcome.trace.count
        response.trace = outcome.trace
        response.route = outcome.route
        response.providerName = entry(outcome.index).provider.name
        if span.isRecording {
            span.attributes["llm_fallback.provider"] = response.providerName
            span.attributes["llm_fallback.attempts"] = response.attempts
        }
        if let onSuccess {
            let copy = response
            callbacks.dispatch { onSuccess(copy) }
        }
        return response
    }

    /// The health of every provider, in configured order.
    public func healthReport() -> [ProviderHealth] {
        health.snapshot(providers: providers, now: clock.now())
    }

    func entry(_ index: Int) -> ChainEntry { entries[index] }

    // MARK: - The engine

    enum AttemptResult<Value: Sendable>: Sendable {
        case success(Value, latency: Duration)
        /// A failure; `forceFailover` overrides a `stop` action.
        case failure(ProviderError, forceFailover: Bool)
        /// A failure that ends the request at once with `error`.
        case fatal(ProviderError, any Error)
        case cancelled
    }

    struct Outcome<Value: Sendable>: Sendable {
        var value: Value
        var index: Int
        var latency: Duration
        var trace: [AttemptRecord]
        var route: [String]
    }

    typealias Attempt<Value: Sendable> = @Sendable (ChainEntry, ResolvedProvider, Duration, AttemptContext) async -> AttemptResult<Value>

    /// What an attempt knows about the request so far.
    struct AttemptContext: Sendable {
        /// The attempt's number within the request.
        var number: Int
        /// The number of retries of this provider before this attempt.
        var retry: Int
        var previousFailure: ProviderError?
        var trace: [AttemptRecord]
        /// When the attempt began, on the chain's clock.
        var started: Duration
    }

    /// The providers a request may use, in the chain's order: all of them, or those `names` names (by name or
    /// kind, in its order).
    func candidates(named names: [String]?) -> [Int] {
        guard let names else { return configuredOrder }
        var seen = Set<Int>()
        return names.flatMap { name in
            entries.indices.filter { entries[$0].provider.name == name || entries[$0].provider.kind == name }
        }.filter { seen.insert($0).inserted }
    }

    /// Orders the candidates of one request.
    func plan(_ options: RequestOptions) -> [Int] {
        let candidates = candidates(named: options.providers)
        let strategy = configuration.strategy
        if case .ordered = strategy.base {
            // The configured order: no routing state to read or advance, so no lock.
            if !options.allowFailover, let first = candidates.first { return [first] }
            return candidates
        }
        let latencies: [Double?]
        if case .latency = strategy.base {
            latencies = health.latencies(now: clock.now())
        } else {
            latencies = []
        }
        var ordered = routing.locked { state -> [Int] in
            state.counter &+= 1
            return Router.order(
                candidates,
                strategy: strategy,
                weights: weights,
                latencies: latencies,
                counter: state.counter &- 1,
                random: &state.random
            )
        }
        if !options.allowFailover, let first = ordered.first { ordered = [first] }
        return ordered
    }

    func failover(from: Provider, to: Provider, error: ProviderError) {
        failoverCounter.increment()
        Counter(label: "llm_fallback_provider_failovers_total", dimensions: [("from", from.name), ("to", to.name), ("class", error.kind.label)], factory: metricsFactory).increment()
        logger.warning(
            "failing over",
            metadata: ["from": "\(from.name)", "to": "\(to.name)", "class": "\(error.kind.label)", "status": "\(error.status.map(String.init) ?? "-")"]
        )
        if let onFailover {
            callbacks.dispatch { onFailover(from, to, error) }
        }
    }

    func observe(entry: ChainEntry, record: AttemptRecord, breakerChange: CircuitBreaker.State?, error: ProviderError?) {
        entry.metrics.attempts.increment()
        entry.metrics.duration.recordNanoseconds(record.duration.clampedNanoseconds)
        if let error {
            Counter(
                label: "llm_fallback_errors_total",
                dimensions: [("provider", entry.provider.name), ("model", entry.provider.model), ("class", error.kind.label)],
                factory: metricsFactory
            ).increment()
        } else {
            entry.metrics.successes.increment()
        }
        logger.debug(
            "attempt finished",
            metadata: [
                "provider": "\(entry.provider.name)",
                "attempt": "\(record.number)",
                "outcome": "\(error.map { $0.kind.label } ?? "success")",
                "status": "\(record.status.map(String.init) ?? "-")",
                "duration_ms": "\(String(format: "%.1f", record.duration.milliseconds))",
            ]
        )
        emit(.attemptFinished(provider: entry.provider, record: record))
        if let breakerChange {
            entry.metrics.breakerState.record(breakerChange.gaugeValue)
            Counter(
                label: "llm_fallback_breaker_transitions_total",
                dimensions: [("provider", entry.provider.name), ("model", entry.provider.model), ("state", breakerChange.description)],
                factory: metricsFactory
            ).increment()
            logger.notice("circuit breaker \(breakerChange)", metadata: ["provider": "\(entry.provider.name)"])
            emit(.breakerChanged(provider: entry.provider, state: breakerChange))
        }
    }

    /// Queues `event` for the event handler; without one, the event (which copies a whole ``Provider``) is not
    /// even built.
    func emit(_ event: @autoclosure () -> Event) {
        guard let onEvent else { return }
        let event = event()
        callbacks.dispatch { onEvent(event) }
    }
}

extension CircuitBreaker.State {
    var gaugeValue: Double {
        switch self {
        case .closed: return 0
        case .halfOpen: return 1
        case .open: return 2
        }
    }
}
