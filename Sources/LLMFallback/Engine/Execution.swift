import Logging
import Synchronization
import Tracing

extension FallbackChain {
    /// The one run of one request through the chain: its deadline, its queue of candidates, its attempts and its
    /// trace.
    ///
    /// A plain request has one ``Leg`` drawing from the queue; a hedged one has two, so no provider is called twice
    /// for one request unless the retry policy says so. Admission (breakers, `Retry-After` windows, suspensions,
    /// the retry budget, forced probes) is asked of the chain's ``HealthRegistry`` for every attempt, retries
    /// included.
    final class Execution: Sendable {
        struct State {
            var queue: ArraySlice<Int>
            var trace: [AttemptRecord] = []
            var failures: [ProviderError] = []
            var skipped: [SkippedProvider] = []
            /// Candidates skipped because they were closed to traffic (open breaker, `Retry-After`), and until when.
            var closed: [(index: Int, until: Duration)] = []
            var triedAny = false
            var deadlineExceeded = false
            /// Providers routed to without a recent latency figure, whose exploration slot is released at the end.
            var exploring: [Int] = []
        }

        let chain: FallbackChain
        /// The request's one deadline, shared by every leg, attempt and stream body.
        let deadline: Duration?
        let planned: [Int]
        /// The request's tracer, for its attempts' spans.
        let tracing: ChainTracing
        let state: Mutex<State>
        /// The clock's reading when the request was planned.
        let createdAt: Duration

        init(
            chain: FallbackChain, planned: [Int], deadline: Duration?, tracing: ChainTracing, exploring: [Int] = [],
            refused: [ProviderError] = [], createdAt: Duration
        ) {
            self.chain = chain
            self.createdAt = createdAt
            self.planned = planned
            self.deadline = deadline
            self.tracing = tracing
            var state = State(queue: planned[...], exploring: exploring)
            state.failures = refused
            self.state = Mutex(state)
        }

        /// Releases what the request held for its whole run (latency exploration slots).
        func end() {
            let exploring = state.locked { state -> [Int] in
                defer { state.exploring = [] }
                return state.exploring
            }
            for index in exploring { chain.health.endExploring(index) }
        }

        var trace: [AttemptRecord] { state.locked { $0.trace } }
        var skipped: [SkippedProvider] { state.locked { $0.skipped } }

        /// The error when no provider answered; logged.
        func allFailed() -> AllProvidersFailed {
            let failed = state.locked { state in
                AllProvidersFailed(failures: state.failures, trace: state.trace, deadlineExceeded: state.deadlineExceeded, skipped: state.skipped)
            }
            chain.logger.error("all providers failed", metadata: ["error": "\(failed)"])
            return failed
        }

        /// The route the request was planned on, by provider name (the chain's own array when the plan is the
        /// configured order, as on every request of an ordered chain).
        var route: [String] {
            if planned == chain.configuredOrder { return chain.configuredRoute }
            return planned.map { chain.entries[$0].provider.name }
        }

