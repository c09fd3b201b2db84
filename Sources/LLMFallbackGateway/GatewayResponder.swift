import Foundation
import HTTPTypes
import Hummingbird
import LLMFallback
import Logging
import NIOCore
import NIOFoundationCompat
import Prometheus

/// What a request handler sees besides the request: the connection it came on.
///
/// Deliberately minimal (no router storage): the gateway routes by a `switch` on the path.
struct GatewayRequestContext: InitializableFromSource {
    /// The connection.
    let channel: any Channel

    /// Creates a context.
    init(source: ApplicationRequestContextSource) {
        self.channel = source.channel
    }
}

/// Answers every request of the gateway.
///
/// Routes by a `switch` on the path rather than Hummingbird's trie router: there are six routes, and this keeps the
/// request path short.
struct GatewayResponder: HTTPResponder {
    typealias Context = GatewayRequestContext

    let core: GatewayCore

    func respond(to request: Request, context: GatewayRequestContext) async throws -> Response {
        // On the connection's event loop as a task executor: see EventLoopTaskExecutor.
        try await withTaskExecutorPreference(core.executors.executor(for: context.channel.eventLoop)) {
            try await core.respond(to: request, context: context)
        }
    }
}

/// The shared state behind every request.
final class GatewayCore: Sendable {
    let chains: [String: FallbackChain]
    let chainNames: [String]
    let router: ModelRouter
    let configuration: GatewayConfiguration
    let logger: Logger
    let instruments: GatewayInstruments
    let registry: PrometheusCollectorRegistry
    let connections = ConnectionRegistry()
    let limiter: GatewayLimiter
    let authenticator: APIKeyAuthenticator
    let redactor: Redactor
    let ids = CompletionIDs()
    let messageIDs = CompletionIDs(prefix: "msg_")
    let requestIDs = CompletionIDs(prefix: "req_")
    let executors = EventLoopTaskExecutors()
    let allocator = ByteBufferAllocator()
    let startedAt: Int
    let modelsBody: ByteBuffer
    let healthBody: ByteBuffer

    static let jsonContentType = "application/json"
    static let providerHeader = HTTPField.Name("x-llm-fallback-provider")!
    static let modelHeader = HTTPField.Name("x-llm-fallback-model")!
    /// The key header of Anthropic's clients, accepted as well as `Authorization: Bearer`.
    static let apiKeyHeader = HTTPField.Name("x-api-key")!
    /// Sent by Anthropic's clients: `/v1/models` answers in Anthropic's list format.
    static let anthropicVersionHeader = HTTPField.Name("anthropic-version")!
    static let attemptsHeader = HTTPField.Name("x-llm-fallback-attempts")!
    /// The request's parameters the answering provider could not be sent, comma-separated (absent when none).
    static let droppedParametersHeader = HTTPField.Name("x-llm-fallback-dropped-params")!

