import Metrics
import NIOCore
import Synchronization
import Tracing

extension FallbackChain {
    /// Streams an answer to one question, with the same routing, retries, breakers and failover as ``chat(_:system:temperature:maxTokens:)``.
    ///
    /// ```swift
    /// for try await chunk in chain.stream("Tell me a story") {
    ///     print(chunk.content, terminator: "")
    /// }
    /// ```
    ///
    /// Before the first content reaches the caller, any failure fails over transparently. After it, a failure ends
    /// the stream with ``StreamInterrupted`` unless ``Configuration/midStreamPolicy`` says otherwise. Breaking out
    /// of the loop or cancelling the task cancels the upstream request.
    public func stream(_ prompt: String, system: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) -> AsyncThrowingStream<ChatChunk, any Error> {
        stream(ChatRequest(prompt: prompt, system: system, temperature: temperature, maxTokens: maxTokens))
    }

    /// Streams the continuation of a conversation.
    public func stream(
        messages: [Message],
        temperature: Double? = nil,
        topP: Double? = nil,
        maxTokens: Int? = nil,
        stop: [String] = [],
        tools: [Tool] = [],
        toolChoice: ToolChoice? = nil,
        responseFormat: ResponseFormat? = nil
    ) -> AsyncThrowingStream<ChatChunk, any Error> {
        stream(
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

    /// Streams the answer to a full request.
    public func stream(_ request: ChatRequest, options: RequestOptions = .init()) -> AsyncThrowingStream<ChatChunk, any Error> {
        let (stream, continuation) = AsyncThrowingStream<ChatChunk, any Error>.makeStream()
        let task = Task(executorPreference: options.taskExecutor) {
            do {
                try await withSpan("llm_fallback.stream", ofKind: .client) { span in
                    self.requestCounter.increment()
                    let run = self.makeExecution(options)
                    defer { run.end() }
                    let (outcome, progress): (Outcome<StreamSummary>, StreamProgress)
                    if let hedging = self.configuration.hedging, options.allowFailover, run.planned.count > 1 {
                        (outcome, progress) = try await self.hedgedStream(request, run: run, hedging: hedging, span: span, continuation: continuation)
                    } else {
                        progress = StreamProgress()
                        guard let answered = try await self.streamLeg(request, run: run, progress: progress, span: span, continuation: continuation) else {
                            span.setStatus(SpanStatus(code: .error, message: "all providers failed"))
                            throw run.allFailed()
                        }
                        outcome = answered
                    }
                    self.reportStreamSuccess(outcome, progress: progress)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// What one streamed answer delivered, across attempts.
    final class StreamProgress: Sendable {
        struct State {
            var deliveredCharacters = 0
            var deliveredChunks = 0
            var text = ""
            var restartPending = false
        }
        let state = Mutex(State())
    }

    struct StreamSummary: Sendable {
        var content: String
        var model: String
        var finishReason: FinishReason?
        var usage: Usage?
    }

    /// Runs one leg of a streamed request on `run`; `nil` when the leg ran out of candidates.
    func streamLeg(
        _ request: ChatRequest,
        run: Execution,
        progress: StreamProgress,
        span: any Span,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async throws -> Outcome<StreamSummary>? {
        let policy = configuration.midStreamPolicy
        return try await drive(run, span: span) { entry, resolved, timeout, context in
            var attemptRequest = request
            let delivered = progress.state.withLock { $0 }
            var prefilled = false
            if delivered.deliveredChunks > 0 {
                if policy == .continue && resolved.kind.supportsAssistantPrefill {
                    // Anthropic refuses a prefill that ends in whitespace.
                    var prefix = Substring(delivered.text)
                    while let last = prefix.last, last.isWhitespace { prefix.removeLast() }
                    attemptRequest.messages.append(.assistant(String(prefix)))
                    prefilled = true
                } else {
                    progress.state.withLock {
                        $0.restartPending = true
                        $0.text = ""
                    }
                }
            }
            var result = await self.streamAttempt(
                entry: entry,
                resolved: resolved,
                request: attemptRequest,
                timeout: timeout,
                requestDeadline: run.deadline,
                attemptNumber: context.number,
                progress: progress,
                continuation: continuation
            )
            if prefilled, case .failure(let error, _) = result, error.kind == .invalidRequest, let original = context.previousFailure {
                // The provider refused the prefill: fail over, and never let that hide the original failure.
                var combined = original
                combined.message = "\(original.message) (continuing on \(entry.provider.name) was refused: \(error.message))"
                result = .failure(combined, forceFailover: true)
            }
            return result
        }
    }

    /// Hands a streamed request's answer to `onSuccess`: once per request, for the leg that won.
    func reportStreamSuccess(_ outcome: Outcome<StreamSummary>, progress: StreamProgress) {
        guard let onSuccess else { return }
        var summary = outcome.value
        summary.content = progress.state.withLock { $0.text }
        let response = ChatResponse(
            content: summary.content,
            finishReason: summary.finishReason,
            usage: summary.usage,
            provider: entry(outcome.index).provider.kind,
            providerName: entry(outcome.index).provider.name,
            model: summary.model,
            latency: outcome.latency,
            attempts: outcome.trace.count,
            trace: outcome.trace
        )
        callbacks.dispatch { onSuccess(response) }
    }

    /// Watches a stream's time limits; the reader reports activity, the watchdog fires on silence.
    final class StreamWatch: Sendable {
        struct State {
            var lastActivity: Duration
            var firstContentAt: Duration?
        }
        let state: Mutex<State>
        init(start: Duration) { state = Mutex(State(lastActivity: start)) }
    }

    func streamAttempt(
        entry: ChainEntry,
        resolved: ResolvedProvider,
        request: ChatRequest,
        timeout: Duration,
        requestDeadline: Duration?,
        attemptNumber: Int,
        progress: StreamProgress,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async -> AttemptResult<StreamSummary> {
        let limits = entry.provider.streamTimeouts ?? configuration.streamTimeouts
        let start = clock.now()
        let watch = StreamWatch(start: start)
        // The attempt's timeout (the provider's, within the request's deadline) bounds the wait for the first token;
        // after it, the stream is bounded by its stall and total limits and by the request's deadline.
        let firstTokenLimit = limits.firstToken.map { min($0, timeout) } ?? timeout
        let idleLimit = limits.idle ?? timeout
        let streamDeadline = limits.total.map { start + $0 }
        let totalDeadline: Duration?
        let totalReason: String
        if let requestDeadline, streamDeadline.map({ requestDeadline < $0 }) ?? true {
            totalDeadline = requestDeadline
            totalReason = "request not finished by its deadline (requestTimeout)"
        } else {
            totalDeadline = streamDeadline
            totalReason = "stream not finished within \(formatDuration(limits.total ?? .zero))"
        }

        // The watchdog: a timer on the chain's clock, set for the earliest moment a limit could be crossed; it
        // re-reads the reader's progress and either expires the attempt or sets itself again.
        let expiry = AttemptExpiry()
        let clock = self.clock
        @Sendable func watchdog() {
            let state = watch.state.withLock { $0 }
            let now = clock.now()
            var deadline: Duration
            var reason: String
            if state.firstContentAt == nil {
                deadline = start + firstTokenLimit
                reason = "no first token within \(formatDuration(firstTokenLimit))"
            } else {
                deadline = state.lastActivity + idleLimit
                reason = "stream stalled for \(formatDuration(idleLimit))"
            }
            if let totalDeadline, totalDeadline <= deadline {
                deadline = totalDeadline
                reason = totalReason
            }
            if now >= deadline {
                expiry.expire(reason)
                return
            }
            // Before the first token, content arriving later can only move the deadline to
            // (arrival + idle) >= now + idle: waking then is early enough.
            let wake = state.firstContentAt == nil ? min(deadline, now + idleLimit) : deadline
            expiry.setTimer(clock.schedule(at: wake) { watchdog() })
        }
        watchdog()
        let result = await withTaskGroup(of: AttemptResult<StreamSummary>.self) { group in
            group.addTask {
                await expiry.run {
                    await self.readStream(
                        entry: entry,
                        resolved: resolved,
                        request: request,
                        timeout: timeout,
                        attemptNumber: attemptNumber,
                        progress: progress,
                        watch: watch,
                        continuation: continuation
                    )
                }
            }
            return await group.next() ?? .cancelled
        }
        expiry.finish()
        switch result {
        case .success(let summary, _):
            let ttft = watch.state.withLock { $0.firstContentAt } ?? clock.now()
            return .success(summary, latency: ttft - start)
        case .failure, .fatal, .cancelled:
            if let reason = expiry.reason {
                return streamFailure(ProviderError(.timeout, message: reason), entry: entry, progress: progress)
            }
            return result
        }
    }

    /// A failure that fails over when nothing was delivered, and otherwise follows the mid-stream policy.
    func streamFailure(_ error: ProviderError, entry: ChainEntry, progress: StreamProgress) -> AttemptResult<StreamSummary> {
        let delivered = progress.state.withLock { $0 }
        guard delivered.deliveredChunks > 0 else { return .failure(error, forceFailover: false) }
        if configuration.midStreamPolicy == .fail {
            var error = entry.redact(error)
            error.message = "after \(delivered.deliveredChunks) chunks: \(error.message)"
            let interrupted = StreamInterrupted(
                provider: entry.provider.name,
                deliveredCharacters: delivered.deliveredCharacters,
                deliveredChunks: delivered.deliveredChunks,
                underlying: entry.redact(error),
                trace: []
            )
            return .fatal(error, interrupted)
        }
        // restart / continue: the next provider takes over.
        return .failure(error, forceFailover: true)
    }

    /// Reads one attempt's stream. The loop keeps only the body's iterator and a reference across its
    /// suspensions (an open stream holds this frame for as long as it runs); ``StreamReading`` does the work.
    func readStream(
        entry: ChainEntry,
        resolved: ResolvedProvider,
        request: ChatRequest,
        timeout: Duration,
        attemptNumber: Int,
        progress: StreamProgress,
        watch: StreamWatch,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async -> AttemptResult<StreamSummary> {
        let reading = StreamReading(
            chain: self,
            entry: entry,
            resolved: resolved,
            attemptNumber: attemptNumber,
            progress: progress,
            watch: watch,
            continuation: continuation
        )
        do {
            let parts = try entry.adapter.makeRequest(request, for: resolved, stream: true)
            let response = try await transport.send(parts, timeout: timeout)
            guard (200..<300).contains(response.status) else {
                let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
                if Task.isCancelled { return .cancelled }
                return .failure(entry.adapter.classifyError(status: response.status, headers: response.headers, body: body), forceFailover: false)
            }
            var body = response.body.makeAsyncIterator()
            while let buffer = try await body.next() {
                if try reading.consume(buffer) { break }
            }
            if Task.isCancelled { return .cancelled }
            return reading.finish()
        } catch {
            return reading.failure(error)
        }
    }

    /// The work of reading one attempt's stream, one buffer at a time; used by one task.
    final class StreamReading {
        let chain: FallbackChain
        let entry: ChainEntry
        let resolved: ResolvedProvider
        let attemptNumber: Int
        let progress: StreamProgress
        let watch: StreamWatch
        let continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
        var decoder: any StreamDecoder
        var parser: ServerSentEventParser
        var events: [ServerSentEvent] = []
        var pending: [ChatChunk] = []
        var summary: StreamSummary
        var deliveredHere = 0
        /// Body bytes read so far, bounded by ``Configuration/maxResponseBytes``.
        var receivedBytes = 0
        let maximumBytes: Int
        /// Whether the delivered text is kept: only when something reads it (a continuation's prefill, the
        /// response handed to `onSuccess`), so a long stream holds no copy of its answer otherwise.
        let keepsText: Bool

        init(
            chain: FallbackChain,
            entry: ChainEntry,
            resolved: ResolvedProvider,
            attemptNumber: Int,
            progress: StreamProgress,
            watch: StreamWatch,
            continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
        ) {
            self.chain = chain
            self.entry = entry
            self.resolved = resolved
            self.attemptNumber = attemptNumber
            self.progress = progress
            self.watch = watch
            self.continuation = continuation
            self.decoder = entry.adapter.makeStreamDecoder(for: resolved)
            self.summary = StreamSummary(content: "", model: entry.provider.model)
            self.parser = ServerSentEventParser(maximumEventBytes: chain.configuration.maxStreamEventBytes)
            self.maximumBytes = chain.configuration.maxResponseBytes
            self.keepsText = chain.configuration.midStreamPolicy == .continue || chain.onSuccess != nil
        }

        /// Parses and delivers what `buffer` completes; `true` once the stream's terminator is in.
        func consume(_ buffer: ByteBuffer) throws(ProviderError) -> Bool {
            receivedBytes = receivedBytes.saturatingAdd(buffer.readableBytes)
            if receivedBytes > maximumBytes {
                throw ProviderError(.invalidResponse, message: "stream longer than \(maximumBytes) bytes (maxResponseBytes)")
            }
            events.removeAll(keepingCapacity: true)
            do {
                try parser.feed(buffer, into: &events)
            } catch {
                throw ProviderError(.invalidResponse, message: "\(error) (maxStreamEventBytes)")
            }
            try deliver(events)
            return decoder.isExhausted
        }

        /// Decodes `events` and hands their chunks to the caller (holding back what comes before the first
        /// content, so a failure there can still fail over unseen).
        private func deliver(_ events: [ServerSentEvent]) throws(ProviderError) {
            for event in events {
                guard var chunk = try decoder.decode(event) else { continue }
                if let usage = chunk.usage { summary.usage = usage }
                if let finish = chunk.finishReason { summary.finishReason = finish }
                if !chunk.model.isEmpty { summary.model = chunk.model }
                chunk.provider = resolved.kind.name
                chunk.providerName = entry.provider.name
                chunk.attempts = attemptNumber
                if !chunk.hasContent && deliveredHere == 0 {
                    pending.append(chunk)
                    continue
                }
                let now = chain.clock.now()
                if chunk.hasContent && deliveredHere == 0 {
                    let restart = progress.state.withLock { state -> Bool in
                        defer { state.restartPending = false }
                        return state.restartPending
                    }
                    watch.state.withLock {
                        $0.firstContentAt = now
                        $0.lastActivity = now
                    }
                    if restart {
                        continuation.yield(ChatChunk(kind: .restart, provider: resolved.kind.name, model: chunk.model))
                    }
                    for held in pending { continuation.yield(held) }
                    pending.removeAll()
                } else {
                    watch.state.withLock { $0.lastActivity = now }
                }
                deliveredHere += 1
                let keepsText = self.keepsText
                progress.state.withLock {
                    $0.deliveredChunks += 1
                    $0.deliveredCharacters = $0.deliveredCharacters.saturatingAdd(chunk.content.count)
                    if keepsText { $0.text += chunk.content }
                }
                continuation.yield(chunk)
            }
        }

        /// The result once the body has ended.
        ///
        /// A body that ends before its format's end (no `[DONE]` or finish reason, no `message_stop`) was cut
        /// short, however cleanly it closed: a connection-class failure, which fails over before any content and
        /// follows the mid-stream policy after it. It is never a success.
        func finish() -> AttemptResult<StreamSummary> {
            if !decoder.isComplete {
                // A last event whose trailing blank line never came is still read.
                events.removeAll(keepingCapacity: true)
                do {
                    try parser.finish(into: &events)
                    try deliver(events)
                } catch let error as ProviderError {
                    return chain.streamFailure(error, entry: entry, progress: progress)
                } catch {
                    return chain.streamFailure(ProviderError(.invalidResponse, message: "\(error)"), entry: entry, progress: progress)
                }
            }
            guard decoder.endsCleanly else {
                let message = deliveredHere == 0
                    ? "stream ended without any content or its end"
                    : "stream cut: the body ended after \(deliveredHere) chunks without the format's end"
                return chain.streamFailure(ProviderError(.connection, message: message), entry: entry, progress: progress)
            }
            for held in pending { continuation.yield(held) }
            return .success(summary, latency: .zero)
        }

        /// The result when the request or the body failed.
        func failure(_ error: any Error) -> AttemptResult<StreamSummary> {
            switch error {
            case var error as ProviderError:
                if Task.isCancelled { return .cancelled }
                if error.kind == .connection && deliveredHere > 0 {
                    error.message = "stream cut: \(error.message)"
                }
                return chain.streamFailure(error, entry: entry, progress: progress)
            case is CancellationError:
                return .cancelled
            default:
                if Task.isCancelled { return .cancelled }
                return chain.streamFailure(ProviderError(.connection, message: "stream cut: \(error)"), entry: entry, progress: progress)
            }
        }
    }
}

// MARK: - Hedged streams

extension FallbackChain {
    /// Decides which leg of a hedged stream the caller sees: the first to produce content wins, its held chunks
    /// are flushed, and the other leg is cancelled.
    final class StreamArbiter: Sendable {
        struct State {
            var winner: Int?
            var held: [[ChatChunk]] = [[], []]
            var finished: [Bool] = [false, false]
            var errors: [(any Error)?] = [nil, nil]
            var legs: [Task<Void, Never>?] = [nil, nil]
            var outcomes: [Outcome<StreamSummary>?] = [nil, nil]
        }
        let state = Mutex(State())
        let output: AsyncThrowingStream<ChatChunk, any Error>.Continuation
        /// Resumed once the request's outcome is known.
        let done: AsyncStream<Result<Void, any Error>>.Continuation

        init(output: AsyncThrowingStream<ChatChunk, any Error>.Continuation, done: AsyncStream<Result<Void, any Error>>.Continuation) {
            self.output = output
            self.done = done
        }

        func offer(_ chunk: ChatChunk, from leg: Int) {
            let (emit, loser): ([ChatChunk], Task<Void, Never>?) = state.withLock { state in
                if let winner = state.winner {
                    return (winner == leg ? [chunk] : [], nil)
                }
                guard chunk.hasContent else {
                    state.held[leg].append(chunk)
                    return ([], nil)
                }
                state.winner = leg
                let flushed = state.held[leg] + [chunk]
                state.held = [[], []]
                return (flushed, state.legs[1 - leg])
            }
            loser?.cancel()
            for chunk in emit { output.yield(chunk) }
        }

        func finish(_ leg: Int, error: (any Error)?) {
            let (flush, outcome): ([ChatChunk], Result<Void, any Error>?) = state.withLock { state in
                state.finished[leg] = true
                state.errors[leg] = error
                if let winner = state.winner {
                    guard winner == leg else { return ([], nil) }
                    return ([], error.map { .failure($0) } ?? .success(()))
                }
                if error == nil {
                    // Ended cleanly without content (a tool-less empty answer): it wins as it is.
                    state.winner = leg
                    let flushed = state.held[leg]
                    state.legs[1 - leg]?.cancel()
                    return (flushed, .success(()))
                }
                let otherRunning = state.legs[1 - leg] != nil && !state.finished[1 - leg]
                if otherRunning { return ([], nil) }
                // Nothing else can answer: report what ended the request (a leg that merely ran out of candidates
                // says less than one that failed for a reason).
                let errors = state.errors.compactMap { $0 }
                return ([], .failure(errors.first { !($0 is LegExhausted) } ?? errors.first ?? error!))
            }
            for chunk in flush { output.yield(chunk) }
            if let outcome {
                done.yield(outcome)
                done.finish()
            }
        }

        /// Registers a leg's task; `false` when the request is already decided.
        func register(_ leg: Int, task: Task<Void, Never>) -> Bool {
            state.withLock { state in
                state.legs[leg] = task
                return state.winner == nil && !(state.finished[0] && leg == 1 && state.errors[0] != nil)
            }
        }

        var isDecided: Bool { state.withLock { $0.winner != nil || $0.finished[0] } }

        /// Keeps a leg's outcome (before its stream finishes), so the request reports the winner's alone.
        func recordOutcome(_ outcome: Outcome<StreamSummary>, of leg: Int) {
            state.withLock { $0.outcomes[leg] = outcome }
        }

        /// The winning leg and its outcome, once decided.
        var winningOutcome: (Int, Outcome<StreamSummary>)? {
            state.withLock { state in
                guard let winner = state.winner, let outcome = state.outcomes[winner] else { return nil }
                return (winner, outcome)
            }
        }
    }

    /// A hedged stream: the second leg draws from the same execution as the first (no provider twice, one
    /// request, one trace); the arbiter shows the caller the leg that produces content first and cancels the other.
    func hedgedStream(
        _ request: ChatRequest,
        run: Execution,
        hedging: Hedging,
        span: any Span,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async throws -> (Outcome<StreamSummary>, StreamProgress) {
        let delay = hedgeDelay(for: run.planned[0], hedging: hedging)
        let (results, done) = AsyncStream<Result<Void, any Error>>.makeStream()
        let arbiter = StreamArbiter(output: continuation, done: done)
        let progress = [StreamProgress(), StreamProgress()]

        func startLeg(_ leg: Int) -> Task<Void, Never> {
            let (stream, legContinuation) = AsyncThrowingStream<ChatChunk, any Error>.makeStream()
            let producer = Task {
                do {
                    if let outcome = try await self.streamLeg(request, run: run, progress: progress[leg], span: span, continuation: legContinuation) {
                        arbiter.recordOutcome(outcome, of: leg)
                        legContinuation.finish()
                    } else {
                        legContinuation.finish(throwing: LegExhausted())
                    }
                } catch {
                    legContinuation.finish(throwing: error)
                }
            }
            return Task {
                await withTaskCancellationHandler {
                    do {
                        for try await chunk in stream { arbiter.offer(chunk, from: leg) }
                        arbiter.finish(leg, error: nil)
                    } catch {
                        arbiter.finish(leg, error: error)
                    }
                } onCancel: {
                    producer.cancel()
                }
            }
        }

        let primary = startLeg(0)
        _ = arbiter.register(0, task: primary)
        let timer = Task {
            do {
                try await self.clock.sleep(until: self.clock.now() + delay)
            } catch {
                return
            }
            guard !arbiter.isDecided, self.hedges.acquire(limit: hedging.maxConcurrentHedges) else { return }
            Counter(label: "llm_fallback_hedges_total", factory: self.metricsFactory).increment()
            let hedge = startLeg(1)
            if !arbiter.register(1, task: hedge) { hedge.cancel() }
            await hedge.value
            self.hedges.release()
        }
        let result = await withTaskCancellationHandler {
            var result: Result<Void, any Error> = .failure(CancellationError())
            for await outcome in results {
                result = outcome
                break
            }
            timer.cancel()
            let legs = arbiter.state.withLock { $0.legs }
            for leg in legs { leg?.cancel() }
            await timer.value
            for leg in legs { await leg?.value }
            return result
        } onCancel: {
            timer.cancel()
            primary.cancel()
            arbiter.state.withLock { $0.legs[1] }?.cancel()
            done.finish()
        }
        do {
            try result.get()
        } catch is LegExhausted {
            span.setStatus(SpanStatus(code: .error, message: "all providers failed"))
            throw run.allFailed()
        }
        guard let (winner, outcome) = arbiter.winningOutcome else { throw CancellationError() }
        return (outcome, progress[winner])
    }

    /// A leg of a hedged stream ran out of candidates (the request failed unless the other leg answers).
    struct LegExhausted: Error {}
}

extension AsyncThrowingStream where Element == ChatChunk {
    /// Reads the whole stream into one ``ChatResponse``: text joined, tool calls assembled by index, the last
    /// finish reason and usage. A ``ChatChunk/Kind/restart`` chunk discards what came before it.
    public func collect() async throws -> ChatResponse {
        var content = ""
        var calls: [Int: ToolCall] = [:]
        var finish: FinishReason?
        var usage: Usage?
        var provider = ""
        var model = ""
        var id: String?
        for try await chunk in self {
            if chunk.kind == .restart {
                content = ""
                calls = [:]
                continue
            }
            content += chunk.content
            for delta in chunk.toolCallDeltas {
                var call = calls[delta.index] ?? ToolCall(id: "", name: "", arguments: "")
                if let callID = delta.id, !callID.isEmpty { call.id = callID }
                if let name = delta.name, !name.isEmpty { call.name = name }
                call.arguments += delta.arguments
                calls[delta.index] = call
            }
            if let reason = chunk.finishReason { finish = reason }
            if let chunkUsage = chunk.usage { usage = chunkUsage }
            if !chunk.provider.isEmpty { provider = chunk.provider }
            if !chunk.model.isEmpty { model = chunk.model }
            if let chunkID = chunk.id { id = chunkID }
        }
        return ChatResponse(
            content: content,
            toolCalls: calls.keys.sorted().compactMap { calls[$0] },
            finishReason: finish,
            usage: usage,
            id: id,
            provider: provider,
            model: model
        )
    }
}
