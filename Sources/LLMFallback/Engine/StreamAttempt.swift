import Metrics
import NIOCore
import Synchronization
import Tracing

extension FallbackChain {
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
        seam: StreamSeam? = nil,
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
            let state = watch.state.locked { $0 }
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
        // In a child task, which the watchdog cancels without cancelling the request (as a chat attempt's).
        async let read = expiry.run {
            await self.readStream(
                entry: entry,
                resolved: resolved,
                request: request,
                timeout: timeout,
                attemptNumber: attemptNumber,
                progress: progress,
                watch: watch,
                seam: seam,
                continuation: continuation
            )
        }
        let result = await read
        expiry.finish()
        switch result {
        case .success(let summary, _):
            let ttft = watch.state.locked { $0.firstContentAt } ?? clock.now()
            return .success(summary, latency: ttft - start)
        case .failure, .fatal, .cancelled:
            if let reason = expiry.reason {
                return streamFailure(ProviderError(.timeout, message: reason), entry: entry, progress: progress)
            }
            return result
        }
    }

    /// A failure that fails over when nothing was delivered, and otherwise follows the mid-stream policy.
    ///
    /// The first break after content is kept as the answer's interruption: the error the caller gets if no
    /// continuation finishes the answer. Under `continue`, an answer that was a tool call or JSON output ends there
    /// (a partial call or document cannot be resumed honestly by another model).
    func streamFailure(_ error: ProviderError, entry: ChainEntry, progress: StreamProgress) -> AttemptResult<StreamSummary> {
        let policy = configuration.midStreamPolicy
        let redacted = entry.redact(error)
        enum Verdict { case failover(forced: Bool), end(StreamInterrupted) }
        let verdict = progress.state.locked { state -> Verdict in
            guard state.deliveredChunks > 0 else { return .failover(forced: false) }
            var underlying = redacted
            underlying.message = "after \(state.deliveredChunks) chunks: \(redacted.message)"
            let interrupted = StreamInterrupted(
                provider: entry.provider.name,
                deliveredCharacters: state.deliveredCharacters,
                deliveredChunks: state.deliveredChunks,
                underlying: underlying,
                trace: []
            )
            if state.interruption == nil { state.interruption = interrupted }
            if policy == .fail { return .end(interrupted) }
            if policy.continues && (state.deliveredToolCalls || state.structuredOutput || state.deliveredFinish) {
                var ended = state.interruption ?? interrupted
                ended.deliveredChunks = state.deliveredChunks
                ended.deliveredCharacters = state.deliveredCharacters
                if state.deliveredFinish {
                    ended.continuationFailure = "the answer had finished before the stream broke: it is not continued"
                } else {
                    ended.continuationFailure = "\(state.deliveredToolCalls ? "a tool call" : "JSON output") is never continued by another provider"
                }
                return .end(ended)
            }
            return .failover(forced: true)
        }
        switch verdict {
        case .failover(let forced):
            return .failure(error, forceFailover: forced)
        case .end(let interrupted):
            // This attempt's own failure for its trace and health; the first break for the caller.
            var own = redacted
            own.message = "after \(interrupted.deliveredChunks) chunks: \(redacted.message)"
            return .fatal(own, interrupted)
        }
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
        seam: StreamSeam?,
        continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation
    ) async -> AttemptResult<StreamSummary> {
        let dropped = entry.adapter.droppedParameters(in: request, for: resolved)
        if !dropped.isEmpty { logDropped(dropped, entry: entry) }
        let reading = StreamReading(
            chain: self,
            entry: entry,
            resolved: resolved,
            attemptNumber: attemptNumber,
            progress: progress,
            watch: watch,
            continuation: continuation,
            request: request,
            droppedParameters: dropped,
            seam: seam
        )
        do {
            let parts = try entry.adapter.makeRequest(request, for: resolved, stream: true)
            let response = try await transport.send(parts, timeout: timeout)
            guard (200..<300).contains(response.status) else {
                let body = (try? await response.body.collect(upTo: Self.maxErrorBodyBytes)) ?? ByteBuffer()
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
}