    init(chains: [String: FallbackChain], configuration: GatewayConfiguration, logger: Logger) throws(GatewayConfigurationError) {
        try configuration.validate()
        try configuration.modelRouting.validate(chainNames: Set(chains.keys))
        self.router = ModelRouter(chainNames: chains.keys.sorted(), routing: configuration.modelRouting)
        self.authenticator = try APIKeyAuthenticator(keys: configuration.apiKeys)
        self.limiter = GatewayLimiter(configuration.limits)
        self.chains = chains
        self.chainNames = chains.keys.sorted()
        self.configuration = configuration
        self.logger = logger
        let registry = configuration.metricsRegistry ?? GatewayMetrics.registry
        self.registry = registry
        self.instruments = GatewayInstruments(registry: registry)
        self.redactor = Redactor(chains: chains.values)
        self.startedAt = unixTime()
        self.modelsBody = InfoEncoder.models(router.listedNames, created: startedAt)
        var health = ByteBuffer()
        health.writeRaw(#"{"status":"ok"}"#)
        self.healthBody = health
    }

    // MARK: - Routing

    func respond(to request: Request, context: GatewayRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        instruments.inFlight.increment()
        defer { instruments.inFlight.decrement() }
        // Everything but a chat completion is answered synchronously: this async frame (kept by the connection's
        // task for as long as it lives) then holds only what a completion needs.
        let route: GatewayInstruments.Route
        let response: Response
        switch immediateResponse(to: request) {
        case .answered(let answeredRoute, let answer):
            route = answeredRoute
            response = answer
        case .chatCompletion:
            route = .chatCompletions
            if limiter.requests.tryAcquire() {
                let answer = await chatCompletions(request, context: context)
                // A stream's answer holds its place until its last event: its lease releases it.
                if !answer.holdsPlace { limiter.requests.release() }
                response = answer.response
            } else {
                response = errorResponse(.overloaded(what: "requests", limit: limiter.requests.limit))
            }
        case .messages(let requestID):
            route = .messages
            if limiter.requests.tryAcquire() {
                let answer = await messages(request, requestID: requestID, context: context)
                if !answer.holdsPlace { limiter.requests.release() }
                response = answer.response
            } else {
                response = anthropicErrorResponse(.overloaded(what: "requests", limit: limiter.requests.limit), requestID: requestID)
            }
        case .countTokens(let requestID):
            route = .countTokens
            if limiter.requests.tryAcquire() {
                response = await countTokens(request, requestID: requestID)
                limiter.requests.release()
            } else {
                response = anthropicErrorResponse(.overloaded(what: "requests", limit: limiter.requests.limit), requestID: requestID)
            }
        }
        instruments.record(route: route, status: response.status.code, duration: start.duration(to: .now))
        return response
    }

    enum Routed {
        case answered(GatewayInstruments.Route, Response)
        /// An authorised `POST` of a chat completion.
        case chatCompletion
        /// An authorised `POST /v1/messages` (Anthropic Messages), with its `request-id`.
        case messages(requestID: String)
        /// An authorised `POST /v1/messages/count_tokens`, with its `request-id`.
        case countTokens(requestID: String)
    }

    /// The answer to every request but an authorised chat completion.
    func immediateResponse(to request: Request) -> Routed {
        var path = request.uri.path
        if path.utf8.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let method = request.method
        switch path {
        case "/v1/chat/completions", "/chat/completions":
            if method != .post {
                return .answered(.chatCompletions, errorResponse(.methodNotAllowed(method: method, path: path)))
            } else if let refusal = authenticate(request) {
                return .answered(.chatCompletions, refusal)
            }
            return .chatCompletion
        case "/v1/messages", "/messages", "/v1/messages/count_tokens", "/messages/count_tokens":
            let counting = path.hasSuffix("/count_tokens")
            let route: GatewayInstruments.Route = counting ? .countTokens : .messages
            let requestID = requestIDs.next()
            if method != .post {
                return .answered(route, anthropicErrorResponse(.methodNotAllowed(method: method, path: path), requestID: requestID))
            } else if let refusal = authenticate(request, requestID: requestID) {
                return .answered(route, refusal)
            }
            return counting ? .countTokens(requestID: requestID) : .messages(requestID: requestID)
        case "/health":
            return .answered(.health, method == .get ? jsonResponse(healthBody) : errorResponse(.methodNotAllowed(method: method, path: path)))
        case "/v1/models", "/models":
            if method != .get {
                return .answered(.models, errorResponse(.methodNotAllowed(method: method, path: path)))
            }
            if request.headers[Self.anthropicVersionHeader] != nil {
                return .answered(.models, authenticate(request) ?? jsonResponse(InfoEncoder.anthropicModels(router.listedNames, created: startedAt)))
            }
            return .answered(.models, authenticate(request) ?? jsonResponse(modelsBody))
        case "/health/providers":
            if method != .get {
                return .answered(.healthProviders, errorResponse(.methodNotAllowed(method: method, path: path)))
            }
            return .answered(.healthProviders, authenticate(request) ?? healthProviders())
        case "/metrics":
            if method != .get {
                return .answered(.metrics, errorResponse(.methodNotAllowed(method: method, path: path)))
            }
            return .answered(.metrics, authenticate(request) ?? metrics())
        default:
            if path.hasPrefix("/v1/models/") && method == .get {
                let name = String(path.dropFirst("/v1/models/".count))
                return .answered(.models, authenticate(request) ?? model(named: name, anthropic: request.headers[Self.anthropicVersionHeader] != nil))
            }
            return .answered(.other, authenticate(request) ?? errorResponse(.notFound(method: method, path: path)))
        }
    }

    /// `nil` when the request may pass; otherwise the `401` to answer (in Anthropic's format, with its
    /// `request-id`, when `requestID` is given).
    func authenticate(_ request: Request, requestID: String? = nil) -> Response? {
        guard authenticator.isEnabled else { return nil }
        let verdict: APIKeyAuthenticator.Verdict
        if let authorization = request.headers[.authorization] {
            verdict = authenticator.check(authorization: authorization)
        } else {
            verdict = authenticator.check(apiKey: request.headers[Self.apiKeyHeader])
        }
        let error: GatewayError
        switch verdict {
        case .allowed: return nil
        case .missing: error = .missingKey
        case .refused: error = .invalidKey
        }
        if let requestID {
            return anthropicErrorResponse(error, requestID: requestID, extraHeaders: [.wwwAuthenticate: "Bearer"])
        }
        return errorResponse(error, extraHeaders: [.wwwAuthenticate: "Bearer"])
    }

    // MARK: - Chat completions

    /// A chat completion's answer, and whether it keeps holding its place under
    /// ``GatewayConfiguration/Limits/maxConcurrentRequests`` (a stream does, until its last event).
    struct Answer {
        var response: Response
        var holdsPlace = false
    }

    /// The request's body, read up to ``GatewayConfiguration/maxBodySize``; the error to answer otherwise.
    func readBody(_ request: Request) async -> Result<ByteBuffer, GatewayError> {
        let limit = configuration.maxBodySize
        if let declared = request.headers[.contentLength] {
            // Digits only, and no more of them than a limit can have: no conversion to trap on, no overflow.
            let digits = declared.utf8
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return .failure(.invalidRequest("invalid content-length"))
            }
            if digits.count > 18 || Int(declared).map({ $0 > limit }) ?? true {
                return .failure(.bodyTooLarge(limit: limit))
            }
        }
        do {
            return .success(try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            return .failure(.bodyTooLarge(limit: limit))
        } catch {
            return .failure(.invalidRequest("the request body could not be read"))
        }
    }

    func chatCompletions(_ request: Request, context: GatewayRequestContext) async -> Answer {
        let body: ByteBuffer
        switch await readBody(request) {
        case .success(let read): body = read
        case .failure(let error): return Answer(response: errorResponse(error))
        }
        let parsed: ChatCompletionRequest
        let chain: FallbackChain
        switch prepare(body) {
        case .success(let prepared):
            (parsed, chain) = prepared
        case .failure(let refusal):
            return Answer(response: refusal.response)
        }
        let watch = connections.watch(for: context.channel)
        if parsed.stream {
            guard limiter.streams.tryAcquire() else {
                return Answer(response: errorResponse(.overloaded(what: "streams", limit: limiter.streams.limit)))
            }
            return await streamCompletion(parsed, chain: chain, watch: watch, eventLoop: context.channel.eventLoop)
        }
        do {
            let answer = try await watch.cancelling { try await chain.chat(parsed.request) }
            return Answer(response: completionResponse(answer))
        } catch {
            return Answer(response: chainErrorResponse(error, chain: chain, chainName: parsed.model))
        }
    }

    /// A response to send instead of running a request.
    struct Refusal: Error {
        var response: Response
    }

    /// The parsed request and the chain it names.
    func prepare(_ body: ByteBuffer) -> Result<(ChatCompletionRequest, FallbackChain), Refusal> {
        let parsed: ChatCompletionRequest
        do {
            parsed = try ChatCompletionRequest.decode(body)
        } catch {
            return .failure(Refusal(response: errorResponse(error)))
        }
        guard let name = router.chain(for: parsed.model), let chain = chains[name] else {
            return .failure(Refusal(response: errorResponse(.modelNotFound(parsed.model, available: chainNames))))
        }
        return .success((parsed, chain))
    }

    /// The `chat.completion` for an answer, with the headers that say who answered.
    func completionResponse(_ answer: ChatResponse) -> Response {
        var buffer: ByteBuffer
        if answer.wireFormat?.speaksOpenAIChat == true, let raw = answer.rawBody, !raw.isEmpty {
            // The provider spoke the client's format: its answer as it was sent, so that what the chat model does
            // not hold (logprobs, system_fingerprint, service_tier, refusal, annotations, ...) reaches the client.
            buffer = allocator.buffer(capacity: raw.count)
            buffer.writeBytes(raw)
        } else {
            buffer = allocator.buffer(capacity: 384 + answer.content.utf8.count)
            OpenAIChatServer.writeResponse(answer, id: answer.id ?? ids.next(), created: unixTime(), into: &buffer)
        }
        var headers = HTTPFields()
        headers.reserveCapacity(7)
        headers[.contentType] = Self.jsonContentType
        headers[Self.providerHeader] = answer.provider
        headers[Self.modelHeader] = answer.model
        headers[Self.attemptsHeader] = String(answer.attempts)
        if !answer.droppedParameters.isEmpty {
            headers[Self.droppedParametersHeader] = answer.droppedParameters.joined(separator: ", ")
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }

    /// Starts the chain's stream and answers once its first chunk is in: a failover before the first token stays
    /// invisible, the headers can name the provider and model that answered, and a chain that fails outright gets an
    /// honest status rather than a `200` with an error event.
    ///
    /// Called holding a place under both ``GatewayConfiguration/Limits/maxConcurrentRequests`` and
    /// ``GatewayConfiguration/Limits/maxOpenStreams``: a stream that starts hands both to its lease; otherwise the
    /// stream's place is given back here and the request's by the caller.
    func streamCompletion(_ parsed: ChatCompletionRequest, chain: FallbackChain, watch: ConnectionWatch?, eventLoop: any EventLoop) async -> Answer {
        // The stream's task runs on this connection's event loop, like the request (see EventLoopTaskExecutor).
        let executor = executors.executor(for: eventLoop)
        let source = ChunkSource<OpenAIChatServer.StreamEncoder>(chain.stream(parsed.request, options: .init(taskExecutor: executor)))
        let first: ChatChunk?
        do {
            first = try await watch.cancelling { try await source.next() }
        } catch {
            limiter.streams.release()
            return Answer(response: chainErrorResponse(error, chain: chain, chainName: parsed.model))
        }
        if Task.isCancelled || watch?.isClosed == true {
            limiter.streams.release()
            return Answer(response: chainErrorResponse(CancellationError(), chain: chain, chainName: parsed.model))
        }
        let model = first?.model ?? ""
        let encoder = OpenAIChatServer.StreamEncoder(
            id: first?.id ?? ids.next(),
            created: unixTime(),
            model: model,
            includeUsage: parsed.includeUsage,
            allocator: allocator
        )
        let headers = first.map {
            answeredHeaders(provider: $0.provider, model: $0.model, attempts: $0.attempts, dropped: $0.droppedParameters)
        } ?? HTTPFields()
        source.relay(first: first, encoder: encoder, watch: watch, chainName: parsed.model)
        return streamingAnswer(source, headers: headers, executor: executor)
    }

    /// The `200` of a started stream: its events written by ``writeStream(_:writer:)`` on `executor`, holding its
    /// places under the limits until the last one.
    func streamingAnswer<Encoder: GatewayStreamEncoding>(
        _ source: ChunkSource<Encoder>, headers: HTTPFields, executor: any TaskExecutor
    ) -> Answer {
        var headers = headers
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let lease = InFlightLease(instruments, isStream: true, limiter: limiter)
        let response = Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                defer { lease.release() }
                try await withTaskExecutorPreference(executor) {
                    try await self.writeStream(source, writer: &writer)
                }
            }
        )
        return Answer(response: response, holdsPlace: true)
    }

