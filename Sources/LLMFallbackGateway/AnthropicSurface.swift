import HTTPTypes
import Hummingbird
import LLMFallback
import Logging
import NIOCore

/// The Anthropic Messages surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`, for Claude Code and
/// the `anthropic` SDKs pointed at the gateway with `ANTHROPIC_BASE_URL`.
///
/// A request is decoded by the format's server half into a ``ChatRequest`` that keeps the client's body
/// (``ChatRequest/passthrough``) and its `anthropic-version` and `anthropic-beta` headers. An Anthropic provider is
/// sent that body with only `model` changed and answers are relayed as it sent them, event by event; a provider of
/// another format gets the request translated, and its answer comes back in Anthropic's shape and event grammar.
/// Every answer and error carries a `request-id`; errors use Anthropic's `{"type":"error","error":{...}}`.
extension GatewayCore {
    static let requestIDHeader = HTTPField.Name("request-id")!
    static let anthropicBetaHeader = HTTPField.Name("anthropic-beta")!
    /// `counted` (a provider counted) or `estimate` (see ``TokenCount/estimate(for:)``), on `count_tokens` answers.
    static let tokenCountHeader = HTTPField.Name("x-llm-fallback-token-count")!

    /// The client's headers that travel with its body to an Anthropic provider: `anthropic-version`, and every
    /// `anthropic-beta` line joined with commas.
    func anthropicHeaders(_ request: Request) -> [String: String] {
        var headers: [String: String] = [:]
        if let version = request.headers[Self.anthropicVersionHeader], !version.isEmpty {
            headers["anthropic-version"] = version
        }
        let betas = request.headers[values: Self.anthropicBetaHeader].filter { !$0.isEmpty }
        if !betas.isEmpty { headers["anthropic-beta"] = betas.joined(separator: ",") }
        return headers
    }

    /// `POST /v1/messages`.
    func messages(_ request: Request, requestID: String, context: GatewayRequestContext) async -> Answer {
        let body: ByteBuffer
        switch await readBody(request) {
        case .success(let read): body = read
        case .failure(let error): return Answer(response: anthropicErrorResponse(error, requestID: requestID))
        }
        var decoded: AnthropicMessagesServer.Request
        do {
            decoded = try AnthropicMessagesServer.decodeRequest(body)
        } catch {
            return Answer(response: anthropicErrorResponse(.invalidRequest(error.message, param: error.param), requestID: requestID))
        }
        decoded.request.passthrough?.headers = anthropicHeaders(request)
        guard let name = router.chain(for: decoded.model), let chain = chains[name] else {
            return Answer(response: anthropicErrorResponse(.modelNotFound(decoded.model, available: chainNames), requestID: requestID))
        }
        let watch = connections.watch(for: context.channel)
        if decoded.stream {
            guard limiter.streams.tryAcquire() else {
                return Answer(response: anthropicErrorResponse(.overloaded(what: "streams", limit: limiter.streams.limit), requestID: requestID))
            }
            return await streamMessages(
                decoded, chain: chain, chainName: name, requestID: requestID, watch: watch, eventLoop: context.channel.eventLoop)
        }
        do {
            let answer = try await watch.cancelling { try await chain.chat(decoded.request) }
            return Answer(response: messageResponse(answer, requestID: requestID))
        } catch {
            return Answer(response: anthropicChainErrorResponse(error, chain: chain, chainName: name, requestID: requestID))
        }
    }

    /// A `message` for an answer: an Anthropic provider's body as it came, any other's translated.
    func messageResponse(_ answer: ChatResponse, requestID: String) -> Response {
        let buffer: ByteBuffer
        if answer.wireFormat == .anthropic, let raw = answer.rawBody, !raw.isEmpty {
            var relayed = allocator.buffer(capacity: raw.count)
            relayed.writeBytes(raw)
            buffer = relayed
        } else {
            buffer = AnthropicMessagesServer.encodeResponse(answer, id: messageIDs.next(), model: answer.model)
        }
        var headers = answeredHeaders(provider: answer.provider, model: answer.model, attempts: answer.attempts, dropped: answer.droppedParameters)
        headers[.contentType] = Self.jsonContentType
        headers[Self.requestIDHeader] = requestID
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }

