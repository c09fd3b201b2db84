import LLMFallback
import Logging
import NIOCore

/// What the chain and streaming benchmarks call: the same request sent directly (adapter + transport, no chain)
/// and through chains, against the scripted mock server.
///
/// Everything is built once; one transport (`AsyncHTTPClientTransport()` unless told otherwise) serves the direct
/// calls and the chains alike, so all of them share one keep-alive connection pool.
public struct NetworkFixture: Sendable {
    /// The realistic request every call sends.
    public let request: ChatRequest
    /// The OpenAI adapter, as the chain holds it.
    public let adapter: any ProviderAdapter
    /// The transport of the direct calls, and of the chains.
    public let transport: any HTTPTransport
    /// The OpenAI-format provider that answers.
    public let answering: ResolvedProvider
    /// The OpenAI-format provider that streams ``MockEndpoint/streamChunks`` chunks.
    public let streaming: ResolvedProvider
    /// A chain of one provider that answers (default configuration).
    public let singleChain: FallbackChain
    /// A chain whose first provider fails fast (HTTP 500, no retry, breaker disabled) and whose second answers.
    public let failoverChain: FallbackChain
    /// A chain of one provider that streams.
    public let streamChain: FallbackChain
    /// Whether the mock server runs in another process.
    public let externalServer: Bool