    /// Writes the stream's chunks, then its end (or its error event).
    ///
    /// An open stream keeps its task's async frames for as long as it runs (a thousand streams, a thousand sets of
    /// frames), so this loop keeps only a buffer across its suspensions: the chunks are taken and encoded by
    /// ``ChunkSource/nextEvents(allocator:)``, and the ending is worked out synchronously.
    func writeStream<Encoder: GatewayStreamEncoding>(_ source: ChunkSource<Encoder>, writer: inout any ResponseBodyWriter) async throws {
        try await source.watch.cancelling {
            while let events = await source.nextEvents(allocator: allocator) {
                try await writer.write(events)
            }
        }
        try await writer.write(streamEnding(source))
        try await writer.finish(nil)
    }

    /// The last bytes of a stream: `data: [DONE]` (after the usage chunk, when asked for), or the error event.
    func streamEnding<Encoder: GatewayStreamEncoding>(_ source: ChunkSource<Encoder>) -> ByteBuffer {
        var failure = source.failure
        if failure == nil && (Task.isCancelled || source.watch?.isClosed == true) {
            failure = CancellationError()
        }
        if failure is CancellationError, source.watch?.isClosed == false {
            // Not the client leaving: the grace period of a shutdown ran out.
            failure = GatewayError.shuttingDown
        }
        var buffer = allocator.buffer(capacity: 256)
        guard let failure else {
            source.writeEnd(into: &buffer)
            return buffer
        }
        source.cancel()
        let error: GatewayError
        switch failure {
        case let gatewayError as GatewayError: error = gatewayError
        case is StreamRestarted: error = .restarted(failure, redactor: redactor)
        case let refused as StreamSpliceRefused: error = .spliceRefused(provider: refused.provider, redactor: redactor)
        default: error = .from(failure, redactor: redactor, detailed: configuration.exposeUpstreamErrors)
        }
        if error.status != 499 {
            let detailed: GatewayError
            switch failure {
            case is GatewayError, is StreamRestarted, is StreamSpliceRefused: detailed = error
            default: detailed = .from(failure, redactor: redactor, detailed: true)
            }
            logger.warning(
                "stream failed after it started",
                metadata: ["chain": "\(source.chainName)", "status": "\(error.status)", "error": "\(detailed.message)"]
            )
        }
        source.writeError(error, into: &buffer)
        return buffer
    }

