import Logging
import NIOCore

extension FallbackChain {
    func chatAttempt(entry: ChainEntry, resolved: ResolvedProvider, request: ChatRequest, timeout: Duration) async -> AttemptResult<ChatResponse> {
        let started = clock.now()
        let expiry = AttemptExpiry()
        expiry.setTimer(clock.schedule(at: started + timeout) { expiry.expire("no complete answer within \(formatDuration(timeout))") })
        // The attempt runs in a child task, which its expiry cancels without cancelling the request. `async let`
        // allocates the child in this task's own memory, where a task group allocates it and the group on the heap.
        async let answer = expiry.run { await self.performChat(entry: entry, resolved: resolved, request: request, timeout: timeout) }
        let result = await answer
        expiry.finish()
        switch result {
        case .success(let response, _):
            return .success(response, latency: Self.normalisedLatency(clock.now() - started, completionTokens: response.usage?.completionTokens))
        case .failure, .fatal, .cancelled:
            if let reason = expiry.reason {
                return .failure(ProviderError(.timeout, message: reason), forceFailover: false)
            }
            return result
        }
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
        do {
            let parts = try entry.adapter.makeRequest(request, for: resolved, stream: false)
            let response = try await transport.send(parts, timeout: timeout)
            guard (200..<300).contains(response.status) else {
                let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
                if Task.isCancelled { return .cancelled }
                return .failure(entry.adapter.classifyError(status: response.status, headers: response.headers, body: body), forceFailover: false)
            }
            let body = try await response.body.collect(upTo: configuration.maxResponseBytes)
            var decoded = try entry.adapter.decodeResponse(body, headers: response.headers, for: resolved)
            decoded.droppedParameters = entry.adapter.droppedParameters(in: request, for: resolved)
            if !decoded.droppedParameters.isEmpty { logDropped(decoded.droppedParameters, entry: entry) }
            return .success(decoded, latency: .zero)
        } catch let error as ProviderError {
            if Task.isCancelled { return .cancelled }
            return .failure(error, forceFailover: false)
        } catch is CancellationError {
            return .cancelled
        } catch {
            if Task.isCancelled { return .cancelled }
            return .failure(ProviderError(.connection, message: String(describing: error)), forceFailover: false)
        }
    }
}