        /// Takes the next candidate for `leg`: the next in the queue that admission lets through; when every
        /// candidate of the request was closed to traffic, the one that reopens soonest, as a forced probe, if the
        /// chain's bound on forced probes allows; `nil` when none is left.
        ///
        /// `passOver` is asked first, before admission takes anything (a probe slot, a retry budget) or a failover
        /// is reported: a candidate it gives a reason for is recorded as skipped, untried.
        func nextCandidate(for leg: Leg, passOver: PassOver? = nil) -> ChainEntry? {
            let health = chain.health
            while true {
                let now = leg.reading ?? chain.clock.now()
                leg.reading = now
                enum Pick { case queued(Int), forced([Int]), none }
                let pick = state.locked { state -> Pick in
                    if let next = state.queue.popFirst() { return .queued(next) }
                    guard !state.triedAny, !state.closed.isEmpty else { return .none }
                    defer { state.closed.removeAll() }
                    return .forced(state.closed.sorted { $0.until < $1.until }.map(\.index))
                }
                switch pick {
                case .none:
                    return nil
                case .queued(let next):
                    if let passOver, case .success(let resolved) = chain.entries[next].resolved,
                        let reason = passOver(chain.entries[next], resolved)
                    {
                        skip(chain.entries[next], reason: reason)
                        continue
                    }
                    switch health.admit(next, now: now) {
                    case .allowed:
                        leg.isProbe = false
                    case .probe:
                        leg.isProbe = true
                    case .rejected(let until, let reason):
                        let skip = SkippedProvider(provider: chain.entries[next].provider.name, reason: reason, availableIn: max(.zero, until - now))
                        state.locked { state in
                            state.skipped.append(skip)
                            state.closed.append((next, until))
                        }
                        chain.logger.debug("skipped", metadata: ["provider": "\(skip.provider)", "reason": "\(skip)"])
                        chain.emit(.skipped(skip))
                        continue
                    }
                    leg.index = next
                case .forced(let bySoonest):
                    // Every candidate is closed to traffic: rather than fail without trying, probe the one that
                    // reopens soonest (and has not been probed so in its open period), but never more than
                    // halfOpenMaxProbes such probes at once for the chain (the rest fail fast, as their skips say).
                    let eligible = bySoonest.filter { index in
                        guard let passOver, case .success(let resolved) = chain.entries[index].resolved else { return true }
                        return passOver(chain.entries[index], resolved) == nil
                    }
                    guard let soonest = eligible.first(where: { health.forceProbe($0, now: now) }) else { return nil }
                    leg.index = soonest
                    leg.isProbe = true
                    leg.isForced = true
                }
                state.locked { $0.triedAny = true }
                leg.retry = 0
                let entry = chain.entries[leg.index]
                if let previous = leg.previous {
                    chain.failover(from: chain.entries[previous.index].provider, to: entry.provider, error: previous.error)
                }
                switch entry.resolved {
                case .success:
                    return entry
                case .failure(let error):
                    state.locked { state in
                        state.trace.append(AttemptRecord(provider: entry.provider.name, model: entry.provider.model, number: 1, outcome: .failure(error.kind), duration: .zero, message: error.message))
                        state.failures.append(error)
                    }
                    _ = health.record(leg.index, outcome: .neutral, wasProbe: leg.isProbe, now: now, latency: nil, error: error)
                    leg.releaseForcedProbe()
                    leg.previous = (leg.index, error)
                }
            }
        }

        /// The next attempt's timeout and context; `nil` when the request's deadline has passed.
        func beginAttempt(_ entry: ChainEntry, leg: Leg) -> (timeout: Duration, context: AttemptContext)? {
            let now = leg.reading.take() ?? chain.clock.now()
            if let deadline, now >= deadline {
                state.locked { $0.deadlineExceeded = true }
                if leg.isProbe { chain.health.releaseProbe(leg.index, now: now) }
                leg.releaseForcedProbe()
                return nil
            }
            var timeout = entry.provider.timeout
            if let limit = chain.configuration.timeout { timeout = min(timeout, limit) }
            if let deadline { timeout = min(timeout, deadline - now) }
            chain.emit(.attemptStarted(provider: entry.provider, number: leg.retry + 1))
            let trace = state.locked { $0.trace }
            return (timeout, AttemptContext(number: trace.count + 1, retry: leg.retry, previousFailure: leg.previous?.error, trace: trace, started: now))
        }

        /// Whether the retry `leg` decided on may still go after its wait: admission is asked again, as another
        /// request may have opened the provider's breaker meanwhile. When it may not, the failure that called
        /// for the retry stands and the leg moves on.
        func mayRetry(_ leg: Leg) -> Bool {
            if chain.health.isOpenToRetry(leg.index, now: chain.clock.now()) { return true }
            if let error = leg.pendingRetry {
                leg.pendingRetry = nil
                state.locked { $0.failures.append(error) }
                leg.previous = (leg.index, error)
            }
            return false
        }