    // MARK: - Other routes

    func healthProviders() -> Response {
        let report = chainNames.map { (name: $0, report: chains[$0]!.healthReport()) }
        return jsonResponse(InfoEncoder.health(report, redactor: redactor))
    }

    func model(named name: String, anthropic: Bool = false) -> Response {
        guard router.chain(for: name) != nil else {
            return errorResponse(.modelNotFound(name, available: chainNames))
        }
        var buffer = ByteBuffer()
        if anthropic {
            InfoEncoder.anthropicModel(name, created: startedAt, into: &buffer)
        } else {
            InfoEncoder.model(name, created: startedAt, into: &buffer)
        }
        return jsonResponse(buffer)
    }

    func metrics() -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(registry.internalBufferCapacity())
        registry.emit(into: &bytes)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // MARK: - Responses

    func jsonResponse(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = Self.jsonContentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    func errorResponse(_ error: GatewayError, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        headers[.contentType] = Self.jsonContentType
        if let seconds = error.retryAfterSeconds {
            headers[.retryAfter] = String(seconds)
        }
        return Response(
            status: HTTPResponse.Status(code: error.status),
            headers: headers,
            body: ResponseBody(byteBuffer: error.body(allocator: allocator))
        )
    }

    /// The answer to what a chain threw. The log gets what the upstreams said (keys removed); the client gets it
    /// only with ``GatewayConfiguration/exposeUpstreamErrors``.
    func chainErrorResponse(_ error: any Error, chain: FallbackChain, chainName: String) -> Response {
        let providerCount = chain.providers.count
        let detailed = GatewayError.from(error, redactor: redactor, providerCount: providerCount, detailed: true)
        if detailed.status >= 500 {
            logger.warning("request failed", metadata: ["chain": "\(chainName)", "status": "\(detailed.status)", "error": "\(detailed.message)"])
        } else {
            logger.debug("request refused", metadata: ["chain": "\(chainName)", "status": "\(detailed.status)", "error": "\(detailed.message)"])
        }
        if configuration.exposeUpstreamErrors { return errorResponse(detailed) }
        return errorResponse(GatewayError.from(error, redactor: redactor, providerCount: providerCount))
    }
}

extension GatewayCore: CustomStringConvertible, CustomReflectable {
    /// The chains and the configuration (which never shows keys).
    var description: String { "GatewayCore(chains: \(chainNames), \(configuration))" }