    /// A logger that drops everything, so that log output is not what is measured.
    public static let silentLogger = Logger(label: "llm-fallback-bench", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Builds the fixture against the mock server (starting it in this process unless `LLMFB_BENCH_MOCK_URL` is set)
    /// and checks that each path answers as expected.
    ///
    /// - Parameter transport: The transport of the direct calls and the chains alike (AsyncHTTPClient's by default;
    ///   `NIOHTTPClientTransport` is the gateway's).
    public static func make(transport: any HTTPTransport = AsyncHTTPClientTransport()) async throws -> NetworkFixture {
        let root = try await MockEndpoint.baseURL()
        let openAIBase = root + "/v1"

        func provider(_ model: String, maxRetries: Int = 2) -> Provider {
            Provider("openai", model: model, apiKey: "bench-key-0123456789", baseURL: openAIBase,
                maxRetries: maxRetries)
        }
        let answer = provider(MockEndpoint.answerModel)
        let stream = provider(MockEndpoint.streamModel)
        let failing = provider(MockEndpoint.failingModel, maxRetries: 0)

        var failoverConfiguration = FallbackChain.Configuration()
        failoverConfiguration.circuitBreaker = .disabled

        let fixture = NetworkFixture(
            request: Fixtures.request,
            adapter: WireFormat.openAI.adapter,
            transport: transport,
            answering: try answer.resolved(environment: [:]),
            streaming: try stream.resolved(environment: [:]),
            singleChain: FallbackChain([answer], transport: transport, logger: silentLogger),
            failoverChain: FallbackChain([failing, answer], configuration: failoverConfiguration, transport: transport, logger: silentLogger),
            streamChain: FallbackChain([stream], transport: transport, logger: silentLogger),
            externalServer: MockEndpoint.isExternal
        )
        try await fixture.check()
        return fixture
    }

    // MARK: The measured paths

    /// The baseline: `makeRequest`, `send`, collect the body, `decodeResponse`; no chain.
    public func direct() async throws -> ChatResponse {
        let response = try await sendAnswering()
        let body = try await response.body.collect(upTo: 32 << 20)
        return try adapter.decodeResponse(body, headers: response.headers, for: answering)
    }

    /// `makeRequest` and `send` to the answering provider: the head of a direct call.
    private func sendAnswering() async throws -> TransportResponse {
        let parts = try adapter.makeRequest(request, for: answering, stream: false)
        let response = try await transport.send(parts, timeout: .seconds(30))
        guard response.status == 200 else {
            throw BenchError("direct call answered HTTP \(response.status)")
        }
        return response
    }

    /// The baseline with the body bounded as the chain bounds it on AsyncHTTPClientTransport: read in a task of
    /// its own, started at once on this thread (`Task.immediate`), that the caller's cancellation reaches. (The
    /// chain also arms a timer for that task when it has to wait; this does not.) Tells the price of bounding the
    /// body from the chain's own bookkeeping.
    public func boundedDirect() async throws -> ChatResponse {
        let response = try await sendAnswering()
        let adapter = self.adapter
        let answering = self.answering
        let reader = Task.immediate {
            let body = try await response.body.collect(upTo: 32 << 20)
            return try adapter.decodeResponse(body, headers: response.headers, for: answering)
        }
        return try await withTaskCancellationHandler { try await reader.value } onCancel: { reader.cancel() }
    }

    /// One chat through the one-provider chain.
    public func chain() async throws -> ChatResponse {
        try await singleChain.chat(request)
    }

    /// One chat through the chain whose first provider fails: one failover.
    public func failover() async throws -> ChatResponse {
        try await failoverChain.chat(request)
    }

    /// The streaming baseline: `makeRequest(stream: true)`, `send`, the SSE parser and the stream decoder, as the
    /// chain reads a stream (stopping at the format's terminator).
    ///
    /// - Parameter firstChunk: Called once, when the first chunk with content has been decoded.
    public func directStream(firstChunk: () -> Void) async throws -> StreamTally {
        let parts = try adapter.makeRequest(request, for: streaming, stream: true)
        let response = try await transport.send(parts, timeout: .seconds(30))
        guard response.status == 200 else {
            throw BenchError("direct stream answered HTTP \(response.status)")
        }
        var parser = ServerSentEventParser()
        var decoder = adapter.makeStreamDecoder(for: streaming)
        var events: [ServerSentEvent] = []
        var tally = StreamTally()
        for try await buffer in response.body {
            events.removeAll(keepingCapacity: true)
            try parser.feed(buffer, into: &events)
            for event in events {
                guard let chunk = try decoder.decode(event) else { continue }
                tally.add(chunk, firstChunk: firstChunk)
            }
            if decoder.isComplete { break }
        }
        tally.complete = decoder.isComplete
        return tally
    }

    /// One stream through the chain.
    ///
    /// - Parameter firstChunk: Called once, when the first chunk with content arrives.
    public func chainStream(firstChunk: () -> Void) async throws -> StreamTally {
        var tally = StreamTally()
        for try await chunk in streamChain.stream(request) {
            tally.add(chunk, firstChunk: firstChunk)
            if chunk.finishReason != nil { tally.complete = true }
        }
        return tally
    }

    // MARK: Checks

    /// Runs each path once and checks what it returns, so that a benchmark never measures a failure.
    func check() async throws {
        for (name, response) in [
            ("direct", try await direct()), ("chain", try await chain()), ("failover", try await failover()),
        ] {
            guard response.content == Fixtures.answerText else {
                throw BenchError("\(name) answered \(response.content.prefix(80))")
            }
        }
        let failover = try await failover()
        guard failover.attempts == 2 else {
            throw BenchError("the failover chain made \(failover.attempts) attempts, expected 2")
        }
        for (name, tally) in [
            ("direct stream", try await directStream {}), ("chain stream", try await chainStream {}),
        ] {
            guard tally.contentChunks == MockEndpoint.streamChunks, tally.complete else {
                throw BenchError("\(name) delivered \(tally.contentChunks) chunks (complete: \(tally.complete))")
            }
        }
    }
}

/// What a stream delivered.
public struct StreamTally: Sendable {
    /// Chunks with content.
    public var contentChunks = 0
    /// Bytes of text (UTF-8).
    public var characters = 0
    /// Whether the stream ended with its terminator (direct) or a finish reason (chain).
    public var complete = false

    public init() {}

    mutating func add(_ chunk: ChatChunk, firstChunk: () -> Void) {
        guard chunk.hasContent else { return }
        if contentChunks == 0 { firstChunk() }
        contentChunks += 1
        characters += chunk.content.utf8.count
    }
}

/// A benchmark precondition that did not hold.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