        /// Records a candidate passed over untried (it cannot serve this request now).
        func skip(_ entry: ChainEntry, reason: SkippedProvider.Reason) {
            let skip = SkippedProvider(provider: entry.provider.name, reason: reason, availableIn: .zero)
            state.locked { $0.skipped.append(skip) }
            chain.logger.debug("skipped", metadata: ["provider": "\(skip.provider)", "reason": "\(skip)"])
            chain.emit(.skipped(skip))
        }

        /// Records an attempt's result and decides what comes next.
        func finish<Value: Sendable>(
            _ result: AttemptResult<Value>, entry: ChainEntry, leg: Leg, attemptStart: Duration, span: any Span
        ) throws -> Decision<Value> {
            defer { leg.releaseForcedProbe() }
            let now = chain.clock.now()
            let duration = now - attemptStart
            let health = chain.health
            let index = leg.index
            let isProbe = leg.isProbe
            let number = leg.retry + 1
            switch result {
            case .success(let value, let latency):
                let record = AttemptRecord(provider: entry.provider.name, model: entry.provider.model, number: number, outcome: .success, duration: duration)
                let (trace, failovers) = state.locked { state -> ([AttemptRecord], Int) in
                    state.trace.append(record)
                    return (state.trace, state.failures.count)
                }
                let change = health.record(index, outcome: .success, wasProbe: isProbe, now: now, latency: latency, error: nil)
                chain.observe(entry: entry, record: record, breakerChange: change, error: nil)
                if span.isRecording { span.attributes["llm_fallback.failovers"] = failovers }
                return .done(Outcome(value: value, index: index, latency: duration, trace: trace, route: route))

            case .cancelled:
                let record = AttemptRecord(provider: entry.provider.name, model: entry.provider.model, number: number, outcome: .cancelled, duration: duration)
                state.locked { $0.trace.append(record) }
                _ = health.record(index, outcome: .neutral, wasProbe: isProbe, now: now, latency: nil, error: nil)
                chain.emit(.attemptFinished(provider: entry.provider, record: record))
                throw CancellationError()

            case .fatal(var error, let thrown):
                error = entry.redact(error)
                let record = AttemptRecord(provider: entry.provider.name, model: entry.provider.model, number: number, outcome: .failure(error.kind), status: error.status, duration: duration, message: error.message)
                let trace = state.locked { state -> [AttemptRecord] in
                    state.trace.append(record)
                    return state.trace
                }
                let change = health.record(index, outcome: breakerOutcome(for: error), wasProbe: isProbe, now: now, latency: duration, error: error)
                chain.observe(entry: entry, record: record, breakerChange: change, error: error)
                if var interrupted = thrown as? StreamInterrupted {
                    interrupted.trace = trace
                    throw interrupted
                }
                throw thrown

            case .failure(var error, let forceFailover):
                error = entry.redact(error)
                let record = AttemptRecord(provider: entry.provider.name, model: entry.provider.model, number: number, outcome: .failure(error.kind), status: error.status, duration: duration, message: error.message)
                state.locked { $0.trace.append(record) }
                let change = health.record(index, outcome: breakerOutcome(for: error), wasProbe: isProbe, now: now, latency: duration, error: error)
                chain.observe(entry: entry, record: record, breakerChange: change, error: error)
                if let retryAfter = error.retryAfter {
                    health.setNotBefore(index, now: now, retryAfter: retryAfter)
                }
                let configuration = chain.configuration
                var action = configuration.failurePolicy.action(for: error)
                // A stream that broke after content (restart, continue) goes to the next provider, as documented.
                if forceFailover && (action == .stop || action == .retry) { action = .failover }
                switch action {
                case .stop:
                    throw error
                case .failoverAndSuspend:
                    if let change = health.suspend(index, now: now, until: now + configuration.circuitBreaker.recoveryTimeout) {
                        chain.emit(.breakerChanged(provider: entry.provider, state: change))
                    }
                case .failover:
                    break
                case .retry:
                    leg.isProbe = false
                    if leg.retry < entry.provider.maxRetries && !isProbe && change != .open {
                        // A provider's Retry-After is its own word on when to come back; otherwise back off.
                        let delay = chain.routing.locked { state in
                            error.retryAfter.map { configuration.retry.delay(forRetryAfter: $0, using: &state.random) }
                                ?? configuration.retry.delay(forRetry: leg.retry + 1, using: &state.random)
                        }
                        let fits = deadline.map { now + delay < $0 } ?? true
                        let acceptable = error.retryAfter.map { $0 <= configuration.retry.maxRetryAfterWait } ?? true
                        if fits && acceptable && health.takeRetry(index, now: now) {
                            leg.retry += 1
                            leg.pendingRetry = error
                            return .retry(wakeAt: delay > .zero ? now + delay : nil)
                        }
                    }
                }
                state.locked { $0.failures.append(error) }
                leg.previous = (index, error)
                return .next
            }
        }