    /// The headers that say who answered, after how many attempts, and what could not be sent.
    func answeredHeaders(provider: String, model: String, attempts: Int, dropped: [String]) -> HTTPFields {
        var headers = HTTPFields()
        headers.reserveCapacity(8)
        headers[Self.providerHeader] = provider
        headers[Self.modelHeader] = model
        if attempts > 0 { headers[Self.attemptsHeader] = String(attempts) }
        if !dropped.isEmpty { headers[Self.droppedParametersHeader] = dropped.joined(separator: ", ") }
        return headers
    }

    /// Starts a streamed Messages answer once the chain has its first chunk, as ``streamCompletion(_:chain:watch:eventLoop:)``
    /// does for OpenAI's format: a failover before the first content stays invisible, and a chain that fails
    /// outright gets an honest status.
    func streamMessages(
        _ decoded: AnthropicMessagesServer.Request,
        chain: FallbackChain,
        chainName: String,
        requestID: String,
        watch: ConnectionWatch?,
        eventLoop: any EventLoop
    ) async -> Answer {
        let executor = executors.executor(for: eventLoop)
        let options = FallbackChain.RequestOptions(taskExecutor: executor, keepAliveInterval: configuration.streamKeepAlive)
        let source = ChunkSource<AnthropicStreamRelay>(chain.stream(decoded.request, options: options))
        let first: ChatChunk?
        do {
            first = try await watch.cancelling { try await source.next() }
        } catch {
            limiter.streams.release()
            return Answer(response: anthropicChainErrorResponse(error, chain: chain, chainName: chainName, requestID: requestID))
        }
        if Task.isCancelled || watch?.isClosed == true {
            limiter.streams.release()
            return Answer(response: anthropicChainErrorResponse(CancellationError(), chain: chain, chainName: chainName, requestID: requestID))
        }
        let relay = AnthropicStreamRelay(id: messageIDs.next(), model: first.map { $0.model.isEmpty ? decoded.model : $0.model } ?? decoded.model)
        var headers = first.flatMap { $0.isKeepAlive ? nil : $0 }.map {
            answeredHeaders(provider: $0.provider, model: $0.model, attempts: $0.attempts, dropped: $0.droppedParameters)
        } ?? HTTPFields()
        headers[Self.requestIDHeader] = requestID
        source.relay(first: first, encoder: relay, watch: watch, chainName: chainName)
        return streamingAnswer(source, headers: headers, executor: executor)
    }

