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
                let tracing = ChainTracing()
                try await tracing.withSpan("llm_fallback.stream") { span in
                    self.requestCounter.increment()
                    let run = self.makeExecution(options, request: request, tracing: tracing)
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
        if let interval = options.keepAliveInterval {
            let ticker = KeepAliveTicker(
                interval: max(interval, .milliseconds(10)).clamped(to: Bounds.longestDuration), clock: clock, continuation: continuation)
            ticker.schedule()
            continuation.onTermination = { _ in
                task.cancel()
                ticker.stop()
            }
        } else {
            continuation.onTermination = { _ in task.cancel() }
        }
        return stream
    }

    /// Yields a keep-alive chunk every interval until stopped (when the stream ends, however it ends).
    final class KeepAliveTicker: Sendable {
        private struct State {
            var timer: ScheduledAction?
            var stopped = false
        }
        private let state = Mutex(State())
        private let interval: Duration
        private let clock: ChainClock
        private let continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation

        init(interval: Duration, clock: ChainClock, continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation) {
            self.interval = interval
            self.clock = clock
            self.continuation = continuation
        }

        func schedule() {
            let next = clock.schedule(at: clock.now() + interval) { [self] in
                var chunk = ChatChunk()
                chunk.isKeepAlive = true
                continuation.yield(chunk)
                schedule()
            }
            let orphan = state.locked { state -> ScheduledAction? in
                if state.stopped { return next }
                state.timer = next
                return nil
            }
            orphan?.cancel()
        }

        func stop() {
            let timer = state.locked { state -> ScheduledAction? in
                state.stopped = true
                defer { state.timer = nil }
                return state.timer
            }
            timer?.cancel()
        }
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
            let delivered = progress.state.locked { $0 }
            var prefilled = false
            if delivered.deliveredChunks > 0 {
                if policy == .continue && resolved.kind.supportsAssistantPrefill {
                    // Anthropic refuses a prefill that ends in whitespace.
                    var prefix = Substring(delivered.text)
                    while let last = prefix.last, last.isWhitespace { prefix.removeLast() }
                    attemptRequest.messages.append(.assistant(String(prefix)))
                    prefilled = true
                } else {
                    progress.state.locked {
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
        summary.content = progress.state.locked { $0.text }
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
                if let state = delta.providerState { call.providerState = state }
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
