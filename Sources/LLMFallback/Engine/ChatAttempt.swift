import Logging
import NIOCore
import NIOHTTP1

extension FallbackChain {
    func chatAttempt(
        entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest, timeout: Duration, started: Duration
    ) async -> AttemptResult<ChatResponse> {
        let result: AttemptResult<ChatResponse>
        if bodyBoundingTransport != nil {
            // The transport bounds the attempt end to end, head and body: sent and read in this task, with no task
            // or timer of the chain's (a body the timeout cuts fails as a timeout).
            result = await performChat(entry: entry, resolved: resolved, request: request, timeout: timeout)
        } else if transportBoundsResponseHead {
            result = await headBoundedChat(entry: entry, resolved: resolved, request: request, timeout: timeout, started: started)
        } else {
            result = await expiring(started: started, timeout: timeout) {
                await self.performChat(entry: entry, resolved: resolved, request: request, timeout: timeout)
            }
        }
        if case .success(let response, _) = result {
            return .success(response, latency: Self.normalisedLatency(clock.now() - started, completionTokens: response.usage?.completionTokens))
        }
        return result
    }

    /// One attempt whose wait for the response head the transport bounds by `timeout` (one of the package's
    /// transports on the real clock: both schedule their deadline on the same clock as the chain's timers). Only a
    /// body still arriving needs the attempt's own expiry, and a task it can cancel: sending in this task saves the
    /// slabs of task memory the transport's frames would take in a fresh task (a dozen allocations a request,
    /// measured), and the body's reader starts at once on this thread (``expiringImmediately(started:timeout:_:)``),
    /// so a body already buffered wakes no other thread and arms no timer.
    func headBoundedChat(
        entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest, timeout: Duration, started: Duration
    ) async -> AttemptResult<ChatResponse> {
        let response: TransportResponse
        switch await sendChat(entry: entry, resolved: resolved, request: request, timeout: timeout) {
        case .response(let sent): response = sent
        case .ended(let result): return result
        }
        if response.body.isInMemory {
            return await readChat(response, entry: entry, resolved: resolved, request: request)
        }
        return await expiringImmediately(started: started, timeout: timeout) {
            await self.readChat(response, entry: entry, resolved: resolved, request: request)
        }
    }

    /// As ``expiring(started:timeout:_:)``, with `work` started at once on this thread in a task of its own: a body
    /// already buffered is read and decoded before this returns to the executor, with no thread woken for it; the
    /// task waits on the executor only when the body does.
    func expiringImmediately(
        started: Duration, timeout: Duration, _ work: @escaping @Sendable () async -> AttemptResult<ChatResponse>
    ) async -> AttemptResult<ChatResponse> {
        let expiry = AttemptExpiry()
        let reader = Task.immediate {
            let result = await expiry.run(work)
            expiry.finish()
            return result
        }
        // The reader ran up to its first wait: only a body it waits for needs the timer.
        if !expiry.isFinished {
            expiry.setTimer(clock.schedule(at: started + timeout) { expiry.expire("no complete answer within \(formatDuration(timeout))") })
        }
        let result = await withTaskCancellationHandler { await reader.value } onCancel: { reader.cancel() }
        expiry.finish()
        // The reader is a task of its own: a cancelled request shows in it as a failure of the read.
        if case .success = result { return result }
        if expiry.reason == nil, Task.isCancelled { return .cancelled }
        return Self.expired(result, by: expiry)
    }

    /// Runs `work` in a child task that the attempt's expiry, at `started + timeout`, cancels without cancelling
    /// the request; then its result, or a timeout when the expiry ended it. `async let` allocates the child in this
    /// task's own memory, where a task group allocates it and the group on the heap.
    func expiring(
        started: Duration, timeout: Duration, _ work: @Sendable () async -> AttemptResult<ChatResponse>
    ) async -> AttemptResult<ChatResponse> {
        let expiry = AttemptExpiry()
        expiry.setTimer(clock.schedule(at: started + timeout) { expiry.expire("no complete answer within \(formatDuration(timeout))") })
        async let answer = expiry.run(work)
        let result = await answer
        expiry.finish()
        return Self.expired(result, by: expiry)
    }

