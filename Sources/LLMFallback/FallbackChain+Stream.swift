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
            /// Whether tool-call fragments reached the caller: such an answer is never continued elsewhere.
            var deliveredToolCalls = false
            /// Whether a finish reason reached the caller: the answer was whole, and is never continued.
            var deliveredFinish = false
            /// Whether the request asked for JSON output: such an answer is never continued elsewhere.
            var structuredOutput = false
            /// The entries that produced the delivered answer, in order.
            var producers: [String] = []
            /// What the attempts that delivered part of the answer and broke reported using.
            var billed: Usage?
            /// The first break after content: what the caller is told if no continuation finishes the answer.
            var interruption: StreamInterrupted?
            /// The continuations tried that failed, for that error.
            var failedContinuations: [(provider: String, error: ProviderError)] = []
        }
        let state = Mutex(State())

        /// The error that ends an answer no provider could finish: the first break, naming the continuations
        /// that failed (or that none could be tried); `nil` when nothing was delivered.
        func interruption(trace: [AttemptRecord], skipped: [SkippedProvider]) -> StreamInterrupted? {
            state.locked { state in
                guard var interrupted = state.interruption else { return nil }
                interrupted.trace = trace
                // What the caller holds now, continuations included.
                interrupted.deliveredChunks = state.deliveredChunks
                interrupted.deliveredCharacters = state.deliveredCharacters
                if !state.failedContinuations.isEmpty {
                    let failures = state.failedContinuations.map { failure in
                        let status = failure.error.status.map { ", HTTP \($0)" } ?? ""
                        return "\(failure.provider) (\(failure.error.kind.label)\(status))"
                    }
                    interrupted.continuationFailure = "continuing it failed on " + failures.joined(separator: ", then ")
                    interrupted.underlying.message += "; continuing it failed: "
                        + state.failedContinuations.map { "\($0.provider): \($0.error.message)" }.joined(separator: "; ")
                } else if skipped.contains(where: { $0.reason == .cannotContinue }) {
                    interrupted.continuationFailure = "no provider left could continue it"
                }
                return interrupted
            }
        }
    }

    struct StreamSummary: Sendable {
        var content: String
        var model: String
        var finishReason: FinishReason?
        var usage: Usage?
    }

    /// How a provider is asked to finish an answer another one began.
    enum ContinuationMethod: Sendable {
        /// The delivered text as the start of its answer (``AssistantPrefill``).
        case prefill
        /// The delivered text as an assistant turn, then ``continuationInstruction``.
        case instruction
    }

    /// The user turn that asks a provider without prefill to go on from an assistant turn
    /// (``MidStreamPolicy/continueWithInstruction``).
    static let continuationInstruction = """
        Your previous reply was cut off. Continue it from exactly where it stopped, as if it had never been \
        interrupted: do not repeat any of it, do not start over, and add no introduction or comment.
        """

    /// How `entry` can finish a broken answer to `request` under the chain's policy; `nil` when it cannot.
    func continuationMethod(for request: ChatRequest, entry: ChainEntry, resolved: ResolvedProvider) -> ContinuationMethod? {
        // A request that ends with an assistant message of its own (the client's prefill) is not continued: the
        // delivered text is the continuation of that message, which a second one would not say.
        if request.messages.last?.role == .assistant { return nil }
        if !entry.refusedPrefill.load(ordering: .relaxed), entry.adapter.assistantPrefill(for: request, provider: resolved).isSupported {
            return .prefill
        }
        return configuration.midStreamPolicy == .continueWithInstruction ? .instruction : nil
    }

    /// Runs one leg of a streamed request on `run`; `nil` when the leg ran out of candidates before any content.
    ///
    /// After content reached the caller, a break goes by the mid-stream policy: `restart` re-runs the request on
    /// the next provider after a ``ChatChunk/Kind/restart`` chunk; `continue` passes over the providers that cannot
    /// continue a partial answer and asks the next one that can to go on from the delivered text (a prefill, or
    /// under `continueWithInstruction` an instruction), its chunks joined at a ``StreamSeam``. When no provider
    /// finishes the answer, the first break is thrown as ``StreamInterrupted``.
    func streamLeg(
        _ request: ChatRequest,
        run: Execution,
        progress: StreamProgress,
        span: any Span,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async throws -> Outcome<StreamSummary>? {
        let policy = configuration.midStreamPolicy
        progress.state.locked { $0.structuredOutput = request.asksForStructuredOutput }
        let passOver: PassOver?
        if policy.continues {
            passOver = { entry, resolved in
                guard progress.state.locked({ $0.deliveredChunks }) > 0 else { return nil }
                return self.continuationMethod(for: request, entry: entry, resolved: resolved) == nil ? .cannotContinue : nil
            }
        } else {
            passOver = nil
        }
        let outcome = try await drive(run, span: span, passOver: passOver) { entry, resolved, timeout, context in
            var attemptRequest = request
            let (deliveredChunks, deliveredText) = progress.state.locked { ($0.deliveredChunks, $0.text) }
            var method: ContinuationMethod?
            var seam: StreamSeam?
            if deliveredChunks > 0 {
                if policy.continues, let how = self.continuationMethod(for: request, entry: entry, resolved: resolved) {
                    method = how
                    seam = StreamSeam(delivered: deliveredText, cutsRepeatedEnd: how == .instruction)
                    // Anthropic refuses a prefill that ends in whitespace (and any blank text); the seam puts the
                    // whitespace back. Nothing but whitespace delivered: the question is simply asked again.
                    var prefix = Substring(deliveredText)
                    while let last = prefix.last, last.isWhitespace { prefix.removeLast() }
                    if !prefix.isEmpty {
                        switch how {
                        case .prefill:
                            attemptRequest.messages.append(.assistant(String(prefix)))
                            attemptRequest.continuesFinalMessage = true
                        case .instruction:
                            attemptRequest.messages.append(.assistant(String(prefix)))
                            attemptRequest.messages.append(.user(Self.continuationInstruction))
                        }
                    }
                    // The answer so far counts against the client's limit (about four characters a token).
                    if let limit = attemptRequest.maxTokens {
                        attemptRequest.maxTokens = max(1, limit - (deliveredText.utf8.count + 3) / 4)
                    }
                } else {
                    progress.state.locked {
                        $0.restartPending = true
                        $0.text = ""
                    }
                }
            }
            let result = await self.streamAttempt(
                entry: entry,
                resolved: resolved,
                request: attemptRequest,
                timeout: timeout,
                requestDeadline: run.deadline,
                attemptNumber: context.number,
                progress: progress,
                seam: seam,
                continuation: continuation
            )
            guard let method, case .failure(let error, _) = result else { return result }
            // A continuation that failed never hides the break it was to mend: it is named in the error the caller
            // gets if none succeeds, and the request moves on whatever the failure (a 400 to a prefill included).
            let refusal = error.kind == .invalidRequest
            if method == .prefill && refusal && Self.refusesPrefill(error) {
                entry.refusedPrefill.store(true, ordering: .relaxed)
            }
            let redacted = entry.redact(error)
            progress.state.locked { $0.failedContinuations.append((entry.provider.name, redacted)) }
            return .failure(error, forceFailover: true)
        }
        let rescued = progress.state.locked { $0.interruption != nil }
        if rescued, policy.continues {
            // How often breaks were mended, for operators: finished by another provider, or not.
            let result = outcome == nil ? "failed" : "finished"
            Counter(label: "llm_fallback_stream_continuations_total", dimensions: [("result", result)], factory: metricsFactory).increment()
        }
        if outcome == nil, let interrupted = progress.interruption(trace: run.trace, skipped: run.skipped) {
            throw interrupted
        }
        return outcome
    }

    /// Whether a provider's `400` to a continuation says it takes no prefill (Anthropic: "does not support
    /// assistant message prefill"; Gemini: "Requests ending with a model turn are not supported"; vLLM on
    /// `continue_final_message`). Other refusals are the request's, not the prefill's, and teach nothing.
    static func refusesPrefill(_ error: ProviderError) -> Bool {
        let message = error.message.lowercased()
        return ["prefill", "ending with a model turn", "continue_final_message"].contains { message.contains($0) }
    }

    /// Hands a streamed request's answer to `onSuccess`: once per request, for the leg that won.
    func reportStreamSuccess(_ outcome: Outcome<StreamSummary>, progress: StreamProgress) {
        guard let onSuccess else { return }
        var summary = outcome.value
        let (text, billed) = progress.state.locked { ($0.text, $0.billed) }
        summary.content = text
        if let billed, let usage = summary.usage { summary.usage = billed.adding(usage) }
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
