import Metrics
import NIOCore
import Synchronization
import Tracing

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
            let (emit, loser): ([ChatChunk], Task<Void, Never>?) = state.locked { state in
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
            let (flush, outcome): ([ChatChunk], Result<Void, any Error>?) = state.locked { state in
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
            state.locked { state in
                state.legs[leg] = task
                return state.winner == nil && !(state.finished[0] && leg == 1 && state.errors[0] != nil)
            }
        }

        var isDecided: Bool { state.locked { $0.winner != nil || $0.finished[0] } }

        /// Keeps a leg's outcome (before its stream finishes), so the request reports the winner's alone.
        func recordOutcome(_ outcome: Outcome<StreamSummary>, of leg: Int) {
            state.locked { $0.outcomes[leg] = outcome }
        }

        /// The winning leg and its outcome, once decided.
        var winningOutcome: (Int, Outcome<StreamSummary>)? {
            state.locked { state in
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
            let legs = arbiter.state.locked { $0.legs }
            for leg in legs { leg?.cancel() }
            await timer.value
            for leg in legs { await leg?.value }
            return result
        } onCancel: {
            timer.cancel()
            primary.cancel()
            arbiter.state.locked { $0.legs[1] }?.cancel()
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