        /// What a failure means to the provider's breaker: nothing for a client error, nor (by default) for a rate
        /// limit that said when to come back (its `Retry-After` window already keeps the provider out).
        func breakerOutcome(for error: ProviderError) -> CircuitBreaker.Outcome {
            if error.kind.isClientError { return .neutral }
            if error.kind == .rateLimited, error.retryAfter != nil, !chain.configuration.circuitBreaker.countsRateLimitsWithRetryAfter {
                return .neutral
            }
            return .failure
        }
    }

    /// Whether a candidate is passed over untried, and why (a stream to continue, and a provider that cannot).
    typealias PassOver = @Sendable (ChainEntry, ResolvedProvider) -> SkippedProvider.Reason?

    /// What an execution decided after an attempt.
    enum Decision<Value: Sendable> {
        /// The request is answered.
        case done(Outcome<Value>)
        /// Try the same provider again, after waiting until the given instant (if any).
        case retry(wakeAt: Duration?)
        /// Move on to the next candidate.
        case next
    }

    /// One consumer of an execution's candidates, used by one task: where it is and what it holds.
    final class Leg {
        let health: HealthRegistry
        /// The current candidate.
        var index = 0
        var isProbe = false
        /// Whether the current attempt holds one of the chain's forced-probe slots.
        var isForced = false
        /// Retries of the current candidate so far.
        var retry = 0
        /// The failure a retry was decided on, until the retry goes.
        var pendingRetry: ProviderError?
        /// The last provider that failed on this leg, for the failover callback.
        var previous: (index: Int, error: ProviderError)?
        /// A reading of the chain's clock still current: taken with nothing awaited since (the request's planning,
        /// then choosing the candidate), used up by the attempt that begins next. Each reading costs a system call's
        /// worth of time on some machines (perf: a fifth of a microsecond here), and a request took five.
        var reading: Duration?

        init(health: HealthRegistry, reading: Duration? = nil) {
            self.health = health
            self.reading = reading
        }

        func releaseForcedProbe() {
            guard isForced else { return }
            isForced = false
            health.releaseForcedProbe()
        }
    }

