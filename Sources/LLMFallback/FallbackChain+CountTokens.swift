import Logging
import NIOCore

/// How many input tokens a request holds, and who says so.
public struct TokenCount: Hashable, Sendable {
    /// The request's input tokens (the conversation, the system prompt, the tool definitions).
    public var inputTokens: Int
    /// Whether the count is ``TokenCount/estimate(for:)``'s estimate rather than a provider's count: no provider
    /// of the chain could count (none speaks a format with a counting endpoint, or none was healthy).
    public var isEstimate: Bool
    /// The label of the chain entry that counted (``Provider/name``); `nil` for an estimate.
    public var providerName: String?
    /// The model the count is for; `nil` for an estimate.
    public var model: String?

    /// Creates a count.
    public init(inputTokens: Int, isEstimate: Bool, providerName: String? = nil, model: String? = nil) {
        self.inputTokens = inputTokens
        self.isEstimate = isEstimate
        self.providerName = providerName
        self.model = model
    }

    /// The estimate used when no provider can count: one token per 3.5 UTF-8 bytes of the request's text (messages,
    /// the system prompt, tool calls and their results, the tools' names, descriptions and schemas as JSON),
    /// rounded up, plus 4 tokens per message and 16 per image. Tokenizers give about 4 bytes of English per token,
    /// so the estimate errs high, which is the safe side for a client deciding when to compact its context.
    public static func estimate(for request: ChatRequest) -> TokenCount {
        var bytes = 0
        var overhead = 0
        for message in request.messages {
            overhead += 4
            switch message.content {
            case .text(let text):
                bytes += text.utf8.count
            case .parts(let parts):
                for part in parts {
                    switch part {
                    case .text(let text): bytes += text.utf8.count
                    default: overhead += 16
                    }
                }
            }
            for call in message.toolCalls {
                bytes += call.name.utf8.count + call.arguments.utf8.count
            }
        }
        for tool in request.tools {
            bytes += tool.name.utf8.count + (tool.description?.utf8.count ?? 0) + tool.parameters.jsonString.utf8.count
        }
        let tokens = (bytes * 2 + 6) / 7 + overhead
        return TokenCount(inputTokens: tokens, isEstimate: true)
    }
}

extension FallbackChain {
    /// Counts a request's input tokens with the chain's first healthy provider that can count (today: those that
    /// speak Anthropic Messages, through `POST /v1/messages/count_tokens`), failing over among them in the chain's
    /// order; when none can, ``TokenCount/estimate(for:)``, marked as an estimate.
    ///
    /// A count is not an answer: it leaves breakers, latency figures, retry budgets and the routing strategy's
    /// rotation alone, and it asks only a provider whose breaker is closed and that set no `Retry-After` window.
    ///
    /// - Throws: The provider's ``ProviderError`` when it refused the request itself (``ProviderError/Kind/invalidRequest``,
    ///   a client error that another provider would refuse too); `CancellationError` when cancelled.
    public func countTokens(_ request: ChatRequest, options: RequestOptions = .init()) async throws -> TokenCount {
        // The chain's order, not the routing strategy's: a count is not a request, and takes no turn of a rotation.
        let order = candidates(named: options.providers)
        for index in options.allowFailover ? order[...] : order.prefix(1) {
            try Task.checkCancellation()
            let entry = entries[index]
            guard case .success(let resolved) = entry.resolved, resolved.kind.wireFormat == .anthropic else { continue }
            guard health.isOpenToRetry(index, now: clock.now()) else { continue }
            let adapter = AnthropicAdapter()
            var timeout = entry.provider.timeout
            if let limit = options.timeout ?? configuration.timeout { timeout = min(timeout, limit) }
            do {
                let parts = try adapter.makeCountTokensRequest(request, for: resolved)
                let response = try await transport.send(parts, timeout: timeout)
                let body = try await response.body.collect(upTo: 1 << 20)
                guard (200..<300).contains(response.status) else {
                    let error = entry.redact(adapter.classifyError(status: response.status, headers: response.headers, body: body))
                    if error.kind == .invalidRequest { throw error }
                    logger.debug("count_tokens failed", metadata: ["provider": "\(entry.provider.name)", "error": "\(error.message)"])
                    continue
                }
                let count = try adapter.decodeCountTokensResponse(body)
                return TokenCount(inputTokens: count, isEstimate: false, providerName: entry.provider.name, model: entry.provider.model)
            } catch let error as ProviderError where error.kind == .invalidRequest {
                throw entry.redact(error)
            } catch {
                if Task.isCancelled { throw CancellationError() }
                logger.debug("count_tokens failed", metadata: ["provider": "\(entry.provider.name)", "error": "\(error)"])
            }
        }
        return TokenCount.estimate(for: request)
    }
}