    /// `POST /v1/messages/count_tokens`: counted by the chain's first healthy Anthropic provider, otherwise
    /// estimated, and the `x-llm-fallback-token-count` header says which (never a silent zero).
    func countTokens(_ request: Request, requestID: String) async -> Response {
        let body: ByteBuffer
        switch await readBody(request) {
        case .success(let read): body = read
        case .failure(let error): return anthropicErrorResponse(error, requestID: requestID)
        }
        var decoded: AnthropicMessagesServer.Request
        do {
            decoded = try AnthropicMessagesServer.decodeCountTokensRequest(body)
        } catch {
            return anthropicErrorResponse(.invalidRequest(error.message, param: error.param), requestID: requestID)
        }
        decoded.request.passthrough?.headers = anthropicHeaders(request)
        guard let name = router.chain(for: decoded.model), let chain = chains[name] else {
            return anthropicErrorResponse(.modelNotFound(decoded.model, available: chainNames), requestID: requestID)
        }
        let count: TokenCount
        do {
            count = try await chain.countTokens(decoded.request)
        } catch {
            return anthropicChainErrorResponse(error, chain: chain, chainName: name, requestID: requestID)
        }
        var buffer = allocator.buffer(capacity: 32)
        buffer.writeRaw(#"{"input_tokens":"#)
        buffer.writeJSONInt(count.inputTokens)
        buffer.writeInteger(UInt8(ascii: "}"))
        var headers = HTTPFields()
        headers[.contentType] = Self.jsonContentType
        headers[Self.requestIDHeader] = requestID
        headers[Self.tokenCountHeader] = count.isEstimate ? "estimate" : "counted"
        if let provider = count.providerName { headers[Self.providerHeader] = provider }
        if let model = count.model { headers[Self.modelHeader] = model }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }

    // MARK: - Errors

    /// An error in Anthropic's format, with the `request-id` header and `request_id` member.
    func anthropicErrorResponse(_ error: GatewayError, requestID: String, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        headers[.contentType] = Self.jsonContentType
        headers[Self.requestIDHeader] = requestID
        if let seconds = error.retryAfterSeconds {
            headers[.retryAfter] = String(seconds)
        }
        let body = AnthropicMessagesServer.encodeError(type: error.anthropicType, message: error.message, requestID: requestID)
        return Response(status: HTTPResponse.Status(code: error.status), headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// The answer to what a chain threw, in Anthropic's format: as ``chainErrorResponse(_:chain:chainName:)``, and
    /// `529 overloaded_error` when every provider that was tried said it was overloaded.
    func anthropicChainErrorResponse(_ error: any Error, chain: FallbackChain, chainName: String, requestID: String) -> Response {
        let providerCount = chain.providers.count
        let detailed = GatewayError.from(error, redactor: redactor, providerCount: providerCount, detailed: true)
        if detailed.status >= 500 {
            logger.warning(
                "request failed",
                metadata: ["chain": "\(chainName)", "status": "\(detailed.status)", "error": "\(detailed.message)", "request_id": "\(requestID)"])
        } else {
            logger.debug(
                "request refused",
                metadata: ["chain": "\(chainName)", "status": "\(detailed.status)", "error": "\(detailed.message)", "request_id": "\(requestID)"])
        }
        var answered = configuration.exposeUpstreamErrors ? detailed : GatewayError.from(error, redactor: redactor, providerCount: providerCount)
        if let failed = error as? AllProvidersFailed, !failed.failures.isEmpty, failed.failures.allSatisfy({ $0.kind == .overloaded }) {
            answered.status = 529
            answered.type = "overloaded_error"
        }
        return anthropicErrorResponse(answered, requestID: requestID)
    }
}

extension GatewayError {
    /// The Anthropic error `type` for this error's status (see ``AnthropicMessagesServer/errorType(forStatus:)``).
    var anthropicType: String {
        if status == 529 { return "overloaded_error" }
        return AnthropicMessagesServer.errorType(forStatus: status)
    }
}

/// A stream broke after it started and the chain re-ran it on another attempt (`restart`), whose events cannot be
/// spliced into an Anthropic stream relayed event by event (block indices, a second `message_start`).
struct StreamSpliceRefused: Error {
    var provider: String
}

/// Writes an Anthropic Messages stream from the chain's chunks.
///
/// When the first chunk with content (or the first of the events held back before it) came from an Anthropic
/// provider (the client's body was passed through), every event of that attempt is relayed as the provider sent it
/// (``ChatChunk/rawData``): thinking blocks and their signatures, citations, server tools and events added later
/// reach the client intact. Otherwise the chunks are translated by ``AnthropicMessagesServer/StreamEncoder``:
/// `message_start`, text and `tool_use` blocks, `message_delta` with the stop reason and usage, `message_stop`.
/// When a relayed stream broke and the chain continued it on another provider (``MidStreamPolicy/continue``), the
/// encoder takes over where the relayed events stopped: the continuation's text goes on in the open text block and
/// the closing events are the encoder's, naming the providers in `message_delta`.
/// The chain's keep-alive chunks become `ping` events (after a `message_start` of the gateway's own when the
/// stream has not started: the provider's own is then left out). A failure after the start ends the stream with
/// an `error` event, never a clean `message_stop`.
struct AnthropicStreamRelay: GatewayStreamEncoding {
    private enum Mode {
        case undecided
        /// The attempt whose events are relayed as they came.
        case relaying(attempt: Int)
        case translating
    }

    private var mode = Mode.undecided
    private var translator: AnthropicMessagesServer.StreamEncoder
    /// Whether the gateway wrote a `message_start` of its own (before keep-alives).
    private var startedByGateway = false
    /// Whether a relayed `message_stop` went out: nothing may follow it, not even a keep-alive that raced it.
    private var relayedStop = false
    /// Whether a relayed `message_delta` went out: the message is closed to more content.
    private var relayedDelta = false
    /// The relayed content blocks: how many were started, and the one open (its index, whether it is text).
    private var relayedBlocks = 0
    private var openRelayedBlock: (index: Int, isText: Bool)?

    init(id: String, model: String) {
        translator = AnthropicMessagesServer.StreamEncoder(id: id, model: model)
    }

    mutating func encode(_ chunk: ChatChunk, into buffer: inout ByteBuffer) -> (any Error)? {
        if chunk.isKeepAlive && chunk.rawData == nil {
            guard !relayedStop else { return nil }
            if case .undecided = mode, !startedByGateway {
                startedByGateway = true
                for event in translator.start() { buffer.writeString(event) }
            }
            buffer.writeString(AnthropicMessagesServer.StreamEncoder.pingEvent)
            return nil
        }
        if case .undecided = mode {
            mode = chunk.wireFormat == .anthropic && chunk.rawData != nil ? .relaying(attempt: chunk.attempts) : .translating
        }
        switch mode {
        case .relaying(let attempt):
            guard chunk.attempts == attempt, chunk.wireFormat == .anthropic, let raw = chunk.rawData else {
                // Another attempt: a continuation (the chain's chunks, no raw events) is taken over where the
                // relayed events stopped; anything else cannot be spliced in.
                // A block other than text left open (a tool call's partial input, thinking without its signature)
                // cannot be closed honestly by another provider.
                let openIsText = openRelayedBlock?.isText ?? true
                guard chunk.rawData == nil, chunk.attempts != attempt, !relayedDelta, !relayedStop, openIsText else {
                    return StreamSpliceRefused(provider: chunk.providerName.isEmpty ? chunk.provider : chunk.providerName)
                }
                mode = .translating
                for event in translator.takeOver(nextBlock: relayedBlocks, openBlock: openRelayedBlock) { buffer.writeString(event) }
                for event in translator.encode(chunk) { buffer.writeString(event) }
                return nil
            }
            if startedByGateway && raw.hasPrefix("event: message_start\n") { return nil }
            if raw.hasPrefix("event: message_stop\n") { relayedStop = true }
            track(raw)
            buffer.writeString(raw)
        case .translating, .undecided:
            for event in translator.encode(chunk) { buffer.writeString(event) }
        }
        return nil
    }

    /// Follows the relayed blocks, so that a continuation can take over the stream.
    private mutating func track(_ raw: String) {
        if raw.hasPrefix("event: content_block_start\n") {
            // Block starts are few: each is parsed, for its index and its block's type.
            let data = raw.split(separator: "\n").filter { $0.hasPrefix("data:") }.map { $0.dropFirst(5) }.joined(separator: "\n")
            let event = try? JSONValue(parsing: String(data))
            let index = event?["index"]?.intValue.flatMap { (0..<1_000_000).contains($0) ? $0 : nil } ?? relayedBlocks
            relayedBlocks = max(relayedBlocks, index + 1)
            openRelayedBlock = (index, event?["content_block"]?["type"]?.stringValue == "text")
        } else if raw.hasPrefix("event: content_block_stop\n") {
            openRelayedBlock = nil
        } else if raw.hasPrefix("event: message_delta\n") {
            relayedDelta = true
        }
    }


    mutating func encodeEnd(into buffer: inout ByteBuffer) {
        // A relayed stream ended cleanly only after its own message_stop, already relayed.
        if case .relaying = mode { return }
        for event in translator.finish() { buffer.writeString(event) }
    }

    mutating func encodeError(_ error: GatewayError, into buffer: inout ByteBuffer) {
        buffer.writeString(AnthropicMessagesServer.StreamEncoder.errorEvent(type: error.anthropicType, message: error.message))
    }
}
