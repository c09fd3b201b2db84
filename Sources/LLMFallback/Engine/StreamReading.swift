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
        /// Where this attempt's text joins the delivered text, when it continues a broken answer; `nil` once the
        /// seam is decided (and for a first attempt).
        var seam: StreamSeam?
        /// Whether this attempt continues an answer another attempt began: its chunks are then the chain's, not
        /// the provider's own events (no ``ChatChunk/rawData``), and carry the usage billed before.
        let continues: Bool
        /// What the attempts before this one were billed, added to this one's reported usage.
        let billedBefore: Usage?
        /// Whether this attempt's first content has come.
        var started = false
        /// Whether this attempt delivered something, and is named among the answer's producers.
        var producing = false
        /// Whether what this attempt was billed was added to the answer's.
        var billed = false

        init(
            chain: FallbackChain,
            entry: ChainEntry,
            resolved: ResolvedProvider,
            attemptNumber: Int,
            progress: StreamProgress,
            watch: StreamWatch,
            continuation: AsyncThrowingStream<ChatChunk, any Error>.Continuation,
            request: ChatRequest,
            droppedParameters: [String] = [],
            seam: StreamSeam? = nil
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
            self.keepsText = chain.configuration.midStreamPolicy.continues || chain.onSuccess != nil
            self.seam = seam
            self.continues = seam != nil
            self.billedBefore = seam != nil ? progress.state.locked { $0.billed } : nil
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
        /// content, so a failure there can still fail over unseen, and a continuation's first text until its seam
        /// is decided).
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
                if continues {
                    // The provider's own events describe its answer, not the joined one.
                    chunk.rawData = nil
                    chunk.wireFormat = nil
                    if let billedBefore, let usage = chunk.usage { chunk.usage = billedBefore.adding(usage) }
                }
                if !chunk.hasContent && !started {
                    pending.append(chunk)
                    continue
                }
                let now = chain.clock.now()
                if chunk.hasContent && !started {
                    started = true
                    let restart = progress.state.locked { state -> Bool in
                        defer { state.restartPending = false }
                        if state.restartPending { state.producers = [] }
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
                if seam != nil {
                    if seam!.hold(chunk) { releaseSeam() }
                    continue
                }
                emit(chunk)
            }
        }

        /// Delivers the chunks a continuation's seam held, the repeated text cut.
        private func releaseSeam() {
            guard var seam else { return }
            self.seam = nil
            for chunk in seam.release() { emit(chunk) }
        }

        /// Hands one chunk to the caller, counting it as delivered; the chunk that ends an answer several
        /// providers produced names them.
        private func emit(_ chunk: ChatChunk) {
            var chunk = chunk
            deliveredHere += 1
            let keepsText = self.keepsText
            // A producer is one that delivered something: content, or (for a continuation) the finish.
            let produces = !producing && (chunk.hasContent || (continues && chunk.finishReason != nil))
            if produces { producing = true }
            let name = entry.provider.name
            let producers = progress.state.locked { state -> [String] in
                if produces { state.producers.append(name) }
                state.deliveredChunks += 1
                state.deliveredCharacters = state.deliveredCharacters.saturatingAdd(chunk.content.count)
                if !chunk.toolCallDeltas.isEmpty { state.deliveredToolCalls = true }
                if chunk.finishReason != nil { state.deliveredFinish = true }
                if keepsText { state.text += chunk.content }
                return chunk.finishReason != nil && state.producers.count > 1 ? state.producers : []
            }
            chunk.producedBy = producers
            continuation.yield(chunk)
        }

        /// Adds what this attempt reported using to what the answer was billed, when it delivered part of it and
        /// broke (the next provider's usage is reported on top of it).
        private func recordBilled() {
            guard started, !billed, let usage = summary.usage ?? decoder.usageSoFar else { return }
            billed = true
            progress.state.locked { $0.billed = $0.billed.map { $0.adding(usage) } ?? usage }
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
                    return broke(error)
                } catch {
                    return broke(ProviderError(.invalidResponse, message: "\(error)"))
                }
            }
            guard decoder.endsCleanly else {
                let message = !started
                    ? "stream ended without any content or its end"
                    : "stream cut: the body ended after \(deliveredHere) chunks without the format's end"
                return broke(ProviderError(.connection, message: message))
            }
            releaseSeam()
            if continues {
                // A continuation with nothing but its finish (the break came at the very end) still finished it.
                for held in pending where held.finishReason != nil || held.usage != nil { emit(held) }
            } else {
                for held in pending { continuation.yield(held) }
            }
            return .success(summary, latency: .zero)
        }

        /// The result when the request or the body failed.
        func failure(_ error: any Error) -> AttemptResult<StreamSummary> {
            // A stream that exceeded a time limit is cancelled: what it was billed still counts.
            if !(error is ProviderError) { recordBilled() }
            switch error {
            case var error as ProviderError:
                if Task.isCancelled { return .cancelled }
                if error.kind == .connection && started {
                    error.message = "stream cut: \(error.message)"
                }
                return broke(error)
            case is CancellationError:
                return .cancelled
            default:
                if Task.isCancelled { return .cancelled }
                return broke(ProviderError(.connection, message: "stream cut: \(error)"))
            }
        }

        /// The result when the stream broke: what it was billed is kept, and the mid-stream policy decides.
        func broke(_ error: ProviderError) -> AttemptResult<StreamSummary> {
            recordBilled()
            return chain.streamFailure(error, entry: entry, progress: progress)
        }
    }
}