    /// `result`, or a timeout when the attempt's expiry is what ended it.
    static func expired(_ result: AttemptResult<ChatResponse>, by expiry: AttemptExpiry) -> AttemptResult<ChatResponse> {
        if case .success = result { return result }
        if let reason = expiry.reason {
            return .failure(ProviderError(.timeout, message: reason), forceFailover: false)
        }
        return result
    }

    /// Says at debug level which of the request's parameters a provider could not be sent.
    func logDropped(_ parameters: [String], entry: ChainEntry) {
        logger.debug(
            "parameters dropped",
            metadata: ["provider": "\(entry.provider.name)", "parameters": "\(parameters.joined(separator: ","))"])
    }

    /// The latency recorded for routing: answers longer than 256 tokens are scaled down in proportion, so a
    /// long answer does not make a provider look slow.
    static func normalisedLatency(_ latency: Duration, completionTokens: Int?) -> Duration {
        guard let tokens = completionTokens, tokens > 256 else { return latency }
        return latency * (256.0 / Double(tokens))
    }

    func performChat(entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest, timeout: Duration) async -> AttemptResult<ChatResponse> {
        switch await sendChat(entry: entry, resolved: resolved, request: request, timeout: timeout) {
        case .response(let response): return await readChat(response, entry: entry, resolved: resolved, request: request)
        case .ended(let result): return result
        }
    }

    /// What sending a chat request came to.
    enum Sent {
        /// The response head arrived; the body is still to read.
        case response(TransportResponse)
        /// The attempt ended before a head (the request could not be built, the send failed or was cancelled).
        case ended(AttemptResult<ChatResponse>)
    }

    /// The most of an error answer's body read to classify it.
    static let maxErrorBodyBytes = 1 << 20

    /// Builds the request and sends it (with its body bounded by `timeout` too on a transport that can).
    func sendChat(entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest, timeout: Duration) async -> Sent {
        do {
            let parts = try entry.adapter.makeRequest(request, for: resolved, stream: false)
            if let bodyBoundingTransport {
                return .response(try await bodyBoundingTransport.send(parts, timeout: timeout, boundingBody: true))
            }
            return .response(try await transport.send(parts, timeout: timeout))
        } catch {
            return .ended(Self.attemptResult(for: error))
        }
    }

    /// Reads the body of a sent request and decodes it (an error status is classified).
    func readChat(_ response: TransportResponse, entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest) async -> AttemptResult<ChatResponse> {
        do {
            guard (200..<300).contains(response.status) else {
                let body: ByteBuffer
                do {
                    body = try await response.body.collect(upTo: Self.maxErrorBodyBytes)
                } catch let error as ProviderError where error.kind == .timeout {
                    throw error  // a transport that bounds the body: the attempt timed out, as the chain's expiry says
                } catch {
                    body = ByteBuffer()
                }
                if Task.isCancelled { return .cancelled }
                return .failure(entry.adapter.classifyError(status: response.status, headers: response.headers, body: body), forceFailover: false)
            }
            let limit = configuration.maxResponseBytes
            if !response.body.isInMemory, let length = response.headers.first(name: "content-length").flatMap({ Int($0) }), length > limit {
                // Announced too large: refused before its body is waited for (a body already in memory is measured).
                throw ProviderError(.invalidResponse, message: "response body larger than \(limit) bytes")
            }
            let body = try await response.body.collect(upTo: limit)
            var decoded = try entry.adapter.decodeResponse(body, headers: response.headers, for: resolved)
            decoded.droppedParameters = entry.adapter.droppedParameters(in: request, for: resolved)
            if !decoded.droppedParameters.isEmpty { logDropped(decoded.droppedParameters, entry: entry) }
            return .success(decoded, latency: .zero)
        } catch {
            return Self.attemptResult(for: error)
        }
    }

    /// What an error thrown by an attempt's send or read means.
    static func attemptResult(for error: any Error) -> AttemptResult<ChatResponse> {
        switch error {
        case let error as ProviderError:
            if Task.isCancelled { return .cancelled }
            return .failure(error, forceFailover: false)
        case is CancellationError:
            return .cancelled
        default:
            if Task.isCancelled { return .cancelled }
            return .failure(ProviderError(.connection, message: String(describing: error)), forceFailover: false)
        }
    }
}