    /// The chains' names and the configuration: never the authenticator's keys or the redactor's secrets.
    var customMirror: Mirror {
        Mirror(self, children: ["chains": chainNames, "configuration": configuration], displayStyle: .class)
    }
}

/// A restart chunk reached the gateway: see ``GatewayError/restarted(_:redactor:)``.
struct StreamRestarted: Error {
    var provider: String
}

extension GatewayError {
    /// The shutdown grace period ran out while a stream was still open.
    static let shuttingDown = GatewayError(
        status: 503,
        message: "the gateway shut down before the stream finished",
        type: "server_error",
        code: "shutting_down"
    )

    /// An Anthropic stream relayed event by event cannot take in another attempt's events: the stream ends here.
    static func spliceRefused(provider: String, redactor: Redactor) -> GatewayError {
        GatewayError(
            status: 502,
            message: redactor.redact(
                "the stream broke after it started and the chain went on with \(provider), whose events cannot be "
                    + "joined to the Anthropic events already relayed; this stream ends here"
            ),
            type: "upstream_error",
            code: "stream_interrupted"
        )
    }

    /// The OpenAI stream format cannot take back text already sent, so a chain configured with the `restart`
    /// mid-stream policy ends the gateway's stream with this error instead of splicing two answers together.
    static func restarted(_ error: any Error, redactor: Redactor) -> GatewayError {
        let provider = (error as? StreamRestarted)?.provider ?? "the provider"
        return GatewayError(
            status: 502,
            message: redactor.redact(
                "the stream broke after it started and the chain restarted the answer on \(provider); the client's "
                    + "stream format (OpenAI's or Anthropic's) cannot retract text already sent, so this stream ends "
                    + "here (use the 'fail' or 'continue' mid-stream policy behind the gateway)"
            ),
            type: "upstream_error",
            code: "stream_restarted"
        )
    }
}

/// How a gateway surface writes a stream: the chunks, the end, and the error event of a stream that fails after
/// it started. Written once per surface; ``ChunkSource`` is generic over it, so the relay loop has no dynamic
/// dispatch.
protocol GatewayStreamEncoding {
    /// Writes the events for `chunk`; returns the error that must end the stream instead (a chunk the client's
    /// format cannot express).
    mutating func encode(_ chunk: ChatChunk, into buffer: inout ByteBuffer) -> (any Error)?
    /// Writes the end of a stream that finished.
    mutating func encodeEnd(into buffer: inout ByteBuffer)
    /// Writes the error event of a stream that failed after it started: never a clean end.
    mutating func encodeError(_ error: GatewayError, into buffer: inout ByteBuffer)
}

extension OpenAIChatServer.StreamEncoder: GatewayStreamEncoding {
    mutating func encode(_ chunk: ChatChunk, into buffer: inout ByteBuffer) -> (any Error)? {
        write(chunk, into: &buffer)
        return nil
    }