    /// Runs one leg of `run`: candidates in order, retries, failover, deadlines. Returns `nil` when this leg ran out
    /// of candidates (the request failed if no other leg answers).
    ///
    /// The bookkeeping lives in ``Execution`` and its synchronous methods, and this driver keeps only what crosses
    /// an `await`: an async function's frame holds every local that lives across a suspension, and each open
    /// stream keeps its frames for as long as it runs.
    ///
    /// `passOver`, when given, is asked of each candidate before it is tried: a reason passes it over untried.
    /// `reading`, when given, is a reading of the chain's clock still current (see ``Leg/reading``).
    func drive<Value: Sendable>(
        _ run: Execution,
        span: any Span,
        passOver: PassOver? = nil,
        reading: Duration? = nil,
        attempt: Attempt<Value>
    ) async throws -> Outcome<Value>? {
        let leg = Leg(health: health, reading: reading)
        defer { leg.releaseForcedProbe() }
        candidates: while true {
            try Task.checkCancellation()
            // Only a resolved provider is a candidate; it is passed from the entry (an immutable property), uncopied.
            guard let entry = run.nextCandidate(for: leg, passOver: passOver) else { return nil }
            while true {
                guard let (timeout, context) = run.beginAttempt(entry, leg: leg) else { return nil }
                let result: AttemptResult<Value>
                if run.tracing.isNoOp {
                    // No span to describe: one async closure layer fewer on every attempt.
                    result = await attempt(entry, entry.resolvedProvider!, timeout, context)
                } else {
                    result = await run.tracing.withSpan("llm_fallback.attempt") { attemptSpan in
                        Self.describe(attemptSpan, entry: entry, number: context.retry + 1)
                        let result = await attempt(entry, entry.resolvedProvider!, timeout, context)
                        if case .failure(let error, _) = result {
                            attemptSpan.setStatus(SpanStatus(code: .error, message: error.kind.label))
                        }
                        return result
                    }
                }
                switch try run.finish(result, entry: entry, leg: leg, attemptStart: context.started, span: span) {
                case .done(let outcome):
                    return outcome
                case .retry(let wakeAt):
                    if let wakeAt { try await clock.sleep(until: wakeAt) }
                    guard run.mayRetry(leg) else { continue candidates }
                    leg.pendingRetry = nil
                    continue
                case .next:
                    continue candidates
                }
            }
        }
    }

    /// Runs one request with a single leg.
    func execute<Value: Sendable>(_ run: Execution, span: any Span, attempt: Attempt<Value>) async throws -> Outcome<Value> {
        // The request was planned just now, with nothing awaited since: its reading of the clock is current.
        if let outcome = try await drive(run, span: span, reading: run.createdAt, attempt: attempt) { return outcome }
        span.setStatus(SpanStatus(code: .error, message: "all providers failed"))
        throw run.allFailed()
    }

    /// Plans a request: its order (with latency exploration bounded) and its one deadline.
    func makeExecution(_ options: RequestOptions, request: ChatRequest, tracing: ChainTracing) -> Execution {
        let now = clock.now()
        let deadline = (options.timeout ?? configuration.requestTimeout).map { now + $0.clamped(to: Bounds.longestDuration) }
        var order = plan(options)
        var refused: [ProviderError] = []
        if configuration.strictParameters {
            // Providers that cannot be sent every parameter are skipped; when none is left, the request is refused
            // (a client error: the gateway answers 400 naming the parameters).
            order.removeAll { index in
                guard case .success(let resolved) = entries[index].resolved else { return false }
                let dropped = entries[index].adapter.droppedParameters(in: request, for: resolved)
                guard !dropped.isEmpty else { return false }
                refused.append(ProviderError(
                    .invalidRequest, status: 400, message: "cannot be sent \(dropped.joined(separator: ", ")) (strict parameters)"))
                return true
            }
            if !order.isEmpty { refused = [] }
        }
        var exploring: [Int] = []
        if case .latency = configuration.strategy.base, order.count > 1 {
            // Unmeasured (or stale) providers come first so they get measured; but only a few requests at a time
            // explore each one, and the rest route on what is known.
            let latencies = health.latencies(now: now)
            if latencies.contains(where: { $0 != nil }) {
                var front: [Int] = []
                var back: [Int] = []
                for index in order {
                    if latencies[index] == nil {
                        if health.beginExploring(index, limit: configuration.maxConcurrentExplorations) {
                            exploring.append(index)
                            front.append(index)
                        } else {
                            back.append(index)
                        }
                    } else {
                        front.append(index)
                    }
                }
                order = front + back
            }
        }
        return Execution(
            chain: self, planned: order, deadline: deadline, tracing: tracing, exploring: exploring, refused: refused, createdAt: now)
    }

    static func describe(_ span: any Span, entry: ChainEntry, number: Int) {
        // Attributes cost a dictionary each, even on the no-op tracer's spans.
        guard span.isRecording else { return }
        span.attributes["llm_fallback.provider"] = entry.provider.name
        span.attributes["llm_fallback.model"] = entry.provider.model
        span.attributes["llm_fallback.attempt"] = number
    }
}
