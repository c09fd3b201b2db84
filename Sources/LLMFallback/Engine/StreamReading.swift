import Metrics
import NIOCore
import Synchronization
import Tracing

extension FallbackChain {
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
        /// What this attempt's provider could not be sent, named on each of its chunks.
        let droppedParameters: [String]
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
            continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation,
            request: ChatRequest,
            droppedParameters: [String] = []
        ) {
            self.droppedParameters = droppedParameters
            self.chain = chain
            self.entry = entry
            self.resolved = resolved
            self.attemptNumber = attemptNumber
            self.progress = progress
            self.watch = watch
            self.continuation = continuation
            self.decoder = entry.adapter.makeStreamDecoder(for: resolved, request: request)
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
                chunk.droppedParameters = droppedParameters
                if !chunk.hasContent && deliveredHere == 0 {
                    pending.append(chunk)
                    continue
                }
                let now = chain.clock.now()
                if chunk.hasContent && deliveredHere == 0 {
                    let restart = progress.state.locked { state -> Bool in
                        defer { state.restartPending = false }
                        return state.restartPending
                    }
                    watch.state.locked {
                        $0.firstContentAt = now
                        $0.lastActivity = now
                    }
                    if restart {
                        continuation.yield(ChatChunk(kind: .restart, provider: resolved.kind.name, model: chunk.model))
                    }
                    for held in pending { continuation.yield(held) }
                    pending.removeAll()
                } else if !chunk.isKeepAlive {
                    watch.state.locked { $0.lastActivity = now }
                }
                deliveredHere += 1
                let keepsText = self.keepsText
                progress.state.locked {
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