    mutating func encodeEnd(into buffer: inout ByteBuffer) {
        writeEnd(into: &buffer)
    }

    mutating func encodeError(_ error: GatewayError, into buffer: inout ByteBuffer) {
        Self.writeErrorEvent(message: error.message, type: error.type, param: error.param, code: error.code, into: &buffer)
    }
}

/// The chain's stream as the gateway relays it: the iterator, shared by the request handler (first chunk) and the
/// response body writer (the rest), with the encoder and how the stream ended.
///
/// Both run one after the other on the connection's task, never at once, which is what makes the unchecked
/// `Sendable` sound. Releasing it ends the chain's stream, and with it the upstream request.
final class ChunkSource<Encoder: GatewayStreamEncoding>: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<ChatChunk, any Error>.AsyncIterator?
    private var pending: ChatChunk?
    private var encoder: Encoder?
    private(set) var watch: ConnectionWatch?
    private(set) var chainName = ""
    /// Why the stream stopped early, if it did.
    private(set) var failure: (any Error)?

    init(_ stream: AsyncThrowingStream<ChatChunk, any Error>) {
        iterator = stream.makeAsyncIterator()
    }

    func next() async throws -> ChatChunk? {
        try await iterator?.next()
    }

    /// Sets up the relay of the rest of the stream, starting with `first` (already taken by the handler).
    func relay(first: ChatChunk?, encoder: Encoder, watch: ConnectionWatch?, chainName: String) {
        self.pending = first
        self.encoder = encoder
        self.watch = watch
        self.chainName = chainName
    }

    /// The events for the next chunk that has any; `nil` at the end of the stream or when it failed (see
    /// ``failure``).
    func nextEvents(allocator: ByteBufferAllocator) async -> ByteBuffer? {
        while true {
            let chunk: ChatChunk
            if let pending {
                chunk = pending
                self.pending = nil
            } else {
                do {
                    guard let next = try await next() else { return nil }
                    chunk = next
                } catch {
                    failure = error
                    return nil
                }
            }
            if let events = encode(chunk, allocator: allocator) { return events }
            if failure != nil { return nil }
        }
    }

    private func encode(_ chunk: ChatChunk, allocator: ByteBufferAllocator) -> ByteBuffer? {
        if chunk.kind == .restart {
            failure = StreamRestarted(provider: chunk.provider)
            return nil
        }
        var buffer = allocator.buffer(capacity: 192 + chunk.content.utf8.count + (chunk.rawData?.utf8.count ?? 0))
        if let refusal = encoder?.encode(chunk, into: &buffer) {
            failure = refusal
            return nil
        }
        return buffer.readableBytes > 0 ? buffer : nil
    }

    /// Writes the end of a stream that finished: for OpenAI's format, the usage chunk (when asked for) and
    /// `data: [DONE]`; for Anthropic's, the closing events.
    func writeEnd(into buffer: inout ByteBuffer) {
        encoder?.encodeEnd(into: &buffer)
    }

    /// Writes the event that ends a stream that failed after it started.
    func writeError(_ error: GatewayError, into buffer: inout ByteBuffer) {
        encoder?.encodeError(error, into: &buffer)
    }

    /// Ends the chain's stream now (its task is cancelled when the last iterator goes).
    func cancel() {
        iterator = nil
    }
}

extension Optional where Wrapped == ConnectionWatch {
    /// Runs `operation`, cancelled if the client goes away (when the connection is watched).
    func cancelling<T>(_ operation: () async throws -> T) async throws -> T {
        switch self {
        case .some(let watch): return try await watch.cancellingOnDisconnect(operation)
        case .none: return try await operation()
        }
    }
}
